//! The daemon end to end, inside a network namespace this test creates:
//! real UDP sockets, a real multi-queue TUN device, shard threads and the
//! control thread, against the library's own LAC and PPP subscribers.
//!
//! Needs root (network namespaces, TUN); CI runs as root. Without them the
//! test says loudly that it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use lns::config::IoMode;
use lns::io::daemon::{self};
use lns::io::manage;
use lns::io::netns::{in_private_netns, link_up};
use lns::io::uring::{self, IoPath};
use lns::proto::l2tp::CallInfo;
use lns::proto::node::{NodeEvent, Subscriber};
use lns::wire::ppp::frame::protocol;

mod support;
use support::daemon::*;
use support::tools::{tshark_flagged, tshark_lines, Capture};

/// The session's traffic as tshark sees it: L2TP control and data messages
/// carrying LCP, CHAP (the proxied sessions skip it), IPCP, IPv6CP, Router
/// Solicitations and Advertisements, and IPv4 and IPv6, none malformed or
/// flagged.
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
        // With IPv6CP on at both ends there are no Protocol-Rejects of it
        // (one per session when the LNS ran IPv4 only).
        ("LCP", "l2tp && lcp".to_string(), 3 * SESSIONS),
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
        ("IPv6CP", "l2tp && ipv6cp".to_string(), 2 * SESSIONS),
        (
            "Router Advertisements",
            "l2tp && icmpv6.type == 134 && ipv6.hlim == 255".to_string(),
            SESSIONS + 1,
        ),
        (
            "Router Solicitations",
            "l2tp && icmpv6.type == 133".to_string(),
            1,
        ),
        (
            "IPv6 upstream",
            format!("l2tp && ppp && udp.dstport == 5001 && ipv6.dst == {GATEWAY6}"),
            SESSIONS,
        ),
        (
            "IPv6 downstream",
            format!("l2tp && ppp && udp.srcport == 5001 && ipv6.src == {GATEWAY6}"),
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

/// IPv6 on every session: the unsolicited Router Advertisement gives the
/// subscriber its /64; a UDP datagram from <prefix>::<identifier> crosses
/// the TUN to a socket on the daemon's IPv6 gateway address, and the reply
/// comes back down the session. A Router Solicitation through the data
/// plane gets another advertisement from the control thread.
fn ipv6_end_to_end(lac: &mut Lac, io: IoMode) {
    let keys: Vec<_> = lac.ups().into_iter().map(|(key, _)| key).collect();
    assert!(
        lac.run_until(Duration::from_secs(5), |l| keys
            .iter()
            .all(|k| l.adverts(*k) >= 1)),
        "a Router Advertisement on every session"
    );
    let addresses: Vec<_> = keys
        .iter()
        .map(|k| (*k, lac.node.ipv6_address(*k).expect("SLAAC address")))
        .collect();
    for (_, address) in &addresses {
        assert_eq!(address.octets()[..6], PREFIX_POOL6.octets()[..6]);
    }
    let server = UdpSocket::bind((GATEWAY6, 5001)).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for (key, address) in &addresses {
        let packet = udp6_packet(*address, GATEWAY6, 7, 5001, b"hello v6 upstream");
        assert!(lac.node.send_data(*key, protocol::IPV6, &packet));
    }
    lac.run_until(Duration::from_millis(50), |_| false);
    let mut buf = [0u8; 2048];
    let mut senders = Vec::new();
    for _ in 0..addresses.len() {
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello v6 upstream");
        senders.push(from.ip());
    }
    senders.sort();
    let mut expected: Vec<IpAddr> = addresses.iter().map(|(_, a)| IpAddr::V6(*a)).collect();
    expected.sort();
    assert_eq!(senders, expected);
    for (_, address) in &addresses {
        server
            .send_to(b"hello v6 downstream", (*address, 7))
            .unwrap();
    }
    let downstream = |l: &Lac, key, address: std::net::Ipv6Addr| {
        l.events.iter().any(|e| {
            matches!(e, NodeEvent::Data { key: k, protocol: p, packet }
                if *k == key && *p == protocol::IPV6
                    && packet.get(24..40) == Some(&address.octets()[..])
                    && packet.ends_with(b"hello v6 downstream"))
        })
    };
    assert!(
        lac.run_until(Duration::from_secs(5), |l| addresses
            .iter()
            .all(|(k, a)| downstream(l, *k, *a))),
        "a downstream IPv6 packet on every session"
    );
    // A Router Solicitation: the shard passes it to the control thread,
    // which answers (at most 3 s after the previous advertisement).
    let (key, _) = addresses[0];
    let before = lac.adverts(key);
    assert!(lac.node.solicit_router(key));
    assert!(
        lac.run_until(Duration::from_secs(5), |l| l.adverts(key) > before),
        "a solicited Router Advertisement"
    );
    let stats = manage::request(&manage_path(io), "show stats").unwrap();
    assert!(stats.contains("ipv6_rs_received 1"), "{stats}");
    assert!(
        stats.contains(&format!(
            "prefix_pool subscribers {PREFIX_POOL6}/48 in_use {SESSIONS}"
        )),
        "{stats}"
    );
}

/// The whole scenario with the shards on `io`.
fn end_to_end(io: IoMode, name: &str) {
    // The shards log which path they run (`--nocapture` shows it).
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let ran = in_private_netns(move || {
        link_up("lo").unwrap();
        let running = daemon::start(&settings(2, io), lns_node_with_ipv6(2), None).unwrap();
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
        let tunnel = lac.open_tunnel(lns_addr);
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
        // Downstream: the server answers each subscriber; the LAC gets the
        // packet on the right session.
        let server = UdpSocket::bind((GATEWAY, 5000)).unwrap();
        ipv4_both_ways(
            &mut lac,
            &ups,
            &server,
            b"hello upstream",
            b"hello downstream",
        );

        ipv6_end_to_end(&mut lac, io);

        // Renegotiation: a Configure-Request on one open link restarts LCP
        // (RFC 1661 §3.2). The daemon holds the session's IP on the shards
        // meanwhile, runs LCP, authentication and IPCP again, installs it
        // again; the LAC's link sees the same, and data crosses after.
        let (renegotiated, ip) = ups[0];
        let path = lac.node.data_path(renegotiated).unwrap();
        lac.socket
            .send_to(
                &support::lcp_configure_request(path.peer_tunnel, path.peer_session),
                lns_addr,
            )
            .unwrap();
        assert!(lac.run_until(Duration::from_secs(10), |l| {
            l.events.iter().any(
                |e| matches!(e, NodeEvent::SessionRenegotiating { key } if *key == renegotiated),
            ) && l.ups().len() == SESSIONS + 1
        }));
        assert_eq!(lac.ups()[SESSIONS], (renegotiated, ip), "same address");
        let stats = manage::request(&manage_path(io), "show stats").unwrap();
        assert!(stats.contains("sessions_renegotiated_total 1"), "{stats}");
        assert!(
            stats.contains(&format!("sessions_online {SESSIONS}")),
            "{stats}"
        );
        // The shards' own counters, summed: every shard answered, the IPv4
        // and IPv6 packets of each session crossed both ways (upstream, a
        // first packet that overtook its session's install went through
        // the control thread instead, so only the later IPv6 ones are
        // sure to count), and every shard's table holds every session.
        let stat = |name: &str| -> u64 {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {stats}"))
        };
        assert_eq!(stat("shards_reporting"), 2, "{stats}");
        assert!(stat("dataplane_packets_in") >= SESSIONS as u64, "{stats}");
        assert!(
            stat("dataplane_packets_out") >= 2 * SESSIONS as u64,
            "{stats}"
        );
        assert!(stat("dataplane_bytes_in") > 0 && stat("dataplane_echo_replies") == 0);
        for shard in 0..2 {
            assert_eq!(stat(&format!("shard{shard}_sessions")), SESSIONS as u64);
        }
        let packet = udp_packet(ip, GATEWAY, 7, 5000, b"after renegotiation");
        assert!(lac.node.send_data(renegotiated, protocol::IPV4, &packet));
        lac.run_until(Duration::from_millis(50), |_| false);
        let mut buf = [0u8; 2048];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"after renegotiation"[..], SocketAddr::from((ip, 7)))
        );

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
