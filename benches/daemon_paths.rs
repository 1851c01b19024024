//! Packets per second through one daemon shard on each I/O path, against
//! the floor of this machine: a minimal UDP↔TUN forwarder that does only
//! the system calls (batched UDP receive and send, one TUN read or write per
//! packet) and no L2TP or PPP at all.
//!
//! Each contestant runs in a private network namespace of its own, fed by
//! the same sender and counted by the same kind of receiver:
//! - upstream: a `sendmmsg` loop plays the LAC (pre-framed L2TP data for the
//!   daemon, the bare inner IPv4 packet for the floor) → the contestant →
//!   TUN → a UDP socket on the gateway address counts arrivals;
//! - downstream: that socket blasts the subscribers' addresses → TUN → the
//!   contestant → the LAC socket counts arrivals.
//!
//! Two figures per direction: packets delivered per wall-clock second, and
//! packets delivered per CPU-second of the forwarding thread(s) — the
//! per-core figure, read from the threads' own CPU clocks, which holds up on
//! a shared machine where the sender and counter take cores too.
//!
//! `cargo bench --bench daemon_paths` (needs root: network namespaces and
//! TUN; without them it says so and exits). A measurement, not a check.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lns::config::IoMode;
use lns::io::batch::{RecvBatch, SendBatch};
use lns::io::daemon;
use lns::io::netns::{in_private_netns, link_up};
use lns::io::tun::{self, Tun};
use lns::io::uring;
use lns::proto::l2tp::CallInfo;
use lns::proto::node::Subscriber;
use lns::wire::ppp::frame::protocol;

#[path = "../tests/support/daemon.rs"]
mod support;
use support::*;

/// How long each direction is offered load in one round.
const BLAST: Duration = Duration::from_millis(1500);
/// Rounds per direction; the round with the median per-core rate is kept
/// (a shared 2-core machine swings from round to round).
const ROUNDS: usize = 5;
/// Sessions (daemon) or subscriber addresses (floor) the load is spread on.
const FLOWS: u8 = 4;
/// UDP payload sizes measured (inner packets of 92 and 1428 bytes).
const SIZES: [usize; 2] = [64, 1400];

/// One direction's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    offered: u64,
    delivered: u64,
    wall: Duration,
    /// CPU time of the forwarding thread(s) over the window.
    cpu: Duration,
}

impl Figures {
    fn wall_kpps(&self) -> f64 {
        self.delivered as f64 / self.wall.as_secs_f64() / 1000.0
    }
    fn offered_kpps(&self) -> f64 {
        self.offered as f64 / self.wall.as_secs_f64() / 1000.0
    }
    /// Packets per CPU-second of the forwarder: the per-core rate.
    fn per_core_kpps(&self) -> f64 {
        self.delivered as f64 / self.cpu.as_secs_f64().max(1e-9) / 1000.0
    }
}

#[derive(Debug, Clone)]
struct Row {
    name: String,
    size: usize,
    up: Figures,
    down: Figures,
}

fn main() {
    let mut rows = Vec::new();
    for size in SIZES {
        let Some(row) = in_netns(move || floor(size)) else {
            eprintln!("SKIPPED daemon_paths: needs root, network namespaces and TUN");
            return;
        };
        rows.push(row);
        for io in [IoMode::Fallback, IoMode::IoUring] {
            if let (IoMode::IoUring, Err(reason)) = (io, uring::probe(io)) {
                eprintln!("SKIPPED daemon on io_uring: {reason}");
                continue;
            }
            rows.extend(in_netns(move || measure(io, size)));
        }
    }
    report(&rows);
}

/// Run `f` in a fresh network namespace and bring its result back.
fn in_netns(f: impl FnOnce() -> Row + Send + 'static) -> Option<Row> {
    let slot = Arc::new(Mutex::new(None));
    let put = Arc::clone(&slot);
    if !in_private_netns(move || *put.lock().unwrap() = Some(f())) {
        return None;
    }
    let row = slot.lock().unwrap().take();
    row
}

fn report(rows: &[Row]) {
    eprintln!();
    eprintln!(
        "| contestant | payload | up kpps (wall / offered) | up kpps per core | \
         down kpps (wall / offered) | down kpps per core | up / floor | down / floor |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    for row in rows {
        let floor = rows
            .iter()
            .find(|r| r.size == row.size && r.name == "floor")
            .unwrap();
        let ratio = |ours: &Figures, theirs: &Figures| {
            100.0 * ours.per_core_kpps() / theirs.per_core_kpps()
        };
        eprintln!(
            "| {} | {} B | {:.0} / {:.0} | {:.0} | {:.0} / {:.0} | {:.0} | {:.0}% | {:.0}% |",
            row.name,
            row.size,
            row.up.wall_kpps(),
            row.up.offered_kpps(),
            row.up.per_core_kpps(),
            row.down.wall_kpps(),
            row.down.offered_kpps(),
            row.down.per_core_kpps(),
            ratio(&row.up, &floor.up),
            ratio(&row.down, &floor.down),
        );
    }
}

/// The subscribers' addresses the floor pretends to serve.
fn floor_subscriber(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, 1, 10 + n)
}

/// The floor: one thread, one UDP socket, one TUN queue, only the system
/// calls the daemon's fallback path also makes.
fn floor(size: usize) -> Row {
    link_up("lo").unwrap();
    let mut tun = Tun::open("floor0", 1, true).unwrap();
    tun.set_mtu(1456).unwrap();
    tun.set_queue_len(4096).unwrap();
    tun.set_up().unwrap();
    tun.add_ipv4(GATEWAY, 32).unwrap();
    tun.add_route_ipv4(Ipv4Addr::new(100, 64, 1, 0), 24)
        .unwrap();
    let queue = tun.take_queues().pop().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    set_buffers(socket.as_raw_fd(), 1 << 20);
    let floor_addr = socket.local_addr().unwrap();
    let lac = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lac_addr = lac.local_addr().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let halt = Arc::clone(&stop);
    let forwarder = std::thread::Builder::new()
        .name("floor-fwd".into())
        .spawn(move || forward(&socket, &queue, lac_addr, &halt))
        .unwrap();

    let up: Vec<(SocketAddr, Vec<u8>)> = (0..FLOWS)
        .map(|n| {
            let inner = udp_packet(floor_subscriber(n), GATEWAY, 7, 5000, &vec![0x5a; size]);
            (floor_addr, inner)
        })
        .collect();
    let down: Vec<(SocketAddr, Vec<u8>)> = (0..FLOWS)
        .map(|n| (SocketAddr::from((floor_subscriber(n), 7)), vec![0x5a; size]))
        .collect();
    let (up, down) = both_ways(&lac, &up, &down, "floor-fwd");
    stop.store(true, Ordering::Relaxed);
    forwarder.join().unwrap();
    Row {
        name: "floor".into(),
        size,
        up,
        down,
    }
}

/// The floor's loop: UDP payloads go to TUN as they are, TUN packets go out
/// as UDP payloads to the LAC.
fn forward(socket: &UdpSocket, queue: &OwnedFd, lac: SocketAddr, stop: &AtomicBool) {
    let (udp, tun_fd) = (socket.as_raw_fd(), queue.as_raw_fd());
    let mut recv = RecvBatch::new(64, 2048);
    let mut send = SendBatch::new();
    let mut buf = vec![0u8; 2048];
    let mut polls = [
        libc::pollfd {
            fd: udp,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: tun_fd,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `polls` is a valid array of two pollfd for the call.
        unsafe { libc::poll(polls.as_mut_ptr(), 2, 100) };
        while let Ok(n @ 1..) = recv.recv(udp) {
            for i in 0..n {
                let (payload, _) = recv.get(i).unwrap();
                let _ = tun::write_packet(tun_fd, payload);
            }
        }
        while let Ok(n @ 1..) = tun::read_packet(tun_fd, &mut buf) {
            send.push(lac, &buf[..n]);
            if send.len() == 64 {
                let _ = send.flush(udp);
            }
        }
        let _ = send.flush(udp);
    }
}

fn set_buffers(fd: RawFd, bytes: libc::c_int) {
    for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: a valid socket and a c_int option value.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                std::ptr::from_ref(&bytes).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}

/// The daemon with one shard on `io`.
fn measure(io: IoMode, size: usize) -> Row {
    link_up("lo").unwrap();
    let running = daemon::start(&settings(1, io), lns_node(1), None).unwrap();
    let lns_addr: SocketAddr = running.bound[0];
    let mut lac = Lac::new();
    let tunnel = lac
        .node
        .endpoint()
        .connect(Instant::now(), lns_addr)
        .unwrap();
    for n in 0..FLOWS {
        let subscriber = Subscriber {
            user: format!("bench{n}@isp.example").into_bytes(),
            password: b"secret".to_vec(),
            proxy: true,
        };
        lac.run_until(Duration::from_millis(200), |_| false);
        let _ = lac
            .node
            .dial(Instant::now(), tunnel, CallInfo::default(), subscriber);
    }
    assert!(lac.run_until(Duration::from_secs(20), |l| l.ups().len()
        == usize::from(FLOWS)));
    let ups = lac.ups();
    // One data datagram per session, as the LAC frames it.
    let mut up = Vec::new();
    for (key, ip) in &ups {
        let packet = udp_packet(*ip, GATEWAY, 7, 5000, &vec![0x5a; size]);
        assert!(lac.node.send_data(*key, protocol::IPV4, &packet));
        while let Some(t) = lac.node.poll_transmit() {
            if t.payload[0] & 0x80 == 0 {
                up.push((lns_addr, t.payload.to_vec()));
            } else {
                lac.socket.send_to(&t.payload, t.remote).unwrap();
            }
        }
    }
    assert_eq!(up.len(), ups.len());
    let down: Vec<(SocketAddr, Vec<u8>)> = ups
        .iter()
        .map(|(_, ip)| (SocketAddr::from((*ip, 7)), vec![0x5a; size]))
        .collect();
    let (up, down) = both_ways(&lac.socket, &up, &down, "lns-shard-");
    let name = match io {
        IoMode::IoUring => "lns, io_uring",
        _ => "lns, fallback",
    }
    .to_string();
    eprintln!("{name}: {}", running.io_path);

    running.stop();
    lac.socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    lac.run_until(Duration::from_secs(10), Lac::stopped_by_peer);
    running.wait();
    Row {
        name,
        size,
        up,
        down,
    }
}

/// Offer `up` from the LAC socket and count at the gateway, then offer
/// `down` from the gateway and count at the LAC; CPU of the threads whose
/// name starts with `threads`.
fn both_ways(
    lac: &UdpSocket,
    up: &[(SocketAddr, Vec<u8>)],
    down: &[(SocketAddr, Vec<u8>)],
    threads: &str,
) -> (Figures, Figures) {
    let gateway = UdpSocket::bind((GATEWAY, 5000)).unwrap();
    set_buffers(gateway.as_raw_fd(), 4 << 20);
    set_buffers(lac.as_raw_fd(), 4 << 20);
    let median = |from: &UdpSocket, to: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)]| {
        let mut rounds: Vec<Figures> = (0..ROUNDS)
            .map(|_| one_way(from, to, datagrams, threads))
            .collect();
        rounds.sort_by(|a, b| a.per_core_kpps().total_cmp(&b.per_core_kpps()));
        rounds[ROUNDS / 2]
    };
    let up = median(lac, &gateway, up);
    let down = median(&gateway, lac, down);
    (up, down)
}

fn one_way(
    from: &UdpSocket,
    to: &UdpSocket,
    datagrams: &[(SocketAddr, Vec<u8>)],
    threads: &str,
) -> Figures {
    // Count arrivals in a thread of its own.
    let counter = to.try_clone().unwrap();
    counter
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&count);
    let counting = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while counter.recv_from(&mut buf).is_ok() {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    });
    let cpu_before = thread_cpu(threads);
    let mut batch = SendBatch::new();
    let (start, mut offered) = (Instant::now(), 0u64);
    while start.elapsed() < BLAST {
        for (to, d) in datagrams.iter().cycle().take(64) {
            batch.push(*to, d);
        }
        offered += batch.flush(from.as_raw_fd()).unwrap_or(0) as u64;
    }
    let wall = start.elapsed();
    // The counter stops 200 ms after the last arrival; the forwarder is
    // idle by then, so its CPU time covers exactly the packets counted.
    counting.join().unwrap();
    let cpu = thread_cpu(threads).saturating_sub(cpu_before);
    Figures {
        offered,
        delivered: count.load(Ordering::Relaxed),
        wall,
        cpu,
    }
}

/// CPU time used so far by this process's threads whose name starts with
/// `prefix`, from each thread's own CPU clock.
fn thread_cpu(prefix: &str) -> Duration {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // The kernel's per-thread CPU clock id (what pthread_getcpuclockid
        // returns): the negated TID shifted by 3, "per thread" and "sched".
        let clock = (!tid << 3) | 6;
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write.
        if unsafe { libc::clock_gettime(clock, &mut ts) } == 0 {
            total += Duration::new(ts.tv_sec.unsigned_abs(), ts.tv_nsec.unsigned_abs() as u32);
        }
    }
    total
}
