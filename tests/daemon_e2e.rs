//! The daemon end to end, inside a network namespace this test creates:
//! real UDP sockets, a real multi-queue TUN device, shard threads and the
//! control thread, against the library's own LAC and PPP subscribers.
//!
//! Needs root (network namespaces, TUN); CI runs as root. Without them the
//! test says loudly that it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use lns::config::IoMode;
use lns::io::daemon::{self, RuntimeSettings};
use lns::io::manage;
use lns::io::netns::{in_private_netns, ipv4_checksum, link_up};
use lns::io::uring::{self, IoPath};
use lns::proto::aaa::{users, LocalAaa, Pool};
use lns::proto::l2tp::{CallInfo, Event, L2tpConfig, Role, TunnelDownReason};
use lns::proto::node::{NoAaa, Node, NodeEvent, SessionKey, Subscriber};
use lns::proto::ppp::link::LinkConfig;
use lns::wire::l2tp::Packet;
use lns::wire::ppp::frame::protocol;
use lns::wire::ppp::lcp::AuthMethod;

mod support;
use support::tools::{tshark_flagged, tshark_lines, Capture};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const SESSIONS: usize = 6;

fn lns_node(shards: u16) -> Node<LocalAaa> {
    let mut l2tp = L2tpConfig::new(Role::Lns);
    l2tp.spread = shards;
    let mut link = LinkConfig::server(GATEWAY, [Some(Ipv4Addr::new(192, 0, 2, 53)), None]);
    link.lcp.auth = vec![AuthMethod::ChapMd5, AuthMethod::Pap];
    link.ipv6cp = false;
    let aaa = LocalAaa::new(users::parse("*@isp.example password=secret\n").unwrap());
    let pool = Pool::new(
        "subscribers",
        vec!["100.64.1.0/24".parse().unwrap()],
        Duration::from_secs(60),
    )
    .unwrap();
    Node::new(l2tp, link, aaa, vec![pool], 11)
}

fn settings(shards: u16, io: IoMode) -> RuntimeSettings {
    RuntimeSettings {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards,
        pin: false,
        tun_name: "lnse2e0".into(),
        tun_queue_len: 4096,
        tun_mtu: 1456,
        gateway: GATEWAY,
        routes: vec![(Ipv4Addr::new(100, 64, 1, 0), 24)],
        mss_clamp: Some(lns::dataplane::MssClamp {
            ipv4: 1416,
            ipv6: 1396,
        }),
        socket_buffer: 1 << 20,
        management: Some(manage_path(io)),
        io,
    }
}

/// One socket per test: the two paths' tests run side by side.
fn manage_path(io: IoMode) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("lns-e2e-{}-{io:?}/lns.sock", std::process::id()))
}

/// The library's LAC on a real socket, driven in real time.
struct Lac {
    node: Node<NoAaa>,
    socket: UdpSocket,
    events: Vec<NodeEvent>,
    /// Ns of every sequenced data message received, per (tunnel, session).
    data_ns: std::collections::HashMap<(u16, u16), Vec<u16>>,
}

impl Lac {
    fn new() -> Lac {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let node = Node::new(
            L2tpConfig::new(Role::Lac),
            LinkConfig::client(b"", b""),
            NoAaa::default(),
            vec![],
            12,
        );
        Lac {
            node,
            socket,
            events: Vec::new(),
            data_ns: Default::default(),
        }
    }

    /// Exchange datagrams and run timers until `done` or `limit`.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Lac) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            let now = Instant::now();
            while let Some(t) = self.node.poll_transmit() {
                self.socket.send_to(&t.payload, t.remote).unwrap();
            }
            while let Some(e) = self.node.poll_event() {
                self.events.push(e);
            }
            if done(self) {
                return true;
            }
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                if let Ok(packet) = Packet::new_checked(&buf[..n]) {
                    if let (false, Some(ns)) = (packet.is_control(), packet.ns()) {
                        let key = (packet.tunnel_id(), packet.session_id());
                        self.data_ns.entry(key).or_default().push(ns);
                    }
                }
                self.node.handle_datagram(now, from, &buf[..n]);
            }
            if self.node.poll_timeout().is_some_and(|at| at <= now) {
                self.node.handle_timeout(now);
            }
        }
        done(self)
    }

    /// The LNS closed the tunnel (StopCCN).
    fn stopped_by_peer(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e,
                NodeEvent::L2tp(Event::TunnelDown {
                    reason: TunnelDownReason::PeerStop(_),
                    ..
                })
            )
        })
    }

    fn ups(&self) -> Vec<(SessionKey, Ipv4Addr)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                NodeEvent::SessionUp { key, up } => Some((*key, up.ipv4?)),
                _ => None,
            })
            .collect()
    }
}

/// An IPv4/UDP packet with a valid header checksum (UDP checksum 0).
fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let total = u16::try_from(28 + body.len()).unwrap();
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = ipv4_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(body);
    p
}

/// The session's traffic as tshark sees it: L2TP control and data messages
/// carrying LCP, CHAP (the proxied sessions skip it), IPCP and IP, none
/// malformed or flagged.
fn check_capture(pcap: &std::path::Path, port: u16) {
    let flagged = tshark_flagged(pcap, port);
    assert!(
        flagged.is_empty(),
        "tshark flagged:\n{}",
        flagged.join("\n")
    );
    let gateway = GATEWAY.to_string();
    for (what, filter, at_least) in [
        ("L2TP control messages", "l2tp.type == 1".to_string(), 20),
        ("L2TP data messages", "l2tp.type == 0".to_string(), 30),
        ("LCP", "l2tp && lcp".to_string(), 4 * SESSIONS),
        ("CHAP", "l2tp && chap".to_string(), 1),
        ("IPCP", "l2tp && ipcp".to_string(), 2 * SESSIONS),
        (
            "IP upstream",
            format!("l2tp && ppp && udp.dstport == 5000 && ip.dst == {gateway}"),
            SESSIONS,
        ),
        (
            "IP downstream",
            format!("l2tp && ppp && udp.srcport == 5000 && ip.src == {gateway}"),
            SESSIONS,
        ),
    ] {
        let n = tshark_lines(pcap, port, &filter).len();
        assert!(
            n >= at_least,
            "{what} ({filter}): {n} packets, want {at_least}+"
        );
    }
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn sessions_come_up_and_ip_crosses_the_tun_both_ways_on_the_fallback() {
    end_to_end(
        IoMode::Fallback,
        "sessions_come_up_and_ip_crosses_the_tun_both_ways_on_the_fallback",
    );
}

#[test]
fn sessions_come_up_and_ip_crosses_the_tun_both_ways_on_io_uring() {
    let name = "sessions_come_up_and_ip_crosses_the_tun_both_ways_on_io_uring";
    if let Err(reason) = uring::probe(IoMode::IoUring) {
        eprintln!("SKIPPED {name}: io_uring is unavailable here: {reason}");
        return;
    }
    end_to_end(IoMode::IoUring, name);
}

/// The whole scenario with the shards on `io`.
fn end_to_end(io: IoMode, name: &str) {
    // The shards log which path they run (`--nocapture` shows it).
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let ran = in_private_netns(move || {
        link_up("lo").unwrap();
        let running = daemon::start(&settings(2, io), lns_node(2), None).unwrap();
        match io {
            IoMode::Fallback => assert!(matches!(running.io_path, IoPath::Fallback(_))),
            _ => assert_eq!(running.io_path, IoPath::IoUring),
        }
        let lns_addr: SocketAddr = running.bound[0];
        // Everything between the LAC and the daemon, for tshark.
        let capture = Capture::start(
            &[],
            "lo",
            &format!("udp port {}", lns_addr.port()),
            &std::env::temp_dir().join(format!("lns-e2e-{}-{io:?}.pcap", std::process::id())),
        );

        let mut lac = Lac::new();
        let tunnel = lac
            .node
            .endpoint()
            .connect(Instant::now(), lns_addr)
            .unwrap();
        assert!(lac.run_until(Duration::from_secs(10), |l| l
            .events
            .iter()
            .any(|e| matches!(e, NodeEvent::L2tp(Event::TunnelUp { .. })))));
        for n in 0..SESSIONS {
            let subscriber = Subscriber {
                user: format!("user{n}@isp.example").into_bytes(),
                password: b"secret".to_vec(),
                proxy: n % 2 == 1,
            };
            // Every third call asks for sequenced data messages (§5.4).
            let call = CallInfo {
                sequencing_required: n % 3 == 0,
                ..CallInfo::default()
            };
            lac.node
                .dial(Instant::now(), tunnel, call, subscriber)
                .unwrap();
        }
        assert!(
            lac.run_until(Duration::from_secs(20), |l| l.ups().len() == SESSIONS),
            "sessions up: {:?}",
            lac.ups()
        );
        let ups = lac.ups();

        // Upstream: each subscriber sends a datagram to a socket on the
        // gateway address; it arrives from the subscriber's address.
        let server = UdpSocket::bind((GATEWAY, 5000)).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for (key, ip) in &ups {
            let packet = udp_packet(*ip, GATEWAY, 7, 5000, b"hello upstream");
            assert!(lac.node.send_data(*key, protocol::IPV4, &packet));
        }
        lac.run_until(Duration::from_millis(50), |_| false);
        let mut buf = [0u8; 2048];
        let mut senders = Vec::new();
        for _ in 0..SESSIONS {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello upstream");
            senders.push(from);
        }
        senders.sort();
        let mut expected: Vec<SocketAddr> = ups
            .iter()
            .map(|(_, ip)| SocketAddr::from((*ip, 7)))
            .collect();
        expected.sort();
        assert_eq!(senders, expected);

        // Downstream: the server answers each subscriber; the LAC gets the
        // packet on the right session.
        for (_, ip) in &ups {
            server.send_to(b"hello downstream", (*ip, 7)).unwrap();
        }
        assert!(lac.run_until(Duration::from_secs(5), |l| {
            l.events
                .iter()
                .filter(|e| matches!(e, NodeEvent::Data { .. }))
                .count()
                == SESSIONS
        }));
        for (key, ip) in &ups {
            let data = lac.events.iter().find_map(|e| match e {
                NodeEvent::Data {
                    key: k,
                    protocol: p,
                    packet,
                } if k == key && *p == protocol::IPV4 => Some(packet.clone()),
                _ => None,
            });
            let packet = data.expect("a downstream packet for every session");
            assert_eq!(&packet[16..20], &ip.octets());
            assert!(packet.ends_with(b"hello downstream"));
        }

        // Management: the sessions are listed; killing one clears it at
        // the LAC (LCP Terminate, then CDN) and the others stay.
        let listing = manage::request(&manage_path(io), "show sessions").unwrap();
        for (_, ip) in &ups {
            assert!(listing.contains(&ip.to_string()), "{listing}");
        }
        let tunnels = manage::request(&manage_path(io), "show tunnels").unwrap();
        assert_eq!(tunnels.lines().count(), 2, "{tunnels}");
        let lns_session = listing.lines().nth(1).unwrap();
        let fields: Vec<&str> = lns_session.split_whitespace().collect();
        let answer = manage::request(
            &manage_path(io),
            &format!("kill session {} {}", fields[0], fields[1]),
        )
        .unwrap();
        assert!(answer.contains("CDN sent"), "{answer}");
        assert!(lac.run_until(Duration::from_secs(10), |l| l
            .events
            .iter()
            .any(|e| matches!(e, NodeEvent::SessionDown { .. }))));
        let stats = manage::request(&manage_path(io), "show stats").unwrap();
        assert!(
            stats.contains(&format!("sessions_online {}", SESSIONS - 1)),
            "{stats}"
        );

        // Sequenced sessions: the LNS numbered every data message it sent —
        // PPP negotiation from the control thread, then data and the kill's
        // LCP Terminate from the owner shard — 0, 1, 2, ... without a gap
        // or a repeat; the others carry no Ns.
        let sequenced = SESSIONS.div_ceil(3);
        assert_eq!(lac.data_ns.len(), sequenced, "{:?}", lac.data_ns);
        for (key, ns) in &lac.data_ns {
            let expected: Vec<u16> = (0..ns.len() as u16).collect();
            assert_eq!(ns, &expected, "session {key:?}");
            assert!(ns.len() >= 4, "negotiation and data: {ns:?}");
        }

        // Graceful stop: StopCCN reaches the LAC, the daemon exits.
        running.stop();
        assert!(lac.run_until(Duration::from_secs(10), Lac::stopped_by_peer));
        let counters = running.wait();
        assert_eq!(counters.sessions_up, SESSIONS as u64);

        match capture {
            Some(capture) => check_capture(&capture.finish(), lns_addr.port()),
            None => eprintln!(
                "\n*** tshark not installed: the e2e capture dissection check is SKIPPED ***\n"
            ),
        }
    });
    if !ran {
        eprintln!("SKIPPED {name}: needs root with network namespaces and /dev/net/tun");
    }
}

/// Packets per second through the daemon on each path: upstream (LAC
/// datagrams → decap → TUN → a socket on the gateway) and downstream (that
/// socket → TUN → encap → the LAC), 64-byte payloads, counted where they
/// arrive. A measurement, not a check: run it with
/// `cargo test --release --test daemon_e2e -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
fn throughput_on_both_paths() {
    for io in [IoMode::Fallback, IoMode::IoUring] {
        if let (IoMode::IoUring, Err(reason)) = (io, uring::probe(io)) {
            eprintln!("SKIPPED throughput on io_uring: {reason}");
            continue;
        }
        if !in_private_netns(move || measure(io)) {
            eprintln!("SKIPPED throughput_on_both_paths: needs root, netns and TUN");
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
