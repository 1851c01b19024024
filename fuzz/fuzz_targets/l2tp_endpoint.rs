//! A stateful LNS `Endpoint` under a fuzzed sequence of operations.
//!
//! The fuzzer plays the network and the operator around one LNS:
//!
//! - a real LAC `Endpoint`, whose datagrams to and from the LNS sit in two
//!   queues that fuzzed operations deliver, drop, duplicate or reorder, so
//!   the deep states (established tunnels, sessions) are reachable;
//! - hand-made control packets from the LAC's address or from strangers:
//!   fully arbitrary bytes, or a header with fuzzed fields in front of a
//!   fuzzed message type and list of typed AVPs, addressed to tunnel 0 or to
//!   a tunnel the LNS really has, with sequence numbers copied from what
//!   the LNS last sent (so they get past the reliable layer);
//! - simulated time that jumps by fuzzed amounts, with `handle_timeout`;
//! - commands on both ends (connect, open and close sessions and tunnels,
//!   outgoing calls, link info, shutdown).
//!
//! After every operation it drains transmits and events and checks what
//! must always hold:
//!
//! - every datagram either end sends is a well-formed control packet whose
//!   body (unless a ZLB) parses with that tunnel's secret (the LNS has
//!   per-peer secrets: strangers in 198.51.100.0/24 get their own),
//!   carries a message type its role may send, and, from the LNS, a
//!   non-zero Tunnel ID;
//! - right after `handle_timeout(now)`, `poll_timeout()` is later than `now`;
//! - an endpoint with tunnels always has a timer (or nothing would ever
//!   reap them);
//! - tunnel and per-tunnel session counts stay within the configured limits,
//!   and a stopping tunnel has no sessions;
//! - no tunnel or session is reported up twice without going down between.
//!
//! At the end the peer falls silent and time runs on: every tunnel of both
//! ends must be gone within a bounded number of timer steps, after which
//! the LNS must still accept a new tunnel (no leaked half-open slot).
#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lns::proto::l2tp::auth::challenge_response;
use lns::proto::l2tp::{
    CallInfo, Endpoint, Event, L2tpConfig, Limits, PeerSecrets, ProxyAuth, ProxyLcp, Role,
    TunnelState,
};
use lns::wire::l2tp::avps::CallErrors;
use lns::wire::l2tp::message::{AvpTypeSet, Hiding};
use lns::wire::l2tp::{
    Avp, AvpHeader, ControlMessage, HeaderRepr, MessageType, Packet, ResultCode,
};
use lns::wire::prefix::IpPrefix;

const SECRET: &[u8] = b"secret";
/// With `secret`, the LNS's per-peer secret for 198.51.100.0/24.
const OTHER_SECRET: &[u8] = b"another peer's secret";
const MAX_OPS: usize = 96;
const LIMITS: Limits = Limits {
    max_tunnels: 8,
    max_sessions_per_tunnel: 4,
    max_half_open_tunnels: 4,
    max_half_open_sessions: 6,
    // Rates low enough that fuzzed bursts meet them (refusals are answers
    // like any other and must keep every invariant).
    new_tunnels_per_second: Some(4),
    tunnel_rate_result: 2,
    new_sessions_per_second: Some(8),
    session_rate_result: 4,
};

fn lac_addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 1701))
}

fn lns_addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 2], 1701))
}

/// Where a hand-made datagram claims to come from.
fn stranger(pick: u8) -> SocketAddr {
    match pick % 4 {
        0 => lac_addr(),
        // Same host as the LAC, another port.
        1 => SocketAddr::from(([192, 0, 2, 1], 40000)),
        2 => SocketAddr::from(([198, 51, 100, 7], 1701)),
        _ => SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 1701)),
    }
}

#[derive(Debug, Arbitrary)]
struct Scenario {
    /// Both ends authenticate the tunnel with `SECRET`.
    secret: bool,
    /// The LAC's secret differs from the LNS's (authentication fails).
    lac_wrong_secret: bool,
    /// With a secret, hide the subscriber AVPs (`false`) or every AVP.
    hide_all: bool,
    lns_seed: u64,
    lac_seed: u64,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Deliver one queued datagram (index modulo the queue length).
    ToLns {
        index: u8,
        keep_copy: bool,
    },
    ToLac {
        index: u8,
        keep_copy: bool,
    },
    /// Lose one queued datagram.
    DropToLns {
        index: u8,
    },
    DropToLac {
        index: u8,
    },
    /// Deliver everything queued both ways, in order, for a few rounds.
    Exchange {
        rounds: u8,
    },
    /// Arbitrary bytes to the LNS.
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
    /// A structurally valid control packet to the LNS.
    Crafted(Box<Crafted>),
    /// A well-formed SCCRQ from a stranger (opens tunnels to the limit).
    Sccrq {
        from: u8,
        peer_tunnel: u16,
        challenge: bool,
    },
    /// Answer the LNS's SCCRP on a stranger's tunnel with an SCCCN.
    Scccn {
        tunnel: u8,
        correct: bool,
    },
    /// Move time forward and run the timers of both ends.
    Advance(Step),
    LacConnect,
    LacOpenSession {
        tunnel: u8,
        call: FuzzCall,
    },
    LacCloseSession {
        tunnel: u8,
        session: u8,
        result: u16,
    },
    LacCloseTunnel {
        tunnel: u8,
        result: u16,
    },
    LacWen {
        tunnel: u8,
        session: u8,
        crc: u32,
    },
    LacCloseAll,
    LnsPlaceCall {
        tunnel: u8,
        call: FuzzCall,
    },
    LnsCloseSession {
        tunnel: u8,
        session: u8,
        result: u16,
    },
    LnsCloseTunnel {
        tunnel: u8,
        result: u16,
    },
    LnsSetLinkInfo {
        tunnel: u8,
        session: u8,
        send: u32,
        receive: u32,
    },
    LnsCloseAll,
}

#[derive(Debug, Arbitrary)]
enum Step {
    Millis(u16),
    Seconds(u8),
    /// To the earliest deadline of either end.
    NextTimeout,
}

#[derive(Debug, Arbitrary)]
struct Crafted {
    from: u8,
    tunnel: Pick,
    session: Pick,
    ns: Seq,
    nr: Seq,
    message_type: u8,
    avps: Vec<FuzzAvp>,
    /// Hide the typed AVPs with the LNS secret (when it has one).
    hide: bool,
    /// Raw bytes appended after the AVPs.
    trailer: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum Pick {
    Zero,
    /// Index into what the LNS has (tunnels) or was seen to assign (sessions).
    Known(u8),
    Raw(u16),
}

#[derive(Debug, Arbitrary)]
enum Seq {
    /// What the LNS expects next (Ns) or acknowledges all it sent (Nr).
    Tracked,
    /// Tracked plus a small offset (out of order, duplicate, beyond window).
    Offset(i8),
    Raw(u16),
}

#[derive(Debug, Arbitrary)]
enum FuzzAvp {
    ResultCode {
        result: u16,
        error: Option<u16>,
        message: Option<Vec<u8>>,
    },
    ProtocolVersion(u8, u8),
    FramingCapabilities(u32),
    BearerCapabilities(u32),
    TieBreaker([u8; 8]),
    FirmwareRevision(u16),
    HostName(Vec<u8>),
    VendorName(Vec<u8>),
    AssignedTunnelId(u16),
    ReceiveWindowSize(u16),
    Challenge(Vec<u8>),
    ChallengeResponse([u8; 16]),
    /// The right answer to the LNS's challenge on the packet's tunnel.
    CorrectChallengeResponse,
    Q931Cause(u16, u8, Vec<u8>),
    AssignedSessionId(u16),
    CallSerialNumber(u32),
    MinimumBps(u32),
    MaximumBps(u32),
    BearerType(u32),
    FramingType(u32),
    CalledNumber(Vec<u8>),
    CallingNumber(Vec<u8>),
    SubAddress(Vec<u8>),
    TxConnectSpeed(u32),
    RxConnectSpeed(u32),
    PhysicalChannelId(u32),
    PrivateGroupId(Vec<u8>),
    LcpConfreq(u8, Vec<u8>),
    ProxyAuthenType(u16),
    ProxyAuthenName(Vec<u8>),
    ProxyAuthenChallenge(Vec<u8>),
    ProxyAuthenId(u8),
    ProxyAuthenResponse(Vec<u8>),
    CallErrors(u32, u32),
    Accm(u32, u32),
    RandomVector(Vec<u8>),
    SequencingRequired,
    Unknown {
        mandatory: bool,
        hidden: bool,
        reserved: bool,
        vendor_id: u16,
        attr_type: u16,
        value: Vec<u8>,
    },
}

#[derive(Debug, Arbitrary)]
struct FuzzCall {
    serial: Option<u32>,
    bearer: Option<u32>,
    framing: Option<u32>,
    calling: Option<Vec<u8>>,
    called: Option<Vec<u8>>,
    tx_speed: Option<u32>,
    max_bps: Option<u32>,
    sequencing: bool,
    lcp: Option<Vec<u8>>,
    auth_type: Option<u16>,
    auth_name: Option<Vec<u8>>,
    auth_id: Option<u8>,
    auth_response: Option<Vec<u8>>,
}

impl FuzzCall {
    fn into_call(self) -> CallInfo {
        CallInfo {
            call_serial_number: self.serial,
            bearer_type: self.bearer,
            framing_type: self.framing,
            calling_number: self.calling,
            called_number: self.called,
            tx_connect_speed: self.tx_speed,
            maximum_bps: self.max_bps,
            sequencing_required: self.sequencing,
            proxy_lcp: ProxyLcp {
                initial_received: self.lcp.clone(),
                last_sent: self.lcp.clone(),
                last_received: self.lcp,
            },
            proxy_auth: ProxyAuth {
                authen_type: self.auth_type,
                name: self.auth_name,
                challenge: None,
                id: self.auth_id,
                response: self.auth_response,
            },
            ..CallInfo::default()
        }
    }
}

fn result_code(result: u16) -> ResultCode {
    ResultCode {
        result,
        error: None,
        message: None,
    }
}

/// What the fuzzer learned from the LNS's datagrams about one of its tunnels.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// The Nr of the LNS's last packet: the Ns it expects next.
    expected_ns: u16,
    /// One past the Ns of the LNS's last message: an Nr acking everything.
    ack_all: u16,
    /// The Challenge of its SCCRP.
    challenge: Option<Vec<u8>>,
}

/// Message types each role may put on the wire.
fn role_may_send(role: Role, kind: MessageType) -> bool {
    use MessageType::*;
    match role {
        Role::Lns => matches!(kind, Sccrp | StopCcn | Hello | Icrp | Ocrq | Cdn | Sli),
        Role::Lac => matches!(
            kind,
            Sccrq | Scccn | StopCcn | Hello | Icrq | Iccn | Ocrp | Occn | Cdn | Wen
        ),
    }
}

fn config(role: Role, secret: Option<&[u8]>, hide_all: bool) -> L2tpConfig {
    let mut config = L2tpConfig::new(role);
    config.limits = LIMITS;
    config.secret = secret.map(<[u8]>::to_vec);
    config.hidden_avps = if hide_all {
        (0..64).fold(AvpTypeSet::EMPTY, |set, attr| set.with(attr))
    } else {
        L2tpConfig::sensitive_avps()
    };
    // Short timers keep the drain at the end quick; all stay non-zero.
    config.hello_interval = Duration::from_secs(5);
    config.setup_timeout = Duration::from_secs(4);
    config.reliable.max_retries = 3;
    config.reliable.retransmit_cap = Duration::from_secs(2);
    config.stop_hold = Duration::from_secs(3);
    config.id_hold = Duration::from_secs(3);
    config
}

struct World {
    now: Instant,
    lns: Endpoint,
    lac: Endpoint,
    lns_secret: Option<Vec<u8>>,
    lac_secret: Option<Vec<u8>>,
    to_lns: VecDeque<Vec<u8>>,
    to_lac: VecDeque<Vec<u8>>,
    /// Per LNS tunnel ID.
    seen: HashMap<u16, Seen>,
    /// (LNS tunnel, LNS session) pairs the LNS was seen to assign.
    lns_sessions: Vec<(u16, u16)>,
    /// (LAC tunnel, LAC session) pairs the LAC reported or returned.
    lac_sessions: Vec<(u16, u16)>,
    lns_up: Live,
    lac_up: Live,
}

/// Tunnels and sessions an endpoint reported up and not yet down.
#[derive(Default)]
struct Live {
    tunnels: HashSet<u16>,
    sessions: HashSet<(u16, u16)>,
}

impl Live {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::TunnelUp { tunnel, .. } => {
                assert!(self.tunnels.insert(*tunnel), "tunnel {tunnel} up twice");
            }
            Event::TunnelDown { tunnel, .. } => {
                self.tunnels.remove(tunnel);
                self.sessions.retain(|(t, _)| t != tunnel);
            }
            Event::SessionUp {
                tunnel, session, ..
            } => {
                assert!(
                    self.tunnels.contains(tunnel),
                    "session up on tunnel {tunnel} that is not up"
                );
                assert!(
                    self.sessions.insert((*tunnel, *session)),
                    "session {tunnel}/{session} up twice"
                );
            }
            Event::SessionDown {
                tunnel, session, ..
            } => {
                self.sessions.remove(&(*tunnel, *session));
            }
            Event::WanErrorNotify { .. } | Event::SetLinkInfo { .. } => {}
        }
    }
}

/// Check one datagram an endpoint sent; returns its header and message.
fn check_transmit(
    role: Role,
    secret: Option<&[u8]>,
    payload: &[u8],
) -> (HeaderRepr, Option<ControlMessage>) {
    let packet = Packet::new_checked(payload).expect("sent datagram has a bad header");
    assert!(packet.is_control(), "sent a data message");
    assert_eq!(packet.length(), Some(payload.len() as u16));
    let header = HeaderRepr::parse(&packet);
    if role == Role::Lns {
        assert_ne!(header.tunnel_id, 0, "LNS sent to tunnel 0");
    }
    let body = packet.payload();
    if body.is_empty() {
        return (header, None);
    }
    let msg = ControlMessage::parse(body, secret).expect("sent body does not parse");
    assert!(
        role_may_send(role, msg.message_type),
        "{role:?} sent {:?}",
        msg.message_type
    );
    (header, Some(msg))
}

impl World {
    fn new(s: &Scenario) -> Self {
        let lns_secret = s.secret.then(|| SECRET.to_vec());
        let lac_secret = s.secret.then(|| {
            if s.lac_wrong_secret {
                b"not the secret".to_vec()
            } else {
                SECRET.to_vec()
            }
        });
        let mut lns = config(Role::Lns, lns_secret.as_deref(), s.hide_all);
        if s.secret {
            // The LAC's network by its own entry, a stranger's network by
            // another secret, everyone else by the default.
            let prefix = |addr: [u8; 4], len| {
                IpPrefix::new(IpAddr::from(addr), len).expect("a network address")
            };
            lns.peer_secrets = PeerSecrets::new()
                .with(prefix([192, 0, 2, 0], 24), SECRET)
                .with(prefix([198, 51, 100, 0], 24), OTHER_SECRET);
        }
        World {
            now: Instant::now(),
            lns: Endpoint::new(lns, s.lns_seed),
            lac: Endpoint::new(
                config(Role::Lac, lac_secret.as_deref(), s.hide_all),
                s.lac_seed,
            ),
            lns_secret,
            lac_secret,
            to_lns: VecDeque::new(),
            to_lac: VecDeque::new(),
            seen: HashMap::new(),
            lns_sessions: Vec::new(),
            lac_sessions: Vec::new(),
            lns_up: Live::default(),
            lac_up: Live::default(),
        }
    }

    /// The secret of an LNS tunnel with a peer at `remote` (see `World::new`).
    fn lns_secret_for(&self, remote: SocketAddr) -> Option<&'static [u8]> {
        self.lns_secret.as_ref()?;
        match remote.ip().to_canonical() {
            IpAddr::V4(v4) if v4.octets()[..3] == [198, 51, 100] => Some(OTHER_SECRET),
            _ => Some(SECRET),
        }
    }

    /// Move every transmit and event out of both endpoints, checking each.
    fn drain(&mut self) {
        while let Some(t) = self.lns.poll_transmit() {
            let secret = self.lns_secret_for(t.remote);
            let (header, msg) = check_transmit(Role::Lns, secret, &t.payload);
            self.learn(t.remote, &header, msg.as_ref());
            if t.remote == lac_addr() {
                self.to_lac.push_back(t.payload);
            }
        }
        while let Some(t) = self.lac.poll_transmit() {
            assert_eq!(t.remote, lns_addr());
            check_transmit(Role::Lac, self.lac_secret.as_deref(), &t.payload);
            self.to_lns.push_back(t.payload);
        }
        while let Some(event) = self.lns.poll_event() {
            self.lns_up.apply(&event);
        }
        while let Some(event) = self.lac.poll_event() {
            self.lac_up.apply(&event);
            if let Event::SessionUp {
                tunnel, session, ..
            } = event
            {
                self.lac_sessions.push((tunnel, session));
            }
        }
        self.check_state();
    }

    /// Note sequence numbers, challenges and session IDs of an LNS packet.
    fn learn(&mut self, remote: SocketAddr, header: &HeaderRepr, msg: Option<&ControlMessage>) {
        // The header names the peer's tunnel; find ours by (peer, address).
        let Some(ours) = self.lns.tunnel_ids().into_iter().find(|id| {
            self.lns
                .tunnel(*id)
                .is_some_and(|t| t.remote == remote && t.peer_id == header.tunnel_id)
        }) else {
            return;
        };
        let seen = self.seen.entry(ours).or_default();
        if let Some((ns, nr)) = header.sequence {
            seen.expected_ns = nr;
            if msg.is_some() {
                seen.ack_all = ns.wrapping_add(1);
            }
        }
        let Some(msg) = msg else { return };
        if msg.message_type == MessageType::Sccrp {
            seen.challenge = msg.challenge().map(<[u8]>::to_vec);
        }
        if matches!(msg.message_type, MessageType::Icrp | MessageType::Ocrq) {
            if let Some(session) = msg.assigned_session_id() {
                self.lns_sessions.push((ours, session));
                if self.lns_sessions.len() > 64 {
                    self.lns_sessions.remove(0);
                }
            }
        }
    }

    fn check_state(&mut self) {
        assert!(self.lns.tunnel_count() <= LIMITS.max_tunnels);
        assert!(self.lac.tunnel_count() <= LIMITS.max_tunnels);
        for endpoint in [&mut self.lns, &mut self.lac] {
            for id in endpoint.tunnel_ids() {
                let Some(t) = endpoint.tunnel(id) else {
                    panic!("listed tunnel {id} has no summary");
                };
                assert!(t.sessions <= LIMITS.max_sessions_per_tunnel);
                if matches!(t.state, TunnelState::Stopping { .. }) {
                    assert_eq!(t.sessions, 0, "stopping tunnel {id} kept sessions");
                }
            }
            if endpoint.tunnel_count() > 0 {
                assert!(
                    endpoint.poll_timeout().is_some(),
                    "tunnels without any timer"
                );
            }
        }
    }

    fn advance_to(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        self.lns.handle_timeout(now);
        self.lac.handle_timeout(now);
        for endpoint in [&mut self.lns, &mut self.lac] {
            if let Some(next) = endpoint.poll_timeout() {
                assert!(next > now, "timer left due after handle_timeout");
            }
        }
    }

    fn next_timeout(&mut self) -> Option<Instant> {
        [self.lns.poll_timeout(), self.lac.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn pick_lns_tunnel(&self, pick: u8) -> Option<u16> {
        let ids = self.lns.tunnel_ids();
        (!ids.is_empty()).then(|| ids[usize::from(pick) % ids.len()])
    }

    fn pick_lac_tunnel(&self, pick: u8) -> Option<u16> {
        let ids = self.lac.tunnel_ids();
        (!ids.is_empty()).then(|| ids[usize::from(pick) % ids.len()])
    }

    fn pick_session(list: &[(u16, u16)], tunnel: u16, pick: u8) -> u16 {
        let mine: Vec<u16> = list
            .iter()
            .filter(|(t, _)| *t == tunnel)
            .map(|(_, s)| *s)
            .collect();
        if mine.is_empty() {
            u16::from(pick)
        } else {
            mine[usize::from(pick) % mine.len()]
        }
    }

    fn deliver_to_lns(&mut self, datagram: &[u8]) {
        let _ = self.lns.handle_datagram(self.now, lac_addr(), datagram);
    }

    fn deliver_to_lac(&mut self, datagram: &[u8]) {
        let _ = self.lac.handle_datagram(self.now, lns_addr(), datagram);
    }

    fn send_control(&mut self, from: SocketAddr, header: HeaderRepr, body: &[u8]) {
        let mut datagram = vec![0; header.header_len() + body.len()];
        let Ok(at) = header.emit(&mut datagram, body.len()) else {
            return;
        };
        datagram[at..].copy_from_slice(body);
        let _ = self.lns.handle_datagram(self.now, from, &datagram);
    }

    fn crafted(&mut self, c: Crafted) {
        let from = stranger(c.from);
        let tunnel = match c.tunnel {
            Pick::Zero => 0,
            Pick::Known(i) => self.pick_lns_tunnel(i).unwrap_or(0),
            Pick::Raw(id) => id,
        };
        let session = match c.session {
            Pick::Zero => 0,
            Pick::Known(i) => Self::pick_session(&self.lns_sessions, tunnel, i),
            Pick::Raw(id) => id,
        };
        let seen = self.seen.get(&tunnel).cloned().unwrap_or_default();
        let seq = |s: Seq, tracked: u16| match s {
            Seq::Tracked => tracked,
            Seq::Offset(d) => tracked.wrapping_add(d as i16 as u16),
            Seq::Raw(v) => v,
        };
        let ns = seq(c.ns, seen.expected_ns);
        let nr = seq(c.nr, seen.ack_all);
        let tunnel_secret = self.lns_secret_for(from);

        const TYPES: [u16; 16] = [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 0, 99];
        let message_type = MessageType::from(TYPES[usize::from(c.message_type) % TYPES.len()]);
        let mut msg = ControlMessage::new(message_type);
        for avp in c.avps.into_iter().take(24) {
            msg.avps.push(match avp {
                FuzzAvp::ResultCode {
                    result,
                    error,
                    message,
                } => Avp::ResultCode(ResultCode {
                    result,
                    error,
                    message,
                }),
                FuzzAvp::ProtocolVersion(version, revision) => {
                    Avp::ProtocolVersion { version, revision }
                }
                FuzzAvp::FramingCapabilities(v) => Avp::FramingCapabilities(v),
                FuzzAvp::BearerCapabilities(v) => Avp::BearerCapabilities(v),
                FuzzAvp::TieBreaker(v) => Avp::TieBreaker(v),
                FuzzAvp::FirmwareRevision(v) => Avp::FirmwareRevision(v),
                FuzzAvp::HostName(v) => Avp::HostName(v),
                FuzzAvp::VendorName(v) => Avp::VendorName(v),
                FuzzAvp::AssignedTunnelId(v) => Avp::AssignedTunnelId(v),
                FuzzAvp::ReceiveWindowSize(v) => Avp::ReceiveWindowSize(v),
                FuzzAvp::Challenge(v) => Avp::Challenge(v),
                FuzzAvp::ChallengeResponse(v) => Avp::ChallengeResponse(v),
                FuzzAvp::CorrectChallengeResponse => {
                    let challenge = seen.challenge.clone().unwrap_or_default();
                    Avp::ChallengeResponse(challenge_response(
                        MessageType::Scccn,
                        tunnel_secret.unwrap_or(SECRET),
                        &challenge,
                    ))
                }
                FuzzAvp::Q931Cause(cause, message, advisory) => Avp::Q931Cause {
                    cause,
                    message,
                    advisory,
                },
                FuzzAvp::AssignedSessionId(v) => Avp::AssignedSessionId(v),
                FuzzAvp::CallSerialNumber(v) => Avp::CallSerialNumber(v),
                FuzzAvp::MinimumBps(v) => Avp::MinimumBps(v),
                FuzzAvp::MaximumBps(v) => Avp::MaximumBps(v),
                FuzzAvp::BearerType(v) => Avp::BearerType(v),
                FuzzAvp::FramingType(v) => Avp::FramingType(v),
                FuzzAvp::CalledNumber(v) => Avp::CalledNumber(v),
                FuzzAvp::CallingNumber(v) => Avp::CallingNumber(v),
                FuzzAvp::SubAddress(v) => Avp::SubAddress(v),
                FuzzAvp::TxConnectSpeed(v) => Avp::TxConnectSpeed(v),
                FuzzAvp::RxConnectSpeed(v) => Avp::RxConnectSpeed(v),
                FuzzAvp::PhysicalChannelId(v) => Avp::PhysicalChannelId(v),
                FuzzAvp::PrivateGroupId(v) => Avp::PrivateGroupId(v),
                FuzzAvp::LcpConfreq(which, v) => match which % 3 {
                    0 => Avp::InitialReceivedLcpConfreq(v),
                    1 => Avp::LastSentLcpConfreq(v),
                    _ => Avp::LastReceivedLcpConfreq(v),
                },
                FuzzAvp::ProxyAuthenType(v) => Avp::ProxyAuthenType(v),
                FuzzAvp::ProxyAuthenName(v) => Avp::ProxyAuthenName(v),
                FuzzAvp::ProxyAuthenChallenge(v) => Avp::ProxyAuthenChallenge(v),
                FuzzAvp::ProxyAuthenId(v) => Avp::ProxyAuthenId(v),
                FuzzAvp::ProxyAuthenResponse(v) => Avp::ProxyAuthenResponse(v),
                FuzzAvp::CallErrors(crc, framing) => Avp::CallErrors(CallErrors {
                    crc,
                    framing,
                    ..CallErrors::default()
                }),
                FuzzAvp::Accm(send, receive) => Avp::Accm { send, receive },
                FuzzAvp::RandomVector(v) => Avp::RandomVector(v),
                FuzzAvp::SequencingRequired => Avp::SequencingRequired,
                FuzzAvp::Unknown {
                    mandatory,
                    hidden,
                    reserved,
                    vendor_id,
                    attr_type,
                    value,
                } => Avp::Unknown {
                    header: AvpHeader {
                        mandatory,
                        hidden,
                        reserved_bits: reserved,
                        vendor_id,
                        attr_type,
                    },
                    value,
                },
            });
        }
        let hiding = tunnel_secret.filter(|_| c.hide).map(|secret| Hiding {
            secret,
            random_vector: [0x5a; 16],
            attrs: (0..64).fold(AvpTypeSet::EMPTY, |set, attr| set.with(attr)),
        });
        let mut body = Vec::new();
        if msg.emit(&mut body, hiding.as_ref()).is_err() {
            // An oversized fuzzed value: send what was written, which is a
            // prefix of whole AVPs.
        }
        body.extend_from_slice(&c.trailer);
        self.send_control(from, HeaderRepr::control(tunnel, session, ns, nr), &body);
    }

    fn sccrq(&mut self, from: u8, peer_tunnel: u16, challenge: bool) {
        let mut msg = ControlMessage::new(MessageType::Sccrq)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::HostName(b"fuzz".to_vec()))
            .with(Avp::FramingCapabilities(3))
            .with(Avp::AssignedTunnelId(peer_tunnel.max(1)))
            .with(Avp::ReceiveWindowSize(4));
        if challenge {
            msg.avps.push(Avp::Challenge(b"0123456789abcdef".to_vec()));
        }
        let mut body = Vec::new();
        if msg.emit(&mut body, None).is_ok() {
            self.send_control(stranger(from), HeaderRepr::control(0, 0, 0, 0), &body);
        }
    }

    fn scccn(&mut self, pick: u8, correct: bool) {
        let Some(tunnel) = self.pick_lns_tunnel(pick) else {
            return;
        };
        let Some(summary) = self.lns.tunnel(tunnel) else {
            return;
        };
        let seen = self.seen.get(&tunnel).cloned().unwrap_or_default();
        let mut msg = ControlMessage::new(MessageType::Scccn);
        if let Some(challenge) = &seen.challenge {
            let secret: &[u8] = match self.lns_secret_for(summary.remote) {
                Some(secret) if correct => secret,
                _ => b"wrong",
            };
            msg.avps.push(Avp::ChallengeResponse(challenge_response(
                MessageType::Scccn,
                secret,
                challenge,
            )));
        }
        let mut body = Vec::new();
        if msg.emit(&mut body, None).is_ok() {
            let header = HeaderRepr::control(tunnel, 0, seen.expected_ns, seen.ack_all);
            self.send_control(summary.remote, header, &body);
        }
    }

    fn run(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::ToLns { index, keep_copy } => {
                if let Some(d) = take(&mut self.to_lns, index, keep_copy) {
                    self.deliver_to_lns(&d);
                }
            }
            Op::ToLac { index, keep_copy } => {
                if let Some(d) = take(&mut self.to_lac, index, keep_copy) {
                    self.deliver_to_lac(&d);
                }
            }
            Op::DropToLns { index } => {
                take(&mut self.to_lns, index, false);
            }
            Op::DropToLac { index } => {
                take(&mut self.to_lac, index, false);
            }
            Op::Exchange { rounds } => {
                for _ in 0..=(rounds % 8) {
                    if self.to_lns.is_empty() && self.to_lac.is_empty() {
                        break;
                    }
                    while let Some(d) = self.to_lns.pop_front() {
                        self.deliver_to_lns(&d);
                    }
                    while let Some(d) = self.to_lac.pop_front() {
                        self.deliver_to_lac(&d);
                    }
                    self.drain();
                }
            }
            Op::Raw { from, bytes } => {
                let _ = self.lns.handle_datagram(now, stranger(from), &bytes);
            }
            Op::Crafted(c) => self.crafted(*c),
            Op::Sccrq {
                from,
                peer_tunnel,
                challenge,
            } => self.sccrq(from, peer_tunnel, challenge),
            Op::Scccn { tunnel, correct } => self.scccn(tunnel, correct),
            Op::Advance(step) => {
                let to = match step {
                    Step::Millis(ms) => now + Duration::from_millis(u64::from(ms)),
                    Step::Seconds(s) => now + Duration::from_secs(u64::from(s % 64)),
                    Step::NextTimeout => self.next_timeout().unwrap_or(now),
                };
                self.advance_to(to);
            }
            Op::LacConnect => {
                let _ = self.lac.connect(now, lns_addr());
            }
            Op::LacOpenSession { tunnel, call } => {
                if let Some(t) = self.pick_lac_tunnel(tunnel) {
                    if let Ok(s) = self.lac.open_session(now, t, call.into_call()) {
                        self.lac_sessions.push((t, s));
                    }
                }
            }
            Op::LacCloseSession {
                tunnel,
                session,
                result,
            } => {
                if let Some(t) = self.pick_lac_tunnel(tunnel) {
                    let s = Self::pick_session(&self.lac_sessions, t, session);
                    let _ = self.lac.close_session(now, t, s, result_code(result));
                }
            }
            Op::LacCloseTunnel { tunnel, result } => {
                if let Some(t) = self.pick_lac_tunnel(tunnel) {
                    let _ = self.lac.close_tunnel(now, t, result_code(result));
                }
            }
            Op::LacWen {
                tunnel,
                session,
                crc,
            } => {
                if let Some(t) = self.pick_lac_tunnel(tunnel) {
                    let s = Self::pick_session(&self.lac_sessions, t, session);
                    let errors = CallErrors {
                        crc,
                        ..CallErrors::default()
                    };
                    let _ = self.lac.wan_error_notify(now, t, s, errors);
                }
            }
            Op::LacCloseAll => self.lac.close_all(now),
            Op::LnsPlaceCall { tunnel, call } => {
                if let Some(t) = self.pick_lns_tunnel(tunnel) {
                    if let Ok(s) = self.lns.place_call(now, t, call.into_call()) {
                        self.lns_sessions.push((t, s));
                    }
                }
            }
            Op::LnsCloseSession {
                tunnel,
                session,
                result,
            } => {
                if let Some(t) = self.pick_lns_tunnel(tunnel) {
                    let s = Self::pick_session(&self.lns_sessions, t, session);
                    let _ = self.lns.close_session(now, t, s, result_code(result));
                }
            }
            Op::LnsCloseTunnel { tunnel, result } => {
                if let Some(t) = self.pick_lns_tunnel(tunnel) {
                    let _ = self.lns.close_tunnel(now, t, result_code(result));
                }
            }
            Op::LnsSetLinkInfo {
                tunnel,
                session,
                send,
                receive,
            } => {
                if let Some(t) = self.pick_lns_tunnel(tunnel) {
                    let s = Self::pick_session(&self.lns_sessions, t, session);
                    let _ = self.lns.set_link_info(now, t, s, send, receive);
                }
            }
            Op::LnsCloseAll => self.lns.close_all(now),
        }
        self.drain();
        // Keep the link queues bounded.
        self.to_lns.truncate(64);
        self.to_lac.truncate(64);
    }

    /// The peer falls silent: every tunnel of both ends must go away by
    /// itself, and the LNS must then accept a fresh tunnel.
    fn finish(&mut self) {
        self.to_lns.clear();
        self.to_lac.clear();
        for _ in 0..10_000 {
            let Some(next) = self.next_timeout() else {
                break;
            };
            self.advance_to(next);
            self.drain();
            self.to_lns.clear();
            self.to_lac.clear();
        }
        assert_eq!(
            self.lns.tunnel_count(),
            0,
            "LNS tunnels outlived a silent peer"
        );
        assert_eq!(
            self.lac.tunnel_count(),
            0,
            "LAC tunnels outlived a silent peer"
        );
        assert_eq!(self.lns.session_count(), 0);
        assert!(self.lns_up.tunnels.is_empty(), "LNS tunnel up without down");
        assert!(self.lac_up.tunnels.is_empty(), "LAC tunnel up without down");

        // Nothing may be left counted against the limits.
        let mut msg = ControlMessage::new(MessageType::Sccrq)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::HostName(b"after".to_vec()))
            .with(Avp::FramingCapabilities(3))
            .with(Avp::AssignedTunnelId(7));
        if self.lns_secret.is_some() {
            msg.avps.push(Avp::Challenge(vec![1; 16]));
        }
        let mut body = Vec::new();
        msg.emit(&mut body, None).expect("SCCRQ emits");
        let header = HeaderRepr::control(0, 0, 0, 0);
        let mut datagram = vec![0; header.header_len() + body.len()];
        let at = header
            .emit(&mut datagram, body.len())
            .expect("header emits");
        datagram[at..].copy_from_slice(&body);
        let from = SocketAddr::from(([203, 0, 113, 9], 1701));
        assert_eq!(
            self.lns.handle_datagram(self.now, from, &datagram),
            Ok(()),
            "a fresh SCCRQ was refused after every tunnel went away"
        );
        assert_eq!(self.lns.tunnel_count(), 1);
        self.drain();
    }
}

/// Remove (or copy, with `keep_copy`) the datagram at `index` modulo length.
fn take(queue: &mut VecDeque<Vec<u8>>, index: u8, keep_copy: bool) -> Option<Vec<u8>> {
    if queue.is_empty() {
        return None;
    }
    let at = usize::from(index) % queue.len();
    if keep_copy {
        queue.get(at).cloned()
    } else {
        queue.remove(at)
    }
}

fuzz_target!(|scenario: Scenario| {
    let mut world = World::new(&scenario);
    for op in scenario.ops.into_iter().take(MAX_OPS) {
        world.run(op);
    }
    world.finish();
});
