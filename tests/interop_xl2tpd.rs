//! Interop: a real xl2tpd (Debian package) as LAC against our LNS endpoint,
//! over loopback, with tunnel authentication.
//!
//! xl2tpd brings up the tunnel (SCCRQ/SCCRP/SCCCN, both sides challenged)
//! and a call (ICRQ/ICRP/ICCN), then starts pppd, which fails on this kernel
//! (no /dev/ppp), so xl2tpd clears the call with a CDN. We then stop the
//! tunnel and check that xl2tpd acks our StopCCN. If tshark is present the
//! traffic is captured and must dissect with no malformed or warning flags.
//!
//! The driver below is a minimal blocking UDP shell around the sans-IO
//! endpoint — a test fixture, not the daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lns::proto::l2tp::{Endpoint, Event, L2tpConfig, Role, SessionDownReason, TunnelState};
use lns::wire::l2tp::avps::stopccn_result;
use lns::wire::l2tp::{MessageType, ResultCode};

mod support;
use support::tools::{is_root, tshark_flagged, tshark_lines, which, Capture, Killed};

/// Pumps datagrams between the socket and the endpoint until `done`.
struct Shell {
    socket: UdpSocket,
    lns: Endpoint,
    events: Vec<Event>,
}

impl Shell {
    fn pump_until(&mut self, limit: Duration, mut done: impl FnMut(&Shell) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if done(self) {
                return true;
            }
            self.socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                let _ = self.lns.handle_datagram(Instant::now(), from, &buf[..n]);
            }
            let now = Instant::now();
            if self.lns.poll_timeout().is_some_and(|at| at <= now) {
                self.lns.handle_timeout(now);
            }
            while let Some(t) = self.lns.poll_transmit() {
                self.socket.send_to(&t.payload, t.remote).unwrap();
            }
            while let Some(e) = self.lns.poll_event() {
                self.events.push(e);
            }
        }
        done(self)
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn xl2tpd_lac_brings_up_tunnel_and_call() {
    let Some(xl2tpd) = which("xl2tpd") else {
        eprintln!("\n*** SKIPPED xl2tpd interop: xl2tpd is not installed (CI installs it) ***\n");
        return;
    };
    if !is_root() {
        eprintln!("\n*** SKIPPED xl2tpd interop: needs root to run xl2tpd ***\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("lns-xl2tpd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut config = L2tpConfig::new(Role::Lns);
    config.secret = Some(b"interop-secret".to_vec());
    config.host_name = b"lns-under-test".to_vec();
    let mut shell = Shell {
        socket,
        lns: Endpoint::new(config, 42),
        events: Vec::new(),
    };

    // xl2tpd uses its `port` both to bind and to reach the LNS, so it binds
    // 127.0.0.2:PORT and talks to our 127.0.0.1:PORT.
    write(
        &dir.join("xl2tpd.conf"),
        &format!(
            "[global]\nport = {port}\nlisten-addr = 127.0.0.2\nauth file = {auth}\n\n\
             [lac interop]\nlns = 127.0.0.1:{port}\nautodial = yes\nredial = no\nchallenge = yes\n\
             hostname = xl2tpd-lac\nlength bit = yes\npppoptfile = {ppp}\n",
            auth = dir.join("l2tp-secrets").display(),
            ppp = dir.join("options.l2tp").display(),
        ),
    );
    write(&dir.join("l2tp-secrets"), "* * interop-secret\n");
    write(&dir.join("options.l2tp"), "noauth\nnodefaultroute\n");

    let tshark = Capture::start(
        &[],
        "lo",
        &format!("udp port {port}"),
        &dir.join("interop.pcap"),
    );

    let log = std::fs::File::create(dir.join("xl2tpd.log")).unwrap();
    let lac = Killed(
        Command::new(xl2tpd)
            .arg("-D")
            .arg("-c")
            .arg(dir.join("xl2tpd.conf"))
            .arg("-s")
            .arg(dir.join("l2tp-secrets"))
            .arg("-p")
            .arg(dir.join("xl2tpd.pid"))
            .arg("-C")
            .arg(dir.join("l2tp-control"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    let xl2tpd_log = || std::fs::read_to_string(dir.join("xl2tpd.log")).unwrap_or_default();
    let tunnel_up = shell.pump_until(Duration::from_secs(15), |s| {
        s.events.iter().any(|e| matches!(e, Event::TunnelUp { .. }))
    });
    assert!(tunnel_up, "no tunnel; xl2tpd said:\n{}", xl2tpd_log());
    let (tunnel, host_name) = shell
        .events
        .iter()
        .find_map(|e| match e {
            Event::TunnelUp {
                tunnel, host_name, ..
            } => Some((*tunnel, host_name.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(host_name, b"xl2tpd-lac");
    // xl2tpd answered our challenge correctly, and accepted our answer.
    assert_eq!(shell.lns.stats().auth_failures, 0);

    let call_up = shell.pump_until(Duration::from_secs(15), |s| {
        s.events
            .iter()
            .any(|e| matches!(e, Event::SessionUp { .. }))
    });
    assert!(call_up, "no call; xl2tpd said:\n{}", xl2tpd_log());

    // pppd cannot start here; xl2tpd clears the call with a CDN.
    let call_down = shell.pump_until(Duration::from_secs(15), |s| {
        s.events.iter().any(|e| {
            matches!(
                e,
                Event::SessionDown {
                    reason: SessionDownReason::PeerDisconnect(_),
                    ..
                }
            )
        })
    });
    assert!(call_down, "no CDN; xl2tpd said:\n{}", xl2tpd_log());
    assert_eq!(shell.lns.stats().received(MessageType::Icrq), 1);
    assert_eq!(shell.lns.stats().received(MessageType::Iccn), 1);
    assert_eq!(shell.lns.stats().received(MessageType::Cdn), 1);

    // We clear the tunnel; xl2tpd must ack the StopCCN.
    shell
        .lns
        .close_tunnel(
            Instant::now(),
            tunnel,
            ResultCode {
                result: stopccn_result::CLEAR,
                error: None,
                message: None,
            },
        )
        .unwrap();
    let acked = shell.pump_until(Duration::from_secs(10), |s| {
        s.lns
            .tunnel(tunnel)
            .is_some_and(|t| matches!(t.state, TunnelState::Stopping { .. }) && t.unacked == 0)
    });
    assert!(acked, "StopCCN not handled; xl2tpd said:\n{}", xl2tpd_log());
    // Give xl2tpd a moment to retransmit anything we failed to ack.
    shell.pump_until(Duration::from_secs(2), |_| false);
    let stats = shell.lns.stats();
    assert_eq!(stats.malformed_messages, 0);
    assert_eq!(stats.unknown_mandatory_avps, 0);
    assert_eq!(stats.fsm_errors, 0);
    drop(lac);

    if let Some(capture) = tshark {
        let pcap = capture.finish();
        let flagged = tshark_flagged(&pcap, port);
        assert!(
            flagged.is_empty(),
            "tshark flagged:\n{}",
            flagged.join("\n")
        );
        let packets = tshark_lines(&pcap, port, "l2tp").len();
        assert!(packets >= 8, "capture holds only {packets} L2TP packets");
    } else {
        eprintln!("\n*** tshark not installed: capture dissection check skipped ***\n");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
