//! Packets per second through the daemon on each I/O path, end to end in a
//! private network namespace: upstream (LAC datagrams → decap → TUN → a
//! socket on the gateway) and downstream (that socket → TUN → encap → the
//! LAC), 64-byte payloads, counted where they arrive.
//!
//! `cargo bench --bench daemon_paths` (needs root: a network namespace and
//! TUN; without them it says so and exits). A measurement, not a check.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use lns::config::IoMode;
use lns::io::daemon;
use lns::io::netns::{in_private_netns, link_up};
use lns::io::uring;
use lns::proto::l2tp::CallInfo;
use lns::proto::node::Subscriber;
use lns::wire::ppp::frame::protocol;

#[path = "../tests/support/daemon.rs"]
mod support;
use support::*;

fn main() {
    for io in [IoMode::Fallback, IoMode::IoUring] {
        if let (IoMode::IoUring, Err(reason)) = (io, uring::probe(io)) {
            eprintln!("SKIPPED throughput on io_uring: {reason}");
            continue;
        }
        if !in_private_netns(move || measure(io)) {
            eprintln!("SKIPPED daemon_paths: needs root, network namespaces and TUN");
            return;
        }
    }
}

fn measure(io: IoMode) {
    use lns::io::batch::SendBatch;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const BLAST: Duration = Duration::from_secs(2);
    link_up("lo").unwrap();
    let running = daemon::start(&settings(2, io), lns_node(2), None).unwrap();
    let lns_addr: SocketAddr = running.bound[0];
    let mut lac = Lac::new();
    let tunnel = lac
        .node
        .endpoint()
        .connect(Instant::now(), lns_addr)
        .unwrap();
    for n in 0..4 {
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
    assert!(lac.run_until(Duration::from_secs(20), |l| l.ups().len() == 4));
    let ups = lac.ups();
    // One data datagram per session, as the LAC frames it.
    let mut templates = Vec::new();
    for (key, ip) in &ups {
        let packet = udp_packet(*ip, GATEWAY, 7, 5000, &[0x5a; 64]);
        assert!(lac.node.send_data(*key, protocol::IPV4, &packet));
        while let Some(t) = lac.node.poll_transmit() {
            if t.payload[0] & 0x80 == 0 {
                templates.push(t.payload.to_vec());
            } else {
                lac.socket.send_to(&t.payload, t.remote).unwrap();
            }
        }
    }
    assert_eq!(templates.len(), ups.len());

    let server = UdpSocket::bind((GATEWAY, 5000)).unwrap();
    let counter = |socket: UdpSocket| {
        let count = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&count);
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while socket.recv_from(&mut buf).is_ok() {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        });
        (count, thread)
    };
    let blast = |from: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)]| {
        let mut batch = SendBatch::new();
        let (start, mut sent) = (Instant::now(), 0u64);
        while start.elapsed() < BLAST {
            for (to, d) in datagrams.iter().cycle().take(64) {
                batch.push(*to, d);
            }
            sent += batch.flush(from.as_raw_fd()).unwrap_or(0) as u64;
        }
        (sent, start.elapsed())
    };

    let (up_count, up_thread) = counter(server.try_clone().unwrap());
    let up: Vec<(SocketAddr, Vec<u8>)> = templates.iter().map(|t| (lns_addr, t.clone())).collect();
    let (up_sent, up_time) = blast(&lac.socket, &up);
    up_thread.join().unwrap();
    let up_got = up_count.load(Ordering::Relaxed);

    let (down_count, down_thread) = counter(lac.socket.try_clone().unwrap());
    let down: Vec<(SocketAddr, Vec<u8>)> = ups
        .iter()
        .map(|(_, ip)| (SocketAddr::from((*ip, 7)), vec![0x5a; 64]))
        .collect();
    let (down_sent, down_time) = blast(&server, &down);
    down_thread.join().unwrap();
    let down_got = down_count.load(Ordering::Relaxed);

    let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64() / 1000.0;
    eprintln!(
        "THROUGHPUT {io:?} ({}): upstream {:.0} kpps delivered of {:.0} kpps offered; \
         downstream {:.0} kpps delivered of {:.0} kpps offered",
        running.io_path,
        rate(up_got, up_time),
        rate(up_sent, up_time),
        rate(down_got, down_time),
        rate(down_sent, down_time),
    );
    running.stop();
    lac.socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    lac.run_until(Duration::from_secs(10), Lac::stopped_by_peer);
    running.wait();
}
