//! The sans-IO L2TP control endpoint: every tunnel of one shard.
//!
//! Driving it looks like driving quinn-proto's `Connection`:
//!
//! 1. feed each received control datagram to [`Endpoint::handle_datagram`],
//!    and call [`Endpoint::handle_timeout`] when [`Endpoint::poll_timeout`]
//!    comes due;
//! 2. drain [`Endpoint::poll_transmit`] into the socket and
//!    [`Endpoint::poll_event`] into the layers above (PPP, AAA, metrics);
//! 3. issue commands (`connect`, `open_session`, `close_*`) whenever.
//!
//! Nothing here reads the clock or does I/O, so tests run it with simulated
//! time and a seeded RNG.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rustc_hash::FxHashMap;

use super::admission::RateLimit;
use super::config::{L2tpConfig, Role};
use super::event::{CallInfo, Event, TunnelDownReason};
use super::ids::{IdAllocator, ShardSpec};
use super::reliable::ChannelStats;
use super::secrets::SharedSecret;
use super::session::{CallRefusal, SessionState};
use super::tunnel::{Tunnel, TunnelState};
use crate::wire::l2tp::avps::{error_code, stopccn_result, CallErrors};
use crate::wire::l2tp::{Avp, ControlMessage, HeaderRepr, MessageType, Packet, ResultCode};

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub remote: SocketAddr,
    /// A complete L2TP packet.
    pub payload: Vec<u8>,
}

/// Why a datagram was not processed by any tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dropped {
    /// The L2TP header is malformed.
    MalformedHeader,
    /// A data message: the caller's fast path handles those.
    NotControl,
    /// No tunnel has this ID.
    UnknownTunnel,
    /// The tunnel exists but the datagram came from another address.
    WrongPeer,
    /// A message to tunnel 0 that is not a usable SCCRQ.
    NotSccrq,
    /// This endpoint does not accept tunnels (LAC role).
    NotAccepting,
    /// A new SCCRQ was refused with a StopCCN (limits, version, auth).
    Refused,
}

impl Dropped {
    /// Every reason, for metrics.
    pub const ALL: [Dropped; 7] = [
        Dropped::MalformedHeader,
        Dropped::NotControl,
        Dropped::UnknownTunnel,
        Dropped::WrongPeer,
        Dropped::NotSccrq,
        Dropped::NotAccepting,
        Dropped::Refused,
    ];

    /// Snake-case name for a metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Dropped::MalformedHeader => "malformed_header",
            Dropped::NotControl => "not_control",
            Dropped::UnknownTunnel => "unknown_tunnel",
            Dropped::WrongPeer => "wrong_peer",
            Dropped::NotSccrq => "not_sccrq",
            Dropped::NotAccepting => "not_accepting",
            Dropped::Refused => "refused",
        }
    }
}

/// Counters an endpoint keeps (plain integers: one endpoint per thread).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Control messages received, by Message Type value (index 0: unknown).
    pub messages_in: [u64; 17],
    /// Control messages queued for sending, by Message Type value.
    pub messages_out: [u64; 17],
    /// ZLB acks received.
    pub zlb_in: u64,
    /// Datagrams dropped before reaching a tunnel, by reason.
    pub dropped: HashMap<Dropped, u64>,
    /// Control message bodies that failed to parse.
    pub malformed_messages: u64,
    /// Messages carrying an unknown AVP with the M bit (§4.1).
    pub unknown_mandatory_avps: u64,
    /// Messages that did not fit the tunnel's or session's state.
    pub fsm_errors: u64,
    /// Duplicate control messages (re-acked).
    pub duplicates: u64,
    /// Out-of-order control messages held for later.
    pub out_of_order: u64,
    /// Control messages beyond our receive window (dropped).
    pub out_of_window: u64,
    /// Messages after StopCCN (acked, otherwise ignored).
    pub ignored_while_stopping: u64,
    /// Session messages for sessions we do not have.
    pub unknown_session: u64,
    /// Tunnel authentication failures.
    pub auth_failures: u64,
    /// Tunnels that completed setup.
    pub tunnels_established: u64,
    /// Tunnels that went down (any reason).
    pub tunnels_closed: u64,
    /// Tunnels whose peer stopped answering.
    pub tunnel_timeouts: u64,
    /// Tunnels and sessions cleared because setup took too long.
    pub setup_timeouts: u64,
    /// SCCRQs refused (limits, version, authentication).
    pub tunnels_refused: u64,
    /// Sessions that completed setup.
    pub sessions_established: u64,
    /// Sessions that went down (any reason).
    pub sessions_closed: u64,
    /// Incoming or outgoing calls refused.
    pub sessions_refused: u64,
    /// SCCRQs refused by the admission rate.
    pub tunnels_rate_limited: u64,
    /// Calls refused by the admission rate.
    pub sessions_rate_limited: u64,
    /// Messages we failed to encode (a bug or oversized configuration).
    pub emit_failures: u64,
}

impl EndpointStats {
    fn index(message_type: MessageType) -> usize {
        match u16::from(message_type) {
            n @ 1..=16 => usize::from(n),
            _ => 0,
        }
    }

    pub(crate) fn count_in(&mut self, message_type: MessageType) {
        self.messages_in[Self::index(message_type)] += 1;
    }

    pub(crate) fn count_out(&mut self, message_type: MessageType) {
        self.messages_out[Self::index(message_type)] += 1;
    }

    /// Messages received of one type.
    pub fn received(&self, message_type: MessageType) -> u64 {
        self.messages_in[Self::index(message_type)]
    }

    /// Messages sent of one type.
    pub fn sent(&self, message_type: MessageType) -> u64 {
        self.messages_out[Self::index(message_type)]
    }

    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: Dropped) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }
}

/// What a tunnel or session handler may touch besides the tunnel itself.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) config: &'a L2tpConfig,
    pub(crate) rng: &'a mut StdRng,
    pub(crate) events: &'a mut VecDeque<Event>,
    pub(crate) stats: &'a mut EndpointStats,
    pub(crate) half_open_tunnels: &'a mut usize,
    pub(crate) half_open_sessions: &'a mut usize,
    pub(crate) session_rate: &'a mut Option<RateLimit>,
}

/// Why a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// No such tunnel (or it is stopping).
    UnknownTunnel,
    /// No such session.
    UnknownSession,
    /// The command does not fit this endpoint's role.
    WrongRole,
    /// The tunnel is not established yet.
    TunnelNotUp,
    /// A configured limit or the ID space is exhausted.
    NoResources,
}

impl From<CallRefusal> for CommandError {
    fn from(refusal: CallRefusal) -> Self {
        match refusal {
            CallRefusal::TunnelNotUp => CommandError::TunnelNotUp,
            CallRefusal::NoResources => CommandError::NoResources,
        }
    }
}

/// A snapshot of one tunnel, for management and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSummary {
    /// Our tunnel ID.
    pub id: u16,
    /// The peer's tunnel ID.
    pub peer_id: u16,
    /// The peer's address.
    pub remote: SocketAddr,
    /// State.
    pub state: TunnelState,
    /// Sessions in any state.
    pub sessions: usize,
    /// The peer's host name.
    pub host_name: Vec<u8>,
    /// Our control messages queued or not yet acknowledged.
    pub unacked: usize,
}

/// Every tunnel of one shard, LNS or LAC role.
#[derive(Debug)]
pub struct Endpoint {
    config: L2tpConfig,
    rng: StdRng,
    /// Keys are IDs we allocated: a fast non-keyed hash is safe. `by_peer`
    /// is keyed by what the peer chose and keeps the keyed default hasher.
    tunnels: FxHashMap<u16, Tunnel>,
    /// (peer address, peer's tunnel ID) → ours, to recognise a retransmitted
    /// SCCRQ (it still carries tunnel ID 0).
    by_peer: HashMap<(SocketAddr, u16), u16>,
    tunnel_ids: IdAllocator,
    /// Lazy min-heap of tunnel deadlines; an entry is live when it equals
    /// the tunnel's `scheduled`.
    timers: BinaryHeap<Reverse<(Instant, u16)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: EndpointStats,
    /// Reliable-delivery counters of tunnels already removed, so totals
    /// since start never go down when a tunnel leaves.
    retired_channels: ChannelStats,
    half_open_tunnels: usize,
    half_open_sessions: usize,
    tunnel_rate: Option<RateLimit>,
    session_rate: Option<RateLimit>,
    /// `config.secret`, shared once so new tunnels take it without a copy.
    default_secret: Option<SharedSecret>,
    scratch: Vec<u8>,
}

impl Endpoint {
    /// An endpoint with `config`; `seed` feeds its RNG (challenges, Random
    /// Vectors, IDs). The runtime seeds from the OS; tests use constants.
    pub fn new(config: L2tpConfig, seed: u64) -> Self {
        let tunnel_rate = config.limits.new_tunnels_per_second.map(RateLimit::new);
        let session_rate = config.limits.new_sessions_per_second.map(RateLimit::new);
        let default_secret = config.secret.as_deref().map(SharedSecret::from);
        Endpoint {
            tunnel_ids: if config.shard == ShardSpec::SINGLE && config.spread > 1 {
                IdAllocator::spread(config.spread, config.id_hold)
            } else {
                IdAllocator::new(config.shard, config.id_hold)
            },
            config,
            rng: StdRng::seed_from_u64(seed),
            tunnels: FxHashMap::default(),
            by_peer: HashMap::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
            retired_channels: ChannelStats::default(),
            half_open_tunnels: 0,
            half_open_sessions: 0,
            tunnel_rate,
            session_rate,
            default_secret,
            scratch: Vec::with_capacity(1500),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &L2tpConfig {
        &self.config
    }

    /// The secret a tunnel with a peer at `peer` gets: the longest
    /// [`L2tpConfig::peer_secrets`] prefix covering it, else
    /// [`L2tpConfig::secret`], else none (no authentication).
    pub fn secret_for(&self, peer: IpAddr) -> Option<&[u8]> {
        self.shared_secret_for(peer).map(|s| &s[..])
    }

    fn shared_secret_for(&self, peer: IpAddr) -> Option<&SharedSecret> {
        self.config
            .peer_secrets
            .lookup(peer)
            .or(self.default_secret.as_ref())
    }

    /// Counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Give back the queue capacity a burst left behind, here and in every
    /// tunnel's channel (see [`Node::shrink_queues`](crate::proto::node::Node::shrink_queues)).
    pub fn shrink_queues(&mut self) {
        crate::proto::shrink_queue(&mut self.transmits);
        crate::proto::shrink_queue(&mut self.events);
        if self.timers.capacity() > 4 * self.timers.len().max(16) {
            self.timers.shrink_to(2 * self.timers.len());
        }
        for tunnel in self.tunnels.values_mut() {
            tunnel.channel.shrink_queues();
            crate::proto::shrink_queue(&mut tunnel.session_deadlines);
            crate::proto::shrink_queue(&mut tunnel.connects_queued);
        }
    }

    /// Tunnels in any state (including those holding after StopCCN).
    pub fn tunnel_count(&self) -> usize {
        self.tunnels.len()
    }

    /// Sessions in any state across all tunnels.
    pub fn session_count(&self) -> usize {
        self.tunnels.values().map(|t| t.sessions.len()).sum()
    }

    /// Where a tunnel's peer is reached; unlike [`Endpoint::tunnel`], copies
    /// nothing else (sessions ask per packet).
    pub fn tunnel_remote(&self, id: u16) -> Option<SocketAddr> {
        self.tunnels.get(&id).map(|t| t.remote)
    }

    /// A snapshot of tunnel `id`.
    pub fn tunnel(&self, id: u16) -> Option<TunnelSummary> {
        self.tunnels.get(&id).map(|t| TunnelSummary {
            id: t.id,
            peer_id: t.peer_id,
            remote: t.remote,
            state: t.state.clone(),
            sessions: t.sessions.len(),
            host_name: t.peer_host_name.clone(),
            unacked: t.channel.unacked(),
        })
    }

    /// IDs of every tunnel.
    pub fn tunnel_ids(&self) -> Vec<u16> {
        let mut ids: Vec<u16> = self.tunnels.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// State of one session.
    pub fn session_state(&self, tunnel: u16, session: u16) -> Option<SessionState> {
        self.tunnels
            .get(&tunnel)?
            .sessions
            .get(&session)
            .map(|s| s.state)
    }

    /// LAC: whether the session's ICCN (or OCCN) is still queued, unsent
    /// (the peer's window is full). Its PPP frames should wait: an LNS may
    /// drop frames of a call it has not seen connect.
    pub fn connect_unsent(&self, tunnel: u16, session: u16) -> bool {
        self.tunnels
            .get(&tunnel)
            .is_some_and(|t| t.connect_unsent(session))
    }

    /// Reliable-delivery counters summed over live tunnels.
    pub fn channel_totals(&self) -> ChannelStats {
        let mut total = ChannelStats::default();
        for tunnel in self.tunnels.values() {
            let s = tunnel.channel.stats();
            total.sent += s.sent;
            total.retransmitted += s.retransmitted;
            total.zlb_sent += s.zlb_sent;
            total.received += s.received;
            total.duplicates += s.duplicates;
            total.out_of_order += s.out_of_order;
            total.out_of_window += s.out_of_window;
            total.fast_retransmits += s.fast_retransmits;
        }
        total
    }

    /// Reliable-delivery counters since start: live tunnels plus those
    /// already removed (monotonic, for metrics).
    pub fn channel_counters(&self) -> ChannelStats {
        let mut total = self.channel_totals();
        total.add(&self.retired_channels);
        total
    }

    /// Tunnels per state, indexed as [`TunnelState::index`].
    pub fn tunnels_by_state(&self) -> [u64; TunnelState::COUNT] {
        let mut counts = [0; TunnelState::COUNT];
        for tunnel in self.tunnels.values() {
            counts[tunnel.state.index()] += 1;
        }
        counts
    }

    /// Retransmissions summed over live tunnels.
    pub fn retransmissions(&self) -> u64 {
        self.channel_totals().retransmitted
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] should next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if self.is_live_timer(at, id) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    fn is_live_timer(&self, at: Instant, id: u16) -> bool {
        self.tunnels
            .get(&id)
            .is_some_and(|t| t.scheduled == Some(at))
    }

    /// Run every timer due at `now`.
    ///
    /// Timers are collected first and run once each, so a tunnel that
    /// re-arms at or before `now` waits for the next call instead of
    /// holding this one in a loop.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.is_live_timer(at, id) {
                due.push(id);
            }
        }
        for id in due {
            if let Some(tunnel) = self.tunnels.get_mut(&id) {
                tunnel.scheduled = None;
            }
            self.drive(id, now, |tunnel, ctx| tunnel.handle_timeout(ctx));
        }
    }

    /// Process one received datagram from `remote`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), Dropped> {
        let result = self.route(now, remote, datagram);
        if let Err(reason) = result {
            *self.stats.dropped.entry(reason).or_insert(0) += 1;
        }
        result
    }

    fn route(&mut self, now: Instant, remote: SocketAddr, datagram: &[u8]) -> Result<(), Dropped> {
        let packet = Packet::new_checked(datagram).map_err(|_| Dropped::MalformedHeader)?;
        if !packet.is_control() {
            return Err(Dropped::NotControl);
        }
        let (Some(ns), Some(nr)) = (packet.ns(), packet.nr()) else {
            return Err(Dropped::MalformedHeader);
        };
        let (tunnel_id, session_id) = (packet.tunnel_id(), packet.session_id());
        let body = packet.payload();
        if tunnel_id == 0 {
            return self.handle_sccrq(now, remote, ns, nr, body);
        }
        let tunnel = self
            .tunnels
            .get_mut(&tunnel_id)
            .ok_or(Dropped::UnknownTunnel)?;
        if tunnel.remote != remote {
            // §8.1: the LNS may answer SCCRQ from another port; the LAC
            // follows it. Anything else from a stranger is not ours.
            let follows = matches!(tunnel.state, TunnelState::WaitSccrp { .. })
                && tunnel.remote.ip() == remote.ip();
            if !follows {
                return Err(Dropped::WrongPeer);
            }
            tunnel.remote = remote;
        }
        self.drive(tunnel_id, now, |tunnel, ctx| {
            tunnel.receive(ctx, ns, nr, session_id, body)
        });
        Ok(())
    }

    /// A message to tunnel 0: a new SCCRQ (§6.1), or its retransmission.
    fn handle_sccrq(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        ns: u16,
        nr: u16,
        body: &[u8],
    ) -> Result<(), Dropped> {
        if self.config.role != Role::Lns {
            return Err(Dropped::NotAccepting);
        }
        if body.is_empty() {
            return Err(Dropped::NotSccrq);
        }
        // The SCCRQ may already hide AVPs (§4.3): read it with the secret
        // its sender's tunnel will have.
        let secret = self.shared_secret_for(remote.ip()).cloned();
        let msg = ControlMessage::parse(body, secret.as_deref()).map_err(|_| {
            self.stats.malformed_messages += 1;
            Dropped::NotSccrq
        })?;
        if msg.message_type != MessageType::Sccrq || ns != 0 {
            return Err(Dropped::NotSccrq);
        }
        let Some(peer_tunnel) = msg.assigned_tunnel_id().filter(|id| *id != 0) else {
            self.stats.malformed_messages += 1;
            return Err(Dropped::NotSccrq);
        };
        if let Some(&ours) = self.by_peer.get(&(remote, peer_tunnel)) {
            // A retransmitted SCCRQ: the channel re-acks it as a duplicate
            // and our SCCRP retransmits on its own timer.
            self.drive(ours, now, |tunnel, ctx| {
                tunnel.receive(ctx, ns, nr, 0, body)
            });
            return Ok(());
        }
        self.stats.count_in(MessageType::Sccrq);
        let refusal = if msg.protocol_version() != Some((1, 0)) {
            Some((stopccn_result::BAD_PROTOCOL_VERSION, None))
        } else if msg.unknown_mandatory().is_some() {
            self.stats.unknown_mandatory_avps += 1;
            Some((
                stopccn_result::GENERAL_ERROR,
                Some(error_code::UNKNOWN_MANDATORY_AVP),
            ))
        } else if msg.challenge().is_some() && secret.is_none() {
            self.stats.auth_failures += 1;
            Some((stopccn_result::NOT_AUTHORIZED, None))
        } else if self.tunnels.len() >= self.config.limits.max_tunnels
            || self.half_open_tunnels >= self.config.limits.max_half_open_tunnels
        {
            Some((
                stopccn_result::GENERAL_ERROR,
                Some(error_code::NO_RESOURCES),
            ))
        } else if self.tunnel_rate.as_mut().is_some_and(|r| !r.admit(now)) {
            self.stats.tunnels_rate_limited += 1;
            Some((
                self.config.limits.tunnel_rate_result,
                Some(error_code::NO_RESOURCES),
            ))
        } else {
            None
        };
        let id = match refusal {
            Some(refusal) => Err(refusal),
            None => self.tunnel_ids.allocate(now, &mut self.rng).ok_or((
                stopccn_result::GENERAL_ERROR,
                Some(error_code::NO_RESOURCES),
            )),
        };
        let id = match id {
            Ok(id) => id,
            Err((result, error)) => {
                self.refuse_statelessly(remote, peer_tunnel, ns, result, error);
                return Err(Dropped::Refused);
            }
        };
        let mut tunnel = {
            let ctx = self.ctx(now);
            let state = TunnelState::WaitScccn { challenge: None };
            Tunnel::new(&ctx, id, remote, secret, state)
        };
        tunnel.peer_id = peer_tunnel;
        tunnel.channel.set_peer_tunnel_id(peer_tunnel);
        tunnel
            .channel
            .set_peer_window(msg.receive_window_size().unwrap_or(4));
        // Consume Ns 0 so the SCCRP acks it.
        tunnel.channel.receive(now, ns, nr, 0, body);
        self.tunnels.insert(id, tunnel);
        self.by_peer.insert((remote, peer_tunnel), id);
        self.half_open_tunnels += 1;
        self.drive(id, now, |tunnel, ctx| tunnel.accept_sccrq(ctx, &msg));
        Ok(())
    }

    /// Refuse an SCCRQ without keeping state: a StopCCN acking its Ns. The
    /// peer's retransmissions get the same answer, at no cost to us.
    fn refuse_statelessly(
        &mut self,
        remote: SocketAddr,
        peer_tunnel: u16,
        ns: u16,
        result: u16,
        error: Option<u16>,
    ) {
        self.stats.tunnels_refused += 1;
        self.stats.count_out(MessageType::StopCcn);
        let stop = ControlMessage::new(MessageType::StopCcn)
            .with(Avp::AssignedTunnelId(0))
            .with(Avp::ResultCode(ResultCode {
                result,
                error,
                message: None,
            }));
        let mut body = Vec::with_capacity(64);
        if stop.emit(&mut body, None).is_err() {
            self.stats.emit_failures += 1;
            return;
        }
        let header = HeaderRepr::control(peer_tunnel, 0, 0, ns.wrapping_add(1));
        let mut payload = vec![0; header.header_len() + body.len()];
        if header.emit(&mut payload, body.len()).is_err() {
            self.stats.emit_failures += 1;
            return;
        }
        let at = header.header_len();
        payload[at..].copy_from_slice(&body);
        self.transmits.push_back(Transmit { remote, payload });
    }

    /// LAC: open a control connection to `remote` (sends SCCRQ).
    pub fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<u16, CommandError> {
        if self.config.role != Role::Lac {
            return Err(CommandError::WrongRole);
        }
        if self.tunnels.len() >= self.config.limits.max_tunnels {
            return Err(CommandError::NoResources);
        }
        let id = self
            .tunnel_ids
            .allocate(now, &mut self.rng)
            .ok_or(CommandError::NoResources)?;
        let secret = self.shared_secret_for(remote.ip()).cloned();
        let tunnel = {
            let ctx = self.ctx(now);
            let state = TunnelState::WaitSccrp { challenge: None };
            Tunnel::new(&ctx, id, remote, secret, state)
        };
        self.tunnels.insert(id, tunnel);
        self.half_open_tunnels += 1;
        self.drive(id, now, |tunnel, ctx| tunnel.send_sccrq(ctx));
        Ok(id)
    }

    /// LAC: place an incoming call on an established tunnel (sends ICRQ).
    /// `call` fills the ICRQ and, later, the ICCN (proxy LCP/auth included).
    pub fn open_session(
        &mut self,
        now: Instant,
        tunnel: u16,
        call: CallInfo,
    ) -> Result<u16, CommandError> {
        if self.config.role != Role::Lac {
            return Err(CommandError::WrongRole);
        }
        self.command(now, tunnel, |t, ctx| {
            t.open_incoming_call(ctx, call).map_err(CommandError::from)
        })
    }

    /// LNS: ask the LAC to place an outgoing call (sends OCRQ).
    pub fn place_call(
        &mut self,
        now: Instant,
        tunnel: u16,
        call: CallInfo,
    ) -> Result<u16, CommandError> {
        if self.config.role != Role::Lns {
            return Err(CommandError::WrongRole);
        }
        self.command(now, tunnel, |t, ctx| {
            t.open_outgoing_call(ctx, call).map_err(CommandError::from)
        })
    }

    /// Clear a session with CDN and `result` (§6.12).
    pub fn close_session(
        &mut self,
        now: Instant,
        tunnel: u16,
        session: u16,
        result: ResultCode,
    ) -> Result<(), CommandError> {
        self.command(now, tunnel, |t, ctx| {
            if !t.sessions.contains_key(&session) {
                return Err(CommandError::UnknownSession);
            }
            t.close_session(ctx, session, result);
            Ok(())
        })
    }

    /// Clear a tunnel and all its sessions with StopCCN and `result` (§6.4).
    pub fn close_tunnel(
        &mut self,
        now: Instant,
        tunnel: u16,
        result: ResultCode,
    ) -> Result<(), CommandError> {
        self.command(now, tunnel, |t, ctx| {
            let reason = TunnelDownReason::LocalStop(result.clone());
            t.stop(ctx, result, reason);
            Ok(())
        })
    }

    /// Clear every tunnel (a graceful shutdown): StopCCN "requester is
    /// being shut down" to each.
    pub fn close_all(&mut self, now: Instant) {
        for id in self.tunnel_ids() {
            let result = ResultCode {
                result: stopccn_result::SHUTTING_DOWN,
                error: None,
                message: None,
            };
            // Tunnels already stopping answer UnknownTunnel; nothing to do.
            let _ = self.close_tunnel(now, id, result);
        }
    }

    /// LNS: send Set-Link-Info with the PPP ACCMs (§6.14).
    pub fn set_link_info(
        &mut self,
        now: Instant,
        tunnel: u16,
        session: u16,
        send_accm: u32,
        receive_accm: u32,
    ) -> Result<(), CommandError> {
        // §6.14: SLI goes from the LNS to the LAC.
        if self.config.role != Role::Lns {
            return Err(CommandError::WrongRole);
        }
        let avp = Avp::Accm {
            send: send_accm,
            receive: receive_accm,
        };
        self.command(now, tunnel, |t, ctx| {
            t.send_link_message(ctx, session, avp)
                .then_some(())
                .ok_or(CommandError::UnknownSession)
        })
    }

    /// LAC: send WAN-Error-Notify with line error counters (§6.13).
    pub fn wan_error_notify(
        &mut self,
        now: Instant,
        tunnel: u16,
        session: u16,
        errors: CallErrors,
    ) -> Result<(), CommandError> {
        // §6.13: WEN goes from the LAC to the LNS.
        if self.config.role != Role::Lac {
            return Err(CommandError::WrongRole);
        }
        self.command(now, tunnel, |t, ctx| {
            t.send_link_message(ctx, session, Avp::CallErrors(errors))
                .then_some(())
                .ok_or(CommandError::UnknownSession)
        })
    }

    fn command<T>(
        &mut self,
        now: Instant,
        tunnel: u16,
        f: impl FnOnce(&mut Tunnel, &mut Ctx<'_>) -> Result<T, CommandError>,
    ) -> Result<T, CommandError> {
        match self.tunnels.get(&tunnel) {
            Some(t) if !matches!(t.state, TunnelState::Stopping { .. } | TunnelState::Closed) => {}
            _ => return Err(CommandError::UnknownTunnel),
        }
        self.drive(tunnel, now, f)
            .unwrap_or(Err(CommandError::UnknownTunnel))
    }

    fn ctx(&mut self, now: Instant) -> Ctx<'_> {
        Ctx {
            now,
            config: &self.config,
            rng: &mut self.rng,
            events: &mut self.events,
            stats: &mut self.stats,
            half_open_tunnels: &mut self.half_open_tunnels,
            half_open_sessions: &mut self.half_open_sessions,
            session_rate: &mut self.session_rate,
        }
    }

    /// Run `f` on tunnel `id`, then flush its datagrams, re-arm its timer and
    /// remove it when it is closed.
    fn drive<T>(
        &mut self,
        id: u16,
        now: Instant,
        f: impl FnOnce(&mut Tunnel, &mut Ctx<'_>) -> T,
    ) -> Option<T> {
        let Endpoint {
            config,
            rng,
            tunnels,
            timers,
            transmits,
            events,
            stats,
            half_open_tunnels,
            half_open_sessions,
            session_rate,
            scratch,
            ..
        } = self;
        let tunnel = tunnels.get_mut(&id)?;
        let mut ctx = Ctx {
            now,
            config,
            rng,
            events,
            stats,
            half_open_tunnels,
            half_open_sessions,
            session_rate,
        };
        let out = f(tunnel, &mut ctx);
        while tunnel.channel.poll_transmit(now, scratch) {
            transmits.push_back(Transmit {
                remote: tunnel.remote,
                payload: scratch.clone(),
            });
        }
        if tunnel.state == TunnelState::Closed {
            self.remove_tunnel(id, now);
            return Some(out);
        }
        if let Some(deadline) = tunnel.next_deadline(&ctx) {
            if tunnel.scheduled.is_none_or(|s| deadline < s) {
                tunnel.scheduled = Some(deadline);
                timers.push(Reverse((deadline, id)));
            }
        }
        Some(out)
    }

    fn remove_tunnel(&mut self, id: u16, now: Instant) {
        if let Some(tunnel) = self.tunnels.remove(&id) {
            self.retired_channels.add(tunnel.channel.stats());
            // Counters were settled when it left setup (`tear_down`).
            self.by_peer.remove(&(tunnel.remote, tunnel.peer_id));
            self.tunnel_ids.release(id, now);
        }
    }
}
