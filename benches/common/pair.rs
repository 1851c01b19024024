//! A LAC node with simulated subscribers and an LNS node with local AAA and
//! a pool, one tunnel up between them over the simulated clean link (shared
//! by the session-setup and session-memory benches).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use lns::proto::aaa::{users, LocalAaa, Pool};
use lns::proto::l2tp::CallInfo;
use lns::proto::l2tp::{Event, L2tpConfig, Role};
use lns::proto::node::{NoAaa, Node, NodeEvent, Subscriber};
use lns::proto::ppp::link::LinkConfig;
use lns::sim::{Link, Net};
use lns::wire::ppp::lcp::AuthMethod;

pub type Pair = Net<Node<NoAaa>, Node<LocalAaa>>;

/// The LAC: PPP subscribers that answer what the LNS asks.
pub fn lac_node(ipv6cp: bool) -> Node<NoAaa> {
    let mut client = LinkConfig::client(b"", b"");
    client.ipv6cp = ipv6cp;
    Node::new(
        L2tpConfig::new(Role::Lac),
        client,
        NoAaa::default(),
        vec![],
        2,
    )
}

/// Both nodes with one tunnel up; the LNS demands `method`, `ipv6cp` adds
/// IPv6CP, and the LNS takes any number of calls in setup at once.
pub fn tunnel_up(method: AuthMethod, ipv6cp: bool) -> (Pair, u16) {
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
    l2tp.limits.max_sessions_per_tunnel = usize::MAX;
    let lns = Node::new(l2tp, server, aaa, vec![pool], 1);
    let mut net = Net::new(lac_node(ipv6cp), lns, Link::CLEAN, 3, Instant::now());
    let tunnel = net.a.endpoint().connect(net.now, net.b_addr).unwrap();
    net.run_until(Duration::from_secs(10), |n| {
        n.a_events
            .iter()
            .any(|e| matches!(e, NodeEvent::L2tp(Event::TunnelUp { .. })))
    });
    (net, tunnel)
}

/// Dial `count` subscribers `user{n}@isp.example` / `secret` on `tunnel`
/// (with proxy LCP and authentication when `proxy`).
pub fn dial_all(net: &mut Pair, tunnel: u16, count: usize, proxy: bool) {
    for n in 0..count {
        let subscriber = Subscriber {
            user: format!("user{n}@isp.example").into_bytes(),
            password: b"secret".to_vec(),
            proxy,
        };
        net.a
            .dial(net.now, tunnel, CallInfo::default(), subscriber)
            .unwrap();
    }
}
