//! loadgen against l2tpns (Debian package, an independent userspace LNS)
//! that authenticates every subscriber through FreeRADIUS (Debian
//! package), in namespaces the test creates: the root crate's harness
//! (`tests/support/l2tpns.rs`), shared rather than copied. loadgen runs
//! in-process in the LAC namespace.
//!
//! This proves loadgen speaks L2TP (tunnel authentication with a secret,
//! l2tpns's window of 4 and withheld acks) and PPP (l2tpns's multilink
//! LCP options, CHAP checked by a RADIUS server) the way an independent
//! implementation expects, and that its figures agree with what l2tpns
//! logs.
//!
//! Needs root, iproute2, TUN, l2tpns and freeradius; CI runs as root and
//! installs the packages. Without them the test says loudly it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use loadgen::options::{Auth, Scenario};
use loadgen::reflect::Reflector;
use loadgen::{Options, Report};

#[path = "../../tests/support/mod.rs"]
mod lab;
use lab::l2tpns::{L2tpns, PASSWORD};

mod support;
use support::check_latency;

const SECRET: &str = "loadgen-l2tpns-secret";
const TUNNELS: u32 = 2;
const SESSIONS_PER_TUNNEL: u32 = 100;
const SESSIONS: u64 = TUNNELS as u64 * SESSIONS_PER_TUNNEL as u64;
const USER: &str = "user{n}@l2tpns.test";

/// 2 tunnels × 100 sessions dialled all at once, CHAP through FreeRADIUS:
/// every session comes up, nothing fails, l2tpns logs every login; data
/// flows through l2tpns both ways (every session sends probes from its
/// address to a reflector on the network side of l2tpns and gets them
/// back); the teardown (LCP Terminate, CDN, StopCCN) ends every session
/// and tunnel there.
#[test]
fn a_storm_of_two_hundred_chap_sessions_with_data_through_l2tpns_and_freeradius() {
    let name = "a_storm_of_two_hundred_chap_sessions_with_data_through_l2tpns_and_freeradius";
    let Some(mut lab) = L2tpns::start(name, SECRET) else {
        return;
    };
    let logs = |lab: &L2tpns| format!("l2tpns said:\n{}", lab.log());
    // The far end of the data path: a host on l2tpns's network side.
    let server = std::net::SocketAddr::from((lab.server_addr(), 0));
    let reflector = lab
        .in_lns_ns(|| Reflector::bind(server, 1).and_then(Reflector::spawn))
        .unwrap();
    let reflector_addr = match reflector.local_addr() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("{other} is not IPv4"),
    };

    let mut options = Options::new(lab.lns_addr());
    options.bind = Some(lab.lac_addr().into());
    options.tunnels = TUNNELS;
    options.sessions_per_tunnel = SESSIONS_PER_TUNNEL;
    options.scenario = Some(Scenario::Storm);
    options.secret = Some(SECRET.into());
    // l2tpns's radius_authtypes is "chap,pap": CHAP first.
    options.auth = vec![Auth::Chap];
    options.user = USER.into();
    options.password = PASSWORD.into();
    options.workers = Some(2);
    options.timeout = 30.0;
    options.quiet = true;
    options.lns_pid = Some(lab.pid());
    options.hold = 3.0;
    options.data_pps = 2.0;
    options.data_size = 64;
    options.reflector = Some(reflector_addr);
    let t0 = Instant::now();
    let report: Report = lab.in_lac_ns(|| loadgen::run(&options)).unwrap();
    let took = t0.elapsed();
    let reflected = reflector.stop().unwrap();
    eprintln!("{report}\n(l2tpns took {:?} to start)", lab.startup);

    assert_eq!(report.scenario, "storm");
    assert!(report.settings.tunnel_auth);
    assert_eq!(report.settings.auth, ["chap"]);
    assert_eq!(report.tunnels.attempted, u64::from(TUNNELS));
    assert_eq!(
        report.tunnels.established,
        u64::from(TUNNELS),
        "{report}\n{}",
        logs(&lab)
    );
    assert_eq!(report.tunnels.failed, 0, "{report}");
    assert_eq!(report.sessions.planned, SESSIONS);
    assert_eq!(report.sessions.attempted, SESSIONS, "{report}");
    assert_eq!(
        report.sessions.established,
        SESSIONS,
        "{report}\n{}",
        logs(&lab)
    );
    assert_eq!(report.sessions.failed, 0, "{report}");
    assert!(report.sessions.failed_by_reason.is_empty(), "{report}");
    assert_eq!(report.sessions.not_attempted, 0, "{report}");
    assert!(report.sessions.lost_by_reason.is_empty(), "{report}");

    // The figures hang together: a latency for every session, ordered
    // percentiles within the run, a rate that is sessions over the window.
    let l = check_latency(&report);
    assert!(l.mean > 0.0 && l.mean <= l.max, "{l:?}");
    // (The histogram keeps 3 significant digits: its max may exceed the
    // true one by 0.1%.)
    assert!(
        l.max <= report.setup_window_s * 1000.0 * 1.001 + 1.0,
        "{report}"
    );
    assert!(report.setup_window_s > 0.0 && report.setup_window_s < 30.0);
    let rate = SESSIONS as f64 / report.setup_window_s;
    assert!(
        (report.setup_rate_per_s - rate).abs() < rate * 1e-6,
        "{report}"
    );
    assert!(
        report.dial_rate_per_s >= report.setup_rate_per_s,
        "{report}"
    );
    assert!(report.wall_s <= took.as_secs_f64() + 0.1, "{report}");
    assert!(report.wall_s >= report.setup_window_s, "{report}");
    assert!(report.cpu.user_s + report.cpu.system_s > 0.0, "{report}");
    assert!(took < Duration::from_secs(40), "{took:?}");

    // Data through l2tpns: every session sent for the hold, every probe
    // came back through l2tpns's TUN and the tunnel, and the reflector saw
    // each once.
    let data = report.data.as_ref().expect("data report");
    assert_eq!(data.sessions, SESSIONS, "{report}");
    assert!(data.sent >= SESSIONS * 5, "{report}");
    assert_eq!(data.received, data.sent, "{report}\n{}", logs(&lab));
    assert_eq!(data.lost, 0, "{report}");
    assert_eq!(data.duplicates, 0, "{report}");
    assert_eq!(reflected.received, data.sent, "{reflected:?}");
    assert_eq!(reflected.reflected, data.sent, "{reflected:?}");
    let rtt = data.rtt_ms.as_ref().expect("RTT percentiles");
    assert!(rtt.p50 > 0.0 && rtt.p50 <= rtt.max, "{rtt:?}");

    // l2tpns's own cost, read from /proc: it worked, and it held memory.
    let lns = report.target.as_ref().expect("--lns-pid gives a target");
    assert_eq!(lns.pid, lab.pid());
    assert_eq!(lns.name, "l2tpns");
    assert!(lns.cpu_user_s + lns.cpu_system_s > 0.0, "{report}");
    assert!(lns.rss_before_kib > 0, "{report}");
    assert!(lns.rss_max_kib >= lns.rss_before_kib, "{report}");
    assert!(lns.rss_after_kib > 0, "{report}");
    assert!(lns.rss_per_session_b.is_some(), "{report}");

    // Teardown: LCP Terminate and CDN for every call, StopCCN for every
    // tunnel, acknowledged.
    assert_eq!(report.teardown.style, "cdn");
    assert_eq!(report.teardown.sessions_closed, SESSIONS, "{report}");
    assert_eq!(report.teardown.tunnels_closed, u64::from(TUNNELS));
    assert_eq!(
        report.teardown.tunnels_acked,
        u64::from(TUNNELS),
        "{report}"
    );

    // l2tpns's view: every subscriber logged in, from the LAC's address,
    // at an address of its pool; every session ended, every tunnel
    // stopped.
    let log = lab.log();
    for n in 0..SESSIONS {
        let user = USER.replace("{n}", &n.to_string());
        let prefix = format!("Login by {user} at ");
        let line = log
            .lines()
            .find(|l| l.contains(&prefix))
            .unwrap_or_else(|| panic!("no '{prefix}'\n{}", logs(&lab)));
        let rest = &line[line.find(&prefix).unwrap() + prefix.len()..];
        let (addr, from) = rest.split_once(" from ").unwrap();
        assert!(lab.in_pool(addr.parse().unwrap()), "{line}");
        assert!(from.starts_with(&lab.lac_addr().to_string()), "{line}");
    }
    // Each one by CHAP, accepted by FreeRADIUS.
    assert_eq!(
        log.matches("CHAP login user").count(),
        SESSIONS as usize,
        "{}",
        logs(&lab)
    );
    assert_eq!(
        log.matches("(Access-Accept,").count(),
        SESSIONS as usize,
        "{}",
        logs(&lab)
    );
    assert_eq!(
        log.matches("Login by ").count(),
        SESSIONS as usize,
        "{}",
        logs(&lab)
    );
    // Each subscriber's LCP Terminate-Request reaches l2tpns, which then
    // shuts the session down (and sends its own CDN, which mostly crosses
    // ours): every session ends there exactly once.
    // Each within 5 s of the teardown.
    let expect_log = |text: &str, count: u64| {
        let count = count as usize;
        let seen = lab.wait_log(text, count, Duration::from_secs(5));
        assert_eq!(seen, count, "{text}\n{}", logs(&lab));
    };
    expect_log("LCP: recv TerminateReq", SESSIONS);
    expect_log("Shutting down session", SESSIONS);
    expect_log("Received StopCCN", u64::from(TUNNELS));
    assert!(lab.running(), "l2tpns died\n{}", logs(&lab));
}
