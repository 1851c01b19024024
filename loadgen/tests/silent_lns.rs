//! An "LNS" that never answers: a plain UDP socket on loopback. Needs no
//! privileges. The tunnel fails by the run's timeout, no session is
//! dialled, and the run ends on time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use loadgen::Options;

#[test]
fn a_silent_lns_fails_the_tunnels_by_timeout_and_the_run_ends_on_time() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut options = Options::new(silent.local_addr().unwrap());
    options.tunnels = 3;
    options.sessions_per_tunnel = 10;
    options.workers = Some(2);
    options.timeout = 1.0;
    options.quiet = true;
    let t0 = Instant::now();
    let report = loadgen::run(&options).unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(
        took < Duration::from_secs(3),
        "teardown waited for nothing: {took:?}"
    );
    assert_eq!(report.settings.workers, 2);
    assert_eq!(report.tunnels.attempted, 3);
    assert_eq!(report.tunnels.established, 0);
    assert_eq!(report.tunnels.failed_by_reason.get("timeout"), Some(&3));
    assert_eq!(report.sessions.attempted, 0);
    assert_eq!(report.sessions.not_attempted, 30);
    assert_eq!(report.setup_latency_ms, None);
    assert_eq!(report.teardown.tunnels_closed, 0);
    // The SCCRQs did reach the socket, from one source port per tunnel.
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    let mut ports = std::collections::BTreeSet::new();
    while let Ok((_, from)) = silent.recv_from(&mut buf) {
        ports.insert(from.port());
    }
    assert_eq!(ports.len(), 3, "{ports:?}");
}
