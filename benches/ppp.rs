//! Complete in-memory session setup: L2TP incoming call, LCP,
//! authentication, IPCP — a LAC node with simulated subscribers and an LNS
//! node with local AAA and a pool, both on this one core.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lns::proto::node::NodeEvent;
use lns::wire::ppp::lcp::AuthMethod;

const SESSIONS: usize = 1000;

// The daemon's allocator (design card); malloc and free were a fifth of
// this benchmark's time with the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/pair.rs"]
mod pair;
use pair::{dial_all, tunnel_up, Pair};

/// Dial every subscriber and run until the LNS has them all online.
fn storm((mut net, tunnel): (Pair, u16), proxy: bool) -> Pair {
    dial_all(&mut net, tunnel, SESSIONS, proxy);
    // Consume events as they come, as the daemon does, rather than keep
    // the simulator's logs of every event of the storm.
    let mut up = (0, 0);
    let count = |events: &mut Vec<NodeEvent>, up: &mut usize| {
        for e in events.drain(..) {
            if matches!(e, NodeEvent::SessionUp { .. }) {
                *up += 1;
            }
        }
    };
    let deadline = net.now + Duration::from_secs(600);
    while up != (SESSIONS, SESSIONS) && net.now < deadline {
        if !net.step() {
            break;
        }
        count(&mut net.a_events, &mut up.0);
        count(&mut net.b_events, &mut up.1);
    }
    assert_eq!(up, (SESSIONS, SESSIONS));
    net
}

fn setup(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_setup");
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group.sample_size(10);
    for (name, method, proxy, ipv6cp) in [
        ("pap_ipcp", AuthMethod::Pap, false, false),
        ("chap_ipcp", AuthMethod::ChapMd5, false, false),
        ("mschapv2_ipcp", AuthMethod::MsChapV2, false, false),
        ("proxy_chap_ipcp", AuthMethod::ChapMd5, true, false),
        ("pap_ipcp_ipv6cp", AuthMethod::Pap, false, true),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || tunnel_up(method, ipv6cp),
                |pair| storm(pair, proxy),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, setup);
criterion_main!(benches);
