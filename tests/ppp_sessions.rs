//! PPP over L2TP end to end, in simulated time: a LAC node with simulated
//! subscribers against an LNS node with local AAA and an address pool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use lns::proto::aaa::{users, Aaa, AuthOutcome, AuthRequest, AuthTicket, LocalAaa, Pool};
use lns::proto::l2tp::{CallInfo, Event, L2tpConfig, Role};
use lns::proto::node::{NoAaa, Node, NodeEvent, SessionKey, Subscriber};
use lns::proto::ppp::auth::AuthFailure;
use lns::proto::ppp::link::{DownReason, LinkConfig, LinkUp};
use lns::sim::{Link, Net};
use lns::wire::l2tp::avps::cdn_result;
use lns::wire::ppp::frame::protocol;
use lns::wire::ppp::lcp::AuthMethod;

mod support;
use support::lcp_configure_request;

const USERS: &str = "\
alice@isp.example   password=secret
bob@isp.example     password=hunter2   ip=100.64.9.9
";

type Pair = Net<Node<NoAaa>, Node<LocalAaa>>;

fn lns_node(methods: &[AuthMethod], pool: &str) -> Node<LocalAaa> {
    let mut config = LinkConfig::server(
        Ipv4Addr::new(100, 64, 255, 254),
        [Some(Ipv4Addr::new(192, 0, 2, 53)), None],
    );
    config.lcp.auth = methods.to_vec();
    config.echo_interval = Duration::from_secs(5);
    let aaa = LocalAaa::new(users::parse(USERS).unwrap());
    let pool = Pool::new(
        "residential",
        vec![pool.parse().unwrap()],
        Duration::from_secs(60),
    )
    .unwrap();
    Node::new(L2tpConfig::new(Role::Lns), config, aaa, vec![pool], 7)
}

fn lac_node() -> Node<NoAaa> {
    let config = LinkConfig::client(b"", b"");
    Node::new(
        L2tpConfig::new(Role::Lac),
        config,
        NoAaa::default(),
        vec![],
        8,
    )
}

fn pair(methods: &[AuthMethod], pool: &str, link: Link) -> (Pair, u16) {
    pair_with(lns_node(methods, pool), link)
}

/// A LAC and `lns` with one tunnel up between them.
fn pair_with<A: Aaa>(lns: Node<A>, link: Link) -> (Net<Node<NoAaa>, Node<A>>, u16) {
    let mut net = Net::new(lac_node(), lns, link, 3, Instant::now());
    let tunnel = open_tunnel(&mut net);
    (net, tunnel)
}

/// The LAC opens a tunnel to the LNS; run until it is up.
fn open_tunnel<A: Aaa>(net: &mut Net<Node<NoAaa>, Node<A>>) -> u16 {
    let tunnel = net.a.endpoint().connect(net.now, net.b_addr).unwrap();
    assert!(net.run_until(Duration::from_secs(30), |n| n
        .a_events
        .iter()
        .any(|e| matches!(e, NodeEvent::L2tp(Event::TunnelUp { .. })))));
    tunnel
}

fn subscriber(user: &str, password: &str, proxy: bool) -> Subscriber {
    Subscriber {
        user: user.as_bytes().to_vec(),
        password: password.as_bytes().to_vec(),
        proxy,
    }
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

fn downs(events: &[NodeEvent]) -> Vec<(SessionKey, Option<DownReason>)> {
    events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::SessionDown { key, reason } => Some((*key, *reason)),
            _ => None,
        })
        .collect()
}

fn bring_up(methods: &[AuthMethod], sub: Subscriber) -> (Pair, SessionKey, SessionKey) {
    let (mut net, tunnel) = pair(methods, "100.64.0.0/24", Link::CLEAN);
    let session = net
        .a
        .dial(net.now, tunnel, CallInfo::default(), sub)
        .unwrap();
    assert!(
        net.run_until(Duration::from_secs(30), |n| !ups(&n.a_events).is_empty()
            && !ups(&n.b_events).is_empty()),
        "LAC events {:?}\nLNS events {:?}",
        net.a_events,
        net.b_events
    );
    let lns_key = ups(&net.b_events)[0].0;
    (net, (tunnel, session), lns_key)
}

#[test]
fn pap_session_gets_an_address_and_dns() {
    let (net, lac_key, _) = bring_up(
        &[AuthMethod::Pap],
        subscriber("alice@isp.example", "secret", false),
    );
    let (_, lns_up) = ups(&net.b_events)[0].clone();
    let (key, lac_up) = ups(&net.a_events)[0].clone();
    assert_eq!(key, lac_key);
    assert_eq!(lns_up.user, b"alice@isp.example");
    assert_eq!(lns_up.lcp.auth, Some(AuthMethod::Pap));
    let address = lns_up.ipv4.unwrap();
    assert!(address.octets()[..3] == [100, 64, 0]);
    // The subscriber learnt the same address and the DNS server.
    assert_eq!(lac_up.ipv4, Some(address));
    assert_eq!(lac_up.dns[0], Some(Ipv4Addr::new(192, 0, 2, 53)));
    // IPv6CP came up too, with distinct identifiers on both ends.
    assert!(lns_up.ipv6_peer.is_some() && lns_up.ipv6_local.is_some());
    assert_ne!(lns_up.ipv6_peer, lns_up.ipv6_local);
    assert_eq!(lac_up.ipv6_local, lns_up.ipv6_peer);
    assert!(!lns_up.proxied);
    // Our MRU fits a 1500-byte IPv4 path: 1500 - 20 - 8 - 12 - 4.
    assert_eq!(lns_up.lcp.our_mru, 1456);
    assert_eq!(lac_up.lcp.peer_mru, 1456);
    assert_eq!(net.b.pools()[0].in_use(), 1);
}

#[test]
fn chap_md5_session() {
    let (net, _, _) = bring_up(
        &[AuthMethod::ChapMd5],
        subscriber("alice@isp.example", "secret", false),
    );
    let (_, up) = ups(&net.b_events)[0].clone();
    assert_eq!(up.lcp.auth, Some(AuthMethod::ChapMd5));
    assert_eq!(up.user, b"alice@isp.example");
}

#[test]
fn mschapv2_session() {
    let (net, _, _) = bring_up(
        &[AuthMethod::MsChapV2],
        subscriber("alice@isp.example", "secret", false),
    );
    let (_, up) = ups(&net.b_events)[0].clone();
    assert_eq!(up.lcp.auth, Some(AuthMethod::MsChapV2));
    // The subscriber verified our authenticator response (else it would
    // have failed with BadAuthenticator and never come up).
    assert_eq!(ups(&net.a_events).len(), 1);
}

#[test]
fn method_order_is_the_servers_and_falls_back_on_nak() {
    // The subscriber accepts MS-CHAPv2, CHAP-MD5 and PAP; the LNS prefers
    // CHAP-MD5 then PAP: CHAP-MD5 wins.
    let (net, _, _) = bring_up(
        &[AuthMethod::ChapMd5, AuthMethod::Pap],
        subscriber("alice@isp.example", "secret", false),
    );
    assert_eq!(ups(&net.b_events)[0].1.lcp.auth, Some(AuthMethod::ChapMd5));
}

#[test]
fn static_address_from_the_users_file() {
    let (net, _, _) = bring_up(
        &[AuthMethod::Pap],
        subscriber("bob@isp.example", "hunter2", false),
    );
    assert_eq!(
        ups(&net.b_events)[0].1.ipv4,
        Some(Ipv4Addr::new(100, 64, 9, 9))
    );
}

#[test]
fn proxy_lcp_and_proxy_authentication_skip_renegotiation() {
    let (net, _, lns_key) = bring_up(
        &[AuthMethod::ChapMd5],
        subscriber("alice@isp.example", "secret", true),
    );
    let (_, up) = ups(&net.b_events)[0].clone();
    assert!(up.proxied, "LCP and CHAP adopted from the LAC");
    assert_eq!(up.user, b"alice@isp.example");
    assert!(up.ipv4.is_some());
    // No LCP Configure-Request ever went to the subscriber.
    let _ = lns_key;
    assert_eq!(ups(&net.a_events)[0].1.ipv4, up.ipv4);
}

/// RFC 2661 §4.4.5 leaves the LNS free to renegotiate: proxy data that
/// names a method we do not offer, or proxy adoption turned off, means a
/// fresh LCP and authentication with the subscriber.
#[test]
fn unacceptable_or_disabled_proxy_falls_back_to_renegotiation() {
    for disabled in [false, true] {
        // The LAC proxies CHAP-MD5; this LNS offers only PAP, or offers
        // CHAP-MD5 but does not accept proxies.
        let methods = if disabled {
            vec![AuthMethod::ChapMd5]
        } else {
            vec![AuthMethod::Pap]
        };
        let mut lns = lns_node(&methods, "100.64.0.0/24");
        if disabled {
            lns.link_config_mut().accept_proxy = false;
        }
        let mut net = Net::new(lac_node(), lns, Link::CLEAN, 3, Instant::now());
        let tunnel = net.a.endpoint().connect(net.now, net.b_addr).unwrap();
        net.run_for(Duration::from_secs(1));
        net.a
            .dial(
                net.now,
                tunnel,
                CallInfo::default(),
                subscriber("alice@isp.example", "secret", true),
            )
            .unwrap();
        assert!(
            net.run_until(Duration::from_secs(30), |n| !ups(&n.b_events).is_empty()),
            "disabled {disabled}: {:?}",
            net.b_events
        );
        let (_, up) = ups(&net.b_events)[0].clone();
        assert!(!up.proxied, "disabled {disabled}");
        assert_eq!(up.lcp.auth, Some(methods[0]));
        assert_eq!(up.user, b"alice@isp.example");
    }
}

#[test]
fn wrong_password_fails_and_clears_the_call() {
    for (methods, proxy) in [
        (vec![AuthMethod::Pap], false),
        (vec![AuthMethod::ChapMd5], false),
        (vec![AuthMethod::MsChapV2], false),
        (vec![AuthMethod::ChapMd5], true),
    ] {
        let (mut net, tunnel) = pair(&methods, "100.64.0.0/24", Link::CLEAN);
        net.a
            .dial(
                net.now,
                tunnel,
                CallInfo::default(),
                subscriber("alice@isp.example", "nope", proxy),
            )
            .unwrap();
        net.run_for(Duration::from_secs(20));
        let lns_downs = downs(&net.b_events);
        assert!(
            lns_downs
                .iter()
                .any(|(_, r)| *r == Some(DownReason::AuthFailed(AuthFailure::Rejected))),
            "{methods:?} proxy {proxy}: {lns_downs:?}"
        );
        assert!(ups(&net.b_events).is_empty());
        // The LAC saw the call cleared with a CDN.
        assert!(net
            .a_events
            .iter()
            .any(|e| matches!(e, NodeEvent::L2tp(Event::SessionDown { .. }))));
        assert_eq!(net.b.pools()[0].in_use(), 0, "no address leaked");
        assert_eq!(net.b.session_count(), 0);
    }
}

/// A minimal IPv4 packet from the subscriber reaches the LNS as data.
fn upstream_crosses(net: &mut Pair, lac_key: SessionKey, lns_key: SessionKey) {
    let upstream = vec![
        0x45, 0, 0, 20, 1, 2, 3, 4, 64, 17, 0, 0, 100, 64, 0, 1, 192, 0, 2, 9,
    ];
    assert!(net.a.send_data(lac_key, protocol::IPV4, &upstream));
    net.run_for(Duration::from_millis(50));
    assert!(net.b_events.contains(&NodeEvent::Data {
        key: lns_key,
        protocol: protocol::IPV4,
        packet: upstream
    }));
}

#[test]
fn ip_packets_cross_both_ways() {
    let (mut net, lac_key, lns_key) = bring_up(
        &[AuthMethod::Pap],
        subscriber("alice@isp.example", "secret", false),
    );
    upstream_crosses(&mut net, lac_key, lns_key);
    let downstream = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
    assert!(net.b.send_data(lns_key, protocol::IPV6, &downstream));
    net.run_for(Duration::from_millis(50));
    assert!(net.a_events.contains(&NodeEvent::Data {
        key: lac_key,
        protocol: protocol::IPV6,
        packet: downstream
    }));
}

#[test]
fn subscriber_hang_up_maps_to_peer_terminated() {
    let (mut net, lac_key, lns_key) = bring_up(
        &[AuthMethod::Pap],
        subscriber("alice@isp.example", "secret", false),
    );
    net.a.hang_up(net.now, lac_key);
    net.run_for(Duration::from_secs(10));
    assert!(downs(&net.b_events).contains(&(lns_key, Some(DownReason::PeerTerminated))));
    assert_eq!(net.b.session_count(), 0);
    assert_eq!(net.b.pools()[0].in_use(), 0);
}

#[test]
fn admin_disconnect_at_the_lns() {
    let (mut net, lac_key, lns_key) = bring_up(
        &[AuthMethod::Pap],
        subscriber("alice@isp.example", "secret", false),
    );
    net.b.hang_up(net.now, lns_key);
    net.run_for(Duration::from_secs(10));
    assert!(downs(&net.b_events).contains(&(lns_key, Some(DownReason::LocalClose))));
    assert!(downs(&net.a_events).contains(&(lac_key, Some(DownReason::PeerTerminated))));
    // The CDN the LAC got says "administrative".
    assert!(net.a_events.iter().any(|e| matches!(
        e,
        NodeEvent::L2tp(Event::SessionDown {
            reason: lns::proto::l2tp::SessionDownReason::PeerDisconnect(rc),
            ..
        }) if rc.result == cdn_result::ADMIN
    )));
}

#[test]
fn silent_subscriber_is_caught_by_lcp_echo() {
    let (mut net, _, lns_key) = bring_up(
        &[AuthMethod::Pap],
        subscriber("alice@isp.example", "secret", false),
    );
    // The subscriber's side stops answering PPP, but L2TP keeps going: drop
    // only data messages toward the LAC by cutting the LAC node's sessions.
    let lac_sessions: Vec<_> = ups(&net.a_events).iter().map(|(k, _)| *k).collect();
    for key in lac_sessions {
        // Silence: the LAC forgets the PPP link without telling anyone.
        net.a.forget(net.now, key);
    }
    let up_at = net.now;
    assert!(
        net.run_until(Duration::from_secs(60), |n| downs(&n.b_events)
            .contains(&(lns_key, Some(DownReason::EchoTimeout))))
    );
    // 5 unanswered echoes 5 s apart, declared on the 6th interval (30 s),
    // then LCP's Terminate-Request goes unanswered twice (2 x 3 s).
    let took = net.now - up_at;
    assert!(
        took >= Duration::from_secs(30) && took <= Duration::from_secs(37),
        "{took:?}"
    );
    assert_eq!(net.b.pools()[0].in_use(), 0);
}

/// A subscriber that never speaks PPP at all: the LNS's LCP requests go
/// unanswered Max-Configure (10) times, 3 s apart, and the call is cleared
/// with CDN result 11 (no framing) without AAA or the pool being touched.
#[test]
fn subscriber_that_never_answers_lcp_is_cleared() {
    let (mut net, tunnel) = pair(&[AuthMethod::Pap], "100.64.0.0/24", Link::CLEAN);
    let session = net
        .a
        .dial(
            net.now,
            tunnel,
            CallInfo::default(),
            subscriber("alice@isp.example", "secret", false),
        )
        .unwrap();
    // The LAC's PPP link goes quiet as soon as the call is up.
    assert!(net.run_until(Duration::from_secs(10), |n| n
        .a
        .links()
        .any(|(k, _)| k == (tunnel, session))));
    let (now, key) = (net.now, (tunnel, session));
    net.a.forget(now, key);
    let start = net.now;
    assert!(
        net.run_until(Duration::from_secs(60), |n| downs(&n.b_events)
            .iter()
            .any(|(_, r)| *r == Some(DownReason::NegotiationFailed)))
    );
    let took = net.now - start;
    assert!(
        took >= Duration::from_secs(27) && took <= Duration::from_secs(31),
        "{took:?}"
    );
    net.run_for(Duration::from_secs(2));
    let cdn = net.a_events.iter().find_map(|e| match e {
        NodeEvent::L2tp(Event::SessionDown { reason, .. }) => Some(format!("{reason:?}")),
        _ => None,
    });
    let cdn = cdn.expect("the LAC saw the call cleared");
    assert!(
        cdn.contains(&format!("result: {}", cdn_result::NO_FRAMING)),
        "{cdn}"
    );
    assert!(ups(&net.b_events).is_empty());
    assert_eq!(net.b.pools()[0].in_use(), 0);
}

#[test]
fn exhausted_pool_refuses_with_cdn_result_4() {
    let (mut net, tunnel) = pair(&[AuthMethod::Pap], "100.64.0.1/32", Link::CLEAN);
    for _ in 0..2 {
        net.a
            .dial(
                net.now,
                tunnel,
                CallInfo::default(),
                subscriber("alice@isp.example", "secret", false),
            )
            .unwrap();
    }
    net.run_for(Duration::from_secs(20));
    assert_eq!(ups(&net.b_events).len(), 1);
    assert!(downs(&net.b_events)
        .iter()
        .any(|(_, r)| *r == Some(DownReason::NoAddress)));
    assert!(net.a_events.iter().any(|e| matches!(
        e,
        NodeEvent::L2tp(Event::SessionDown {
            reason: lns::proto::l2tp::SessionDownReason::PeerDisconnect(rc),
            ..
        }) if rc.result == cdn_result::TEMPORARY_NO_FACILITIES
    )));
}

#[test]
fn many_sessions_over_a_lossy_link() {
    let (mut net, tunnel) = pair(
        &[AuthMethod::ChapMd5, AuthMethod::Pap],
        "100.64.0.0/22",
        Link::lossy(0.05),
    );
    for n in 0..SESSIONS {
        net.a
            .dial(
                net.now,
                tunnel,
                CallInfo::default(),
                subscriber("alice@isp.example", "secret", n % 2 == 0),
            )
            .unwrap();
    }
    assert!(
        net.run_until(Duration::from_secs(300), |n| ups(&n.b_events).len()
            == SESSIONS as usize
            && ups(&n.a_events).len() == SESSIONS as usize),
        "{} up at the LNS; LNS links {:?}; LAC links {:?}; LNS downs {:?}; LAC downs {:?}",
        ups(&net.b_events).len(),
        net.b
            .links()
            .filter(|(_, l)| l.phase() != lns::proto::ppp::link::Phase::Running)
            .map(|(k, l)| (k, l.describe()))
            .collect::<Vec<_>>(),
        net.a
            .links()
            .filter(|(_, l)| l.phase() != lns::proto::ppp::link::Phase::Running)
            .map(|(k, l)| (k, l.describe()))
            .collect::<Vec<_>>(),
        downs(&net.b_events),
        downs(&net.a_events)
    );
    let addresses: std::collections::HashSet<_> = ups(&net.b_events)
        .iter()
        .map(|(_, u)| u.ipv4.unwrap())
        .collect();
    assert_eq!(
        addresses.len(),
        SESSIONS as usize,
        "no address handed out twice"
    );
}

/// AAA that answers only when the test says so, like a RADIUS server
/// that takes its time, and remembers what was withdrawn.
#[derive(Debug)]
struct SlowAaa {
    inner: LocalAaa,
    held: Vec<(AuthTicket, AuthOutcome)>,
    released: std::collections::VecDeque<(AuthTicket, AuthOutcome)>,
    cancelled: Vec<AuthTicket>,
}

impl Aaa for SlowAaa {
    fn start(&mut self, now: Instant, ticket: AuthTicket, request: AuthRequest) {
        self.inner.start(now, ticket, request);
        while let Some(answer) = self.inner.poll_result() {
            self.held.push(answer);
        }
    }

    fn cancel(&mut self, ticket: AuthTicket) {
        self.cancelled.push(ticket);
    }

    fn poll_result(&mut self) -> Option<(AuthTicket, AuthOutcome)> {
        self.released.pop_front()
    }
}

/// A subscriber that renegotiates LCP while AAA is still deciding asks
/// again; the first question is withdrawn and its late answer ignored, so
/// the session comes up once, with one address from the pool.
#[test]
fn a_late_answer_to_a_withdrawn_aaa_request_is_ignored() {
    let mut config = LinkConfig::server(Ipv4Addr::new(100, 64, 255, 254), [None, None]);
    config.lcp.auth = vec![AuthMethod::Pap];
    config.ipv6cp = false;
    let aaa = SlowAaa {
        inner: LocalAaa::new(users::parse(USERS).unwrap()),
        held: Vec::new(),
        released: Default::default(),
        cancelled: Vec::new(),
    };
    let pool = Pool::new(
        "residential",
        vec!["100.64.0.0/24".parse().unwrap()],
        Duration::from_secs(60),
    )
    .unwrap();
    let lns = Node::new(L2tpConfig::new(Role::Lns), config, aaa, vec![pool], 7);
    let (mut net, tunnel) = pair_with(lns, Link::CLEAN);
    net.a
        .dial(
            net.now,
            tunnel,
            CallInfo::default(),
            subscriber("alice@isp.example", "secret", false),
        )
        .unwrap();
    assert!(net.run_until(Duration::from_secs(30), |n| n.b.aaa().held.len() == 1));
    let lns_key = net
        .b_events
        .iter()
        .find_map(|e| match e {
            NodeEvent::L2tp(Event::SessionUp {
                tunnel, session, ..
            }) => Some((*tunnel, *session)),
            _ => None,
        })
        .unwrap();

    // The subscriber restarts LCP; both ends renegotiate and PAP runs again.
    let datagram = lcp_configure_request(lns_key.0, lns_key.1);
    let (now, from) = (net.now, net.a_addr);
    net.b.handle_datagram(now, from, &datagram);
    assert!(net.run_until(Duration::from_secs(30), |n| n.b.aaa().held.len() == 2));
    let first = net.b.aaa().held[0].0;
    assert_eq!(net.b.aaa().cancelled, [first]);

    // Both answers arrive, the withdrawn one first.
    let aaa = net.b.aaa_mut();
    let answers: Vec<_> = aaa.held.drain(..).collect();
    aaa.released.extend(answers);
    assert!(
        net.run_until(Duration::from_secs(30), |n| ups(&n.b_events).len() == 1
            && ups(&n.a_events).len() == 1)
    );
    net.run_for(Duration::from_secs(5));
    assert_eq!(ups(&net.b_events).len(), 1);
    assert_eq!(net.b.pools()[0].in_use(), 1);
    let address = ups(&net.b_events)[0].1.ipv4.unwrap();
    assert!(net.b.pools()[0].is_allocated(address));
    assert_eq!(ups(&net.a_events)[0].1.ipv4, Some(address));
}

const SESSIONS: u32 = 200;

/// RFC 1661 §3.2: a Configure-Request on an Opened LCP sends the link back
/// to Establish. An up session is reported as renegotiating (the daemon
/// takes it off the data plane), then up again once LCP, authentication and
/// the NCPs have run anew, keeping its address; data passes again after.
#[test]
fn lcp_renegotiation_of_an_up_session_pauses_and_resumes_it() {
    let (mut net, lac_key, lns_key) = bring_up(
        &[AuthMethod::Pap],
        subscriber("alice@isp.example", "secret", false),
    );
    let address = ups(&net.b_events)[0].1.ipv4.unwrap();
    let renegotiating = |events: &[NodeEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, NodeEvent::SessionRenegotiating { .. }))
            .count()
    };
    assert_eq!(renegotiating(&net.b_events), 0);

    let datagram = lcp_configure_request(lns_key.0, lns_key.1);
    let (now, from) = (net.now, net.a_addr);
    net.b.handle_datagram(now, from, &datagram);
    assert!(
        net.run_until(Duration::from_secs(30), |n| ups(&n.b_events).len() == 2
            && ups(&n.a_events).len() == 2),
        "LAC {:?}\nLNS {:?}",
        net.a_events,
        net.b_events
    );
    // Paused once on each end, before the second Up; never down.
    for events in [&net.b_events, &net.a_events] {
        assert_eq!(renegotiating(events), 1);
        let paused_at = events
            .iter()
            .position(|e| matches!(e, NodeEvent::SessionRenegotiating { .. }))
            .unwrap();
        let second_up = events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, NodeEvent::SessionUp { .. }))
            .nth(1)
            .unwrap()
            .0;
        assert!(paused_at < second_up);
        assert!(downs(events).is_empty());
    }
    assert!(net
        .b_events
        .contains(&NodeEvent::SessionRenegotiating { key: lns_key }));
    assert_eq!(ups(&net.b_events)[1].1.ipv4, Some(address));
    assert_eq!(ups(&net.a_events)[1].1.ipv4, Some(address));
    assert_eq!(net.b.pools()[0].in_use(), 1);

    upstream_crosses(&mut net, lac_key, lns_key);
}

/// An LCP Terminate is an ending, not a renegotiation: Down alone.
#[test]
fn hang_up_is_not_reported_as_renegotiation() {
    let (mut net, lac_key, _) = bring_up(
        &[AuthMethod::Pap],
        subscriber("alice@isp.example", "secret", false),
    );
    let now = net.now;
    net.a.hang_up(now, lac_key);
    assert!(net.run_until(Duration::from_secs(30), |n| !downs(&n.b_events).is_empty()));
    for events in [&net.a_events, &net.b_events] {
        assert!(!events
            .iter()
            .any(|e| matches!(e, NodeEvent::SessionRenegotiating { .. })));
    }
}

/// With a link configuration for IPv6 transport, a LAC reached over IPv6
/// is asked for that MRU (20 bytes less: the IPv6 header); a LAC over
/// IPv4, including one seen as an IPv4-mapped IPv6 address, keeps the
/// other.
#[test]
fn the_mru_follows_the_lacs_transport() {
    let v6: std::net::SocketAddr = "[2001:db8::7]:1701".parse().unwrap();
    let mapped: std::net::SocketAddr = "[::ffff:192.0.2.9]:1701".parse().unwrap();
    let v4: std::net::SocketAddr = "192.0.2.1:1701".parse().unwrap();
    for (lac_addr, expected) in [(v6, 1436), (mapped, 1456), (v4, 1456)] {
        let mut lns = lns_node(&[AuthMethod::Pap], "100.64.0.0/24");
        lns.link_config_mut().lcp.mru = Some(1456);
        let mut over_v6 = lns.link_config_mut().clone();
        over_v6.lcp.mru = Some(1436);
        lns.set_ipv6_transport_link_config(over_v6);
        let mut net = Net::new(lac_node(), lns, Link::CLEAN, 3, Instant::now());
        net.a_addr = lac_addr;
        let tunnel = open_tunnel(&mut net);
        net.a
            .dial(
                net.now,
                tunnel,
                CallInfo::default(),
                subscriber("alice@isp.example", "secret", false),
            )
            .unwrap();
        assert!(
            net.run_until(Duration::from_secs(30), |n| !ups(&n.b_events).is_empty()
                && !ups(&n.a_events).is_empty()),
            "{lac_addr}"
        );
        assert_eq!(ups(&net.b_events)[0].1.lcp.our_mru, expected, "{lac_addr}");
        assert_eq!(ups(&net.a_events)[0].1.lcp.peer_mru, expected, "{lac_addr}");
    }
}

/// A LAC node that keeps a copy of every datagram it sends, in order.
struct Tapped {
    node: Node<NoAaa>,
    sent: Vec<Vec<u8>>,
}

impl lns::sim::SimNode for Tapped {
    type Event = NodeEvent;
    fn deliver(&mut self, now: Instant, from: std::net::SocketAddr, datagram: &[u8]) {
        self.node.handle_datagram(now, from, datagram);
    }
    fn transmit(&mut self) -> Option<(std::net::SocketAddr, Vec<u8>)> {
        let t = self.node.poll_transmit()?;
        self.sent.push(t.payload.clone());
        Some((t.remote, t.payload))
    }
    fn event(&mut self) -> Option<NodeEvent> {
        self.node.poll_event()
    }
    fn deadline(&mut self) -> Option<Instant> {
        self.node.poll_timeout()
    }
    fn timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now);
    }
}

/// Regression (found against l2tpns, which drops PPP frames of a call it
/// has not seen connect): the LAC started PPP on ICRP and its LCP
/// Configure-Request went out before the ICCN — at once when the ICCN
/// was still in the endpoint's queue, and long before it when the
/// window held the ICCN back behind a burst of ICRQs. Every call's first
/// PPP frame must follow its ICCN on the wire, both for a lone call and
/// for a burst.
#[test]
fn ppp_frames_never_overtake_their_iccn() {
    use lns::wire::l2tp::{MessageType, Packet};
    let lac = Tapped {
        node: lac_node(),
        sent: Vec::new(),
    };
    let lns = lns_node(&[AuthMethod::ChapMd5], "100.64.0.0/24");
    let mut net = Net::new(lac, lns, Link::CLEAN, 3, Instant::now());
    let tunnel = net.a.node.endpoint().connect(net.now, net.b_addr).unwrap();
    assert!(net.run_until(Duration::from_secs(30), |n| n
        .a_events
        .iter()
        .any(|e| matches!(e, NodeEvent::L2tp(Event::TunnelUp { .. })))));
    for burst in [1, 16] {
        let before = ups(&net.a_events).len();
        for n in 0..burst {
            let sub = subscriber("alice@isp.example", "secret", n % 2 == 1);
            net.a
                .node
                .dial(net.now, tunnel, CallInfo::default(), sub)
                .unwrap();
        }
        assert!(
            net.run_until(Duration::from_secs(30), |n| ups(&n.a_events).len()
                == before + burst),
            "burst of {burst}: LAC {:?}\nLNS {:?}",
            net.a_events,
            net.b_events
        );
    }
    // Sessions by the LNS's session ID, which both the ICCN and the data
    // messages carry in their header.
    let mut connected = std::collections::HashSet::new();
    let mut frames = 0;
    for datagram in &net.a.sent {
        let packet = Packet::new_checked(&datagram[..]).unwrap();
        let session = packet.session_id();
        if packet.is_control() {
            let (_, message) = support::decode(datagram, None);
            if message.is_some_and(|m| m.message_type == MessageType::Iccn) {
                connected.insert(session);
            }
        } else {
            frames += 1;
            assert!(
                connected.contains(&session),
                "a PPP frame for session {session} went out before its ICCN"
            );
        }
    }
    assert_eq!(connected.len(), 17);
    assert!(frames >= 17 * 4, "only {frames} PPP frames");
}

/// A subscriber that accepts only MS-CHAPv2 against an LNS offering CHAP
/// and PAP: the LNS runs out of methods on the subscriber's Naks and ends
/// the link at once (LCP Terminate, CDN) instead of negotiating until the
/// LAC gives up.
#[test]
fn no_common_authentication_method_ends_the_call_promptly() {
    let mut client = LinkConfig::client(b"", b"");
    client.lcp.auth = vec![AuthMethod::MsChapV2];
    let lac = Node::new(
        L2tpConfig::new(Role::Lac),
        client,
        NoAaa::default(),
        vec![],
        8,
    );
    let lns = lns_node(&[AuthMethod::ChapMd5, AuthMethod::Pap], "100.64.0.0/24");
    let mut net = Net::new(lac, lns, Link::CLEAN, 3, Instant::now());
    let tunnel = open_tunnel(&mut net);
    let started = net.now;
    net.a
        .dial(
            net.now,
            tunnel,
            CallInfo::default(),
            subscriber("alice@isp.example", "secret", false),
        )
        .unwrap();
    assert!(net.run_until(Duration::from_secs(60), |n| !downs(&n.b_events).is_empty()));
    assert!(
        net.now - started < Duration::from_secs(5),
        "took {:?}",
        net.now - started
    );
    assert_eq!(downs(&net.b_events)[0].1, Some(DownReason::AuthRefused));
    assert!(ups(&net.b_events).is_empty());
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.b.session_count(), 0, "the call is cleared");
}
