//! A configuration drives a real LNS: the core settings that `Config`
//! builds bring demo subscribers up end to end, in simulated time, against
//! the library's own LAC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use lns::config::Config;
use lns::proto::l2tp::{CallInfo, Event, L2tpConfig, Role, ShardSpec};
use lns::proto::node::{NoAaa, Node, NodeEvent, Subscriber};
use lns::proto::ppp::link::{LinkConfig, LinkUp};
use lns::sim::{Link, Net};
use lns::wire::ppp::lcp::AuthMethod;

fn ups(events: &[NodeEvent]) -> Vec<LinkUp> {
    events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::SessionUp { up, .. } => Some((**up).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn embedded_defaults_bring_demo_subscribers_up() {
    // The defaults plus a tunnel secret, so authentication and AVP hiding
    // are exercised too.
    let config =
        Config::from_toml_str("[l2tp]\nsecret = \"s3cret\"\n[ppp]\ndns = [\"192.0.2.53\"]\n")
            .unwrap();
    let lns = Node::new(
        config.l2tp_config(ShardSpec::SINGLE),
        config.link_config(false),
        config.local_aaa().unwrap(),
        config.pools().unwrap(),
        7,
    );
    let mut lac_l2tp = L2tpConfig::new(Role::Lac);
    lac_l2tp.secret = Some(b"s3cret".to_vec());
    lac_l2tp.hidden_avps = L2tpConfig::sensitive_avps();
    let lac = Node::new(
        lac_l2tp,
        LinkConfig::client(b"", b""),
        NoAaa::default(),
        vec![],
        8,
    );
    let mut net = Net::new(lac, lns, Link::lossy(0.02), 3, Instant::now());
    let tunnel = net.a.endpoint().connect(net.now, net.b_addr).unwrap();
    assert!(net.run_until(Duration::from_secs(30), |n| n
        .a_events
        .iter()
        .any(|e| matches!(e, NodeEvent::L2tp(Event::TunnelUp { .. })))));

    for (user, password) in [
        ("alice@demo.example", "alice-demo"),
        ("bob@demo.example", "bob-demo"),
        ("line-17@loadgen.example", "loadgen"),
    ] {
        let sub = Subscriber {
            user: user.as_bytes().to_vec(),
            password: password.as_bytes().to_vec(),
            proxy: false,
        };
        net.a
            .dial(net.now, tunnel, CallInfo::default(), sub)
            .unwrap();
    }
    assert!(
        net.run_until(Duration::from_secs(120), |n| ups(&n.b_events).len() == 3),
        "LNS events {:?}",
        net.b_events
    );
    let mut up = ups(&net.b_events);
    up.sort_by(|a, b| a.user.cmp(&b.user));
    let users: Vec<&[u8]> = up.iter().map(|u| u.user.as_slice()).collect();
    assert_eq!(
        users,
        [
            &b"alice@demo.example"[..],
            b"bob@demo.example",
            b"line-17@loadgen.example"
        ]
    );
    for u in &up {
        // CHAP-MD5 is the first method demanded; the MRU fits 1500/IPv4.
        assert_eq!(u.lcp.auth, Some(AuthMethod::ChapMd5));
        assert_eq!(u.lcp.our_mru, 1456);
        assert_eq!(u.dns[0], Some(Ipv4Addr::new(192, 0, 2, 53)));
        let ip = u.ipv4.unwrap();
        assert_eq!(ip.octets()[..2], [100, 64], "{ip}");
        assert_ne!(ip, config.ppp.gateway);
    }
    // Bob's static address from the demo users file.
    assert_eq!(up[1].ipv4, Some(Ipv4Addr::new(100, 64, 0, 10)));
    assert_eq!(net.b.pools()[0].in_use(), 3);
}
