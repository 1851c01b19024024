//! IPv6 for PPP subscribers in simulated time: a LAC node with simulated
//! subscribers against an LNS node with an IPv6 prefix pool. The LNS hands
//! each session a /64 and announces it in Router Advertisements (RFC 4861
//! §6.2); the subscriber side forms its address from it (RFC 4862 §5.5.3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use lns::proto::aaa::{users, LocalAaa, Pool, PrefixPool};
use lns::proto::l2tp::{CallInfo, Event, L2tpConfig, Role};
use lns::proto::node::{NoAaa, Node, NodeEvent, SessionKey, Subscriber};
use lns::proto::ppp::link::{LinkConfig, LinkUp};
use lns::proto::ra::RaConfig;
use lns::sim::{Link, Net};
use lns::wire::icmpv6::{self, RouterAdvert, RouterSolicitation};
use lns::wire::ppp::frame::protocol;
use lns::wire::ppp::lcp::AuthMethod;

mod support;

type Pair = Net<Node<NoAaa>, Node<LocalAaa>>;

const QUARANTINE: Duration = Duration::from_secs(60);

const USERS: &str = "\
fixed@isp.example   password=secret   ipv6-prefix=2001:db8:100:42::/64
*@isp.example       password=secret
";

/// An LNS whose pool "residential" has `prefix` for IPv6.
fn lns_node(prefix: &str, prefix_len: u8) -> Node<LocalAaa> {
    let mut config = LinkConfig::server(Ipv4Addr::new(100, 64, 255, 254), [None, None]);
    config.lcp.auth = vec![AuthMethod::Pap];
    // Echoes every 5 s also give the simulated clock, which jumps from one
    // event to the next, a step at least that often.
    config.echo_interval = Duration::from_secs(5);
    let aaa = LocalAaa::new(users::parse(USERS).unwrap());
    let pool = Pool::new(
        "residential",
        vec!["100.64.0.0/24".parse().unwrap()],
        QUARANTINE,
    )
    .unwrap();
    let prefixes = PrefixPool::new(
        "residential",
        prefix.parse().unwrap(),
        prefix_len,
        QUARANTINE,
    )
    .unwrap();
    let mut node = Node::new(L2tpConfig::new(Role::Lns), config, aaa, vec![pool], 7);
    node.set_ipv6(
        vec![prefixes],
        RaConfig {
            dns: vec!["2001:db8::53".parse().unwrap()],
            ..RaConfig::default()
        },
    );
    node
}

fn lac_node() -> Node<NoAaa> {
    Node::new(
        L2tpConfig::new(Role::Lac),
        LinkConfig::client(b"", b""),
        NoAaa::default(),
        vec![],
        8,
    )
}

fn pair(prefix: &str, len: u8) -> (Pair, u16) {
    let mut net = Net::new(
        lac_node(),
        lns_node(prefix, len),
        Link::CLEAN,
        3,
        Instant::now(),
    );
    let tunnel = net.a.endpoint().connect(net.now, net.b_addr).unwrap();
    assert!(net.run_until(Duration::from_secs(30), |n| n
        .a_events
        .iter()
        .any(|e| matches!(e, NodeEvent::L2tp(Event::TunnelUp { .. })))));
    (net, tunnel)
}

fn ups(events: &[NodeEvent]) -> Vec<(SessionKey, LinkUp)> {
    events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::SessionUp { key, up } => Some((*key, (**up).clone())),
            _ => None,
        })
        .collect()
}

/// Router Advertisements the LAC side received on `key`, with when.
fn adverts(events: &[NodeEvent], key: SessionKey) -> Vec<RouterAdvert> {
    events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::RouterAdvert { key: k, advert } if *k == key => Some((**advert).clone()),
            _ => None,
        })
        .collect()
}

/// Dial one subscriber and wait for both ends to be up: (LAC key, LNS key,
/// the LNS's up event, the LAC's).
fn dial(net: &mut Pair, tunnel: u16, n: usize) -> (SessionKey, SessionKey, LinkUp, LinkUp) {
    dial_as(net, tunnel, &format!("user{n}@isp.example"))
}

fn dial_as(net: &mut Pair, tunnel: u16, user: &str) -> (SessionKey, SessionKey, LinkUp, LinkUp) {
    let before = (ups(&net.a_events).len(), ups(&net.b_events).len());
    let subscriber = Subscriber {
        user: user.as_bytes().to_vec(),
        password: b"secret".to_vec(),
        proxy: false,
    };
    let session = net
        .a
        .dial(net.now, tunnel, CallInfo::default(), subscriber)
        .unwrap();
    assert!(
        net.run_until(Duration::from_secs(30), |n| ups(&n.a_events).len()
            > before.0
            && ups(&n.b_events).len() > before.1)
    );
    let (lns_key, lns_up) = ups(&net.b_events)[before.1].clone();
    let (lac_key, lac_up) = ups(&net.a_events)[before.0].clone();
    assert_eq!(lac_key, (tunnel, session));
    (lac_key, lns_key, lns_up, lac_up)
}

fn prefix_of(addr: Ipv6Addr) -> [u8; 8] {
    addr.octets()[..8].try_into().unwrap()
}

#[test]
fn unsolicited_advertisements_carry_the_sessions_64() {
    let (mut net, tunnel) = pair("2001:db8:100::", 48);
    let (lac_key, _, lns_up, lac_up) = dial(&mut net, tunnel, 0);
    let prefix = lns_up.ipv6_prefix.expect("a /64 with IPv6CP open");
    let pool = net.b.prefix_pools()[0].clone();
    assert!(pool.contains(prefix));
    assert_eq!(pool.in_use(), 1);
    // The first advertisement follows IPv6CP at once.
    net.run_for(Duration::from_millis(100));
    let first = adverts(&net.a_events, lac_key);
    assert_eq!(first.len(), 1, "{:?}", net.a_events);
    let ra = &first[0];
    // From fe80::<the LNS's IPv6CP identifier> to all-nodes.
    assert_eq!(ra.src, icmpv6::link_local(lac_up.ipv6_peer.unwrap()));
    assert_eq!(ra.dst, icmpv6::ALL_NODES);
    assert_eq!(ra.router_lifetime, 1800);
    assert!(!ra.managed && !ra.other);
    assert_eq!(ra.prefixes.len(), 1);
    let pio = ra.prefixes[0];
    assert_eq!((pio.len, pio.on_link, pio.autonomous), (64, true, true));
    assert_eq!(prefix_of(pio.prefix), prefix);
    assert_eq!((pio.valid, pio.preferred), (86_400, 14_400));
    // The MTU option is the session's MTU (the subscriber's MRU).
    assert_eq!(ra.mtu, Some(u32::from(lns_up.lcp.peer_mru)));
    let rdnss = ra.rdnss.clone().unwrap();
    assert_eq!(rdnss.servers, ["2001:db8::53".parse::<Ipv6Addr>().unwrap()]);
    assert_eq!(rdnss.lifetime, 600);
    // The subscriber formed <prefix>::<its identifier>.
    let address = net.a.ipv6_address(lac_key).unwrap();
    assert_eq!(prefix_of(address), prefix);
    assert_eq!(address.octets()[8..], lac_up.ipv6_local.unwrap());
    // RFC 4861 §6.2.4: two more initial advertisements, at most 16 s apart,
    // then the periodic interval (225-300 s).
    net.run_for(Duration::from_secs(40));
    assert_eq!(adverts(&net.a_events, lac_key).len(), 3);
    net.run_for(Duration::from_secs(180));
    assert_eq!(adverts(&net.a_events, lac_key).len(), 3);
    net.run_for(Duration::from_secs(120));
    assert_eq!(adverts(&net.a_events, lac_key).len(), 4);
    assert_eq!(net.b.ipv6_stats().ra_sent, 4);
}

#[test]
fn a_router_solicitation_gets_a_solicited_advertisement() {
    let (mut net, tunnel) = pair("2001:db8:100::", 48);
    let (lac_key, _, lns_up, lac_up) = dial(&mut net, tunnel, 0);
    assert!(
        net.run_until(Duration::from_secs(1), |n| adverts(&n.a_events, lac_key)
            .len()
            == 1)
    );
    net.run_for(Duration::from_secs(4));
    assert_eq!(adverts(&net.a_events, lac_key).len(), 1);
    // Seconds after the first advertisement: answered at once, to the
    // soliciting host's link-local address.
    let asked = net.now;
    assert!(net.a.solicit_router(lac_key));
    assert!(
        net.run_until(Duration::from_secs(1), |n| adverts(&n.a_events, lac_key)
            .len()
            == 2)
    );
    let answered = net.now;
    assert!(
        answered - asked <= Duration::from_millis(2),
        "{:?}",
        answered - asked
    );
    let got = adverts(&net.a_events, lac_key);
    assert_eq!(got[1].dst, icmpv6::link_local(lac_up.ipv6_local.unwrap()));
    assert_eq!(
        prefix_of(got[1].prefixes[0].prefix),
        lns_up.ipv6_prefix.unwrap()
    );
    // Another one right away: §6.2.6 holds the answer back until 3 s
    // after the last advertisement.
    assert!(net.a.solicit_router(lac_key));
    assert!(
        net.run_until(Duration::from_secs(5), |n| adverts(&n.a_events, lac_key)
            .len()
            == 3)
    );
    let held = net.now - answered;
    assert!(
        held >= Duration::from_secs(3) && held <= Duration::from_millis(3002),
        "{held:?}"
    );
    let stats = net.b.ipv6_stats();
    assert_eq!(
        (stats.rs_received, stats.rs_deferred, stats.rs_invalid),
        (2, 1, 0)
    );
    assert_eq!(stats.ra_sent, 3);
}

#[test]
fn invalid_solicitations_are_dropped_and_counted() {
    let (mut net, tunnel) = pair("2001:db8:100::", 48);
    let (lac_key, _, _, lac_up) = dial(&mut net, tunnel, 0);
    net.run_for(Duration::from_secs(5));
    let good = RouterSolicitation::emit(
        icmpv6::link_local(lac_up.ipv6_local.unwrap()),
        icmpv6::ALL_ROUTERS,
    );
    // Hop limit 64 (forwarded from off-link), a bad checksum, code 1.
    let mut hop = good.clone();
    hop[7] = 64;
    let mut sum = good.clone();
    sum[43] ^= 0x55;
    let mut code = good.clone();
    code[41] = 1;
    for packet in [hop, sum, code] {
        assert!(net.a.send_data(lac_key, protocol::IPV6, &packet));
    }
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.b.ipv6_stats().rs_invalid, 3);
    assert_eq!(net.b.ipv6_stats().rs_received, 0);
    assert_eq!(adverts(&net.a_events, lac_key).len(), 1, "no answer to any");
    // None of them surfaced as data either.
    assert!(!net
        .b_events
        .iter()
        .any(|e| matches!(e, NodeEvent::Data { .. })));
}

#[test]
fn two_sessions_get_different_64s() {
    let (mut net, tunnel) = pair("2001:db8:100::", 48);
    let (key_a, _, up_a, _) = dial(&mut net, tunnel, 0);
    let (key_b, _, up_b, _) = dial(&mut net, tunnel, 1);
    let (a, b) = (up_a.ipv6_prefix.unwrap(), up_b.ipv6_prefix.unwrap());
    assert_ne!(a, b);
    net.run_for(Duration::from_millis(200));
    assert_eq!(prefix_of(net.a.ipv6_address(key_a).unwrap()), a);
    assert_eq!(prefix_of(net.a.ipv6_address(key_b).unwrap()), b);
    assert_eq!(net.b.prefix_pools()[0].in_use(), 2);
}

#[test]
fn a_released_64_rests_in_quarantine() {
    // A pool of exactly one /64.
    let (mut net, tunnel) = pair("2001:db8:100:7::", 64);
    let (lac_key, lns_key, up, _) = dial(&mut net, tunnel, 0);
    let only = up.ipv6_prefix.unwrap();
    net.a.hang_up(net.now, lac_key);
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.b.session_count(), 0);
    let pool = &net.b.prefix_pools()[0];
    assert_eq!((pool.in_use(), pool.quarantined()), (0, 1));
    let _ = lns_key;
    // Within the quarantine the next session comes up with IPv4 only: no
    // /64, no advertisement.
    let (second, _, up, _) = dial(&mut net, tunnel, 1);
    assert_eq!(up.ipv6_prefix, None);
    assert!(up.ipv4.is_some());
    assert_eq!(net.b.ipv6_stats().prefixes_exhausted, 1);
    net.run_for(Duration::from_secs(2));
    assert!(adverts(&net.a_events, second).is_empty());
    // After it, the /64 is handed out again.
    net.run_for(QUARANTINE);
    let (_, _, up, _) = dial(&mut net, tunnel, 2);
    assert_eq!(up.ipv6_prefix, Some(only));
}

#[test]
fn a_static_64_from_the_users_file_is_taken_from_its_pool() {
    let (mut net, tunnel) = pair("2001:db8:100::", 48);
    let fixed = prefix_of("2001:db8:100:42::".parse().unwrap());
    let (lac_key, _, up, _) = dial_as(&mut net, tunnel, "fixed@isp.example");
    assert_eq!(up.ipv6_prefix, Some(fixed));
    net.run_for(Duration::from_millis(100));
    assert_eq!(prefix_of(net.a.ipv6_address(lac_key).unwrap()), fixed);
    let pool = &net.b.prefix_pools()[0];
    assert_eq!(pool.in_use(), 1);
    assert!(!pool.clone().allocate_specific(fixed, net.now), "taken");
    // A second session of the same user finds it taken: IPv4 only.
    let (_, _, up, _) = dial_as(&mut net, tunnel, "fixed@isp.example");
    assert_eq!(up.ipv6_prefix, None);
    assert_eq!(net.b.ipv6_stats().prefixes_exhausted, 1);
}

#[test]
fn without_a_prefix_pool_there_is_no_ipv6_to_announce() {
    let mut lns = lns_node("2001:db8:100::", 48);
    lns.set_ipv6(Vec::new(), RaConfig::default());
    let mut net = Net::new(lac_node(), lns, Link::CLEAN, 3, Instant::now());
    let tunnel = net.a.endpoint().connect(net.now, net.b_addr).unwrap();
    net.run_for(Duration::from_secs(1));
    let (lac_key, _, up, lac_up) = dial(&mut net, tunnel, 0);
    // IPv6CP is up, but there is no /64 and so no advertisement.
    assert!(up.ipv6_peer.is_some() && up.ipv6_prefix.is_none());
    net.run_for(Duration::from_secs(20));
    assert!(adverts(&net.a_events, lac_key).is_empty());
    // A solicitation is valid but has nothing to answer with; a Neighbor
    // Solicitation (nothing to resolve on PPP) is dropped, not data.
    assert!(net.a.solicit_router(lac_key));
    let mut ns = RouterSolicitation::emit(
        icmpv6::link_local(lac_up.ipv6_local.unwrap()),
        icmpv6::link_local(lac_up.ipv6_peer.unwrap()),
    );
    ns[40] = icmpv6::msg_type::NEIGHBOR_SOLICITATION;
    assert!(net.a.send_data(lac_key, protocol::IPV6, &ns));
    net.run_for(Duration::from_secs(5));
    let stats = net.b.ipv6_stats();
    assert_eq!(
        (stats.rs_ignored, stats.nd_ignored, stats.ra_sent),
        (1, 1, 0)
    );
    assert!(adverts(&net.a_events, lac_key).is_empty());
    assert!(!net
        .b_events
        .iter()
        .any(|e| matches!(e, NodeEvent::Data { .. })));
}

/// LCP renegotiation (RFC 1661 §3.2) on an up session: the session keeps
/// its /64 (none is taken from the pool), advertisements stop while the
/// link renegotiates and start again, with the same prefix, once IPv6CP
/// has reopened.
#[test]
fn a_renegotiated_session_keeps_its_64_and_advertises_it_again() {
    let (mut net, tunnel) = pair("2001:db8:100::", 48);
    let (lac_key, lns_key, lns_up, _) = dial(&mut net, tunnel, 0);
    let prefix = lns_up.ipv6_prefix.unwrap();
    net.run_for(Duration::from_millis(100));
    assert_eq!(adverts(&net.a_events, lac_key).len(), 1);

    let datagram = support::lcp_configure_request(lns_key.0, lns_key.1);
    let (now, from) = (net.now, net.a_addr);
    net.b.handle_datagram(now, from, &datagram);
    assert!(
        net.run_until(Duration::from_secs(30), |n| ups(&n.b_events).len() == 2
            && ups(&n.a_events).len() == 2)
    );
    assert!(net
        .b_events
        .contains(&NodeEvent::SessionRenegotiating { key: lns_key }));
    assert_eq!(ups(&net.b_events)[1].1.ipv6_prefix, Some(prefix));
    assert_eq!(net.b.prefix_pools()[0].in_use(), 1);
    // A fresh initial advertisement of the same /64 follows the new Up.
    assert!(
        net.run_until(Duration::from_secs(1), |n| adverts(&n.a_events, lac_key)
            .len()
            == 2)
    );
    let again = &adverts(&net.a_events, lac_key)[1];
    assert_eq!(prefix_of(again.prefixes[0].prefix), prefix);
}
