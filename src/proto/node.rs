//! The session glue: an L2TP [`Endpoint`] with a PPP [`Link`] per session,
//! AAA and address pools — everything the LNS control thread runs, and its
//! mirror image for a LAC with simulated subscribers (tests, loadgen).
//!
//! Sans-IO like its parts: datagrams and `now` in; datagrams, events and a
//! deadline out. PPP control frames travel in L2TP data messages, so this is
//! where the data-message header is written and read.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashMap;

use super::aaa::{Aaa, AuthOutcome, AuthTicket, Pool, PrefixPool};
use super::l2tp::event::{CallInfo, ProxyAuth, ProxyLcp};
use super::l2tp::{Endpoint, Event, L2tpConfig, Role, Transmit};
use super::ppp::lcp::LcpAgreed;
use super::ppp::link::{DownReason, Link, LinkConfig, LinkEvent, LinkSeed, LinkUp};
use super::ra::{RaConfig, RaSession};
use crate::crypto::ppp_auth;
use crate::wire::icmpv6::RouterAdvert;
use crate::wire::l2tp::avps::{cdn_result, error_code, proxy_authen_type};
use crate::wire::l2tp::{HeaderRepr, Packet, ResultCode};
use crate::wire::ppp::frame::{protocol, FrameHeader};
use crate::wire::ppp::lcp::AuthMethod;
use crate::wire::ppp::options::{CpOption, OptionWriter};
use crate::wire::ppp::{Frame, LcpOption};

mod ipv6;

pub use ipv6::Ipv6Stats;

/// A session's identity at this node: (our tunnel ID, our session ID).
pub type SessionKey = (u16, u16);

/// What the node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// PPP reached the network phase: the subscriber is online.
    SessionUp {
        /// Which session.
        key: SessionKey,
        /// What PPP agreed.
        up: Box<LinkUp>,
    },
    /// PPP on an up session is negotiating afresh (LCP left Opened): its
    /// data must stop until the next `SessionUp`, which carries what was
    /// agreed this time.
    SessionRenegotiating {
        /// Which session.
        key: SessionKey,
    },
    /// A session ended (PPP, L2TP or both).
    SessionDown {
        /// Which session.
        key: SessionKey,
        /// Why, when PPP decided it.
        reason: Option<DownReason>,
    },
    /// An IPv4 or IPv6 packet arrived on a session (the data plane's job in
    /// the daemon; surfaced here for tests and the simulator).
    Data {
        /// Which session.
        key: SessionKey,
        /// PPP protocol (IPv4 0x0021, IPv6 0x0057).
        protocol: u16,
        /// The packet.
        packet: Vec<u8>,
    },
    /// Client role: a valid Router Advertisement arrived on a session
    /// (the subscriber's address is a prefix of it plus the interface
    /// identifier IPv6CP agreed, [`Node::ipv6_address`]).
    RouterAdvert {
        /// Which session.
        key: SessionKey,
        /// The advertisement.
        advert: Box<RouterAdvert>,
    },
    /// An L2TP-level event (tunnels coming and going), passed through.
    L2tp(Event),
}

/// Credentials and proxy behaviour of a simulated subscriber (LAC role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// User name.
    pub user: Vec<u8>,
    /// Password.
    pub password: Vec<u8>,
    /// The LAC negotiates LCP and CHAP itself and forwards proxy LCP and
    /// proxy authentication AVPs in ICCN (RFC 2661 §4.4.5).
    pub proxy: bool,
}

/// A session's data path as the L2TP call set it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPath {
    /// The LAC.
    pub remote: SocketAddr,
    /// The LAC's tunnel ID.
    pub peer_tunnel: u16,
    /// The LAC's session ID.
    pub peer_session: u16,
    /// The Ns of the next data message, when the LAC asked for sequencing.
    pub next_ns: Option<u16>,
}

#[derive(Debug)]
struct SessionCtx {
    link: Link,
    // The LAC's address is the tunnel's (`Endpoint::tunnel_remote`): a
    // copy here would cost 32 bytes in every session.
    peer_tunnel: u16,
    peer_session: u16,
    /// Next Ns on data messages when the LAC asked for sequencing.
    data_ns: Option<u16>,
    /// The subscriber's IPv4 address and the index of the pool it came
    /// from (none: outside every pool, the operator's).
    address: Option<(Ipv4Addr, Option<u16>)>,
    /// Boxed apart: an IPv4-only session has none of it once up.
    v6: Option<Box<SessionV6>>,
    /// The AAA request whose answer this session waits for. A link that
    /// renegotiates asks again; the older question is withdrawn, so its
    /// late answer (a RADIUS reply, say) cannot apply to the new one.
    pending_auth: Option<NonZeroU64>,
    scheduled: Option<Instant>,
}

/// A session's IPv6 state, and the AAA pool name that picks its /64.
#[derive(Debug, Default)]
struct SessionV6 {
    /// The pool AAA named, also preferred for the /64 (dropped once up).
    pool_hint: Option<Box<str>>,
    /// A static /64 AAA gave.
    static_prefix: Option<[u8; 8]>,
    /// IPv6CP's interface identifiers (ours, the peer's) once Up.
    ifids: Option<([u8; 8], [u8; 8])>,
    /// Server: the session's /64 and the index of the prefix pool it came
    /// from (none: outside every pool).
    prefix: Option<([u8; 8], Option<u16>)>,
    /// Server: the Router Advertisement schedule.
    ra: Option<RaSession>,
    /// Client: the /64 the last Router Advertisement offered for SLAAC.
    learnt_prefix: Option<[u8; 8]>,
}

impl SessionV6 {
    fn is_empty(&self) -> bool {
        self.pool_hint.is_none()
            && self.static_prefix.is_none()
            && self.ifids.is_none()
            && self.prefix.is_none()
            && self.ra.is_none()
            && self.learnt_prefix.is_none()
    }
}

impl SessionCtx {
    fn v6(&self) -> Option<&SessionV6> {
        self.v6.as_deref()
    }

    fn v6_mut(&mut self) -> &mut SessionV6 {
        self.v6.get_or_insert_with(Box::default)
    }

    /// The IPv6 state, when there is some or `needed` says to make it.
    fn v6_if(&mut self, needed: bool) -> Option<&mut SessionV6> {
        if needed {
            Some(self.v6_mut())
        } else {
            self.v6.as_deref_mut()
        }
    }

    /// Give the box back once nothing is left in it.
    fn tidy_v6(&mut self) {
        if self.v6().is_some_and(SessionV6::is_empty) {
            self.v6 = None;
        }
    }
}

/// An L2TP endpoint with PPP on every session.
#[derive(Debug)]
pub struct Node<A: Aaa> {
    endpoint: Endpoint,
    /// Shared with every link created from it.
    link_config: Arc<LinkConfig>,
    /// For links of tunnels over IPv6 (a smaller automatic MRU), when set.
    link_config_v6: Option<Arc<LinkConfig>>,
    aaa: A,
    pools: Vec<Pool>,
    prefix_pools: Vec<PrefixPool>,
    ra_config: RaConfig,
    ipv6_stats: Ipv6Stats,
    rng: StdRng,
    /// Boxed: a context is large, and the table moves its entries when it
    /// grows. Keys are IDs we allocated, so a fast non-keyed hash is safe.
    sessions: FxHashMap<SessionKey, Box<SessionCtx>>,
    /// LAC role: credentials for sessions still being set up.
    subscribers: FxHashMap<SessionKey, Subscriber>,
    tickets: FxHashMap<u64, SessionKey>,
    next_ticket: u64,
    timers: BinaryHeap<Reverse<(Instant, SessionKey)>>,
    /// Datagrams in the order they arose: data messages we framed, with
    /// their session, and the endpoint's control messages (moved here
    /// before each data message is queued, so a PPP frame never overtakes
    /// the ICCN, CDN or StopCCN that came before it).
    transmits: VecDeque<(Option<SessionKey>, Transmit)>,
    /// LAC role: PPP frames of calls whose ICCN has not gone out yet
    /// ([`Endpoint::connect_unsent`]); they follow it.
    held: FxHashMap<SessionKey, Vec<Transmit>>,
    /// The held calls of each tunnel in the order their ICCNs were queued
    /// (the order they leave in), so a release looks at the front only.
    held_order: FxHashMap<u16, VecDeque<SessionKey>>,
    events: VecDeque<NodeEvent>,
}

/// The CDN result a PPP ending maps to (RFC 2661 §4.4.2).
pub fn cdn_for(reason: DownReason) -> ResultCode {
    let (result, text): (u16, &str) = match reason {
        DownReason::PeerTerminated => (cdn_result::LOST_CARRIER, "PPP terminated by peer"),
        DownReason::LocalClose => (cdn_result::ADMIN, "administrative disconnect"),
        DownReason::NegotiationFailed => (cdn_result::NO_FRAMING, "LCP negotiation failed"),
        DownReason::AuthRefused => (cdn_result::GENERAL_ERROR, "authentication refused"),
        DownReason::AuthFailed(_) => (cdn_result::GENERAL_ERROR, "authentication failed"),
        DownReason::EchoTimeout => (cdn_result::LOST_CARRIER, "LCP echo timeout"),
        DownReason::LoopedBack => (cdn_result::GENERAL_ERROR, "link looped back"),
        DownReason::NoNetwork => (cdn_result::GENERAL_ERROR, "no network protocol"),
        DownReason::NoAddress => (
            cdn_result::TEMPORARY_NO_FACILITIES,
            "address pool exhausted",
        ),
        DownReason::CallCleared => (cdn_result::LOST_CARRIER, "call cleared"),
    };
    ResultCode {
        result,
        error: Some(error_code::NONE),
        message: Some(text.as_bytes().to_vec()),
    }
}

impl<A: Aaa> Node<A> {
    /// A node with the given L2TP role and PPP settings. `pools` are tried
    /// in order when AAA names none (server role).
    pub fn new(
        l2tp: L2tpConfig,
        link_config: LinkConfig,
        aaa: A,
        pools: Vec<Pool>,
        seed: u64,
    ) -> Self {
        Node {
            endpoint: Endpoint::new(l2tp, seed),
            link_config: Arc::new(link_config),
            link_config_v6: None,
            aaa,
            pools,
            prefix_pools: Vec::new(),
            ra_config: RaConfig::default(),
            ipv6_stats: Ipv6Stats::default(),
            rng: StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
            sessions: FxHashMap::default(),
            subscribers: FxHashMap::default(),
            tickets: FxHashMap::default(),
            next_ticket: 1,
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            held: FxHashMap::default(),
            held_order: FxHashMap::default(),
            events: VecDeque::new(),
        }
    }

    /// The L2TP endpoint (commands, counters).
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The L2TP endpoint, read-only.
    pub fn l2tp(&self) -> &Endpoint {
        &self.endpoint
    }

    /// PPP settings for links created from now on.
    pub fn link_config_mut(&mut self) -> &mut LinkConfig {
        Arc::make_mut(&mut self.link_config)
    }

    /// PPP settings for links of tunnels whose LAC is reached over IPv6
    /// (its 40-byte header leaves 20 bytes less for PPP than IPv4's, so the
    /// MRU we ask for is smaller). Without it every link uses the one
    /// `Node::new` was given. An IPv4 LAC seen as `::ffff:a.b.c.d` counts
    /// as IPv4.
    pub fn set_ipv6_transport_link_config(&mut self, config: LinkConfig) {
        self.link_config_v6 = Some(Arc::new(config));
    }

    /// The link settings for a tunnel with a LAC at `remote`.
    fn link_config_for(&self, remote: SocketAddr) -> &Arc<LinkConfig> {
        match (&self.link_config_v6, remote.ip().to_canonical()) {
            (Some(v6), std::net::IpAddr::V6(_)) => v6,
            _ => &self.link_config,
        }
    }

    /// The AAA backend (to reload a users file, read its counters).
    pub fn aaa(&self) -> &A {
        &self.aaa
    }

    /// The AAA backend, mutable.
    pub fn aaa_mut(&mut self) -> &mut A {
        &mut self.aaa
    }

    /// Address pools.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// Every session's PPP link, for management and tests.
    pub fn links(&self) -> impl Iterator<Item = (SessionKey, &Link)> {
        self.sessions.iter().map(|(key, ctx)| (*key, &ctx.link))
    }

    /// One session's PPP link.
    pub fn link(&self, key: SessionKey) -> Option<&Link> {
        self.sessions.get(&key).map(|ctx| &ctx.link)
    }

    /// What the data plane needs to carry a session's packets: the LAC's
    /// address and IDs, and the next data Ns when the call is sequenced.
    pub fn data_path(&self, key: SessionKey) -> Option<DataPath> {
        let ctx = self.sessions.get(&key)?;
        Some(DataPath {
            remote: self.endpoint.tunnel_remote(key.0)?,
            peer_tunnel: ctx.peer_tunnel,
            peer_session: ctx.peer_session,
            next_ns: ctx.data_ns,
        })
    }

    /// Give back the memory a burst left in queues and the timer heap (a
    /// setup storm of 100,000 sessions grows them to its peak). Call it
    /// every second or so, not per input.
    pub fn shrink_queues(&mut self) {
        self.endpoint.shrink_queues();
        super::shrink_queue(&mut self.transmits);
        super::shrink_queue(&mut self.events);
        if self.timers.capacity() > 4 * self.timers.len().max(16) {
            self.timers.shrink_to(2 * self.timers.len());
        }
        // AAA questions in flight peak in a storm and are few afterwards.
        if self.tickets.capacity() > 4 * self.tickets.len().max(16) {
            self.tickets.shrink_to(2 * self.tickets.len());
        }
        if self.subscribers.capacity() > 4 * self.subscribers.len().max(16) {
            self.subscribers.shrink_to(2 * self.subscribers.len());
        }
    }

    /// Sessions with a PPP link.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// LAC role: place a call for `subscriber` on `tunnel`.
    pub fn dial(
        &mut self,
        now: Instant,
        tunnel: u16,
        call: CallInfo,
        subscriber: Subscriber,
    ) -> Option<u16> {
        let mut call = call;
        if subscriber.proxy {
            let (lcp, auth) = self.negotiate_for_subscriber(&subscriber);
            call.proxy_lcp = lcp;
            call.proxy_auth = auth;
        }
        let session = self.endpoint.open_session(now, tunnel, call).ok()?;
        self.subscribers.insert((tunnel, session), subscriber);
        self.process(now);
        Some(session)
    }

    /// What a LAC does before ICRQ when it proxies: LCP with the subscriber
    /// (we ask for CHAP-MD5, the subscriber for nothing special) and a CHAP
    /// exchange whose result the LNS checks. Returns the proxy AVP values.
    fn negotiate_for_subscriber(&mut self, subscriber: &Subscriber) -> (ProxyLcp, ProxyAuth) {
        let lac_magic: u32 = self.rng.random::<u32>() | 1;
        let sub_magic: u32 = self.rng.random::<u32>() | 2;
        let options = |list: &[LcpOption]| {
            let mut out = Vec::new();
            let mut writer = OptionWriter::new(&mut out);
            for option in list {
                let _ = option.emit(&mut writer);
            }
            out
        };
        let sent = options(&[
            AuthMethod::ChapMd5.option(),
            LcpOption::MagicNumber(lac_magic),
        ]);
        let received = options(&[LcpOption::Mru(1492), LcpOption::MagicNumber(sub_magic)]);
        let challenge: [u8; 16] = self.rng.random();
        let id: u8 = self.rng.random();
        let response = ppp_auth::chap_md5_response(id, &subscriber.password, &challenge);
        let lcp = ProxyLcp {
            initial_received: Some(received.clone()),
            last_sent: Some(sent),
            last_received: Some(received),
        };
        let auth = ProxyAuth {
            authen_type: Some(proxy_authen_type::CHAP),
            name: Some(subscriber.user.clone()),
            challenge: Some(challenge.to_vec()),
            id: Some(id),
            response: Some(response.to_vec()),
        };
        (lcp, auth)
    }

    /// Close a session's PPP link (LCP Terminate), then its call (CDN).
    pub fn hang_up(&mut self, now: Instant, key: SessionKey) {
        if let Some(ctx) = self.sessions.get_mut(&key) {
            ctx.link.close(now, DownReason::LocalClose);
        }
        self.after_link(now, key);
        self.process(now);
    }

    /// Drop a session's PPP link without a word, as a subscriber that froze
    /// or crashed would: the call stays up until the other end notices.
    pub fn forget(&mut self, now: Instant, key: SessionKey) {
        self.held.remove(&key);
        if let Some(mut ctx) = self.sessions.remove(&key) {
            self.release(now, &mut ctx);
        }
    }

    /// Send an IPv4 or IPv6 packet on a session that is up.
    pub fn send_data(&mut self, key: SessionKey, proto: u16, packet: &[u8]) -> bool {
        let Some(ctx) = self.sessions.get_mut(&key) else {
            return false;
        };
        let Some(remote) = self.endpoint.tunnel_remote(key.0) else {
            return false;
        };
        let datagram = data_datagram(ctx, proto, packet);
        let transmit = Transmit {
            remote,
            payload: datagram,
        };
        self.queue_data(key, transmit);
        true
    }

    /// Queue a data message after the control messages already due, or
    /// hold it while its call's ICCN is unsent.
    fn queue_data(&mut self, key: SessionKey, transmit: Transmit) {
        self.take_control();
        match self.held.get_mut(&key) {
            Some(held) => held.push(transmit),
            None => self.transmits.push_back((Some(key), transmit)),
        }
    }

    /// Move the endpoint's datagrams into our queue, then the held frames
    /// of calls whose ICCN is now among them.
    fn take_control(&mut self) {
        let mut moved = false;
        while let Some(control) = self.endpoint.poll_transmit() {
            self.transmits.push_back((None, control));
            moved = true;
        }
        if moved && !self.held_order.is_empty() {
            self.release_held();
        }
    }

    /// Queue the held frames of calls whose ICCN has left the endpoint.
    /// A tunnel's ICCNs leave in the order they were queued, so each
    /// tunnel's list is released from the front up to the first call still
    /// waiting: the cost is the calls released, not the calls held.
    fn release_held(&mut self) {
        let endpoint = &self.endpoint;
        let held = &mut self.held;
        let transmits = &mut self.transmits;
        self.held_order.retain(|_, order| {
            while let Some(&key) = order.front() {
                if !held.contains_key(&key) {
                    // The call ended while it waited.
                    order.pop_front();
                    continue;
                }
                if endpoint.connect_unsent(key.0, key.1) {
                    break;
                }
                order.pop_front();
                for transmit in held.remove(&key).unwrap_or_default() {
                    transmits.push_back((Some(key), transmit));
                }
            }
            !order.is_empty()
        });
    }

    /// One datagram from `remote`.
    pub fn handle_datagram(&mut self, now: Instant, remote: SocketAddr, datagram: &[u8]) {
        match Packet::new_checked(datagram) {
            Ok(packet) if !packet.is_control() => {
                let key = (packet.tunnel_id(), packet.session_id());
                if !self.sessions.contains_key(&key) {
                    // No such session: nothing to do.
                } else if let Ok(frame) = Frame::parse(packet.payload()) {
                    let proto = u16::from(frame.protocol());
                    if proto == protocol::IPV6 && self.neighbor_discovery(now, key, frame.payload) {
                        // A solicitation or advertisement, handled.
                    } else if proto == protocol::IPV4 || proto == protocol::IPV6 {
                        self.events.push_back(NodeEvent::Data {
                            key,
                            protocol: proto,
                            packet: frame.payload.to_vec(),
                        });
                    } else if let Some(ctx) = self.sessions.get_mut(&key) {
                        ctx.link.receive(now, proto, frame.payload);
                        self.after_link(now, key);
                    }
                }
            }
            _ => {
                let _ = self.endpoint.handle_datagram(now, remote, datagram);
            }
        }
        self.process(now);
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.poll_transmit_keyed().map(|(_, transmit)| transmit)
    }

    /// Next datagram to send, with the session of a data message (a PPP
    /// frame): the daemon numbers a sequenced session's frames on the shard
    /// that owns its Ns once the session is in the data plane.
    pub fn poll_transmit_keyed(&mut self) -> Option<(Option<SessionKey>, Transmit)> {
        if self.transmits.is_empty() {
            self.take_control();
        }
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` has work.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if self
                .sessions
                .get(&key)
                .is_some_and(|c| c.scheduled == Some(at))
            {
                break;
            }
            self.timers.pop();
        }
        let links = self.timers.peek().map(|Reverse((at, _))| *at);
        [self.endpoint.poll_timeout(), links, self.aaa.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Run what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.aaa.handle_timeout(now);
        let mut due = Vec::new();
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(ctx) = self.sessions.get_mut(&key) {
                if ctx.scheduled == Some(at) {
                    ctx.scheduled = None;
                    due.push(key);
                }
            }
        }
        for key in due {
            if let Some(ctx) = self.sessions.get_mut(&key) {
                ctx.link.handle_timeout(now);
            }
            self.after_link(now, key);
        }
        self.process(now);
    }

    /// Drain L2TP events and AAA results until nothing moves.
    fn process(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.on_l2tp(now, event);
            }
            while let Some((ticket, outcome)) = self.aaa.poll_result() {
                progressed = true;
                self.on_verdict(now, ticket, outcome);
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_l2tp(&mut self, now: Instant, event: Event) {
        match &event {
            Event::SessionUp {
                tunnel,
                session,
                peer_tunnel,
                peer_session,
                call,
                ..
            } => {
                let key = (*tunnel, *session);
                let Some(remote) = self.endpoint.tunnel(*tunnel).map(|t| t.remote) else {
                    return;
                };
                let mut config = Arc::clone(self.link_config_for(remote));
                let subscriber = self.subscribers.remove(&key);
                if let Some(sub) = &subscriber {
                    config = Arc::new(LinkConfig {
                        role: super::ppp::link::LinkRole::Client {
                            user: sub.user.clone(),
                            password: sub.password.clone(),
                        },
                        ..LinkConfig::clone(&config)
                    });
                }
                let seed = LinkSeed {
                    magic: self.rng.random(),
                    challenge: self.rng.random(),
                    id: self.rng.random(),
                };
                let mut ctx = Box::new(SessionCtx {
                    link: Link::new(config, seed),
                    peer_tunnel: *peer_tunnel,
                    peer_session: *peer_session,
                    data_ns: call.sequencing_required.then_some(0),
                    address: None,
                    v6: None,
                    pending_auth: None,
                    scheduled: None,
                });
                let headroom = data_headers(&ctx).1;
                ctx.link.set_headroom(headroom);
                match (&subscriber, self.endpoint.config().role) {
                    // The subscriber side of a proxied call: the LAC did LCP
                    // and CHAP with it already.
                    (Some(sub), Role::Lac) if sub.proxy => {
                        let agreed = proxy_agreed_for_subscriber(call);
                        ctx.link.start_adopted(now, agreed, true)
                    }
                    (_, Role::Lns) if call.proxy_lcp.last_sent.is_some() => {
                        ctx.link
                            .start_with_proxy(now, &call.proxy_lcp, &call.proxy_auth);
                    }
                    _ => ctx.link.start(now),
                }
                if self.endpoint.connect_unsent(*tunnel, *session) {
                    self.held.insert(key, Vec::new());
                    self.held_order.entry(*tunnel).or_default().push_back(key);
                }
                self.sessions.insert(key, ctx);
                self.after_link(now, key);
            }
            Event::SessionDown {
                tunnel, session, ..
            } => {
                let key = (*tunnel, *session);
                self.subscribers.remove(&key);
                self.held.remove(&key);
                if let Some(mut ctx) = self.sessions.remove(&key) {
                    ctx.link.lower_down(now);
                    self.release(now, &mut ctx);
                    let reason = drain_down_reason(&mut ctx.link);
                    self.events
                        .push_back(NodeEvent::SessionDown { key, reason });
                }
            }
            _ => {}
        }
        self.events.push_back(NodeEvent::L2tp(event));
    }

    fn on_verdict(&mut self, now: Instant, ticket: AuthTicket, outcome: AuthOutcome) {
        let Some(key) = self.tickets.remove(&ticket.0) else {
            return;
        };
        let Some(ctx) = self.sessions.get_mut(&key) else {
            return;
        };
        if ctx.pending_auth.map(NonZeroU64::get) != Some(ticket.0) {
            return;
        }
        ctx.pending_auth = None;
        if let AuthOutcome::Accept { attributes } = &outcome {
            let pool_hint = attributes.pool.as_deref().map(Box::from);
            let needed = pool_hint.is_some() || attributes.ipv6_prefix.is_some();
            if let Some(v6) = ctx.v6_if(needed) {
                v6.pool_hint = pool_hint;
                v6.static_prefix = attributes.ipv6_prefix;
            }
        }
        // After a renegotiation the subscriber keeps the address it has,
        // unless AAA now names another.
        let kept = match (&ctx.address, &outcome) {
            (Some((ip, _)), AuthOutcome::Accept { attributes })
                if attributes.framed_ip.is_none_or(|framed| framed == *ip) =>
            {
                Some(*ip)
            }
            _ => None,
        };
        let replaced = if kept.is_none() {
            ctx.address.take()
        } else {
            None
        };
        if let Some((ip, pool)) = replaced {
            release_to(&mut self.pools, ip, pool, now);
        }
        let mut address = kept;
        let mut exhausted = false;
        if let (None, AuthOutcome::Accept { attributes }) = (kept, &outcome) {
            if self.link_config.ipcp {
                let picked = self.allocate(now, attributes.framed_ip, attributes.pool.as_deref());
                match picked {
                    Some((ip, pool)) => {
                        address = Some(ip);
                        if let Some(ctx) = self.sessions.get_mut(&key) {
                            ctx.address = Some((ip, pool));
                        }
                    }
                    None => exhausted = true,
                }
            }
        }
        let Some(ctx) = self.sessions.get_mut(&key) else {
            return;
        };
        ctx.link.auth_verdict(now, &outcome, address);
        if exhausted {
            ctx.link.close(now, DownReason::NoAddress);
        }
        self.after_link(now, key);
    }

    /// AAA's static address, else the named pool, else the first pool with
    /// room.
    fn allocate(
        &mut self,
        now: Instant,
        framed: Option<Ipv4Addr>,
        pool: Option<&str>,
    ) -> Option<(Ipv4Addr, Option<u16>)> {
        let index = |i: usize| u16::try_from(i).ok();
        if let Some(ip) = framed {
            let Some(i) = self.pools.iter().position(|p| p.contains(ip)) else {
                // An address outside every pool belongs to the operator.
                return Some((ip, None));
            };
            return self.pools[i]
                .allocate_specific(ip, now)
                .then(|| (ip, index(i)));
        }
        for (i, p) in self.pools.iter_mut().enumerate() {
            if pool.is_some_and(|name| p.name() != name) {
                continue;
            }
            if let Some(ip) = p.allocate(now) {
                return Some((ip, index(i)));
            }
        }
        None
    }

    fn release(&mut self, now: Instant, ctx: &mut SessionCtx) {
        if let Some(ticket) = ctx.pending_auth.take().map(NonZeroU64::get) {
            self.tickets.remove(&ticket);
            self.aaa.cancel(AuthTicket(ticket));
        }
        if let Some((ip, pool)) = ctx.address.take() {
            release_to(&mut self.pools, ip, pool, now);
        }
        if let Some((prefix, Some(pool))) = ctx.v6.take().and_then(|v6| v6.prefix) {
            if let Some(p) = self.prefix_pools.get_mut(usize::from(pool)) {
                let _ = p.release(prefix, now);
            }
        }
    }

    /// Put the session's next deadline (its link's or its advertisements')
    /// on the timer heap.
    pub(super) fn rearm(&mut self, key: SessionKey) {
        if let Some(ctx) = self.sessions.get_mut(&key) {
            let ra = ctx.v6().and_then(|v6| v6.ra.as_ref());
            let ra = ra.map(RaSession::poll_timeout);
            let deadline = [ctx.link.poll_timeout(), ra].into_iter().flatten().min();
            if let Some(deadline) = deadline {
                if ctx.scheduled.is_none_or(|s| deadline < s) {
                    ctx.scheduled = Some(deadline);
                    self.timers.push(Reverse((deadline, key)));
                }
            }
        }
    }

    /// Act on a link's events and re-arm its timer.
    fn after_link(&mut self, now: Instant, key: SessionKey) {
        let mut ended = None;
        loop {
            let Some(ctx) = self.sessions.get_mut(&key) else {
                return;
            };
            let Some(event) = ctx.link.poll_event() else {
                break;
            };
            match event {
                LinkEvent::Send {
                    protocol,
                    packet,
                    offset,
                } => {
                    let Some(remote) = self.endpoint.tunnel_remote(key.0) else {
                        continue;
                    };
                    let datagram = frame_in_place(ctx, protocol, packet, offset);
                    let transmit = Transmit {
                        remote,
                        payload: datagram,
                    };
                    self.queue_data(key, transmit);
                }
                LinkEvent::Authenticate(request) => {
                    let ticket = self.next_ticket;
                    self.next_ticket += 1;
                    // Tickets count from 1.
                    let pending = NonZeroU64::new(ticket);
                    if let Some(stale) =
                        std::mem::replace(&mut ctx.pending_auth, pending).map(NonZeroU64::get)
                    {
                        self.tickets.remove(&stale);
                        self.aaa.cancel(AuthTicket(stale));
                    }
                    self.tickets.insert(ticket, key);
                    self.aaa.start(now, AuthTicket(ticket), *request);
                }
                LinkEvent::Up(mut up) => {
                    let ifids = up.ipv6_local.zip(up.ipv6_peer);
                    if let Some(v6) = ctx.v6_if(ifids.is_some()) {
                        v6.ifids = ifids;
                    }
                    self.allocate_prefix(now, key, &mut up);
                    // AAA's pool name served the /64's choice; a running
                    // session keeps no strings it no longer needs, and an
                    // IPv4-only one no IPv6 box.
                    if let Some(ctx) = self.sessions.get_mut(&key) {
                        if let Some(v6) = ctx.v6.as_deref_mut() {
                            v6.pool_hint = None;
                        }
                        ctx.tidy_v6();
                    }
                    self.events.push_back(NodeEvent::SessionUp { key, up });
                }
                LinkEvent::Renegotiating => {
                    // No RAs until IPv6CP is open again; the /64 stays.
                    if let Some(v6) = ctx.v6.as_deref_mut() {
                        v6.ra = None;
                    }
                    self.events
                        .push_back(NodeEvent::SessionRenegotiating { key });
                }
                LinkEvent::Down(reason) => ended = Some(reason),
            }
        }
        if let Some(reason) = ended {
            // PPP is over: clear the call with the matching CDN.
            self.held.remove(&key);
            if let Some(mut ctx) = self.sessions.remove(&key) {
                self.release(now, &mut ctx);
            }
            let _ = self
                .endpoint
                .close_session(now, key.0, key.1, cdn_for(reason));
            self.events.push_back(NodeEvent::SessionDown {
                key,
                reason: Some(reason),
            });
            // The endpoint's own SessionDown event follows; nothing left to
            // release then.
            return;
        }
        self.advertise(now, key);
        self.rearm(key);
        if let Some(ctx) = self.sessions.get_mut(&key) {
            ctx.link.trim();
        }
    }
}

fn release_to(pools: &mut [Pool], ip: Ipv4Addr, pool: Option<u16>, now: Instant) {
    if let Some(p) = pool.and_then(|i| pools.get_mut(usize::from(i))) {
        let _ = p.release(ip, now);
    }
}

/// The last Down reason a link reported, if it reported one.
fn drain_down_reason(link: &mut Link) -> Option<DownReason> {
    let mut reason = None;
    while let Some(event) = link.poll_event() {
        if let LinkEvent::Down(r) = event {
            reason = Some(r);
        }
    }
    reason
}

/// Rebuild the subscriber's view of proxied LCP from the call we sent.
fn proxy_agreed_for_subscriber(call: &CallInfo) -> LcpAgreed {
    use crate::wire::ppp::options::OptionIter;
    let mut agreed = LcpAgreed {
        auth: Some(AuthMethod::ChapMd5),
        ..LcpAgreed::default()
    };
    let options = |bytes: &Option<Vec<u8>>| -> Vec<LcpOption> {
        bytes
            .as_deref()
            .map(|b| {
                OptionIter::new(b)
                    .filter_map(Result::ok)
                    .filter_map(|raw| LcpOption::parse(&raw).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    for option in options(&call.proxy_lcp.last_received) {
        match option {
            LcpOption::Mru(mru) => agreed.our_mru = mru,
            LcpOption::MagicNumber(magic) => agreed.our_magic = magic,
            _ => {}
        }
    }
    for option in options(&call.proxy_lcp.last_sent) {
        match option {
            LcpOption::Mru(mru) => agreed.peer_mru = mru,
            LcpOption::MagicNumber(magic) => agreed.peer_magic = magic,
            _ => {}
        }
    }
    agreed
}

/// The L2TP data header (RFC 2661 §3.1, with Ns when the call requires
/// sequencing, §5.4) and the PPP header in front of every frame of this
/// session, and their total length.
fn data_headers(ctx: &SessionCtx) -> (HeaderRepr, usize) {
    let mut header = HeaderRepr::data(ctx.peer_tunnel, ctx.peer_session);
    if let Some(ns) = ctx.data_ns {
        // Nr is reserved on data messages (§3.1): zero.
        header.sequence = Some((ns, 0));
    }
    let len = header.header_len() + FrameHeader::new(0, false, false).header_len();
    (header, len)
}

/// Write the headers of the next data message and advance Ns.
fn write_headers(ctx: &mut SessionCtx, proto: u16, out: &mut [u8], payload_len: usize) {
    let (header, _) = data_headers(ctx);
    if let Some(ns) = &mut ctx.data_ns {
        *ns = ns.wrapping_add(1);
    }
    let ppp = FrameHeader::new(proto, false, false);
    let at = header
        .emit(out, ppp.header_len() + payload_len)
        .unwrap_or(0);
    let _ = ppp.emit(&mut out[at..]);
}

/// An L2TP data message carrying one PPP frame.
fn data_datagram(ctx: &mut SessionCtx, proto: u16, packet: &[u8]) -> Vec<u8> {
    let headers = data_headers(ctx).1;
    let mut out = Vec::with_capacity(headers + packet.len());
    out.resize(headers, 0);
    write_headers(ctx, proto, &mut out, packet.len());
    out.extend_from_slice(packet);
    out
}

/// The same for a packet the link built with our headroom in front: the
/// headers go into that room, and the buffer becomes the datagram.
fn frame_in_place(ctx: &mut SessionCtx, proto: u16, mut packet: Vec<u8>, offset: usize) -> Vec<u8> {
    let headers = data_headers(ctx).1;
    if offset != headers || packet.len() < offset {
        return data_datagram(ctx, proto, packet.get(offset..).unwrap_or_default());
    }
    let payload_len = packet.len() - offset;
    write_headers(ctx, proto, &mut packet[..offset], payload_len);
    packet
}

/// AAA for a node that authenticates nobody (the LAC side): every request
/// is refused.
#[derive(Debug, Default)]
pub struct NoAaa {
    refused: VecDeque<AuthTicket>,
}

impl Aaa for NoAaa {
    fn start(&mut self, _now: Instant, ticket: AuthTicket, _request: super::aaa::AuthRequest) {
        self.refused.push_back(ticket);
    }

    fn cancel(&mut self, ticket: AuthTicket) {
        self.refused.retain(|t| *t != ticket);
    }

    fn poll_result(&mut self) -> Option<(AuthTicket, AuthOutcome)> {
        self.refused.pop_front().map(|ticket| {
            (
                ticket,
                AuthOutcome::Reject {
                    reason: super::aaa::RejectReason::BackendUnavailable,
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::SessionCtx;
    use crate::proto::ppp::fsm::Fsm;
    use crate::proto::ppp::link::Link;

    /// Every session keeps one boxed context for its whole life; mimalloc
    /// rounds the box up to a size class (…, 192, 224, 256, 320, 384, …),
    /// so a few bytes more can cost 64. These bounds are what the memory
    /// budget (docs/benchmarks.md, "Memory per session") was measured with:
    /// a running session's link is parked inside its context, and only a
    /// negotiating one has its whole `Link` boxed apart.
    #[test]
    fn per_session_state_stays_within_its_size_class() {
        assert!(size_of::<Fsm>() <= 56, "Fsm is {} bytes", size_of::<Fsm>());
        // An established call in its tunnel's map (its setup clock is gone).
        assert!(size_of::<crate::proto::l2tp::session::Session>() <= 24);
        assert!(
            size_of::<Link>() <= 208,
            "Link is {} bytes",
            size_of::<Link>()
        );
        assert!(
            size_of::<SessionCtx>() <= 256,
            "SessionCtx is {} bytes",
            size_of::<SessionCtx>()
        );
    }
}
