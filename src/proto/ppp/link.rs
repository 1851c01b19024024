//! One PPP link (RFC 1661 §3 phases) on top of an L2TP session: LCP, then
//! authentication, then IPCP and IPv6CP, with LCP keepalives, and — at the
//! LNS — proxy LCP and proxy authentication from the LAC (RFC 2661 §4.4.5).
//!
//! Sans-IO: PPP packets in (`receive`), packets to frame and send out
//! (`LinkEvent::Send`), AAA requests out and verdicts in, deadlines out.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::auth::{AuthClient, AuthFailure, AuthOutput, AuthServer, AuthSettings};
use super::fsm::{self, Fsm, FsmConfig, IdleFsm, Negotiator, Output};
use super::ipcp::{IdleIpcp, IpcpNegotiator, IpcpRole};
use super::ipv6cp::{IdleIpv6cp, Ipv6cpNegotiator};
use super::lcp::{IdleLcp, LcpAgreed, LcpConfig, LcpNegotiator, LcpRole};
use crate::proto::aaa::{AuthOutcome, AuthRequest};
use crate::proto::l2tp::event::{ProxyAuth, ProxyLcp};
use crate::wire::ppp::cp::{self, Code as WireCode};
use crate::wire::ppp::frame::protocol;
use crate::wire::ppp::lcp::{AuthMethod, EchoData, ProtocolRejectData};
use crate::wire::ppp::options::{CpOption, OptionIter};
use crate::wire::ppp::LcpOption;

/// Which end of the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRole {
    /// The LNS: demands authentication, assigns addresses.
    Server {
        /// Our address in IPCP (a gateway identifier).
        local: Ipv4Addr,
        /// DNS servers handed out.
        dns: [Option<Ipv4Addr>; 2],
    },
    /// A subscriber (tests and loadgen).
    Client {
        /// User name.
        user: Vec<u8>,
        /// Password.
        password: Vec<u8>,
    },
}

/// Link settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// Server or client.
    pub role: LinkRole,
    /// LCP options.
    pub lcp: LcpConfig,
    /// Automaton timers and counters (LCP, IPCP, IPv6CP), shared by the
    /// three automata of every link.
    pub fsm: Arc<FsmConfig>,
    /// Authentication timers and our CHAP name.
    pub auth: AuthSettings,
    /// Send an LCP Echo-Request this often once LCP is up (zero: never).
    pub echo_interval: Duration,
    /// Unanswered Echo-Requests in a row before the link is declared dead.
    pub echo_failures: u32,
    /// Run IPCP.
    pub ipcp: bool,
    /// Run IPv6CP.
    pub ipv6cp: bool,
    /// Adopt the LAC's proxy LCP and proxy authentication when acceptable.
    pub accept_proxy: bool,
}

/// The largest PPP payload that fits one tunnel packet without IP
/// fragmentation: the path MTU less the outer IP header (20 for IPv4, 40 for
/// IPv6), UDP (8), the longest L2TP data header we send (12: length and
/// sequence fields) and the PPP header (4: address, control, protocol).
pub fn mru_for_path(path_mtu: u16, ipv6_transport: bool) -> u16 {
    let ip = if ipv6_transport { 40 } else { 20 };
    path_mtu.saturating_sub(ip + 8 + 12 + 4).max(128)
}

impl LinkConfig {
    /// Defaults for an LNS.
    pub fn server(local: Ipv4Addr, dns: [Option<Ipv4Addr>; 2]) -> Self {
        LinkConfig {
            role: LinkRole::Server { local, dns },
            lcp: LcpConfig {
                // A 1500-byte path over IPv4 unless the operator says otherwise.
                mru: Some(mru_for_path(1500, false)),
                ..LcpConfig::default()
            },
            fsm: Arc::new(FsmConfig::default()),
            auth: AuthSettings::default(),
            echo_interval: Duration::from_secs(30),
            echo_failures: 5,
            ipcp: true,
            ipv6cp: true,
            accept_proxy: true,
        }
    }

    /// Defaults for a subscriber authenticating as `user`.
    pub fn client(user: &[u8], password: &[u8]) -> Self {
        LinkConfig {
            role: LinkRole::Client {
                user: user.to_vec(),
                password: password.to_vec(),
            },
            lcp: LcpConfig {
                auth: vec![AuthMethod::MsChapV2, AuthMethod::ChapMd5, AuthMethod::Pap],
                ..LcpConfig::default()
            },
            auth: AuthSettings {
                name: user.to_vec(),
                ..AuthSettings::default()
            },
            ..LinkConfig::server(Ipv4Addr::UNSPECIFIED, [None, None])
        }
    }
}

/// Randomness the owner draws for a new link (from its seeded generator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSeed {
    /// Seeds Magic-Numbers and interface identifiers.
    pub magic: u64,
    /// CHAP challenge (server) or MS-CHAPv2 peer challenge (client).
    pub challenge: [u8; 16],
    /// First CHAP / PAP identifier.
    pub id: u8,
}

/// Why a link went down; maps to a CDN result code at the session glue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DownReason {
    /// The peer sent LCP Terminate-Request.
    PeerTerminated,
    /// We closed it (`close`).
    LocalClose,
    /// LCP could not agree (Max-Configure / Max-Failure).
    NegotiationFailed,
    /// The peer refused every authentication method we demand.
    AuthRefused,
    /// Authentication failed.
    AuthFailed(AuthFailure),
    /// No LCP Echo-Reply for `echo_failures` intervals.
    EchoTimeout,
    /// The peer kept sending our own Magic-Number.
    LoopedBack,
    /// No network protocol came up.
    NoNetwork,
    /// No address could be assigned to the subscriber.
    NoAddress,
    /// The L2TP call under the link went away first.
    CallCleared,
}

/// What the owner must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// Frame this packet with `protocol` and send it to the peer.
    Send {
        /// PPP protocol number.
        protocol: u16,
        /// The packet (LCP, PAP, CHAP, IPCP, IPv6CP) from `offset` on. The
        /// bytes before it are spare room (see [`Link::set_headroom`]) where
        /// the owner may write its framing without copying the packet.
        packet: Vec<u8>,
        /// Where the packet starts in `packet`.
        offset: usize,
    },
    /// Ask AAA; answer with [`Link::auth_verdict`]. (Boxed, as is `Up`:
    /// events queue per link, and `Send` is the common one.)
    Authenticate(Box<AuthRequest>),
    /// The network phase is done: addresses agreed. Reported again, with
    /// what was agreed anew, after each [`LinkEvent::Renegotiating`].
    Up(Box<LinkUp>),
    /// LCP left Opened because the peer (or we) started negotiating afresh
    /// on a link that was up: no data may pass until the next `Up`
    /// (RFC 1661 §3.2, the link goes back to Establish). Not reported when
    /// the link is terminating; `Down` follows then.
    Renegotiating,
    /// The link is finished.
    Down(DownReason),
}

/// What the link agreed, reported once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkUp {
    /// LCP result.
    pub lcp: LcpAgreed,
    /// The authenticated (server) or our (client) user name.
    pub user: Vec<u8>,
    /// The subscriber's IPv4 address (server: assigned; client: learnt).
    pub ipv4: Option<Ipv4Addr>,
    /// DNS servers agreed.
    pub dns: [Option<Ipv4Addr>; 2],
    /// The peer's IPv6 interface identifier.
    pub ipv6_peer: Option<[u8; 8]>,
    /// Our IPv6 interface identifier.
    pub ipv6_local: Option<[u8; 8]>,
    /// The subscriber's /64 (upper 64 bits), which the node allocates from
    /// a prefix pool and announces in Router Advertisements (server role,
    /// IPv6CP open). The link itself always reports `None`.
    pub ipv6_prefix: Option<[u8; 8]>,
    /// LCP and authentication came from the LAC's proxy data.
    pub proxied: bool,
}

/// Where the link is (RFC 1661 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// LCP negotiating.
    Establish,
    /// Authenticating.
    Authenticate,
    /// NCPs negotiating.
    Network,
    /// Up and carrying traffic.
    Running,
    /// Finished.
    Dead,
}

#[derive(Debug)]
enum Auth {
    None,
    // Boxed: a link spends its life past authentication (see `trim`), so
    // the exchange's state should not widen every link.
    Server(Box<AuthServer>),
    Client(Box<AuthClient>),
    /// Proxy authentication sent to AAA; the verdict decides.
    Proxy,
}

/// A link as it negotiates (and whenever something is in flight): every
/// automaton, the authentication exchange and the event queue.
#[derive(Debug)]
struct Active {
    /// Shared by every link its owner creates with the same settings.
    config: Arc<LinkConfig>,
    // What authentication needs of the `LinkSeed`, each time it starts
    // (the Magic-Number seed went into the negotiators).
    challenge: [u8; 16],
    first_auth_id: u8,
    phase: Phase,
    lcp: Fsm,
    lcp_neg: LcpNegotiator,
    auth: Auth,
    user: Box<[u8]>,
    ipcp: Fsm,
    ipcp_neg: IpcpNegotiator,
    ipv6cp: Fsm,
    ipv6cp_neg: Ipv6cpNegotiator,
    /// NCPs that finished without opening.
    ipcp_failed: bool,
    ipv6cp_failed: bool,
    proxied: bool,
    echo_at: Option<Instant>,
    echo_outstanding: u32,
    echo_id: u8,
    down_reason: Option<DownReason>,
    up_reported: bool,
    /// Renegotiating was reported and Up has not followed yet.
    paused: bool,
    /// Spare bytes at the front of every packet buffer we build.
    headroom: u16,
    /// Drained after every input, so a handful at most: a `Vec` (taken
    /// from the front) is 8 bytes narrower than a `VecDeque` in every link.
    events: Vec<LinkEvent>,
}

/// The roles of a link's LCP and IPCP negotiators.
fn roles(config: &LinkConfig) -> (LcpRole, IpcpRole) {
    match &config.role {
        LinkRole::Server { local, dns } => (
            LcpRole::Authenticator,
            IpcpRole::Server {
                local: *local,
                peer: None,
                dns: *dns,
            },
        ),
        LinkRole::Client { .. } => (LcpRole::Peer, IpcpRole::Client { want_dns: true }),
    }
}

impl Active {
    fn new(config: Arc<LinkConfig>, seed: LinkSeed) -> Self {
        let (lcp_role, ipcp_role) = roles(&config);
        let user = match &config.role {
            LinkRole::Client { user, .. } => user.as_slice().into(),
            LinkRole::Server { .. } => Box::default(),
        };
        Active {
            lcp: Fsm::new(Arc::clone(&config.fsm)),
            lcp_neg: LcpNegotiator::new(config.lcp.clone(), lcp_role, seed.magic),
            ipcp: Fsm::new(Arc::clone(&config.fsm)),
            ipcp_neg: IpcpNegotiator::new(ipcp_role),
            ipv6cp: Fsm::new(Arc::clone(&config.fsm)),
            ipv6cp_neg: Ipv6cpNegotiator::new(seed.magic.rotate_left(17) ^ 0x5bd1_e995),
            config,
            challenge: seed.challenge,
            first_auth_id: seed.id,
            phase: Phase::Establish,
            auth: Auth::None,
            user,
            ipcp_failed: false,
            ipv6cp_failed: false,
            proxied: false,
            echo_at: None,
            echo_outstanding: 0,
            echo_id: 0,
            down_reason: None,
            up_reported: false,
            paused: false,
            headroom: 0,
            events: Vec::new(),
        }
    }

    /// Leave `bytes` of spare room in front of the packets this link builds
    /// (reported as [`LinkEvent::Send`]'s `offset`), so the owner can put
    /// its L2TP and PPP headers there in place.
    pub fn set_headroom(&mut self, bytes: usize) {
        // Headers in front of a PPP frame are tens of bytes.
        self.headroom = u16::try_from(bytes).unwrap_or(u16::MAX);
    }

    fn headroom(&self) -> usize {
        usize::from(self.headroom)
    }

    /// An empty packet buffer: `headroom` spare bytes, room for `capacity`.
    fn buffer(&self, capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.headroom() + capacity);
        out.resize(self.headroom(), 0);
        out
    }

    /// A one-line account of where each automaton is, for diagnostics.
    pub fn describe(&self) -> String {
        let auth = match &self.auth {
            Auth::None => "none",
            Auth::Server(_) => "server",
            Auth::Client(_) => "client",
            Auth::Proxy => "proxy",
        };
        let states = [&self.lcp, &self.ipcp, &self.ipv6cp].map(Fsm::state);
        describe(self.phase, states, auth)
    }

    /// Start negotiating LCP (the L2TP session is up).
    pub fn start(&mut self, now: Instant) {
        self.lcp.up(now, &mut self.lcp_neg);
        self.lcp.open(now, &mut self.lcp_neg);
        self.pump(now);
    }

    /// Start from the LAC's proxy data when acceptable (RFC 2661 §4.4.5),
    /// else negotiate as usual. Returns whether LCP was adopted.
    pub fn start_with_proxy(&mut self, now: Instant, lcp: &ProxyLcp, auth: &ProxyAuth) -> bool {
        let adopted = self.config.accept_proxy && self.adopt_proxy_lcp(lcp);
        if !adopted {
            self.start(now);
            return false;
        }
        self.proxied = true;
        self.lcp.adopt_opened();
        self.phase = Phase::Authenticate;
        self.arm_echo(now);
        let required = self.lcp_neg.agreed().auth;
        match (required, AuthRequest::from_proxy(auth)) {
            // The LAC already collected credentials by the method we would
            // have asked for: check them without a round trip to the peer.
            (Some(method), Ok(request)) if proxy_matches(method, &request) => {
                self.user = request.user().into();
                self.auth = Auth::Proxy;
                self.events.push(LinkEvent::Authenticate(Box::new(request)));
            }
            // Absent or unusable proxy authentication: authenticate ourselves.
            _ => self.begin_auth(now),
        }
        self.pump(now);
        true
    }

    /// Subscriber side of proxy LCP: the LAC negotiated LCP (and, when
    /// `authenticated`, authentication) with us on the LNS's behalf, so we
    /// go straight to the phase after it.
    pub fn start_adopted(&mut self, now: Instant, agreed: LcpAgreed, authenticated: bool) {
        self.proxied = true;
        self.lcp_neg.adopt(agreed);
        self.lcp.adopt_opened();
        self.phase = Phase::Authenticate;
        self.arm_echo(now);
        if authenticated {
            self.auth_done(now, Ok(()));
        } else {
            self.begin_auth(now);
        }
        self.pump(now);
    }

    /// §4.4.5: Last Sent LCP CONFREQ is what the LAC asked the subscriber
    /// for on our behalf, Last Received what the subscriber asked for. We
    /// adopt them only if we would have agreed to both ourselves.
    fn adopt_proxy_lcp(&mut self, lcp: &ProxyLcp) -> bool {
        let (Some(sent), Some(received)) = (&lcp.last_sent, &lcp.last_received) else {
            return false;
        };
        // The subscriber's request must be one we would ack.
        if !matches!(
            self.lcp_neg.judge_request(received, false),
            fsm::Verdict::Ack
        ) {
            return false;
        }
        let mut agreed = self.lcp_neg.agreed();
        for raw in OptionIter::new(sent) {
            let Ok(raw) = raw else { return false };
            match LcpOption::parse(&raw) {
                Ok(LcpOption::Mru(mru)) => agreed.our_mru = mru,
                Ok(LcpOption::MagicNumber(magic)) => agreed.our_magic = magic,
                Ok(option @ LcpOption::AuthProtocol { .. }) => match option.auth_method() {
                    Some(method) if self.config.lcp.auth.contains(&method) => {
                        agreed.auth = Some(method)
                    }
                    _ => return false,
                },
                Ok(LcpOption::Accm(_) | LcpOption::Pfc | LcpOption::Acfc) => {}
                _ => return false,
            }
        }
        // An authenticator must have had an authentication protocol agreed.
        if agreed.auth.is_none() && !self.config.lcp.auth.is_empty() {
            return false;
        }
        self.lcp_neg.adopt(agreed);
        true
    }

    /// AAA's answer to [`LinkEvent::Authenticate`]. On acceptance at the
    /// server, `address` is the subscriber's IPv4 address (from AAA or a
    /// pool); `None` with IPCP on means no address could be had.
    pub fn auth_verdict(&mut self, now: Instant, outcome: &AuthOutcome, address: Option<Ipv4Addr>) {
        // A verdict that arrives after the link ended (the call cleared
        // while AAA was deciding) has no one to tell.
        if self.phase == Phase::Dead {
            return;
        }
        if let Some(address) = address {
            self.ipcp_neg.set_peer_address(address);
        }
        match &mut self.auth {
            Auth::Server(server) => server.verdict(now, outcome),
            Auth::Proxy => {
                let result = match outcome {
                    AuthOutcome::Accept { .. } => Ok(()),
                    AuthOutcome::Reject { .. } => Err(AuthFailure::Rejected),
                };
                self.auth_done(now, result);
            }
            _ => {}
        }
        self.pump(now);
    }

    /// A PPP packet (after the frame header) with its protocol.
    pub fn receive(&mut self, now: Instant, proto: u16, packet: &[u8]) {
        if self.phase == Phase::Dead {
            return;
        }
        match proto {
            protocol::LCP => self.receive_lcp(now, packet),
            protocol::PAP | protocol::CHAP if self.phase == Phase::Authenticate => {
                match &mut self.auth {
                    Auth::Server(server) => server.receive(now, packet),
                    Auth::Client(client) => client.receive(now, packet),
                    _ => {}
                }
            }
            // A late or repeated authentication packet once past the phase
            // still gets its answer (a lost Success).
            protocol::PAP | protocol::CHAP => {
                if let Auth::Server(server) = &mut self.auth {
                    server.receive(now, packet);
                }
            }
            protocol::IPCP if self.config.ipcp && self.network_open() => {
                receive_cp(&mut self.ipcp, &mut self.ipcp_neg, now, packet)
            }
            protocol::IPV6CP if self.config.ipv6cp && self.network_open() => {
                receive_cp(&mut self.ipv6cp, &mut self.ipv6cp_neg, now, packet)
            }
            // NCP packets before the network phase are dropped (§3.5: only
            // LCP and authentication packets are allowed then).
            protocol::IPCP | protocol::IPV6CP
                if !self.network_open() && self.protocol_enabled(proto) => {}
            // §5.7: anything else draws a Protocol-Reject once LCP is open.
            _ if self.lcp.state() == fsm::State::Opened => self.protocol_reject(proto, packet),
            _ => {}
        }
        self.pump(now);
    }

    fn protocol_enabled(&self, proto: u16) -> bool {
        (proto == protocol::IPCP && self.config.ipcp)
            || (proto == protocol::IPV6CP && self.config.ipv6cp)
    }

    fn network_open(&self) -> bool {
        matches!(self.phase, Phase::Network | Phase::Running)
    }

    fn receive_lcp(&mut self, now: Instant, packet: &[u8]) {
        let Ok(repr) = cp::Repr::parse_bytes(packet) else {
            return;
        };
        match repr.code {
            // §5.5: the peer ends the link; remember why before the
            // automaton's Stopping period runs out.
            WireCode::TerminateRequest => {
                self.down_reason.get_or_insert(DownReason::PeerTerminated);
                self.lcp.receive(
                    now,
                    fsm::Code::TerminateRequest,
                    repr.identifier,
                    repr.data,
                    &mut self.lcp_neg,
                );
            }
            WireCode::EchoRequest => {
                // §5.8: answer only in Opened, with our Magic-Number.
                if self.lcp.receive_rxr(now) {
                    if let Ok(echo) = EchoData::parse(repr.data) {
                        let magic = self.lcp_neg.agreed().our_magic;
                        let mut out = self.buffer(8 + echo.data.len());
                        let _ = cp::emit_with(
                            u8::from(WireCode::EchoReply),
                            repr.identifier,
                            &mut out,
                            |buf| echo.reply(magic).emit(buf),
                        );
                        self.send_built(protocol::LCP, out);
                    }
                }
            }
            WireCode::EchoReply => {
                self.lcp.receive_rxr(now);
                self.echo_outstanding = 0;
            }
            WireCode::DiscardRequest => {
                self.lcp.receive_rxr(now);
            }
            WireCode::ProtocolReject => {
                // §5.7: the peer does not speak that protocol; for an NCP it
                // is final for that NCP (RXJ-), anything else is ignorable.
                if let Some(rejected) = repr.data.get(..2) {
                    match u16::from_be_bytes([rejected[0], rejected[1]]) {
                        protocol::IPCP => self.ipcp.receive_reject(now, true),
                        protocol::IPV6CP => self.ipv6cp.receive_reject(now, true),
                        protocol::LCP => self.lcp.receive_reject(now, true),
                        _ => self.lcp.receive_reject(now, false),
                    }
                }
            }
            code => {
                self.lcp.receive(
                    now,
                    fsm::Code::from(u8::from(code)),
                    repr.identifier,
                    repr.data,
                    &mut self.lcp_neg,
                );
                // RFC 1661 §6.2 gives an authenticator no way to do without
                // its demand: once the peer has refused (Rejected, or Nak'd
                // toward methods we do not offer) every method we have,
                // end the link rather than negotiate forever.
                if self.lcp_neg.auth_refused() && self.down_reason.is_none() {
                    self.down_reason = Some(DownReason::AuthRefused);
                    self.lcp
                        .close(now, b"no acceptable authentication protocol".to_vec());
                }
            }
        }
    }

    fn protocol_reject(&mut self, proto: u16, packet: &[u8]) {
        let id = self.echo_id.wrapping_add(0x80);
        let mru = usize::from(self.lcp_neg.agreed().peer_mru);
        let mut out = self.buffer(packet.len().min(mru) + 6);
        let _ = cp::emit_with(u8::from(WireCode::ProtocolReject), id, &mut out, |buf| {
            ProtocolRejectData {
                protocol: proto,
                information: packet,
            }
            .emit(buf, mru.saturating_sub(cp::HEADER_LEN))
        });
        self.send_built(protocol::LCP, out);
    }

    /// Close the link (administrative): LCP Terminate-Request.
    pub fn close(&mut self, now: Instant, reason: DownReason) {
        if self.phase == Phase::Dead {
            return;
        }
        self.down_reason.get_or_insert(reason);
        self.lcp.close(now, b"closed".to_vec());
        self.pump(now);
    }

    /// The L2TP session went away under us.
    pub fn lower_down(&mut self, now: Instant) {
        self.lcp.down(now);
        self.ipcp.down(now);
        self.ipv6cp.down(now);
        // A reason already known (a Terminate-Request seen, a close under
        // way) explains the ending better than the call clearing after it.
        self.finish(self.down_reason.unwrap_or(DownReason::CallCleared));
    }

    /// Queue a packet built elsewhere (no headroom).
    fn send(&mut self, protocol: u16, packet: Vec<u8>) {
        self.events.push(LinkEvent::Send {
            protocol,
            packet,
            offset: 0,
        });
    }

    /// Queue a packet built in [`Active::buffer`].
    fn send_built(&mut self, protocol: u16, packet: Vec<u8>) {
        self.events.push(LinkEvent::Send {
            protocol,
            packet,
            offset: self.headroom(),
        });
    }

    fn arm_echo(&mut self, now: Instant) {
        if !self.config.echo_interval.is_zero() {
            self.echo_at = Some(now + self.config.echo_interval);
        }
    }

    /// Move outputs of every automaton into events and react to layer
    /// signals; loops until nothing changes.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(output) = self.lcp.poll_output() {
                progressed = true;
                match output {
                    Output::Send { code, id, data } => {
                        let peer_mru = self.lcp_neg.agreed().peer_mru;
                        let packet = cp_packet(self.headroom(), code, id, &data, peer_mru);
                        self.send_built(protocol::LCP, packet)
                    }
                    Output::LayerUp => self.lcp_up(now),
                    Output::LayerDown => {
                        // §3.2: LCP leaving Opened (a renegotiation, or a
                        // terminate) takes the link back to Establish; when
                        // LCP opens again, authentication and the NCPs run
                        // again.
                        self.echo_at = None;
                        self.ipcp.down(now);
                        self.ipv6cp.down(now);
                        if self.phase != Phase::Dead {
                            self.phase = Phase::Establish;
                            self.auth = Auth::None;
                            let terminating = matches!(
                                self.lcp.state(),
                                fsm::State::Closing | fsm::State::Stopping
                            );
                            if self.up_reported && !self.paused && !terminating {
                                self.paused = true;
                                self.events.push(LinkEvent::Renegotiating);
                            }
                        }
                    }
                    Output::LayerFinished => self.lcp_finished(),
                    Output::LayerStarted => {}
                }
            }
            let peer_mru = self.lcp_neg.agreed().peer_mru;
            let mut ipcp_up = false;
            for (fsm, proto) in [
                (&mut self.ipcp, protocol::IPCP),
                (&mut self.ipv6cp, protocol::IPV6CP),
            ] {
                while let Some(output) = fsm.poll_output() {
                    progressed = true;
                    match output {
                        Output::Send { code, id, data } => self.events.push(LinkEvent::Send {
                            protocol: proto,
                            packet: cp_packet(
                                usize::from(self.headroom),
                                code,
                                id,
                                &data,
                                peer_mru,
                            ),
                            offset: usize::from(self.headroom),
                        }),
                        Output::LayerFinished => {
                            if proto == protocol::IPCP {
                                self.ipcp_failed = true;
                            } else {
                                self.ipv6cp_failed = true;
                            }
                        }
                        Output::LayerUp => ipcp_up |= proto == protocol::IPCP,
                        Output::LayerDown | Output::LayerStarted => {}
                    }
                }
            }
            // RFC 1332 leaves the server no way to force an address on a
            // peer that drops the option after Max-Failure turned our Naks
            // into Rejects; an empty request is then acked. An LNS
            // subscriber without its IPv4 address is of no use: end IPCP
            // (IPv6CP may still carry the session).
            if ipcp_up
                && matches!(self.config.role, LinkRole::Server { .. })
                && self.ipcp_neg.agreed().peer.is_none()
            {
                self.ipcp.close(now, b"no IPv4 address agreed".to_vec());
            }
            loop {
                let output = match &mut self.auth {
                    Auth::Server(server) => server.poll_output(),
                    Auth::Client(client) => client.poll_output(),
                    Auth::None | Auth::Proxy => None,
                };
                let Some(output) = output else { break };
                progressed = true;
                let proto = match self.lcp_neg.agreed().auth {
                    Some(AuthMethod::Pap) => protocol::PAP,
                    _ => protocol::CHAP,
                };
                match output {
                    AuthOutput::Send(packet) => self.send(proto, packet),
                    AuthOutput::Verify(request) => {
                        self.user = request.user().into();
                        self.events.push(LinkEvent::Authenticate(Box::new(request)));
                    }
                    AuthOutput::Done(result) => self.auth_done(now, result),
                }
            }
            progressed |= self.check_network(now);
            if !progressed {
                break;
            }
        }
    }

    fn lcp_up(&mut self, now: Instant) {
        if self.lcp_neg.looped_back() {
            return self.close(now, DownReason::LoopedBack);
        }
        self.arm_echo(now);
        self.echo_outstanding = 0;
        if self.phase == Phase::Establish {
            self.phase = Phase::Authenticate;
            self.begin_auth(now);
        }
    }

    fn begin_auth(&mut self, now: Instant) {
        let method = self.lcp_neg.agreed().auth;
        self.auth = match (&self.config.role, method) {
            (_, None) => {
                self.auth_done(now, Ok(()));
                return;
            }
            (LinkRole::Server { .. }, Some(method)) => Auth::Server(Box::new(AuthServer::start(
                now,
                method,
                self.config.auth.clone(),
                self.challenge,
                self.first_auth_id,
            ))),
            (LinkRole::Client { user, password }, Some(method)) => {
                Auth::Client(Box::new(AuthClient::start(
                    now,
                    method,
                    self.config.auth.clone(),
                    user,
                    password,
                    self.challenge,
                    self.first_auth_id,
                )))
            }
        };
    }

    fn auth_done(&mut self, now: Instant, result: Result<(), AuthFailure>) {
        if self.phase != Phase::Authenticate {
            return;
        }
        if let Err(failure) = result {
            // RFC 1994 §4.2: after a Failure the authenticator SHOULD
            // terminate the link.
            return self.close(now, DownReason::AuthFailed(failure));
        }
        self.phase = Phase::Network;
        // Each pass through the network phase (the first, or one after a
        // renegotiation) settles the NCPs afresh.
        self.ipcp_failed = !self.config.ipcp;
        self.ipv6cp_failed = !self.config.ipv6cp;
        if self.config.ipcp {
            self.ipcp.up(now, &mut self.ipcp_neg);
            self.ipcp.open(now, &mut self.ipcp_neg);
        }
        if self.config.ipv6cp {
            self.ipv6cp.up(now, &mut self.ipv6cp_neg);
            self.ipv6cp.open(now, &mut self.ipv6cp_neg);
        }
    }

    /// Report Up once every NCP that will open has; fail when none can.
    fn check_network(&mut self, now: Instant) -> bool {
        if self.phase != Phase::Network {
            return false;
        }
        let ipcp_open = self.ipcp.state() == fsm::State::Opened;
        let ipv6cp_open = self.ipv6cp.state() == fsm::State::Opened;
        if self.up_reported && !self.paused {
            // Up stands already, or the link is ending for want of a
            // network protocol.
            if ipcp_open || ipv6cp_open {
                self.phase = Phase::Running;
            }
            return false;
        }
        let ipcp_settled = ipcp_open || self.ipcp_failed;
        let ipv6cp_settled = ipv6cp_open || self.ipv6cp_failed;
        if !(ipcp_settled && ipv6cp_settled) {
            return false;
        }
        // After a renegotiation Up is reported again with what was agreed
        // this time (the address or the MRU may have changed).
        self.paused = false;
        self.up_reported = true;
        if !ipcp_open && !ipv6cp_open {
            // The close below ends the link.
            self.down_reason.get_or_insert(DownReason::NoNetwork);
            self.lcp.close(now, b"no network protocol".to_vec());
            return true;
        }
        self.phase = Phase::Running;
        self.report_up(ipcp_open, ipv6cp_open);
        true
    }

    fn report_up(&mut self, ipcp_open: bool, ipv6cp_open: bool) {
        let ipcp = self.ipcp_neg.agreed();
        let ipv6cp = self.ipv6cp_neg.agreed();
        let client = matches!(self.config.role, LinkRole::Client { .. });
        self.events.push(LinkEvent::Up(Box::new(LinkUp {
            lcp: self.lcp_neg.agreed(),
            user: self.user.to_vec(),
            ipv4: if !ipcp_open {
                None
            } else if client {
                ipcp.local
            } else {
                ipcp.peer
            },
            dns: ipcp.dns,
            ipv6_peer: ipv6cp.peer.filter(|_| ipv6cp_open),
            ipv6_local: ipv6cp.local.filter(|_| ipv6cp_open),
            ipv6_prefix: None,
            proxied: self.proxied,
        })));
    }

    fn lcp_finished(&mut self) {
        let reason = self.down_reason.unwrap_or(if self.lcp_neg.auth_refused() {
            DownReason::AuthRefused
        } else {
            DownReason::NegotiationFailed
        });
        self.finish(reason);
    }

    fn finish(&mut self, reason: DownReason) {
        if self.phase == Phase::Dead {
            return;
        }
        self.phase = Phase::Dead;
        self.echo_at = None;
        self.events.push(LinkEvent::Down(reason));
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    /// Give back memory an established link no longer needs (call when
    /// its events are drained). In the Running phase the acknowledged
    /// Configure-Requests and the authentication exchange are dropped:
    /// both ends are past them (the NCPs could only open after the peer
    /// had its Success), and a renegotiation starts both afresh. Nothing
    /// observable changes.
    pub fn trim(&mut self) {
        if self.phase == Phase::Running {
            self.lcp.trim();
            self.ipcp.trim();
            self.ipv6cp.trim();
            self.auth = Auth::None;
        }
        if self.events.is_empty() {
            self.events = Vec::new();
        }
    }

    /// When [`Active::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Dead {
            return None;
        }
        let auth = match &self.auth {
            Auth::Server(server) => server.poll_timeout(),
            Auth::Client(client) => client.poll_timeout(),
            _ => None,
        };
        [
            self.lcp.poll_timeout(),
            self.ipcp.poll_timeout(),
            self.ipv6cp.poll_timeout(),
            auth,
            self.echo_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Run the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            return;
        }
        self.lcp.handle_timeout(now, &mut self.lcp_neg);
        self.ipcp.handle_timeout(now, &mut self.ipcp_neg);
        self.ipv6cp.handle_timeout(now, &mut self.ipv6cp_neg);
        match &mut self.auth {
            Auth::Server(server) => server.handle_timeout(now),
            Auth::Client(client) => client.handle_timeout(now),
            _ => {}
        }
        if self.echo_at.is_some_and(|at| at <= now) {
            if self.echo_outstanding >= self.config.echo_failures {
                self.echo_at = None;
                self.down_reason.get_or_insert(DownReason::EchoTimeout);
                self.lcp.close(now, b"no echo reply".to_vec());
            } else {
                // §5.8: Echo-Request with our Magic-Number.
                self.echo_outstanding += 1;
                self.echo_id = self.echo_id.wrapping_add(1);
                let magic = self.lcp_neg.agreed().our_magic;
                let mut out = self.buffer(8);
                let _ = cp::emit_with(
                    u8::from(WireCode::EchoRequest),
                    self.echo_id,
                    &mut out,
                    |buf| EchoData { magic, data: &[] }.emit(buf),
                );
                self.send_built(protocol::LCP, out);
                self.echo_at = Some(now + self.config.echo_interval);
            }
        }
        self.pump(now);
    }
}

/// A running link with nothing in flight, reduced to what its future
/// depends on: the settings it shares, what was agreed, the automata's
/// idle states, the echo keepalive and the few counters that outlive a
/// negotiation. About a third of an [`Active`] link, kept inline, where a
/// negotiating link costs a box of its own.
#[derive(Debug)]
struct Parked {
    config: Arc<LinkConfig>,
    user: Box<[u8]>,
    echo_at: Option<Instant>,
    challenge: [u8; 16],
    lcp: IdleFsm,
    lcp_neg: IdleLcp,
    ipcp: IdleFsm,
    ipcp_neg: IdleIpcp,
    ipv6cp: IdleFsm,
    ipv6cp_neg: IdleIpv6cp,
    echo_outstanding: u32,
    first_auth_id: u8,
    echo_id: u8,
    headroom: u16,
    ipcp_failed: bool,
    ipv6cp_failed: bool,
    proxied: bool,
    down_reason: Option<DownReason>,
}

impl Active {
    /// The parked form of a link that runs with nothing in flight (call
    /// [`Active::trim`] first): the Running phase, Up reported and
    /// standing, no event queued, no authentication exchange kept, and
    /// every automaton idle. None otherwise. The user name moves out: the
    /// caller replaces this link with what it returns.
    fn park(&mut self) -> Option<Parked> {
        let settled = self.phase == Phase::Running
            && self.up_reported
            && !self.paused
            && self.events.is_empty()
            && matches!(self.auth, Auth::None);
        let (true, Some(lcp), Some(ipcp), Some(ipv6cp)) = (
            settled,
            self.lcp.idle(),
            self.ipcp.idle(),
            self.ipv6cp.idle(),
        ) else {
            return None;
        };
        Some(Parked {
            lcp,
            lcp_neg: self.lcp_neg.idle(),
            ipcp,
            ipcp_neg: self.ipcp_neg.idle(),
            ipv6cp,
            ipv6cp_neg: self.ipv6cp_neg.idle(),
            config: Arc::clone(&self.config),
            user: std::mem::take(&mut self.user),
            echo_at: self.echo_at,
            challenge: self.challenge,
            echo_outstanding: self.echo_outstanding,
            first_auth_id: self.first_auth_id,
            echo_id: self.echo_id,
            headroom: self.headroom,
            ipcp_failed: self.ipcp_failed,
            ipv6cp_failed: self.ipv6cp_failed,
            proxied: self.proxied,
            down_reason: self.down_reason,
        })
    }

    /// The link [`Active::park`] reduced, as it was (the automata's
    /// statistics start again from zero). The user name moves out: the
    /// caller replaces the parked form with what it returns.
    fn unpark(parked: &mut Parked) -> Self {
        let config = Arc::clone(&parked.config);
        let (lcp_role, ipcp_role) = roles(&config);
        Active {
            lcp: Fsm::from_idle(Arc::clone(&config.fsm), parked.lcp),
            lcp_neg: LcpNegotiator::from_idle(config.lcp.clone(), lcp_role, parked.lcp_neg.clone()),
            ipcp: Fsm::from_idle(Arc::clone(&config.fsm), parked.ipcp),
            ipcp_neg: IpcpNegotiator::from_idle(ipcp_role, parked.ipcp_neg),
            ipv6cp: Fsm::from_idle(Arc::clone(&config.fsm), parked.ipv6cp),
            ipv6cp_neg: Ipv6cpNegotiator::from_idle(parked.ipv6cp_neg.clone()),
            config,
            challenge: parked.challenge,
            first_auth_id: parked.first_auth_id,
            phase: Phase::Running,
            auth: Auth::None,
            user: std::mem::take(&mut parked.user),
            ipcp_failed: parked.ipcp_failed,
            ipv6cp_failed: parked.ipv6cp_failed,
            proxied: parked.proxied,
            echo_at: parked.echo_at,
            echo_outstanding: parked.echo_outstanding,
            echo_id: parked.echo_id,
            down_reason: parked.down_reason,
            up_reported: true,
            paused: false,
            headroom: parked.headroom,
            events: Vec::new(),
        }
    }
}

/// One PPP link.
///
/// A daemon holds up to a million of these, nearly all of them running
/// with nothing to negotiate. So a link that runs with nothing in flight is
/// kept parked ([`Link::trim`] parks it): only what its future depends on,
/// a third of the whole. Anything that needs more than a parked link can
/// answer (a packet, a verdict, a command, a due echo) brings the whole
/// link back first, exactly as it was, so parking changes nothing a peer
/// or the owner can see (the `ppp_link` fuzz target runs a never-parked
/// twin beside every link and compares what they do).
#[derive(Debug)]
pub struct Link(Form);

#[derive(Debug)]
enum Form {
    Active(Box<Active>),
    Parked(Parked),
}

impl Link {
    /// A link in the Establish phase; call [`Link::start`] or
    /// [`Link::start_with_proxy`].
    pub fn new(config: impl Into<Arc<LinkConfig>>, seed: LinkSeed) -> Self {
        Link(Form::Active(Box::new(Active::new(config.into(), seed))))
    }

    /// Bring a parked link back whole.
    fn unpark(&mut self) {
        if let Form::Parked(parked) = &mut self.0 {
            self.0 = Form::Active(Box::new(Active::unpark(parked)));
        }
    }

    /// Run `f` on the whole link, brought back first if it was parked.
    fn with_active<R: Default>(&mut self, f: impl FnOnce(&mut Active) -> R) -> R {
        self.unpark();
        match &mut self.0 {
            Form::Active(active) => f(active),
            // `unpark` left none.
            Form::Parked(_) => R::default(),
        }
    }

    /// Leave `bytes` of spare room in front of the packets this link builds
    /// (reported as [`LinkEvent::Send`]'s `offset`), so the owner can put
    /// its L2TP and PPP headers there in place.
    pub fn set_headroom(&mut self, bytes: usize) {
        self.with_active(|link| link.set_headroom(bytes))
    }

    /// The authenticated (server) or our own (client) user name; empty
    /// before authentication and when there is none.
    pub fn user(&self) -> &[u8] {
        match &self.0 {
            Form::Active(active) => &active.user,
            Form::Parked(parked) => &parked.user,
        }
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        match &self.0 {
            Form::Active(active) => active.phase,
            Form::Parked(_) => Phase::Running,
        }
    }

    /// Whether the link is parked (see [`Link`]).
    pub fn is_parked(&self) -> bool {
        matches!(self.0, Form::Parked(_))
    }

    /// A one-line account of where each automaton is, for diagnostics.
    pub fn describe(&self) -> String {
        match &self.0 {
            Form::Active(active) => active.describe(),
            Form::Parked(parked) => {
                let states = [parked.lcp, parked.ipcp, parked.ipv6cp].map(|idle| idle.state());
                describe(Phase::Running, states, "none")
            }
        }
    }

    /// The state of the LCP automaton.
    pub fn lcp_state(&self) -> fsm::State {
        match &self.0 {
            Form::Active(active) => active.lcp.state(),
            Form::Parked(parked) => parked.lcp.state(),
        }
    }

    /// Start negotiating LCP (the L2TP session is up).
    pub fn start(&mut self, now: Instant) {
        self.with_active(|link| link.start(now))
    }

    /// Start from the LAC's proxy data when acceptable (RFC 2661 §4.4.5),
    /// else negotiate as usual. Returns whether LCP was adopted.
    pub fn start_with_proxy(&mut self, now: Instant, lcp: &ProxyLcp, auth: &ProxyAuth) -> bool {
        self.with_active(|link| link.start_with_proxy(now, lcp, auth))
    }

    /// Subscriber side of proxy LCP: the LAC negotiated LCP (and, when
    /// `authenticated`, authentication) with us on the LNS's behalf, so we
    /// go straight to the phase after it.
    pub fn start_adopted(&mut self, now: Instant, agreed: LcpAgreed, authenticated: bool) {
        self.with_active(|link| link.start_adopted(now, agreed, authenticated))
    }

    /// AAA's answer to [`LinkEvent::Authenticate`]. On acceptance at the
    /// server, `address` is the subscriber's IPv4 address (from AAA or a
    /// pool); `None` with IPCP on means no address could be had.
    pub fn auth_verdict(&mut self, now: Instant, outcome: &AuthOutcome, address: Option<Ipv4Addr>) {
        self.with_active(|link| link.auth_verdict(now, outcome, address))
    }

    /// A PPP packet (after the frame header) with its protocol.
    pub fn receive(&mut self, now: Instant, proto: u16, packet: &[u8]) {
        self.with_active(|link| link.receive(now, proto, packet))
    }

    /// Close the link (administrative): LCP Terminate-Request.
    pub fn close(&mut self, now: Instant, reason: DownReason) {
        self.with_active(|link| link.close(now, reason))
    }

    /// The L2TP session went away under us.
    pub fn lower_down(&mut self, now: Instant) {
        self.with_active(|link| link.lower_down(now))
    }

    /// Next event. A parked link has none.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        match &mut self.0 {
            Form::Active(active) => active.poll_event(),
            Form::Parked(_) => None,
        }
    }

    /// Give back memory the link no longer needs (call when its events
    /// are drained): in the Running phase the acknowledged
    /// Configure-Requests and the authentication exchange are dropped
    /// (both ends are past them: the NCPs could only open after the peer
    /// had its Success, and a renegotiation starts both afresh), and a
    /// link left with nothing in flight is parked. Nothing observable
    /// changes.
    pub fn trim(&mut self) {
        let Form::Active(active) = &mut self.0 else {
            return;
        };
        active.trim();
        if let Some(parked) = active.park() {
            self.0 = Form::Parked(parked);
        }
    }

    /// [`Link::trim`] without parking: for tests and fuzz targets that
    /// run a never-parked twin beside a link to show parking changes
    /// nothing.
    #[doc(hidden)]
    pub fn trim_unparked(&mut self) {
        self.with_active(Active::trim)
    }

    /// When [`Link::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.0 {
            Form::Active(active) => active.poll_timeout(),
            // Nothing runs but the keepalive.
            Form::Parked(parked) => parked.echo_at,
        }
    }

    /// Run the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Form::Parked(parked) = &self.0 {
            if parked.echo_at.is_none_or(|at| at > now) {
                return;
            }
        }
        self.with_active(|link| link.handle_timeout(now))
    }
}

/// The one-line account of [`Link::describe`]: phase, the LCP, IPCP and
/// IPv6CP automata's states, the authentication exchange kept.
fn describe(phase: Phase, [lcp, ipcp, ipv6cp]: [fsm::State; 3], auth: &str) -> String {
    format!("{phase:?} lcp={lcp:?} ipcp={ipcp:?} ipv6cp={ipv6cp:?} auth={auth}")
}

/// Whether proxy credentials fit the method agreed in the proxied LCP.
fn proxy_matches(method: AuthMethod, request: &AuthRequest) -> bool {
    matches!(
        (method, request),
        (AuthMethod::Pap, AuthRequest::Pap { .. })
            | (AuthMethod::ChapMd5, AuthRequest::Chap { .. })
    )
}

/// Encode an automaton's packet (code, id, data) after `headroom` spare
/// bytes. RFC 1661 §5.6: the Rejected-Packet of a Code-Reject "MUST be
/// truncated to comply with the peer's established MRU"; the automaton
/// leaves that to us.
fn cp_packet(headroom: usize, code: fsm::Code, id: u8, data: &[u8], peer_mru: u16) -> Vec<u8> {
    let data = match code {
        fsm::Code::CodeReject => {
            let room = usize::from(peer_mru).saturating_sub(cp::HEADER_LEN);
            &data[..data.len().min(room)]
        }
        _ => data,
    };
    let mut out = Vec::with_capacity(headroom + 4 + data.len());
    out.resize(headroom, 0);
    let _ = cp::emit_with(u8::from(code), id, &mut out, |buf| {
        buf.extend_from_slice(data)
    });
    out
}

/// Feed an NCP packet to its automaton.
fn receive_cp<N: Negotiator>(fsm: &mut Fsm, negotiator: &mut N, now: Instant, packet: &[u8]) {
    let Ok(repr) = cp::Repr::parse_bytes(packet) else {
        return;
    };
    fsm.receive(
        now,
        fsm::Code::from(u8::from(repr.code)),
        repr.identifier,
        repr.data,
        negotiator,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packets `link` queued for `proto`, in order.
    fn sent(link: &mut Link, proto: u16) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        while let Some(event) = link.poll_event() {
            if let LinkEvent::Send {
                protocol,
                packet,
                offset,
            } = event
            {
                if protocol == proto {
                    packets.push(packet[offset..].to_vec());
                }
            }
        }
        packets
    }

    /// alice's PAP Authenticate-Request.
    fn alice_pap_request() -> Vec<u8> {
        let mut request = Vec::new();
        crate::wire::ppp::pap::Pap::Request {
            identifier: 5,
            peer_id: b"alice",
            password: b"secret",
        }
        .emit(&mut request)
        .unwrap();
        request
    }

    /// A server link demanding `methods` whose LCP is Opened with a peer
    /// that asked for `peer_mru`.
    fn opened_server(now: Instant, peer_mru: u16, methods: &[AuthMethod]) -> Link {
        let mut config = LinkConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None]);
        config.lcp.auth = methods.to_vec();
        let seed = LinkSeed {
            magic: 1,
            challenge: [0; 16],
            id: 0,
        };
        let mut link = Link::new(config, seed);
        link.start(now);
        let request = sent(&mut link, protocol::LCP).remove(0);
        let ours = cp::Repr::parse_bytes(&request).unwrap();
        let ack = cp_packet(0, fsm::Code::ConfigureAck, ours.identifier, ours.data, 1500);
        link.receive(now, protocol::LCP, &ack);
        let mut options = vec![1, 4];
        options.extend_from_slice(&peer_mru.to_be_bytes());
        let theirs = cp_packet(0, fsm::Code::ConfigureRequest, 1, &options, 1500);
        link.receive(now, protocol::LCP, &theirs);
        assert_eq!(link.lcp_state(), fsm::State::Opened);
        sent(&mut link, protocol::LCP);
        link
    }

    /// Move every event of `from` to `to` (packets) or answer it (AAA,
    /// when `accept` gives an address to accept with; none: `from` must
    /// not ask), counting Up and Renegotiating into `seen`. False when
    /// there was nothing.
    fn deliver(
        now: Instant,
        from: &mut Link,
        to: &mut Link,
        accept: Option<Ipv4Addr>,
        seen: &mut (usize, usize),
    ) -> bool {
        let mut any = false;
        while let Some(event) = from.poll_event() {
            any = true;
            match event {
                LinkEvent::Send {
                    protocol,
                    packet,
                    offset,
                } => to.receive(now, protocol, &packet[offset..]),
                LinkEvent::Authenticate(_) if accept.is_some() => {
                    let outcome = AuthOutcome::Accept {
                        attributes: Default::default(),
                    };
                    from.auth_verdict(now, &outcome, accept);
                }
                LinkEvent::Up(_) => seen.0 += 1,
                LinkEvent::Renegotiating => seen.1 += 1,
                other => panic!("unexpected: {other:?}"),
            }
        }
        any
    }

    /// Shuttle packets between `server` and `client` until both are quiet,
    /// accepting every authentication with `address`. Returns how many Up
    /// and Renegotiating events each reported, (server, client).
    fn converse(
        now: Instant,
        server: &mut Link,
        client: &mut Link,
        address: Ipv4Addr,
    ) -> ((usize, usize), (usize, usize)) {
        let (mut server_seen, mut client_seen) = ((0, 0), (0, 0));
        loop {
            let from_server = deliver(now, server, client, Some(address), &mut server_seen);
            let from_client = deliver(now, client, server, None, &mut client_seen);
            server.trim();
            client.trim();
            if !(from_server || from_client) {
                return (server_seen, client_seen);
            }
        }
    }

    /// A running link with nothing in flight parks on `trim`, and comes
    /// back whole for whatever a parked link cannot answer: its keepalive
    /// (an echo due, the reply) and a renegotiation the peer starts, after
    /// which it parks again with what was agreed anew. Also when the
    /// subscriber does not speak IPv6CP (the server's IPv6CP ends Stopped
    /// by its Protocol-Reject, with a Configure-Request of its own sent:
    /// the daemon's common case, which first kept such links unparked).
    #[test]
    fn a_running_link_parks_and_comes_back_whole() {
        for client_ipv6cp in [true, false] {
            running_link_parks(client_ipv6cp);
        }
    }

    fn running_link_parks(client_ipv6cp: bool) {
        let start = Instant::now();
        let address = Ipv4Addr::new(100, 64, 0, 7);
        let mut config = LinkConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None]);
        config.lcp.auth = vec![AuthMethod::ChapMd5];
        let seed = LinkSeed {
            magic: 7,
            challenge: [3; 16],
            id: 1,
        };
        let mut server = Link::new(config, seed);
        let mut client_config = LinkConfig::client(b"alice", b"secret");
        client_config.ipv6cp = client_ipv6cp;
        let mut client = Link::new(client_config, seed);
        server.start(start);
        client.start(start);
        let up = converse(start, &mut server, &mut client, address);
        assert_eq!(up, ((1, 0), (1, 0)));
        assert!(server.is_parked() && client.is_parked());
        assert_eq!(server.phase(), Phase::Running);
        assert_eq!(server.user(), b"alice");
        assert_eq!(server.lcp_state(), fsm::State::Opened);
        let ipv6cp = if client_ipv6cp { "Opened" } else { "Stopped" };
        assert!(server
            .describe()
            .ends_with(&format!("ipv6cp={ipv6cp} auth=none")));
        let echo_at = server.poll_timeout().expect("keepalive armed");
        assert_eq!(echo_at, start + Duration::from_secs(30));

        // Nothing due: a parked link stays parked.
        server.handle_timeout(echo_at - Duration::from_millis(1));
        assert!(server.is_parked());
        // The echo: sent, answered, parked again with the next one armed.
        server.handle_timeout(echo_at);
        assert!(!server.is_parked());
        let echo = sent(&mut server, protocol::LCP);
        assert_eq!(echo.len(), 1);
        client.receive(echo_at, protocol::LCP, &echo[0]);
        let reply = sent(&mut client, protocol::LCP);
        assert_eq!(reply.len(), 1);
        server.receive(echo_at, protocol::LCP, &reply[0]);
        server.trim();
        client.trim();
        assert!(server.is_parked() && client.is_parked());
        assert_eq!(
            server.poll_timeout(),
            Some(echo_at + Duration::from_secs(30))
        );

        // The subscriber renegotiates LCP (a fresh Configure-Request): the
        // server comes back, reports Renegotiating, authenticates again,
        // reports Up again, and parks.
        let mut options = vec![1, 4];
        options.extend_from_slice(&1400u16.to_be_bytes());
        let request = cp_packet(0, fsm::Code::ConfigureRequest, 99, &options, 1500);
        server.receive(echo_at, protocol::LCP, &request);
        assert!(!server.is_parked());
        let again = converse(echo_at, &mut server, &mut client, address);
        assert_eq!(again.0, (1, 1), "server: Up and Renegotiating once each");
        assert!(server.is_parked() && client.is_parked());
        assert_eq!(server.user(), b"alice");
    }

    /// Found by the `ppp_link` fuzz target: a Code-Reject carried the whole
    /// rejected packet, however far past the peer's MRU (RFC 1661 §5.6:
    /// the Rejected-Packet "MUST be truncated to comply with the peer's
    /// established MRU").
    #[test]
    fn code_reject_fits_the_peer_mru() {
        let now = Instant::now();
        let mut link = opened_server(now, 600, &[]);
        let unknown = cp_packet(0, fsm::Code::Unknown(0x20), 9, &[0xaa; 2000], u16::MAX);
        link.receive(now, protocol::LCP, &unknown);
        let rejects = sent(&mut link, protocol::LCP);
        assert_eq!(rejects.len(), 1);
        let reject = cp::Repr::parse_bytes(&rejects[0]).unwrap();
        assert_eq!(reject.code, WireCode::CodeReject);
        assert_eq!(rejects[0].len(), 600);
        // A copy of the packet from its Code on, cut at the MRU.
        assert_eq!(reject.data, &unknown[..596]);

        // A short packet is copied whole.
        let short = cp_packet(0, fsm::Code::Unknown(0x21), 10, &[1, 2, 3], u16::MAX);
        link.receive(now, protocol::LCP, &short);
        let rejects = sent(&mut link, protocol::LCP);
        assert_eq!(cp::Repr::parse_bytes(&rejects[0]).unwrap().data, short);
    }

    /// Noticed while writing the `ppp_link` target: a peer that keeps
    /// asking for its own address gets Naks, then (Max-Failure) a Reject,
    /// drops the option and has an empty request acked. IPCP must not come
    /// up without the subscriber's address; it ends instead.
    #[test]
    fn ipcp_without_the_assigned_address_ends() {
        let now = Instant::now();
        let assigned = Ipv4Addr::new(100, 64, 0, 1);
        let mut link = opened_server(now, 1500, &[AuthMethod::Pap]);
        link.receive(now, protocol::PAP, &alice_pap_request());
        let accept = AuthOutcome::Accept {
            attributes: Default::default(),
        };
        link.auth_verdict(now, &accept, Some(assigned));
        assert_eq!(link.phase(), Phase::Network);
        // Ack the server's own IPCP request.
        let ours = sent(&mut link, protocol::IPCP).remove(0);
        let ours = cp::Repr::parse_bytes(&ours).unwrap();
        let ack = cp_packet(0, fsm::Code::ConfigureAck, ours.identifier, ours.data, 1500);
        link.receive(now, protocol::IPCP, &ack);
        // The peer insists on 10.9.9.9 until the server stops Nak-ing.
        let insist = [3, 6, 10, 9, 9, 9];
        let mut id = 1;
        loop {
            let req = cp_packet(0, fsm::Code::ConfigureRequest, id, &insist, 1500);
            link.receive(now, protocol::IPCP, &req);
            let reply = sent(&mut link, protocol::IPCP).remove(0);
            let reply = cp::Repr::parse_bytes(&reply).unwrap();
            id += 1;
            if reply.code == WireCode::ConfigureReject {
                break;
            }
            assert_eq!(reply.code, WireCode::ConfigureNak);
            assert!(id < 20, "never rejected");
        }
        // It drops the option; the empty request is acked, and IPCP, having
        // opened without an address, is terminated at once.
        let empty = cp_packet(0, fsm::Code::ConfigureRequest, id, &[], 1500);
        link.receive(now, protocol::IPCP, &empty);
        let replies: Vec<WireCode> = sent(&mut link, protocol::IPCP)
            .iter()
            .map(|p| cp::Repr::parse_bytes(p).unwrap().code)
            .collect();
        assert_eq!(
            replies,
            [WireCode::ConfigureAck, WireCode::TerminateRequest]
        );
        assert!(!std::iter::from_fn(|| link.poll_event()).any(|e| matches!(e, LinkEvent::Up(_))));
        assert_ne!(link.phase(), Phase::Running);
    }

    /// Found by the `ppp_link` fuzz target: an AAA verdict that came after
    /// the link went down still sent a PAP Nak (or Ack, or CHAP Success or
    /// Failure) on the finished link.
    #[test]
    fn verdict_after_down_sends_nothing() {
        let now = Instant::now();
        let mut link = opened_server(now, 1500, &[AuthMethod::Pap]);
        assert_eq!(link.phase(), Phase::Authenticate);
        link.receive(now, protocol::PAP, &alice_pap_request());
        assert!(matches!(
            link.poll_event(),
            Some(LinkEvent::Authenticate(_))
        ));
        link.lower_down(now);
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Down(DownReason::CallCleared))
        );
        for outcome in [
            AuthOutcome::Accept {
                attributes: Default::default(),
            },
            AuthOutcome::Reject {
                reason: crate::proto::aaa::RejectReason::BadCredential,
            },
        ] {
            link.auth_verdict(now, &outcome, Some(Ipv4Addr::new(100, 64, 0, 1)));
            assert_eq!(link.poll_event(), None);
        }
        assert_eq!(link.phase(), Phase::Dead);
    }
}
