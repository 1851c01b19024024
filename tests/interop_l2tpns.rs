//! Interop: the library's LAC and PPP client against l2tpns (Debian
//! package, an independent userspace LNS) that authenticates through
//! FreeRADIUS (Debian package), all in namespaces the test creates
//! (`support::l2tpns`).
//!
//! One tunnel (l2tpns must answer our challenge) carries SESSIONS calls;
//! half of them forward proxy LCP and proxy authentication in ICCN, which
//! l2tpns does not take (it negotiates LCP and CHAP afresh, and our
//! subscriber side follows), the rest negotiate from the start. Every
//! call must reach PPP Up with an address from l2tpns's pool, the one
//! l2tpns logs for that user; then each subscriber sends a UDP datagram
//! to a server on l2tpns's network side and must get the answer back on
//! its own session. A caller with a wrong password must be refused. Then
//! every call is hung up (LCP Terminate, CDN) and the tunnel stopped
//! (StopCCN), and l2tpns's log must show every CDN and the StopCCN.
//! tshark, if installed, captures the tunnel and must flag nothing in
//! either direction, and must see every subscriber reject l2tpns's
//! multilink LCP options.
//!
//! Needs root, iproute2, TUN, l2tpns and freeradius; CI runs as root and
//! installs the packages. Without them the test says loudly it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use lns::proto::l2tp::{CallInfo, Event, L2tpConfig, Role, TunnelDownReason};
use lns::proto::node::{NodeEvent, SessionKey, Subscriber};
use lns::proto::ppp::link::DownReason;
use lns::wire::l2tp::avps::stopccn_result;
use lns::wire::l2tp::ResultCode;

mod support;
use support::daemon::{ipv4_both_ways_to, Lac};
use support::l2tpns::{L2tpns, PASSWORD};
use support::tools::{tshark_flagged, tshark_lines};

const SECRET: &str = "l2tpns-interop-secret";
const SESSIONS: usize = 20;

#[test]
fn lac_sessions_through_l2tpns_and_freeradius() {
    let Some(mut lab) = L2tpns::start("lac_sessions_through_l2tpns_and_freeradius", SECRET) else {
        return;
    };
    let rcvbuf = lab.l2tp_rcvbuf();
    assert!(
        rcvbuf.is_some_and(|rb| rb >= 4 << 20),
        "l2tpns's socket did not get the raised buffer: {rcvbuf:?}"
    );
    let capture = lab.capture("lac-l2tpns");
    let server_addr = lab.server_addr();
    let server = lab.in_lns_ns(|| UdpSocket::bind((server_addr, 5000)).unwrap());
    let lac_addr = lab.lac_addr();
    let socket = lab.in_lac_ns(|| UdpSocket::bind((lac_addr, 1701)).unwrap());
    let mut l2tp = L2tpConfig::new(Role::Lac);
    l2tp.secret = Some(SECRET.as_bytes().to_vec());
    let mut lac = Lac::with_socket(socket, l2tp);
    let logs = |lab: &L2tpns| format!("l2tpns said:\n{}", lab.log());

    // Tunnel: SCCRQ/SCCRP/SCCCN. We challenge and l2tpns must answer with
    // the shared secret (it never challenges a LAC itself).
    let started = Instant::now();
    let tunnel = lac.open_tunnel(lab.lns_addr());
    let tunnel_setup = started.elapsed();
    let started = Instant::now();

    // Calls: ICRQ/ICRP/ICCN, then LCP, CHAP (checked by FreeRADIUS), IPCP.
    for n in 0..SESSIONS {
        let subscriber = Subscriber {
            user: format!("user{n}@l2tpns.test").into_bytes(),
            password: PASSWORD.as_bytes().to_vec(),
            proxy: n % 2 == 1,
        };
        lac.node
            .dial(Instant::now(), tunnel, CallInfo::default(), subscriber)
            .unwrap();
    }
    let all_up = lac.run_until(Duration::from_secs(30), |l| l.ups().len() == SESSIONS);
    let setup = started.elapsed();
    assert!(
        all_up,
        "sessions up: {:?}\nevents: {:?}\n{}",
        lac.ups(),
        lac.events,
        logs(&lab)
    );
    let ups = lac.ups();
    let mut addresses: Vec<Ipv4Addr> = ups.iter().map(|(_, ip)| *ip).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), SESSIONS, "addresses shared: {ups:?}");
    for ip in &addresses {
        assert!(lab.in_pool(*ip), "{ip} is not from l2tpns's pool");
    }
    eprintln!(
        "l2tpns: tunnel up in {tunnel_setup:?}, {SESSIONS} sessions up in {setup:?} \
         ({:.0} sessions/s, {} control retransmissions); l2tpns took {:?} to start",
        SESSIONS as f64 / setup.as_secs_f64(),
        lac.node.l2tp().retransmissions(),
        lab.startup
    );
    // l2tpns's view: each user logged in at the address we learnt. (It
    // ignores proxy LCP and authentication and renegotiates both; the
    // proxied subscribers follow, so they log in the same way.)
    for event in &lac.events {
        if let NodeEvent::SessionUp { up, .. } = event {
            let user = String::from_utf8_lossy(&up.user);
            let line = format!(
                "Login by {user} at {} from {}",
                up.ipv4.unwrap(),
                lab.lac_addr()
            );
            assert_eq!(
                lab.wait_log(&line, 1, Duration::from_secs(5)),
                1,
                "no '{line}'\n{}",
                logs(&lab)
            );
        }
    }

    // Data: upstream from each subscriber's address to the server, and
    // the server's answers back through l2tpns onto the right session.
    ipv4_both_ways_to(
        &mut lac,
        &ups,
        &server,
        server_addr,
        b"up through l2tpns",
        b"down through l2tpns",
    );

    // A wrong password: FreeRADIUS rejects it, l2tpns fails CHAP.
    let before = lac.events.len();
    let bad = Subscriber {
        user: b"intruder@l2tpns.test".to_vec(),
        password: b"not-the-password".to_vec(),
        proxy: false,
    };
    let session = lac
        .node
        .dial(Instant::now(), tunnel, CallInfo::default(), bad)
        .unwrap();
    let refused = |l: &Lac| {
        l.events[before..].iter().find_map(|e| match e {
            NodeEvent::SessionDown { key, reason } if *key == (tunnel, session) => Some(*reason),
            _ => None,
        })
    };
    assert!(
        lac.run_until(Duration::from_secs(15), |l| refused(l).is_some()),
        "no verdict on a wrong password: {:?}\n{}",
        &lac.events[before..],
        logs(&lab)
    );
    // l2tpns answers a RADIUS reject with a CDN alone, no CHAP Failure.
    assert!(
        matches!(
            refused(&lac),
            Some(Some(DownReason::CallCleared | DownReason::AuthFailed(_)))
        ),
        "{:?}",
        refused(&lac)
    );
    assert_eq!(lac.ups().len(), SESSIONS, "the intruder got in");
    assert_eq!(
        lab.wait_log(
            "Authentication rejected for intruder@l2tpns.test",
            1,
            Duration::from_secs(5)
        ),
        1,
        "{}",
        logs(&lab)
    );

    // Hang up every call: LCP Terminate, then CDN.
    let keys: Vec<SessionKey> = ups.iter().map(|(key, _)| *key).collect();
    for key in &keys {
        lac.node.hang_up(Instant::now(), *key);
    }
    let downs = |l: &Lac| {
        l.events
            .iter()
            .filter(|e| matches!(e, NodeEvent::SessionDown { key, .. } if keys.contains(key)))
            .count()
    };
    assert!(
        lac.run_until(Duration::from_secs(15), |l| downs(l) == SESSIONS),
        "sessions down: {}\n{}",
        downs(&lac),
        logs(&lab)
    );
    assert!(
        lac.run_until(Duration::from_secs(10), |l| l.node.l2tp().session_count()
            == 0),
        "calls still open: {}",
        lac.node.l2tp().session_count()
    );
    // Every CDN must reach l2tpns before the StopCCN (which would drop the
    // ones still queued behind its window of 4). The LAC keeps running
    // meanwhile: it retransmits and acks.
    let cdn_seen = |lac: &mut Lac, lab: &L2tpns, count: usize| {
        lac.run_until(Duration::from_secs(10), |_| {
            lab.log().matches("Received CDN").count() >= count
        })
    };
    assert!(
        cdn_seen(&mut lac, &lab, SESSIONS),
        "l2tpns did not get every CDN\n{}",
        logs(&lab)
    );

    // Stop the tunnel; l2tpns acks the StopCCN.
    lac.node
        .endpoint()
        .close_tunnel(
            Instant::now(),
            tunnel,
            ResultCode {
                result: stopccn_result::SHUTTING_DOWN,
                error: None,
                message: None,
            },
        )
        .unwrap();
    let down = |l: &Lac| {
        l.events.iter().any(|e| {
            matches!(
                e,
                NodeEvent::L2tp(Event::TunnelDown {
                    tunnel: t,
                    reason: TunnelDownReason::LocalStop(_),
                }) if *t == tunnel
            )
        })
    };
    assert!(
        lac.run_until(Duration::from_secs(20), down),
        "tunnel not closed: {:?}",
        lac.events.last()
    );
    assert_eq!(
        lab.wait_log("Received StopCCN", 1, Duration::from_secs(5)),
        1,
        "{}",
        logs(&lab)
    );
    assert!(lab.running(), "l2tpns died\n{}", logs(&lab));

    if let Some(capture) = capture {
        let pcap = capture.finish();
        // Both directions: l2tpns's packets dissect cleanly too.
        let flagged = tshark_flagged(&pcap, 1701);
        assert!(
            flagged.is_empty(),
            "tshark flagged:\n{}",
            flagged.join("\n")
        );
        let ours = format!("ip.src == {}", lab.lac_addr());
        let l2tp = tshark_lines(&pcap, 1701, &format!("{ours} && l2tp")).len();
        assert!(l2tp >= 6 * SESSIONS, "only {l2tp} L2TP packets from us");
        // l2tpns opens LCP with multilink options (MRRU 17, Endpoint
        // Discriminator 19); every subscriber rejected them.
        let rejects = tshark_lines(
            &pcap,
            1701,
            &format!("{ours} && lcp && ppp.code == 4 && lcp.opt.type == 17 && lcp.opt.type == 19"),
        )
        .len();
        assert!(
            rejects > SESSIONS,
            "{rejects} Configure-Rejects of the multilink options"
        );
    } else {
        eprintln!("\n*** tshark not installed: capture dissection check skipped ***\n");
    }
}
