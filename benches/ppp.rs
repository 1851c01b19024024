//! Complete in-memory session setup: L2TP incoming call, LCP,
//! authentication, IPCP — a LAC node with simulated subscribers and an LNS
//! node with local AAA and a pool, both on this one core.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lns::proto::aaa::{users, LocalAaa, Pool};
use lns::proto::l2tp::{CallInfo, Event, L2tpConfig, Role};
use lns::proto::node::{NoAaa, Node, NodeEvent, Subscriber};
use lns::proto::ppp::link::LinkConfig;
use lns::sim::{Link, Net};
use lns::wire::ppp::lcp::AuthMethod;

const SESSIONS: usize = 1000;

// The daemon's allocator (design card); malloc and free were a fifth of
// this benchmark's time with the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Pair = Net<Node<NoAaa>, Node<LocalAaa>>;

/// Both nodes with one tunnel up; `ipv6cp` adds IPv6CP to the storm.
fn tunnel_up(method: AuthMethod, ipv6cp: bool) -> (Pair, u16) {
    let mut server = LinkConfig::server(
        Ipv4Addr::new(100, 64, 255, 254),
        [Some(Ipv4Addr::new(192, 0, 2, 53)), None],
    );
    server.lcp.auth = vec![method];
    server.ipv6cp = ipv6cp;
    let aaa = LocalAaa::new(users::parse("*@isp.example password=secret\n").unwrap());
    let pool = Pool::new(
        "p",
        vec!["100.64.0.0/16".parse().unwrap()],
        Duration::from_secs(60),
    )
    .unwrap();
    let mut l2tp = L2tpConfig::new(Role::Lns);
    l2tp.limits.max_half_open_sessions = usize::MAX;
    let lns = Node::new(l2tp, server, aaa, vec![pool], 1);
    let mut client = LinkConfig::client(b"", b"");
    client.ipv6cp = ipv6cp;
    let lac = Node::new(
        L2tpConfig::new(Role::Lac),
        client,
        NoAaa::default(),
        vec![],
        2,
    );
    let mut net = Net::new(lac, lns, Link::CLEAN, 3, Instant::now());
    let tunnel = net.a.endpoint().connect(net.now, net.b_addr).unwrap();
    net.run_until(Duration::from_secs(10), |n| {
        n.a_events
            .iter()
            .any(|e| matches!(e, NodeEvent::L2tp(Event::TunnelUp { .. })))
    });
    (net, tunnel)
}

/// Dial every subscriber and run until the LNS has them all online.
fn storm((mut net, tunnel): (Pair, u16), proxy: bool) -> Pair {
    for n in 0..SESSIONS {
        let subscriber = Subscriber {
            user: format!("user{n}@isp.example").into_bytes(),
            password: b"secret".to_vec(),
            proxy,
        };
        net.a
            .dial(net.now, tunnel, CallInfo::default(), subscriber)
            .unwrap();
    }
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
