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
use loadgen::socket_io::IoChoice;
use loadgen::{Options, Report};

mod support;
use support::{gateway_reflector, io_modes, path_name, skipped, Lns, GATEWAY, GATEWAY6};

/// The first CI proof: 10,000 sessions (10 tunnels × 1000, all at
/// once) with a probe a second each of 64 bytes for 4 s: every session
/// comes up, every probe comes back, and the JSON report says so.
///
/// The rate is modest on purpose: 10,000 probes/s each way is what a debug
/// build of the daemon carries with room to spare on two loaded cores (at
/// twice that, with another such run beside it, its downstream path falls
/// behind and the TUN queue overflows). On each I/O path.
#[test]
fn ten_thousand_sessions_with_data_all_come_up_and_lose_nothing() {
    let name = "ten_thousand_sessions_with_data_all_come_up_and_lose_nothing";
    for io in io_modes(name) {
        if !ten_thousand_with_data(name, io) {
            skipped(name);
            return;
        }
    }
}

/// That run with loadgen on `io`, in a namespace of its own (false when
/// none could be made).
fn ten_thousand_with_data(name: &'static str, io: IoChoice) -> bool {
    in_private_netns(move || {
        let t0 = Instant::now();
        let (running, lns) = Lns::default().start();
        // The gateway address is on the daemon's TUN now.
        let (reflector, reflector_addr) = gateway_reflector(2);
        let mut options = Options::new(lns);
        options.tunnels = 10;
        options.sessions_per_tunnel = 1000;
        options.scenario = Some(Scenario::Storm);
        options.workers = Some(2);
        options.hold = 4.0;
        options.timeout = 90.0;
        options.data_pps = 1.0;
        options.data_size = 64;
        options.reflector = Some(reflector_addr);
        options.quiet = true;
        options.io = io;
        let report = loadgen::run(&options).unwrap();
        let took = t0.elapsed();
        eprintln!("{report}");
        eprintln!("{name}: {:.1} s", took.as_secs_f64());
        let reflected = reflector.stop().unwrap();
        eprintln!("reflector: {reflected}");
        eprintln!("{}", drops());

        assert_eq!(report.sessions.planned, 10_000);
        assert_eq!(report.io.as_ref().unwrap().path, path_name(io), "{report}");
        assert_eq!(report.tunnels.established, 10, "{report}");
        assert_eq!(report.sessions.established, 10_000, "{report}");
        assert_eq!(report.sessions.failed, 0, "{report}");
        assert!(report.sessions.lost_by_reason.is_empty(), "{report}");
        let data = report.data.clone().expect("a data report");
        assert_eq!(data.sessions, 10_000, "{report}");
        // 1/s for 4 s: four probes a session, no more and no fewer.
        assert_eq!(data.sent, 40_000, "{report}");
        assert_eq!(data.unsendable, 0, "{report}");
        assert_eq!(data.received, data.sent, "{report}\n{}", drops());
        assert_eq!(data.lost, 0, "{report}");
        assert_eq!(data.loss_percent, 0.0);
        assert_eq!(data.duplicates, 0, "{report}");
        // What the reflector saw is what went up (the kernel delivered
        // every one to it) and what it sent back.
        assert_eq!(reflected.received, data.sent);
        assert_eq!(reflected.reflected, data.sent);
        assert_eq!(reflected.bytes, data.sent * 64);
        // 92-byte IPv4 packets at about 10,000/s.
        assert!((data.window_s - 4.0).abs() < 0.5, "{report}");
        assert!(data.upstream_pps > 8_000.0, "{report}");
        assert!((data.upstream_bps - data.upstream_pps * 92.0 * 8.0).abs() < 1.0);
        assert_eq!(report.teardown.sessions_closed, 10_000, "{report}");

        // The JSON as `--json` writes it, read through the documented
        // fields.
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(value["schema"], "loadgen-report/4");
        assert_eq!(value["sessions"]["established"], 10_000);
        assert_eq!(value["settings"]["data_pps"], 1.0);
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
        eprintln!(
            "{name} ({io:?}): {:.1} s in all",
            t0.elapsed().as_secs_f64()
        );
    })
}

/// Where packets were dropped in this thread's namespace, for a failure
/// message: the daemon's TUN queue and UDP receive buffers.
fn drops() -> String {
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap_or_default();
    let tun = dev
        .lines()
        .find(|l| l.trim_start().starts_with("lnslg0:"))
        .unwrap_or("lnslg0: (not found)");
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap_or_default();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    format!("/proc/net/dev {tun}\n/proc/net/snmp {udp:?}")
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

/// With `--ipv6` and an IPv6 reflector, sessions send their probes over
/// both families once the LNS's Router Advertisement has given them an
/// address: every one comes back, over IPv6 to the session's SLAAC address.
#[test]
fn probes_go_over_ipv6_too_and_all_come_back() {
    let name = "probes_go_over_ipv6_too_and_all_come_back";
    let ran = in_private_netns(move || {
        let (running, lns) = Lns {
            ipv6_sessions: true,
            ..Lns::default()
        }
        .start();
        let (reflector, reflector_addr) = gateway_reflector(1);
        let reflector6 = Reflector::bind(SocketAddr::from((GATEWAY6, 0)), 1)
            .unwrap()
            .spawn()
            .unwrap();
        let mut options = Options::new(lns);
        options.tunnels = 2;
        options.sessions_per_tunnel = 50;
        options.ipv6 = true;
        options.hold = 2.0;
        options.timeout = 30.0;
        options.data_pps = 5.0;
        options.reflector = Some(reflector_addr);
        options.reflector6 = match reflector6.local_addr() {
            SocketAddr::V6(a) => Some(a),
            SocketAddr::V4(a) => panic!("{a} is not IPv6"),
        };
        options.quiet = true;
        let report = loadgen::run(&options).unwrap();
        eprintln!("{report}");
        let (up4, up6) = (reflector.stop().unwrap(), reflector6.stop().unwrap());
        assert_eq!(report.sessions.established, 100, "{report}");
        let data = report.data.clone().expect("a data report");
        // 5/s for 2 s over IPv4: ten a session; over IPv6 as many, less
        // the few sent before a session's advertisement came.
        assert_eq!(data.sent - data.sent_ipv6, 1000, "{report}");
        assert!(data.sent_ipv6 >= 900, "{report}");
        assert_eq!(data.received, data.sent, "{report}");
        assert_eq!(data.received_ipv6, data.sent_ipv6, "{report}");
        assert_eq!(
            (data.lost, data.unmatched, data.duplicates),
            (0, 0, 0),
            "{report}"
        );
        assert_eq!(up4.received, 1000);
        assert_eq!(up6.received, data.sent_ipv6);
        assert!(report.to_string().contains("ipv6 "), "{report}");
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            value["settings"]["reflector6"],
            options.reflector6.unwrap().to_string()
        );
        assert_eq!(value["data"]["sent_ipv6"], data.sent_ipv6);
        running.stop();
        running.wait();
    });
    if !ran {
        skipped(name);
    }
}
