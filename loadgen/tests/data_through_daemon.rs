//! Data through our daemon: each session sends UDP probes from its PPP
//! address to a reflector on the daemon's gateway address (the kernel
//! delivers them from the daemon's TUN), which bounces them back down the
//! same sessions. In a private network namespace per test (needs root and
//! TUN, as CI has; says SKIPPED loudly otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Instant;

use lns::io::netns::in_private_netns;
use loadgen::options::Scenario;
use loadgen::reflect::Reflector;
use loadgen::{Options, Report};

mod support;
use support::{skipped, Lns, GATEWAY};

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("{a} is not IPv4"),
    }
}

/// The first CI proof: 10,000 sessions (10 tunnels × 1000, all at
/// once) with 2 probes/s each of 64 bytes for 3 s: every session comes
/// up, every probe comes back, and the JSON report says so.
#[test]
fn ten_thousand_sessions_with_data_all_come_up_and_lose_nothing() {
    let name = "ten_thousand_sessions_with_data_all_come_up_and_lose_nothing";
    let ran = in_private_netns(move || {
        let t0 = Instant::now();
        let (running, lns) = Lns::default().start();
        // The gateway address is on the daemon's TUN now.
        let reflector = Reflector::bind(SocketAddr::from((GATEWAY, 0)), 2)
            .unwrap()
            .spawn()
            .unwrap();
        let mut options = Options::new(lns);
        options.tunnels = 10;
        options.sessions_per_tunnel = 1000;
        options.scenario = Some(Scenario::Storm);
        options.workers = Some(2);
        options.hold = 3.0;
        options.timeout = 90.0;
        options.data_pps = 2.0;
        options.data_size = 64;
        options.reflector = Some(v4(reflector.local_addr()));
        options.quiet = true;
        let report = loadgen::run(&options).unwrap();
        let took = t0.elapsed();
        eprintln!("{report}");
        eprintln!("{name}: {:.1} s", took.as_secs_f64());
        let reflected = reflector.stop().unwrap();
        eprintln!("reflector: {reflected}");

        assert_eq!(report.sessions.planned, 10_000);
        assert_eq!(report.tunnels.established, 10, "{report}");
        assert_eq!(report.sessions.established, 10_000, "{report}");
        assert_eq!(report.sessions.failed, 0, "{report}");
        assert!(report.sessions.lost_by_reason.is_empty(), "{report}");
        let data = report.data.clone().expect("a data report");
        assert_eq!(data.sessions, 10_000, "{report}");
        // 2/s for 3 s: six probes a session, no more and no fewer.
        assert_eq!(data.sent, 60_000, "{report}");
        assert_eq!(data.unsendable, 0, "{report}");
        assert_eq!(data.received, data.sent, "{report}");
        assert_eq!(data.lost, 0, "{report}");
        assert_eq!(data.loss_percent, 0.0);
        assert_eq!(data.duplicates, 0, "{report}");
        // What the reflector saw is what went up (the kernel delivered
        // every one to it) and what it sent back.
        assert_eq!(reflected.received, data.sent);
        assert_eq!(reflected.reflected, data.sent);
        assert_eq!(reflected.bytes, data.sent * 64);
        // 92-byte IPv4 packets at about 20,000/s.
        assert!((data.window_s - 3.0).abs() < 0.5, "{report}");
        assert!(data.upstream_pps > 15_000.0, "{report}");
        assert!((data.upstream_bps - data.upstream_pps * 92.0 * 8.0).abs() < 1.0);
        assert_eq!(report.teardown.sessions_closed, 10_000, "{report}");

        // The JSON as `--json` writes it, read through the documented
        // fields.
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(value["schema"], "loadgen-report/2");
        assert_eq!(value["sessions"]["established"], 10_000);
        assert_eq!(value["settings"]["data_pps"], 2.0);
        assert_eq!(value["settings"]["data_size"], 64);
        assert_eq!(
            value["settings"]["reflector"],
            reflector_name(&options),
            "{value}"
        );
        let d = &value["data"];
        assert_eq!(d["sent"], d["received"]);
        assert_eq!(d["lost"], 0);
        assert_eq!(d["loss_percent"], 0.0);
        for field in [
            "upstream_pps",
            "downstream_pps",
            "upstream_bps",
            "downstream_bps",
        ] {
            assert!(d[field].as_f64().unwrap() > 0.0, "{field} in {d}");
        }
        let rtt: Vec<f64> = ["p50", "p90", "p99", "p99_9", "max"]
            .iter()
            .map(|p| d["rtt_ms"][p].as_f64().unwrap())
            .collect();
        assert!(rtt[0] > 0.0, "{rtt:?}");
        assert!(rtt.windows(2).all(|w| w[0] <= w[1]), "ordered: {rtt:?}");
        let back: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report);

        running.stop();
        assert_eq!(running.wait().sessions_up, 10_000);
        eprintln!("{name}: {:.1} s in all", t0.elapsed().as_secs_f64());
    });
    if !ran {
        skipped(name);
    }
}

fn reflector_name(options: &Options) -> String {
    options.reflector.unwrap().to_string()
}

/// Nothing listens where the probes go: every one is lost and counted as
/// such (the kernel's ICMP port unreachable comes back down the session
/// and is not mistaken for a probe); the run ends a drain grace after the
/// hold.
#[test]
fn probes_nobody_reflects_all_count_as_lost() {
    let name = "probes_nobody_reflects_all_count_as_lost";
    let ran = in_private_netns(move || {
        let (running, lns) = Lns::default().start();
        let mut options = Options::new(lns);
        options.tunnels = 2;
        options.sessions_per_tunnel = 10;
        options.hold = 1.0;
        options.timeout = 30.0;
        options.data_pps = 10.0;
        options.data_size = 200;
        // The discard port on the gateway: nobody there.
        options.reflector = Some(SocketAddrV4::new(GATEWAY, 9));
        options.quiet = true;
        let t0 = Instant::now();
        let report = loadgen::run(&options).unwrap();
        eprintln!("{report}");
        assert_eq!(report.sessions.established, 20, "{report}");
        let data = report.data.clone().expect("a data report");
        assert_eq!(data.sessions, 20);
        assert_eq!(data.sent, 200, "{report}");
        assert_eq!(data.received, 0, "{report}");
        assert_eq!(data.lost, 200, "{report}");
        assert_eq!(data.loss_percent, 100.0);
        assert_eq!(data.rtt_ms, None);
        assert_eq!(data.downstream_pps, 0.0);
        assert!(data.upstream_bps > 0.0);
        let text = report.to_string();
        assert!(text.contains("loss      200 (100.000%)"), "{text}");
        assert!(text.contains("nothing came back"), "{text}");
        // Hold 1 s + drain 2 s, then teardown.
        let took = t0.elapsed().as_secs_f64();
        assert!((3.0..15.0).contains(&took), "{took}");
        running.stop();
        running.wait();
    });
    if !ran {
        skipped(name);
    }
}
