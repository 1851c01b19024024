//! loadgen against our own daemon, in a private network namespace per test
//! (needs root and TUN, as CI has; says SKIPPED loudly otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use lns::io::netns::in_private_netns;
use loadgen::options::{Rate, Scenario, Teardown};
use loadgen::socket_io::IoChoice;
use loadgen::{Options, Report};

mod support;
use support::{check_latency, io_modes, management, path_name, skipped, stat, Lns};

/// 2 tunnels × 500 sessions dialled all at once: every session comes up,
/// nothing fails, CDN + StopCCN close everything and the LNS acknowledges;
/// the JSON report on disk says the same. On each I/O path.
#[test]
fn a_storm_of_a_thousand_sessions_all_come_up_and_close_cleanly() {
    let name = "a_storm_of_a_thousand_sessions_all_come_up_and_close_cleanly";
    for io in io_modes(name) {
        if !storm(io) {
            skipped(name);
            return;
        }
    }
}

/// The storm with loadgen on `io`, in a namespace of its own (false when
/// none could be made).
fn storm(io: IoChoice) -> bool {
    in_private_netns(move || {
        let socket = management(&format!("storm-{io:?}"));
        let (running, lns) = Lns::default().start_with_management(Some(socket.clone()));
        let json =
            std::env::temp_dir().join(format!("loadgen-storm-{io:?}-{}.json", std::process::id()));
        let mut options = Options::new(lns);
        options.io = io;
        options.tunnels = 2;
        options.sessions_per_tunnel = 500;
        options.scenario = Some(Scenario::Storm);
        options.workers = Some(2);
        options.timeout = 40.0;
        options.quiet = true;
        let t0 = Instant::now();
        let report = loadgen::run(&options).unwrap();
        eprintln!("{report}");
        assert!(t0.elapsed().as_secs() < 45);
        assert_eq!(report.scenario, "storm");
        assert_eq!(report.settings.rate_per_s, None);
        assert_eq!(report.tunnels.attempted, 2);
        assert_eq!(report.tunnels.established, 2, "{report}");
        assert_eq!(report.sessions.planned, 1000);
        assert_eq!(report.sessions.attempted, 1000);
        assert_eq!(report.sessions.established, 1000, "{report}");
        assert_eq!(report.sessions.failed, 0, "{report}");
        assert!(report.sessions.failed_by_reason.is_empty());
        assert!(report.sessions.lost_by_reason.is_empty(), "{report}");
        check_latency(&report);
        assert!(report.setup_rate_per_s > 0.0);
        assert!(report.setup_window_s > 0.0);
        assert_eq!(report.teardown.style, "cdn");
        assert_eq!(report.teardown.sessions_closed, 1000, "{report}");
        assert_eq!(report.teardown.tunnels_closed, 2);
        assert_eq!(report.teardown.tunnels_acked, 2, "{report}");
        assert!(report.cpu.user_s + report.cpu.system_s > 0.0);
        let ran = report.io.as_ref().expect("the I/O path");
        assert_eq!(ran.path, path_name(io), "{report}");
        assert!(report
            .to_string()
            .contains(&format!("io          {}", ran.path)));

        // Written as `--json FILE` writes it, read back through the
        // documented fields.
        report.write_json(&json).unwrap();
        let text = std::fs::read_to_string(&json).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["schema"], "loadgen-report/4");
        assert_eq!(value["sessions"]["established"], 1000);
        assert_eq!(value["sessions"]["failed"], 0);
        assert_eq!(value["tunnels"]["established"], 2);
        for p in ["p50", "p90", "p99", "p99_9", "max", "mean"] {
            assert!(value["setup_latency_ms"][p].is_f64(), "{p} in {text}");
        }
        for field in ["setup_rate_per_s", "retransmissions", "wall_s"] {
            assert!(value[field].is_number(), "{field} in {text}");
        }
        assert!(value["cpu"]["user_s"].is_number());
        assert_eq!(value["io"]["path"], path_name(io));
        assert_eq!(value["io"]["asked"], format!("{io:?}").to_lowercase());
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        let _ = std::fs::remove_file(&json);

        // The LNS agrees: everything came up and nothing is left.
        assert_eq!(stat(&socket, "sessions_up_total"), 1000);
        assert_eq!(stat(&socket, "sessions_online"), 0);
        assert_eq!(stat(&socket, "l2tp_tunnels_closed_total"), 2);

        running.stop();
        let counters = running.wait();
        assert_eq!(counters.sessions_up, 1000);
    })
}

/// Subscribers whose password the LNS does not take fail as
/// `auth_failed`, the others come up at a paced rate; `vanish` ends the
/// run without a word to the LNS.
#[test]
fn wrong_passwords_count_as_auth_failures_and_vanish_sends_nothing() {
    let name = "wrong_passwords_count_as_auth_failures_and_vanish_sends_nothing";
    let ran = in_private_netns(|| {
        // Ten subscribers with a password of their own that loadgen does
        // not know.
        let users: String = (0..10)
            .map(|i| format!("user{}@loadgen.example password=other\n", i * 7))
            .collect();
        let socket = management("vanish");
        let (running, lns) = Lns {
            users,
            ..Lns::default()
        }
        .start_with_management(Some(socket.clone()));
        let mut options = Options::new(lns);
        options.tunnels = 2;
        options.sessions_per_tunnel = 50;
        options.rate = Rate::PerSecond(500.0);
        options.teardown = Teardown::Vanish;
        options.workers = Some(1);
        options.timeout = 30.0;
        options.quiet = true;
        let t0 = Instant::now();
        let report = loadgen::run(&options).unwrap();
        eprintln!("{report}");
        assert_eq!(report.scenario, "ramp");
        assert_eq!(report.sessions.attempted, 100);
        assert_eq!(report.sessions.established, 90, "{report}");
        assert_eq!(report.sessions.failed, 10, "{report}");
        assert_eq!(
            report.sessions.failed_by_reason.get("auth_failed"),
            Some(&10),
            "{report}"
        );
        check_latency(&report);
        // 100 sessions at 500/s take about 0.2 s to dial: the bucket held
        // them back (and let them through).
        assert!(report.setup_window_s >= 0.15, "{report}");
        assert!(report.setup_rate_per_s < 700.0, "{report}");
        assert!(
            report.dial_rate_per_s > 100.0 && report.dial_rate_per_s < 600.0,
            "{report}"
        );
        assert!(t0.elapsed().as_secs() < 20);
        assert_eq!(report.teardown.style, "vanish");
        assert_eq!(report.teardown.sessions_closed, 0);
        assert_eq!(report.teardown.tunnels_closed, 0);
        // Vanishing said nothing: the LNS still holds every session (until
        // its HELLOs go unanswered).
        assert_eq!(stat(&socket, "sessions_online"), 90);
        assert_eq!(stat(&socket, "tunnels"), 2);
        running.stop();
        let counters = running.wait();
        assert_eq!(counters.sessions_up, 90);
    });
    if !ran {
        skipped(name);
    }
}

/// Tunnel authentication with a secret, hidden AVPs and proxy LCP +
/// proxy authentication: everything comes up. With the wrong secret the
/// tunnel fails, by a StopCCN reason, and no session is dialled.
#[test]
fn secret_hidden_avps_and_proxy_auth_work_and_a_wrong_secret_fails_the_tunnel() {
    let name = "secret_hidden_avps_and_proxy_auth_work_and_a_wrong_secret_fails_the_tunnel";
    let ran = in_private_netns(|| {
        let (running, lns) = Lns {
            secret: Some(b"tunnel-secret"),
            ..Lns::default()
        }
        .start();
        let mut options = Options::new(lns);
        options.sessions_per_tunnel = 20;
        options.secret = Some("tunnel-secret".into());
        options.hidden = true;
        options.proxy = true;
        options.calling = Some("line-{n}".into());
        options.called = Some("isp".into());
        options.timeout = 20.0;
        options.quiet = true;
        let report = loadgen::run(&options).unwrap();
        eprintln!("{report}");
        assert!(report.settings.tunnel_auth && report.settings.hidden_avps);
        assert_eq!(report.sessions.established, 20, "{report}");
        assert_eq!(report.teardown.sessions_closed, 20, "{report}");

        options.secret = Some("not-the-secret".into());
        options.timeout = 15.0;
        let report = loadgen::run(&options).unwrap();
        eprintln!("{report}");
        assert_eq!(report.tunnels.failed, 1, "{report}");
        let reasons: Vec<_> = report.tunnels.failed_by_reason.keys().collect();
        assert!(reasons[0].starts_with("stopccn_"), "{reasons:?}");
        assert_eq!(report.sessions.attempted, 0);
        assert_eq!(report.sessions.not_attempted, 20);
        assert!(report.setup_latency_ms.is_none());
        running.stop();
        assert_eq!(running.wait().sessions_up, 20);
    });
    if !ran {
        skipped(name);
    }
}

/// L2TP over IPv6 (the daemon on `[::1]`), the LAC sockets bound with
/// `--bind`, sessions asking for IPv6CP too (this LNS runs IPv4 only and
/// rejects it; the sessions come up on IPCP).
#[test]
fn sessions_over_ipv6_transport_from_a_bound_address() {
    let name = "sessions_over_ipv6_transport_from_a_bound_address";
    let ran = in_private_netns(|| {
        let (running, lns) = Lns {
            ipv6: true,
            ..Lns::default()
        }
        .start();
        assert!(lns.is_ipv6());
        let mut options = Options::new(lns);
        options.tunnels = 2;
        options.sessions_per_tunnel = 25;
        options.bind = Some("::1".parse().unwrap());
        options.ipv6 = true;
        options.auth = vec![loadgen::options::Auth::Pap];
        options.timeout = 20.0;
        options.quiet = true;
        let report = loadgen::run(&options).unwrap();
        eprintln!("{report}");
        assert_eq!(report.lns, lns.to_string());
        assert_eq!(report.settings.auth, vec!["pap".to_string()]);
        assert_eq!(report.sessions.established, 50, "{report}");
        assert_eq!(report.teardown.sessions_closed, 50, "{report}");
        assert_eq!(report.teardown.tunnels_acked, 2, "{report}");
        running.stop();
        assert_eq!(running.wait().sessions_up, 50);
    });
    if !ran {
        skipped(name);
    }
}
