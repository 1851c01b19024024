//! A stateful PPP `Link` in the server role (the LNS side) under a fuzzed
//! sequence of operations.
//!
//! The fuzzer plays the subscriber, the network, AAA and the operator around
//! one server link (authentication methods, IPCP, IPv6CP, echo keepalive,
//! proxy acceptance and timers all drawn from the input):
//!
//! - a real client-role `Link` (a subscriber with a right or wrong password,
//!   its own method list and NCPs), whose packets to and from the server sit
//!   in two queues that fuzzed operations deliver, drop, duplicate or
//!   reorder, so the deep states (authenticated, NCPs open, renegotiation)
//!   are reachable;
//! - hand-made packets to the server: fully arbitrary frames, or a fuzzed
//!   protocol (LCP, PAP, CHAP, IPCP, IPv6CP, IPv4 or any number), Code,
//!   Identifier (raw, or copied from the server's last Configure-Request or
//!   last packet of that protocol, or its CHAP Challenge, so they get past
//!   the identifier checks) and body: typed or malformed options, an exact
//!   copy or subset of the server's last request (Ack, Nak, Reject), echo
//!   data with the server's own Magic-Number, PAP credentials, CHAP-MD5 or
//!   MS-CHAPv2 responses computed for the server's challenge, large fillers;
//! - proxy LCP and proxy authentication at start (typical, absent or fuzzed),
//!   with the client adopting the proxied LCP or not;
//! - AAA answers to the server's requests: the local users file's verdict,
//!   or a forced accept (with or without an address and an MS-CHAPv2 success
//!   string) or reject, also when nothing was asked; or, per scenario, the
//!   users file's verdict at once, as the session glue with local AAA gives;
//! - time that jumps by fuzzed amounts, with `handle_timeout` on both ends;
//! - headroom in front of sent packets (0–31 bytes), as the session glue
//!   asks for;
//! - operator close on either end, and the L2TP call going away.
//!
//! After every operation it drains the events of both links and checks:
//!
//! - every packet either end sends starts at the headroom or at 0, and is
//!   framed and read back by the crate's own parsers (`Frame`, `cp::Packet`,
//!   options, PAP, CHAP) with the right Length, a Code its protocol has
//!   (Configure-Request, -Ack and -Nak options all read as typed options),
//!   and a protocol the end speaks: the
//!   server sends PAP or CHAP only for a method it was configured with, CHAP
//!   Challenge/Success/Failure and PAP Ack/Nak only, IPCP and IPv6CP only
//!   when enabled and only once AAA accepted someone; every server LCP
//!   Configure-Request demands a configured method;
//! - every reply answers the packet just delivered: Configure-Ack, -Nak,
//!   -Reject, Terminate-Ack, Echo-Reply, Code-Reject and Protocol-Reject
//!   carry its protocol and Identifier (an Ack repeats its options byte for
//!   byte, an Echo-Reply its data), at most one per packet, none on a timer,
//!   an AAA answer or a command; a Code-Reject or Protocol-Reject copies the
//!   packet, only for a Code or protocol the end does not know, and fits the
//!   peer's MRU (RFC 1661 §5.6, §5.7);
//! - right after `handle_timeout(now)`, `poll_timeout()` is later than `now`;
//! - `trim()` (called after every drain, as the node does) changes neither
//!   the phase nor the next deadline, and the invariants hold after it;
//! - every link has a twin made alike and given the same calls, trimmed
//!   but never parked (`trim` parks a link that runs with nothing in
//!   flight): both must produce the same events, deadlines, phase, user
//!   and automaton descriptions, so parking and unparking change nothing;
//! - the client never asks AAA; Up comes once, and once more only after
//!   each Renegotiating (which only an up link reports), and only after an
//!   Accept (when a method is configured), for the user accepted last, with
//!   a method from the list and an IPv4 address that AAA gave (never one the
//!   subscriber picked); Down comes at most once, nothing follows it, and a
//!   link is `Dead` exactly when it reported Down.
//!
//! At the end the peer and AAA fall silent and time runs from deadline to
//! deadline: both links must report Down within a bounded number of timer
//! steps (LCP echo keepalive or the Restart timers end every state), after
//! which neither has a deadline.
#![no_main]

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lns::crypto::ppp_auth;
use lns::proto::aaa::{users, Attributes, AuthOutcome, AuthRequest, LocalAaa, RejectReason};
use lns::proto::l2tp::{ProxyAuth, ProxyLcp};
use lns::proto::ppp::auth::AuthSettings;
use lns::proto::ppp::fsm::FsmConfig;
use lns::proto::ppp::lcp::{LcpAgreed, LcpConfig};
use lns::proto::ppp::link::{
    mru_for_path, DownReason, Link, LinkConfig, LinkEvent, LinkSeed, LinkUp, Phase,
};
use lns::wire::l2tp::avps::proxy_authen_type;
use lns::wire::ppp::chap::{Chap, MsChapV2Failure, MsChapV2Response, MsChapV2Success};
use lns::wire::ppp::cp::{self, Code};
use lns::wire::ppp::frame::protocol;
use lns::wire::ppp::lcp::{kind as lcp_kind, AuthMethod, EchoData, ProtocolRejectData};
use lns::wire::ppp::pap::Pap;
use lns::wire::ppp::{
    CpOption, Frame, FrameHeader, IpcpOption, Ipv6cpOption, LcpOption, OptionIter, OptionWriter,
};

const MAX_OPS: usize = 128;
/// Timer steps the silent ending may take (it needs a few dozen).
const MAX_FINAL_STEPS: usize = 10_000;

const USERS: &str = "\
alice@isp.example   password=secret
bob@isp.example     password=hunter2   ip=100.64.9.9
";
const LOCAL: Ipv4Addr = Ipv4Addr::new(100, 64, 255, 254);
const DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)];

/// A link and its twin, made alike and given the same calls: the link is
/// trimmed as the node trims (which parks it whenever it runs with nothing
/// in flight), the twin is trimmed but never parked. Every event, deadline
/// and phase must be the same: parking may not change anything a peer or
/// the owner can see.
struct Twin {
    link: Link,
    twin: Link,
}

impl Twin {
    fn new(config: &LinkConfig, seed: LinkSeed) -> Self {
        Twin {
            link: Link::new(config.clone(), seed),
            twin: Link::new(config.clone(), seed),
        }
    }

    fn both(&mut self, mut f: impl FnMut(&mut Link)) {
        f(&mut self.link);
        f(&mut self.twin);
    }

    fn set_headroom(&mut self, bytes: usize) {
        self.both(|l| l.set_headroom(bytes));
    }

    fn start(&mut self, now: Instant) {
        self.both(|l| l.start(now));
    }

    fn start_with_proxy(&mut self, now: Instant, lcp: &ProxyLcp, auth: &ProxyAuth) -> bool {
        let adopted = self.link.start_with_proxy(now, lcp, auth);
        assert_eq!(adopted, self.twin.start_with_proxy(now, lcp, auth));
        adopted
    }

    fn start_adopted(&mut self, now: Instant, agreed: LcpAgreed, authenticated: bool) {
        self.both(|l| l.start_adopted(now, agreed, authenticated));
    }

    fn receive(&mut self, now: Instant, protocol: u16, packet: &[u8]) {
        self.both(|l| l.receive(now, protocol, packet));
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.both(|l| l.handle_timeout(now));
    }

    fn auth_verdict(&mut self, now: Instant, outcome: &AuthOutcome, address: Option<Ipv4Addr>) {
        self.both(|l| l.auth_verdict(now, outcome, address));
    }

    fn close(&mut self, now: Instant, reason: DownReason) {
        self.both(|l| l.close(now, reason));
    }

    fn lower_down(&mut self, now: Instant) {
        self.both(|l| l.lower_down(now));
    }

    fn poll_event(&mut self) -> Option<LinkEvent> {
        let event = self.link.poll_event();
        assert_eq!(event, self.twin.poll_event(), "parked link and twin differ");
        event
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let at = self.link.poll_timeout();
        assert_eq!(at, self.twin.poll_timeout(), "parked link and twin differ");
        at
    }

    fn phase(&self) -> Phase {
        let phase = self.link.phase();
        assert_eq!(phase, self.twin.phase(), "parked link and twin differ");
        assert_eq!(self.link.user(), self.twin.user());
        assert_eq!(self.link.lcp_state(), self.twin.lcp_state());
        phase
    }

    fn describe(&self) -> String {
        let describe = self.link.describe();
        assert_eq!(describe, self.twin.describe(), "parked link and twin differ");
        describe
    }

    /// Trim both; park the link when it can be (the twin never).
    fn trim(&mut self) {
        self.link.trim();
        self.twin.trim_unparked();
        assert!(!self.twin.is_parked());
    }
}

#[derive(Debug, Arbitrary)]
struct Scenario {
    server: ServerKnobs,
    client: ClientKnobs,
    start: Start,
    /// AAA answers every request at once from the users file, with a pool
    /// address (as the session glue with local AAA does); otherwise only
    /// `Op::Aaa` answers.
    instant_aaa: bool,
    /// Spare bytes in front of sent packets (`Link::set_headroom`).
    headroom: u8,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
enum Method {
    Pap,
    ChapMd5,
    MsChapV2,
}

impl Method {
    fn auth(self) -> AuthMethod {
        match self {
            Method::Pap => AuthMethod::Pap,
            Method::ChapMd5 => AuthMethod::ChapMd5,
            Method::MsChapV2 => AuthMethod::MsChapV2,
        }
    }
}

/// A method list, most preferred first, without repeats.
fn methods(list: &[Method]) -> Vec<AuthMethod> {
    let mut out = Vec::new();
    for m in list.iter().map(|m| m.auth()) {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

#[derive(Debug, Arbitrary)]
struct Timers {
    restart_ms: u16,
    max_configure: u8,
    max_terminate: u8,
    max_failure: u8,
    auth_restart_ms: u16,
    auth_max: u8,
    echo_ms: u16,
    echo_failures: u8,
}

impl Timers {
    /// Every interval non-zero (a zero Restart timer would be due again at
    /// once, an operator error) and every counter small.
    fn apply(&self, config: &mut LinkConfig) {
        config.fsm = Arc::new(FsmConfig {
            restart: Duration::from_millis(1 + u64::from(self.restart_ms % 6000)),
            max_terminate: u32::from(self.max_terminate % 4),
            max_configure: u32::from(self.max_configure % 11),
            max_failure: u32::from(self.max_failure % 6),
            passive: false,
        });
        config.auth.restart = Duration::from_millis(1 + u64::from(self.auth_restart_ms % 6000));
        config.auth.max_transmissions = u32::from(self.auth_max % 11);
        config.echo_interval = Duration::from_millis(1 + u64::from(self.echo_ms % 60_000));
        config.echo_failures = u32::from(self.echo_failures % 6);
    }
}

#[derive(Debug, Arbitrary)]
struct ServerKnobs {
    methods: Vec<Method>,
    /// Path MTU the MRU is derived from; `None` asks for no MRU.
    path_mtu: Option<u16>,
    ipv6_transport: bool,
    magic: bool,
    ipcp: bool,
    ipv6cp: bool,
    second_dns: bool,
    accept_proxy: bool,
    timers: Timers,
    seed: (u64, [u8; 16], u8),
}

#[derive(Debug, Arbitrary)]
enum Who {
    Alice,
    Bob,
    Stranger,
}

#[derive(Debug, Arbitrary)]
struct ClientKnobs {
    who: Who,
    right_password: bool,
    methods: Vec<Method>,
    magic: bool,
    ipcp: bool,
    ipv6cp: bool,
    timers: Timers,
    seed: (u64, [u8; 16], u8),
}

impl ClientKnobs {
    fn credentials(&self) -> (Vec<u8>, Vec<u8>) {
        let (user, password): (&[u8], &[u8]) = match self.who {
            Who::Alice => (b"alice@isp.example", b"secret"),
            Who::Bob => (b"bob@isp.example", b"hunter2"),
            Who::Stranger => (b"mallory@isp.example", b"secret"),
        };
        let password = if self.right_password {
            password.to_vec()
        } else {
            b"guess".to_vec()
        };
        (user.to_vec(), password)
    }
}

#[derive(Debug, Arbitrary)]
enum Start {
    /// Plain LCP negotiation from the start.
    Plain,
    /// The LAC forwarded proxy LCP and authentication (RFC 2661 §4.4.5).
    Proxy {
        sent: ProxyConfreq,
        received: ProxyConfreq,
        auth: FuzzProxyAuth,
        /// The client skips LCP as a proxied subscriber does.
        client_adopts: bool,
        client_authenticated: bool,
    },
}

#[derive(Debug, Arbitrary)]
enum ProxyConfreq {
    Absent,
    /// What a LAC typically sends: a method and a Magic-Number (Last Sent),
    /// or an MRU and a Magic-Number (Last Received).
    Typical(Method),
    Options(Vec<FuzzOption>),
    Bytes(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum FuzzProxyAuth {
    Absent,
    /// Credentials of the client, as PAP or CHAP-MD5.
    Correct {
        chap: bool,
        id: u8,
        challenge: [u8; 16],
    },
    Fields {
        authen_type: Option<u16>,
        name: Option<Vec<u8>>,
        challenge: Option<Vec<u8>>,
        id: Option<u8>,
        response: Option<Vec<u8>>,
    },
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Deliver one queued packet (index modulo the queue length).
    ToServer {
        index: u8,
        keep_copy: bool,
    },
    ToClient {
        index: u8,
        keep_copy: bool,
    },
    DropToServer {
        index: u8,
    },
    DropToClient {
        index: u8,
    },
    /// Deliver everything queued both ways, in order, for a few rounds.
    Exchange {
        rounds: u8,
    },
    /// A hand-made packet to the server.
    Crafted(Box<Crafted>),
    /// Arbitrary bytes as a PPP frame to the server.
    RawFrame(Vec<u8>),
    Advance(Step),
    /// AAA answers the server (the pending request, or nothing pending).
    Aaa(Verdict),
    ServerClose,
    ClientClose,
    /// The L2TP call under both links went away.
    LowerDown,
}

#[derive(Debug, Arbitrary)]
enum Step {
    Millis(u16),
    Seconds(u8),
    /// To the earliest deadline of either end.
    NextTimeout,
}

#[derive(Debug, Arbitrary)]
enum Verdict {
    /// The users file decides; the address is the static one or, with
    /// `pool`, the next pool address.
    Check {
        pool: bool,
    },
    Accept {
        address: Option<AddrPick>,
        success: Success,
    },
    Reject,
}

#[derive(Debug, Arbitrary)]
enum Success {
    Absent,
    /// The users file's authenticator response, when it has one.
    Correct,
    Text(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Crafted {
    protocol: ProtoPick,
    code: u8,
    id: IdPick,
    body: Body,
    length: LengthPick,
    /// Data-link padding after the packet (RFC 1661 §5: ignored).
    padding: u8,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum ProtoPick {
    Lcp,
    Pap,
    Chap,
    Ipcp,
    Ipv6cp,
    Ipv4,
    Other(u16),
}

impl ProtoPick {
    fn number(self) -> u16 {
        match self {
            ProtoPick::Lcp => protocol::LCP,
            ProtoPick::Pap => protocol::PAP,
            ProtoPick::Chap => protocol::CHAP,
            ProtoPick::Ipcp => protocol::IPCP,
            ProtoPick::Ipv6cp => protocol::IPV6CP,
            ProtoPick::Ipv4 => protocol::IPV4,
            ProtoPick::Other(n) => n,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum IdPick {
    Raw(u8),
    /// The server's last Configure-Request of the protocol.
    LastRequest,
    /// The server's last packet of the protocol.
    LastSent,
    /// The server's last CHAP Challenge.
    LastChallenge,
}

#[derive(Debug, Arbitrary)]
enum LengthPick {
    Exact,
    Raw(u16),
}

#[derive(Debug, Arbitrary)]
enum Body {
    Options(Vec<FuzzOption>),
    /// The options of the server's last Configure-Request of the protocol.
    LastRequest,
    /// The options of it whose index bit is set.
    LastRequestSubset(u8),
    Echo {
        magic: MagicPick,
        data: Vec<u8>,
    },
    Pap {
        user: UserPick,
        password: Vec<u8>,
        right_password: bool,
    },
    ChapResponse {
        value: ChapValue,
        user: UserPick,
    },
    Bytes(Vec<u8>),
    /// A large body cheaply (MRU and truncation paths).
    Filler {
        len: u16,
        byte: u8,
    },
}

#[derive(Debug, Arbitrary)]
enum UserPick {
    Alice,
    Bob,
    Raw(Vec<u8>),
}

impl UserPick {
    fn bytes(&self) -> Vec<u8> {
        match self {
            UserPick::Alice => b"alice@isp.example".to_vec(),
            UserPick::Bob => b"bob@isp.example".to_vec(),
            UserPick::Raw(raw) => raw.clone(),
        }
    }

    fn password(&self) -> &'static [u8] {
        match self {
            UserPick::Bob => b"hunter2",
            _ => b"secret",
        }
    }
}

#[derive(Debug, Arbitrary)]
enum ChapValue {
    Raw(Vec<u8>),
    /// RFC 1994 MD5 over the packet's Identifier and the server's challenge.
    Md5 {
        right_password: bool,
    },
    /// RFC 2759 NT-Response to the server's challenge.
    MsChapV2 {
        right_password: bool,
        peer_challenge: [u8; 16],
    },
}

#[derive(Debug, Arbitrary)]
enum MagicPick {
    Raw(u32),
    Zero,
    /// The server's Magic-Number from its last LCP Configure-Request.
    ServerOwn,
}

#[derive(Debug, Arbitrary)]
enum AddrPick {
    Raw([u8; 4]),
    Zero,
    /// The last address AAA gave the server.
    Assigned,
    ServerLocal,
    Dns,
}

#[derive(Debug, Arbitrary)]
enum IfIdPick {
    Raw([u8; 8]),
    Zero,
    /// The server's identifier from its last IPv6CP Configure-Request.
    ServerOwn,
}

#[derive(Debug, Arbitrary)]
enum FuzzOption {
    Mru(u16),
    Accm(u32),
    Auth(Method),
    AuthRaw(u16, Vec<u8>),
    Quality(u16),
    Magic(MagicPick),
    Pfc,
    Acfc,
    IpAddress(AddrPick),
    PrimaryDns(AddrPick),
    SecondaryDns(AddrPick),
    Nbns(AddrPick),
    VjCompression(u16),
    InterfaceId(IfIdPick),
    Raw {
        kind: u8,
        data: Vec<u8>,
    },
    /// Type and a Length that may lie about what follows.
    BadLength {
        kind: u8,
        length: u8,
    },
}

/// What the fuzzer learnt from the server's packets, to craft packets that
/// get past its identifier and option checks.
#[derive(Debug, Default)]
struct Seen {
    /// Per protocol: Identifier and options of the last Configure-Request.
    last_request: HashMap<u16, (u8, Vec<u8>)>,
    /// Per protocol: Identifier of the last packet.
    last_id: HashMap<u16, u8>,
    /// Identifier and value of the last CHAP Challenge.
    challenge: Option<(u8, Vec<u8>)>,
    magic: Option<u32>,
    interface_id: Option<[u8; 8]>,
}

/// Which end of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Server,
    Client,
}

/// What each end reported, and what its invariants need to know.
#[derive(Debug, Default)]
struct Track {
    /// The standing Up (cleared by Renegotiating).
    up: Option<LinkUp>,
    down: Option<DownReason>,
    /// Largest MRU the peer may have been granted (RFC 1661 §6.1 default
    /// 1500, every MRU this end acked, every MRU adopted from proxy data).
    peer_mru_bound: u16,
}

struct World {
    now: Instant,
    server: Twin,
    client: Twin,
    server_config: LinkConfig,
    client_config: LinkConfig,
    aaa: LocalAaa,
    to_server: VecDeque<(u16, Vec<u8>)>,
    to_client: VecDeque<(u16, Vec<u8>)>,
    seen: Seen,
    server_track: Track,
    client_track: Track,
    /// The request the server is waiting on AAA for.
    pending: Option<AuthRequest>,
    /// Some request was accepted by AAA: NCPs may run.
    authorized: bool,
    /// User of the last accepted request.
    accepted_user: Option<Vec<u8>>,
    /// Every address AAA gave the server.
    assigned: Vec<Ipv4Addr>,
    next_pool: u8,
    /// The server adopted the proxy LCP.
    proxied: bool,
    instant_aaa: bool,
    /// Spare bytes both links leave in front of every packet.
    headroom: usize,
}

fn seed((magic, challenge, id): (u64, [u8; 16], u8)) -> LinkSeed {
    LinkSeed {
        magic,
        challenge,
        id,
    }
}

fn encode(options: &[LcpOption]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = OptionWriter::new(&mut out);
    for option in options {
        let _ = option.emit(&mut writer);
    }
    out
}

/// LCP options read from a proxy CONFREQ (what the client adopts).
fn lcp_options(bytes: &[u8]) -> Vec<LcpOption> {
    OptionIter::new(bytes)
        .filter_map(Result::ok)
        .filter_map(|raw| LcpOption::parse(&raw).ok())
        .collect()
}

/// MRUs named in an option list (for the peer-MRU bound).
fn mrus(options: &[u8]) -> impl Iterator<Item = u16> + '_ {
    OptionIter::new(options)
        .filter_map(Result::ok)
        .filter_map(|raw| match LcpOption::parse(&raw) {
            Ok(LcpOption::Mru(mru)) => Some(mru),
            _ => None,
        })
}

impl World {
    fn new(s: &Scenario) -> (Self, Option<ProxyStart>) {
        let server_methods = methods(&s.server.methods);
        let mut server_config =
            LinkConfig::server(LOCAL, [Some(DNS[0]), s.server.second_dns.then_some(DNS[1])]);
        server_config.lcp = LcpConfig {
            mru: s
                .server
                .path_mtu
                .map(|mtu| mru_for_path(mtu, s.server.ipv6_transport)),
            auth: server_methods,
            magic: s.server.magic,
            ..LcpConfig::default()
        };
        server_config.ipcp = s.server.ipcp;
        server_config.ipv6cp = s.server.ipv6cp;
        server_config.accept_proxy = s.server.accept_proxy;
        s.server.timers.apply(&mut server_config);

        let (user, password) = s.client.credentials();
        let mut client_config = LinkConfig::client(&user, &password);
        client_config.lcp.auth = methods(&s.client.methods);
        client_config.lcp.magic = s.client.magic;
        client_config.ipcp = s.client.ipcp;
        client_config.ipv6cp = s.client.ipv6cp;
        s.client.timers.apply(&mut client_config);
        client_config.auth = AuthSettings {
            name: user.clone(),
            ..client_config.auth
        };

        let proxy = match &s.start {
            Start::Plain => None,
            Start::Proxy {
                sent,
                received,
                auth,
                client_adopts,
                client_authenticated,
            } => Some(ProxyStart::new(
                sent,
                received,
                auth,
                (&user, &password),
                *client_adopts,
                *client_authenticated,
            )),
        };

        let mut world = World {
            now: Instant::now(),
            server: Twin::new(&server_config, seed(s.server.seed)),
            client: Twin::new(&client_config, seed(s.client.seed)),
            server_config,
            client_config,
            aaa: LocalAaa::new(users::parse(USERS).expect("users file parses")),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            seen: Seen::default(),
            server_track: Track {
                peer_mru_bound: 1500,
                ..Track::default()
            },
            client_track: Track {
                peer_mru_bound: 1500,
                ..Track::default()
            },
            pending: None,
            authorized: false,
            accepted_user: None,
            assigned: Vec::new(),
            next_pool: 0,
            proxied: false,
            instant_aaa: s.instant_aaa,
            headroom: usize::from(s.headroom % 32),
        };
        world.server.set_headroom(world.headroom);
        world.client.set_headroom(world.headroom);
        (world, proxy)
    }

    fn start(&mut self, proxy: Option<ProxyStart>) {
        let now = self.now;
        match proxy {
            None => {
                self.server.start(now);
                self.drain(End::Server, None);
                self.client.start(now);
                self.drain(End::Client, None);
            }
            Some(p) => {
                let received = p.lcp.last_received.as_deref().unwrap_or_default();
                let bound = mrus(received).fold(1500, u16::max);
                self.server_track.peer_mru_bound = bound;
                self.proxied = self.server.start_with_proxy(now, &p.lcp, &p.auth);
                assert!(
                    !self.proxied || self.server_config.accept_proxy,
                    "proxy LCP adopted with accept_proxy off"
                );
                self.drain(End::Server, None);
                match p.client_adopts {
                    Some((agreed, authenticated)) => {
                        self.client_track.peer_mru_bound =
                            self.client_track.peer_mru_bound.max(agreed.peer_mru);
                        self.client.start_adopted(now, agreed, authenticated);
                    }
                    None => self.client.start(now),
                }
                self.drain(End::Client, None);
            }
        }
    }

    fn link(&mut self, end: End) -> &mut Twin {
        match end {
            End::Server => &mut self.server,
            End::Client => &mut self.client,
        }
    }

    fn config(&self, end: End) -> &LinkConfig {
        match end {
            End::Server => &self.server_config,
            End::Client => &self.client_config,
        }
    }

    fn track(&mut self, end: End) -> &mut Track {
        match end {
            End::Server => &mut self.server_track,
            End::Client => &mut self.client_track,
        }
    }

    /// Move every event out of `end`, checking each. `delivered` is the
    /// packet (protocol, bytes) it was just given, if that caused the events.
    fn drain(&mut self, end: End, delivered: Option<(u16, &[u8])>) {
        let mut replies = 0;
        while let Some(event) = self.link(end).poll_event() {
            assert!(
                self.track(end).down.is_none(),
                "{end:?} link spoke after Down: {event:?}"
            );
            match event {
                LinkEvent::Send {
                    protocol,
                    mut packet,
                    offset,
                } => {
                    // Built in place after the headroom, or elsewhere.
                    assert!(
                        (offset == self.headroom || offset == 0) && offset <= packet.len(),
                        "{end:?} packet at offset {offset} of {}",
                        packet.len()
                    );
                    packet.drain(..offset);
                    if self.check_send(end, protocol, &packet, delivered) {
                        replies += 1;
                        assert!(replies <= 1, "{end:?} answered one packet twice");
                    }
                    if end == End::Server {
                        self.learn(protocol, &packet);
                        self.to_client.push_back((protocol, packet));
                    } else {
                        self.to_server.push_back((protocol, packet));
                    }
                }
                LinkEvent::Authenticate(request) => {
                    assert_eq!(end, End::Server, "the client asked AAA");
                    self.pending = Some(*request);
                }
                LinkEvent::Up(up) => self.on_up(end, *up),
                LinkEvent::Renegotiating => {
                    // Only an up link renegotiates; Up must come again.
                    let track = self.track(end);
                    assert!(track.up.is_some(), "{end:?} renegotiating while not up");
                    assert!(track.down.is_none(), "{end:?} renegotiating after Down");
                    track.up = None;
                }
                LinkEvent::Down(reason) => {
                    self.track(end).down = Some(reason);
                }
            }
        }
        // The node trims every link once its events are drained; trimming
        // must not change what the link does next.
        let link = self.link(end);
        let (phase, timeout) = (link.phase(), link.poll_timeout());
        link.trim();
        assert_eq!((phase, timeout), (link.phase(), link.poll_timeout()));
        let dead = link.phase() == Phase::Dead;
        let no_timer = link.poll_timeout().is_none();
        let down = self.track(end).down.is_some();
        assert_eq!(dead, down, "{end:?} is Dead exactly when it reported Down");
        assert!(!dead || no_timer, "{end:?} is Dead with a timer");
        self.to_server.truncate(64);
        self.to_client.truncate(64);
        if end == End::Server && self.instant_aaa && self.pending.is_some() {
            self.verdict(Verdict::Check { pool: true });
        }
    }

    fn on_up(&mut self, end: End, up: LinkUp) {
        assert!(
            self.track(end).up.is_none(),
            "{end:?} reported Up twice: {up:?}"
        );
        let config = self.config(end).clone();
        if let Some(address) = up.ipv4 {
            assert!(config.ipcp, "{end:?} up with IPv4 but IPCP off");
            // The server never lets the subscriber pick its address, and
            // the client learns only what the server assigned.
            assert!(
                self.assigned.contains(&address),
                "{end:?} up with {address}, which AAA never gave"
            );
        }
        assert!(
            up.ipv6_peer.is_none() || config.ipv6cp,
            "{end:?} up with IPv6 but IPv6CP off"
        );
        if end == End::Server {
            let methods = &config.lcp.auth;
            match up.lcp.auth {
                Some(method) => assert!(methods.contains(&method), "unconfigured {method:?}"),
                None => assert!(methods.is_empty(), "up without authentication"),
            }
            if methods.is_empty() {
                assert!(up.user.is_empty());
            } else {
                assert!(self.authorized, "server up before AAA accepted anyone");
                assert_eq!(
                    Some(&up.user),
                    self.accepted_user.as_ref(),
                    "server up for a user AAA did not accept last"
                );
            }
            assert_eq!(up.proxied, self.proxied);
        }
        self.track(end).up = Some(up);
    }

    /// Check one packet `end` sends; returns whether it is a reply to the
    /// delivered packet.
    fn check_send(
        &mut self,
        end: End,
        proto: u16,
        packet: &[u8],
        delivered: Option<(u16, &[u8])>,
    ) -> bool {
        // Framed as the session glue frames it, the frame parser reads the
        // same protocol and packet back.
        let mut frame = Vec::new();
        FrameHeader::new(proto, false, false).emit_vec(&mut frame);
        frame.extend_from_slice(packet);
        let parsed = Frame::parse(&frame).expect("sent frame does not parse");
        assert_eq!(u16::from(parsed.protocol()), proto);
        assert_eq!(parsed.payload, packet);

        let header = cp::Packet::new_checked(packet).expect("sent packet has a bad header");
        assert_eq!(
            usize::from(header.length()),
            packet.len(),
            "Length disagrees"
        );
        let code = header.code_byte();
        let id = header.identifier();
        let data = header.data();
        let config = self.config(end).clone();
        match proto {
            protocol::LCP | protocol::IPCP | protocol::IPV6CP => {}
            protocol::PAP => {
                let pap = Pap::parse(packet).expect("sent PAP does not parse");
                match end {
                    End::Server => {
                        assert!(config.lcp.auth.contains(&AuthMethod::Pap));
                        assert!(matches!(pap, Pap::Ack { .. } | Pap::Nak { .. }), "{pap:?}");
                    }
                    End::Client => assert!(matches!(pap, Pap::Request { .. })),
                }
                return false;
            }
            protocol::CHAP => {
                let chap = Chap::parse(packet).expect("sent CHAP does not parse");
                match end {
                    End::Server => {
                        assert!(config.lcp.auth.iter().any(|m| *m != AuthMethod::Pap));
                        match chap {
                            Chap::Challenge { value, .. } => assert_eq!(value.len(), 16),
                            Chap::Success { message, .. } => {
                                // MS-CHAPv2 text or a plain message.
                                let _ = MsChapV2Success::parse(message);
                            }
                            Chap::Failure { message, .. } => {
                                let _ = MsChapV2Failure::parse(message);
                            }
                            other => panic!("server sent {other:?}"),
                        }
                    }
                    End::Client => {
                        let Chap::Response { value, .. } = chap else {
                            panic!("client sent {chap:?}");
                        };
                        if value.len() == 49 {
                            MsChapV2Response::parse(value).expect("MS-CHAPv2 value");
                        }
                    }
                }
                return false;
            }
            other => panic!("{end:?} sent protocol {other:#06x}"),
        }

        // A control protocol (LCP, IPCP, IPv6CP).
        let lcp = proto == protocol::LCP;
        if lcp {
            assert!((1..=10).contains(&code), "{end:?} sent LCP code {code}");
        } else {
            assert!(
                (1..=7).contains(&code),
                "{end:?} sent NCP {proto:#06x} code {code}"
            );
            let enabled = if proto == protocol::IPCP {
                config.ipcp
            } else {
                config.ipv6cp
            };
            assert!(enabled, "{end:?} sent {proto:#06x} with it disabled");
            if end == End::Server && !config.lcp.auth.is_empty() {
                assert!(self.authorized, "server ran an NCP before AAA accepted");
            }
        }
        let code = Code::from(code);
        if matches!(
            code,
            Code::ConfigureRequest | Code::ConfigureAck | Code::ConfigureNak
        ) {
            check_options(proto, data);
        }
        if end == End::Server
            && lcp
            && code == Code::ConfigureRequest
            && !config.lcp.auth.is_empty()
        {
            // §6.2: an authenticator never stops demanding a method.
            let demanded = lcp_options(data)
                .iter()
                .filter_map(LcpOption::auth_method)
                .any(|m| config.lcp.auth.contains(&m));
            assert!(demanded, "server LCP request without a configured method");
        }

        let is_reply = matches!(
            code,
            Code::ConfigureAck
                | Code::ConfigureNak
                | Code::ConfigureReject
                | Code::TerminateAck
                | Code::CodeReject
                | Code::ProtocolReject
                | Code::EchoReply
        );
        if !is_reply {
            return false;
        }
        let Some((in_proto, in_bytes)) = delivered else {
            panic!("{end:?} sent {proto:#06x} {code:?} unprompted");
        };
        let same_protocol = in_proto == proto;
        let inbound = cp::Repr::parse_bytes(in_bytes);
        match code {
            Code::ProtocolReject => {
                let reject = ProtocolRejectData::parse(data).expect("Protocol-Reject data");
                assert_eq!(
                    reject.protocol, in_proto,
                    "Protocol-Reject of another protocol"
                );
                assert!(in_bytes.starts_with(reject.information));
                let handled = [protocol::LCP, protocol::PAP, protocol::CHAP];
                assert!(!handled.contains(&in_proto), "rejected {in_proto:#06x}");
                assert!(in_proto != protocol::IPCP || !config.ipcp);
                assert!(in_proto != protocol::IPV6CP || !config.ipv6cp);
                self.check_fits_mru(end, packet);
            }
            Code::CodeReject => {
                assert!(same_protocol, "Code-Reject for another protocol");
                let inbound = inbound.expect("Code-Reject of a malformed packet");
                let rejected_code = u8::from(inbound.code);
                let known = if lcp { 1..=11 } else { 1..=7 };
                assert!(
                    !known.contains(&rejected_code),
                    "rejected code {rejected_code}"
                );
                assert!(data.len() >= 4);
                assert_eq!(data[0], rejected_code);
                assert_eq!(data[1], inbound.identifier);
                assert!(inbound.data.starts_with(&data[4..]));
                self.check_fits_mru(end, packet);
            }
            _ => {
                assert!(same_protocol, "{code:?} for another protocol");
                let inbound = inbound.expect("reply to a malformed packet");
                assert_eq!(id, inbound.identifier, "{code:?} with another Identifier");
                let asked = u8::from(inbound.code);
                match code {
                    Code::ConfigureAck => {
                        assert_eq!(inbound.code, Code::ConfigureRequest);
                        assert_eq!(data, inbound.data, "Configure-Ack changed the options");
                        if lcp {
                            let acked = mrus(data).fold(0, u16::max);
                            let track = self.track(end);
                            track.peer_mru_bound = track.peer_mru_bound.max(acked);
                        }
                    }
                    Code::ConfigureNak | Code::ConfigureReject => {
                        assert_eq!(inbound.code, Code::ConfigureRequest);
                    }
                    Code::TerminateAck => {
                        assert!((1..=5).contains(&asked), "Terminate-Ack to code {asked}");
                    }
                    Code::EchoReply => {
                        assert_eq!(inbound.code, Code::EchoRequest);
                        let echo = EchoData::parse(data).expect("Echo-Reply data");
                        let asked = EchoData::parse(inbound.data).expect("answered bad echo");
                        assert_eq!(echo.data, asked.data, "Echo-Reply changed the data");
                    }
                    _ => unreachable!(),
                }
            }
        }
        true
    }

    fn check_fits_mru(&mut self, end: End, packet: &[u8]) {
        let bound = usize::from(self.track(end).peer_mru_bound);
        assert!(
            packet.len() <= bound,
            "{end:?} sent a {}-byte reject to a peer with MRU at most {bound}",
            packet.len()
        );
    }

    /// Remember what the server sent, for crafting.
    fn learn(&mut self, proto: u16, packet: &[u8]) {
        let Ok(repr) = cp::Repr::parse_bytes(packet) else {
            return;
        };
        self.seen.last_id.insert(proto, repr.identifier);
        match proto {
            protocol::CHAP => {
                if let Ok(Chap::Challenge {
                    identifier, value, ..
                }) = Chap::parse(packet)
                {
                    self.seen.challenge = Some((identifier, value.to_vec()));
                }
            }
            _ if repr.code == Code::ConfigureRequest => {
                self.seen
                    .last_request
                    .insert(proto, (repr.identifier, repr.data.to_vec()));
                for raw in OptionIter::new(repr.data).filter_map(Result::ok) {
                    match proto {
                        protocol::LCP => {
                            if let Ok(LcpOption::MagicNumber(magic)) = LcpOption::parse(&raw) {
                                self.seen.magic = Some(magic);
                            }
                        }
                        protocol::IPV6CP => {
                            if let Ok(Ipv6cpOption::InterfaceIdentifier(id)) =
                                Ipv6cpOption::parse(&raw)
                            {
                                self.seen.interface_id = Some(id);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn deliver(&mut self, to: End, proto: u16, packet: &[u8]) {
        let now = self.now;
        self.link(to).receive(now, proto, packet);
        self.drain(to, Some((proto, packet)));
    }

    fn advance_to(&mut self, to: Instant) {
        self.now = self.now.max(to);
        let now = self.now;
        for end in [End::Server, End::Client] {
            self.link(end).handle_timeout(now);
            if let Some(next) = self.link(end).poll_timeout() {
                assert!(next > now, "{end:?} timer still due after handle_timeout");
            }
            self.drain(end, None);
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        [self.server.poll_timeout(), self.client.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn verdict(&mut self, verdict: Verdict) {
        let (outcome, address) = match verdict {
            Verdict::Check { pool } => {
                let Some(request) = &self.pending else {
                    return;
                };
                let outcome = self.aaa.check(request);
                let address = match &outcome {
                    AuthOutcome::Accept { attributes } => attributes
                        .framed_ip
                        .or_else(|| pool.then(|| self.pool_address())),
                    AuthOutcome::Reject { .. } => None,
                };
                (outcome, address)
            }
            Verdict::Accept { address, success } => {
                let mschapv2_success = match success {
                    Success::Absent => None,
                    Success::Correct => match self.pending.as_ref().map(|r| self.aaa.check(r)) {
                        Some(AuthOutcome::Accept { attributes }) => attributes.mschapv2_success,
                        _ => None,
                    },
                    Success::Text(text) => Some(String::from_utf8_lossy(&text).into_owned()),
                };
                let attributes = Attributes {
                    mschapv2_success,
                    ..Attributes::default()
                };
                let address = address.map(|pick| self.addr(&pick));
                (AuthOutcome::Accept { attributes }, address)
            }
            Verdict::Reject => (
                AuthOutcome::Reject {
                    reason: RejectReason::BadCredential,
                },
                None,
            ),
        };
        if let Some(request) = self.pending.take() {
            if matches!(outcome, AuthOutcome::Accept { .. }) {
                self.authorized = true;
                self.accepted_user = Some(request.user().to_vec());
            }
        }
        if let Some(address) = address {
            self.assigned.push(address);
        }
        let now = self.now;
        self.server.auth_verdict(now, &outcome, address);
        self.drain(End::Server, None);
    }

    fn pool_address(&mut self) -> Ipv4Addr {
        self.next_pool = self.next_pool.wrapping_add(1);
        Ipv4Addr::new(100, 64, 0, self.next_pool)
    }

    fn addr(&self, pick: &AddrPick) -> Ipv4Addr {
        match pick {
            AddrPick::Raw(octets) => Ipv4Addr::from(*octets),
            AddrPick::Zero => Ipv4Addr::UNSPECIFIED,
            AddrPick::Assigned => self
                .assigned
                .last()
                .copied()
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            AddrPick::ServerLocal => LOCAL,
            AddrPick::Dns => DNS[0],
        }
    }

    fn magic(&self, pick: &MagicPick) -> u32 {
        match pick {
            MagicPick::Raw(magic) => *magic,
            MagicPick::Zero => 0,
            MagicPick::ServerOwn => self.seen.magic.unwrap_or(0),
        }
    }

    fn push_option(&self, option: &FuzzOption, out: &mut Vec<u8>) {
        let mut writer = OptionWriter::new(out);
        let ip = |kind: u8, pick: &AddrPick| (kind, self.addr(pick).octets().to_vec());
        let (kind, data) = match option {
            FuzzOption::Mru(mru) => (lcp_kind::MRU, mru.to_be_bytes().to_vec()),
            FuzzOption::Accm(accm) => (lcp_kind::ACCM, accm.to_be_bytes().to_vec()),
            FuzzOption::Auth(method) => {
                let _ = method.auth().option().emit(&mut writer);
                return;
            }
            FuzzOption::AuthRaw(proto, rest) => {
                let mut data = proto.to_be_bytes().to_vec();
                data.extend_from_slice(rest);
                (lcp_kind::AUTH_PROTOCOL, data)
            }
            FuzzOption::Quality(proto) => {
                (lcp_kind::QUALITY_PROTOCOL, proto.to_be_bytes().to_vec())
            }
            FuzzOption::Magic(pick) => (
                lcp_kind::MAGIC_NUMBER,
                self.magic(pick).to_be_bytes().to_vec(),
            ),
            FuzzOption::Pfc => (lcp_kind::PFC, Vec::new()),
            FuzzOption::Acfc => (lcp_kind::ACFC, Vec::new()),
            FuzzOption::IpAddress(pick) => ip(3, pick),
            FuzzOption::PrimaryDns(pick) => ip(129, pick),
            FuzzOption::SecondaryDns(pick) => ip(131, pick),
            FuzzOption::Nbns(pick) => ip(130, pick),
            FuzzOption::VjCompression(proto) => (2, proto.to_be_bytes().to_vec()),
            FuzzOption::InterfaceId(pick) => {
                let id = match pick {
                    IfIdPick::Raw(id) => *id,
                    IfIdPick::Zero => [0; 8],
                    IfIdPick::ServerOwn => self.seen.interface_id.unwrap_or([0; 8]),
                };
                (1, id.to_vec())
            }
            FuzzOption::Raw { kind, data } => (*kind, data[..data.len().min(253)].to_vec()),
            FuzzOption::BadLength { kind, length } => {
                out.push(*kind);
                out.push(*length);
                return;
            }
        };
        let _ = writer.push(kind, &data);
    }

    fn crafted(&mut self, c: Crafted) {
        let proto = c.protocol.number();
        let last_request = self.seen.last_request.get(&proto).cloned();
        let id = match c.id {
            IdPick::Raw(id) => id,
            IdPick::LastRequest => last_request.as_ref().map_or(0, |(id, _)| *id),
            IdPick::LastSent => self.seen.last_id.get(&proto).copied().unwrap_or(0),
            IdPick::LastChallenge => self.seen.challenge.as_ref().map_or(0, |(id, _)| *id),
        };
        let mut body = Vec::new();
        match c.body {
            Body::Options(options) => {
                for option in &options {
                    self.push_option(option, &mut body);
                }
            }
            Body::LastRequest => {
                if let Some((_, options)) = &last_request {
                    body.extend_from_slice(options);
                }
            }
            Body::LastRequestSubset(mask) => {
                if let Some((_, options)) = &last_request {
                    for (i, raw) in OptionIter::new(options).enumerate() {
                        if let Ok(raw) = raw {
                            if mask & (1 << (i % 8)) != 0 {
                                body.extend_from_slice(raw.bytes);
                            }
                        }
                    }
                }
            }
            Body::Echo { magic, data } => {
                EchoData {
                    magic: self.magic(&magic),
                    data: &data,
                }
                .emit(&mut body);
            }
            Body::Pap {
                user,
                password,
                right_password,
            } => {
                let name = user.bytes();
                let password = if right_password {
                    user.password().to_vec()
                } else {
                    password
                };
                let name = &name[..name.len().min(255)];
                let password = &password[..password.len().min(255)];
                body.push(name.len() as u8);
                body.extend_from_slice(name);
                body.push(password.len() as u8);
                body.extend_from_slice(password);
            }
            Body::ChapResponse { value, user } => {
                let name = user.bytes();
                let challenge = self
                    .seen
                    .challenge
                    .as_ref()
                    .map(|(_, value)| value.clone())
                    .unwrap_or_default();
                let value = match value {
                    ChapValue::Raw(raw) => raw,
                    ChapValue::Md5 { right_password } => {
                        let secret: &[u8] = if right_password {
                            user.password()
                        } else {
                            b"guess"
                        };
                        ppp_auth::chap_md5_response(id, secret, &challenge).to_vec()
                    }
                    ChapValue::MsChapV2 {
                        right_password,
                        peer_challenge,
                    } => {
                        let Ok(auth_challenge) = <[u8; 16]>::try_from(challenge.as_slice()) else {
                            return;
                        };
                        let secret = if right_password {
                            String::from_utf8_lossy(user.password()).into_owned()
                        } else {
                            "guess".to_string()
                        };
                        let nt = ppp_auth::generate_nt_response(
                            &auth_challenge,
                            &peer_challenge,
                            &name,
                            &secret,
                        );
                        MsChapV2Response::new(peer_challenge, nt)
                            .to_bytes()
                            .to_vec()
                    }
                };
                let value = &value[..value.len().min(255)];
                body.push(value.len() as u8);
                body.extend_from_slice(value);
                body.extend_from_slice(&name);
            }
            Body::Bytes(bytes) => body = bytes,
            Body::Filler { len, byte } => body = vec![byte; usize::from(len % 8192)],
        }
        let length = match c.length {
            LengthPick::Exact => u16::try_from(body.len() + cp::HEADER_LEN).unwrap_or(u16::MAX),
            LengthPick::Raw(length) => length,
        };
        let mut packet = vec![c.code, id];
        packet.extend_from_slice(&length.to_be_bytes());
        packet.extend_from_slice(&body);
        packet.resize(packet.len() + usize::from(c.padding % 8), 0x5a);
        self.deliver(End::Server, proto, &packet);
    }

    fn run(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::ToServer { index, keep_copy } => {
                if let Some((proto, packet)) = take(&mut self.to_server, index, keep_copy) {
                    self.deliver(End::Server, proto, &packet);
                }
            }
            Op::ToClient { index, keep_copy } => {
                if let Some((proto, packet)) = take(&mut self.to_client, index, keep_copy) {
                    self.deliver(End::Client, proto, &packet);
                }
            }
            Op::DropToServer { index } => {
                take(&mut self.to_server, index, false);
            }
            Op::DropToClient { index } => {
                take(&mut self.to_client, index, false);
            }
            Op::Exchange { rounds } => {
                for _ in 0..=(rounds % 8) {
                    if self.to_server.is_empty() && self.to_client.is_empty() {
                        break;
                    }
                    for (proto, packet) in std::mem::take(&mut self.to_server) {
                        self.deliver(End::Server, proto, &packet);
                    }
                    for (proto, packet) in std::mem::take(&mut self.to_client) {
                        self.deliver(End::Client, proto, &packet);
                    }
                }
            }
            Op::Crafted(c) => self.crafted(*c),
            Op::RawFrame(bytes) => {
                if let Ok(frame) = Frame::parse(&bytes) {
                    let proto = u16::from(frame.protocol());
                    let payload = frame.payload.to_vec();
                    self.deliver(End::Server, proto, &payload);
                }
            }
            Op::Advance(step) => {
                let to = match step {
                    Step::Millis(ms) => now + Duration::from_millis(u64::from(ms)),
                    Step::Seconds(s) => now + Duration::from_secs(u64::from(s % 64)),
                    Step::NextTimeout => self.next_timeout().unwrap_or(now),
                };
                self.advance_to(to);
            }
            Op::Aaa(verdict) => self.verdict(verdict),
            Op::ServerClose => {
                self.server.close(now, DownReason::LocalClose);
                self.drain(End::Server, None);
            }
            Op::ClientClose => {
                self.client.close(now, DownReason::LocalClose);
                self.drain(End::Client, None);
            }
            Op::LowerDown => {
                for end in [End::Server, End::Client] {
                    self.link(end).lower_down(now);
                    self.drain(end, None);
                }
            }
        }
    }

    /// The peer and AAA fall silent: both links must end by themselves.
    fn finish(&mut self) {
        self.to_server.clear();
        self.to_client.clear();
        for _ in 0..MAX_FINAL_STEPS {
            let Some(next) = self.next_timeout() else {
                break;
            };
            self.advance_to(next);
            self.to_server.clear();
            self.to_client.clear();
        }
        for end in [End::Server, End::Client] {
            let describe = self.link(end).describe();
            assert!(
                self.track(end).down.is_some(),
                "{end:?} link outlived a silent peer: {describe}"
            );
            assert_eq!(self.link(end).poll_timeout(), None);
        }
    }
}

/// How the pair starts from proxy data.
struct ProxyStart {
    lcp: ProxyLcp,
    auth: ProxyAuth,
    /// What the client adopts, and whether it counts as authenticated.
    client_adopts: Option<(LcpAgreed, bool)>,
}

impl ProxyStart {
    fn new(
        sent: &ProxyConfreq,
        received: &ProxyConfreq,
        auth: &FuzzProxyAuth,
        (user, password): (&[u8], &[u8]),
        client_adopts: bool,
        client_authenticated: bool,
    ) -> Self {
        let confreq = |c: &ProxyConfreq, sent: bool| -> Option<Vec<u8>> {
            match c {
                ProxyConfreq::Absent => None,
                ProxyConfreq::Typical(method) if sent => Some(encode(&[
                    method.auth().option(),
                    LcpOption::MagicNumber(0x1234_5678),
                ])),
                ProxyConfreq::Typical(_) => Some(encode(&[
                    LcpOption::Mru(1492),
                    LcpOption::MagicNumber(0x0bad_cafe),
                ])),
                ProxyConfreq::Options(options) => {
                    let mut out = Vec::new();
                    // Only the server-independent options make sense here.
                    for option in options {
                        let mut writer = OptionWriter::new(&mut out);
                        let _ = match option {
                            FuzzOption::Mru(mru) => LcpOption::Mru(*mru).emit(&mut writer),
                            FuzzOption::Accm(a) => LcpOption::Accm(*a).emit(&mut writer),
                            FuzzOption::Auth(m) => m.auth().option().emit(&mut writer),
                            FuzzOption::Magic(MagicPick::Raw(m)) => {
                                LcpOption::MagicNumber(*m).emit(&mut writer)
                            }
                            FuzzOption::Pfc => LcpOption::Pfc.emit(&mut writer),
                            FuzzOption::Acfc => LcpOption::Acfc.emit(&mut writer),
                            FuzzOption::Raw { kind, data } => {
                                writer.push(*kind, &data[..data.len().min(253)])
                            }
                            _ => Ok(()),
                        };
                    }
                    Some(out)
                }
                ProxyConfreq::Bytes(bytes) => Some(bytes.clone()),
            }
        };
        let last_sent = confreq(sent, true);
        let last_received = confreq(received, false);
        let lcp = ProxyLcp {
            initial_received: last_received.clone(),
            last_sent: last_sent.clone(),
            last_received: last_received.clone(),
        };
        let auth = match auth {
            FuzzProxyAuth::Absent => ProxyAuth::default(),
            FuzzProxyAuth::Correct {
                chap: true,
                id,
                challenge,
            } => ProxyAuth {
                authen_type: Some(proxy_authen_type::CHAP),
                name: Some(user.to_vec()),
                challenge: Some(challenge.to_vec()),
                id: Some(*id),
                response: Some(ppp_auth::chap_md5_response(*id, password, challenge).to_vec()),
            },
            FuzzProxyAuth::Correct { chap: false, .. } => ProxyAuth {
                authen_type: Some(proxy_authen_type::PAP),
                name: Some(user.to_vec()),
                response: Some(password.to_vec()),
                ..ProxyAuth::default()
            },
            FuzzProxyAuth::Fields {
                authen_type,
                name,
                challenge,
                id,
                response,
            } => ProxyAuth {
                authen_type: *authen_type,
                name: name.clone(),
                challenge: challenge.clone(),
                id: *id,
                response: response.clone(),
            },
        };
        // The subscriber's view: it asked for Last Received and acked Last
        // Sent (what the LAC asked of it).
        let client_adopts = client_adopts.then(|| {
            let mut agreed = LcpAgreed::default();
            for option in lcp_options(last_received.as_deref().unwrap_or_default()) {
                match option {
                    LcpOption::Mru(mru) => agreed.our_mru = mru,
                    LcpOption::MagicNumber(magic) => agreed.our_magic = magic,
                    _ => {}
                }
            }
            for option in lcp_options(last_sent.as_deref().unwrap_or_default()) {
                match option {
                    LcpOption::Mru(mru) => agreed.peer_mru = mru,
                    LcpOption::MagicNumber(magic) => agreed.peer_magic = magic,
                    ref auth @ LcpOption::AuthProtocol { .. } => agreed.auth = auth.auth_method(),
                    _ => {}
                }
            }
            (agreed, client_authenticated)
        });
        ProxyStart {
            lcp,
            auth,
            client_adopts,
        }
    }
}

/// Every option of a Configure-Request, -Ack or -Nak reads as a typed option
/// of its protocol (what we ask for, ack or suggest is always well-formed).
fn check_options(proto: u16, data: &[u8]) {
    for raw in OptionIter::new(data) {
        let raw = raw.expect("sent options do not parse");
        let typed = match proto {
            protocol::LCP => LcpOption::parse(&raw).map(drop),
            protocol::IPCP => IpcpOption::parse(&raw).map(drop),
            _ => Ipv6cpOption::parse(&raw).map(drop),
        };
        typed.expect("sent option does not parse as its type");
    }
}

/// Remove (or copy, with `keep_copy`) the packet at `index` modulo length.
fn take<T: Clone>(queue: &mut VecDeque<T>, index: u8, keep_copy: bool) -> Option<T> {
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
    let (mut world, proxy) = World::new(&scenario);
    world.start(proxy);
    for op in scenario.ops.into_iter().take(MAX_OPS) {
        world.run(op);
    }
    world.finish();
});
