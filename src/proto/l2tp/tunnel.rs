//! One control connection: its state machine (RFC 2661 §7.2) on top of the
//! reliable channel, and the messages that belong to the tunnel itself.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;
use rustc_hash::FxHashMap;

use super::auth::{challenge_response, responses_match};
use super::endpoint::Ctx;
use super::event::{Event, SessionDownReason, TunnelDownReason};
use super::ids::{IdAllocator, ShardSpec};
use super::reliable::{ControlChannel, Receive};
use super::secrets::SharedSecret;
use super::session::Session;
use crate::wire::l2tp::avps::{cdn_result, error_code, stopccn_result};
use crate::wire::l2tp::message::Hiding;
use crate::wire::l2tp::{Avp, ControlMessage, MessageType, ResultCode, WireError};

/// Where a tunnel is in its life, named for what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelState {
    /// LAC: SCCRQ sent; `challenge` is what we asked the LNS to answer.
    WaitSccrp {
        /// Our Challenge, if we sent one.
        challenge: Option<[u8; 16]>,
    },
    /// LNS: SCCRP sent; waiting for SCCCN (and its Challenge Response).
    WaitScccn {
        /// Our Challenge, if we sent one.
        challenge: Option<[u8; 16]>,
    },
    /// The control connection is up; sessions may be placed.
    Established,
    /// StopCCN sent or received: kept until `until` to ack retransmissions
    /// and retransmit our own StopCCN (§5.7). Its ID stays reserved.
    Stopping {
        /// End of the hold period.
        until: Instant,
    },
    /// Gone: the endpoint removes it.
    Closed,
}

impl TunnelState {
    /// Number of states (see [`TunnelState::index`]).
    pub const COUNT: usize = 5;

    /// Metric label of each state, by [`TunnelState::index`].
    pub const NAMES: [&'static str; TunnelState::COUNT] = [
        "wait_sccrp",
        "wait_scccn",
        "established",
        "stopping",
        "closed",
    ];

    /// A dense index for per-state counts.
    pub const fn index(&self) -> usize {
        match self {
            TunnelState::WaitSccrp { .. } => 0,
            TunnelState::WaitScccn { .. } => 1,
            TunnelState::Established => 2,
            TunnelState::Stopping { .. } => 3,
            TunnelState::Closed => 4,
        }
    }

    /// Still in setup (counts against the half-open limit).
    pub fn is_half_open(&self) -> bool {
        matches!(
            self,
            TunnelState::WaitSccrp { .. } | TunnelState::WaitScccn { .. }
        )
    }
}

/// A control connection and its sessions.
#[derive(Debug)]
pub struct Tunnel {
    /// Our tunnel ID.
    pub id: u16,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The peer's Assigned Tunnel ID (0 until known).
    pub peer_id: u16,
    /// FSM state.
    pub state: TunnelState,
    /// This tunnel's secret, chosen from the peer's address when the tunnel
    /// was created (see [`PeerSecrets`](super::PeerSecrets)). `None`: no
    /// authentication and nothing hidden.
    pub secret: Option<SharedSecret>,
    /// Reliable delivery.
    pub channel: ControlChannel,
    /// The peer's Host Name AVP.
    pub peer_host_name: Vec<u8>,
    /// Sessions by our session ID.
    pub sessions: FxHashMap<u16, Session>,
    /// Our session IDs in this tunnel.
    pub session_ids: IdAllocator,
    /// Setup deadlines of sessions, oldest first (all share one timeout, so
    /// creation order is deadline order).
    pub session_deadlines: VecDeque<(Instant, u16)>,
    /// LAC: sessions whose ICCN / OCCN is still queued behind the window,
    /// with its number in the channel ([`ControlChannel::queued_count`]).
    /// Their PPP frames must not overtake it (see
    /// [`Endpoint::connect_unsent`](super::Endpoint::connect_unsent)).
    pub connects_queued: VecDeque<(u64, u16)>,
    /// When the tunnel was created (setup timeout).
    pub created: Instant,
    /// Last time we heard anything from the peer (HELLO timer, §6.5).
    pub last_heard: Instant,
    /// Last time the peer delivered a new in-order message.
    pub last_delivered: Instant,
    /// Deadline currently registered with the endpoint's timer heap.
    pub scheduled: Option<Instant>,
}

impl Tunnel {
    /// A tunnel in `state` with `secret`, with a channel built from the
    /// configuration.
    pub fn new(
        ctx: &Ctx<'_>,
        id: u16,
        remote: SocketAddr,
        secret: Option<SharedSecret>,
        state: TunnelState,
    ) -> Self {
        Tunnel {
            id,
            remote,
            peer_id: 0,
            state,
            secret,
            channel: ControlChannel::new(ctx.config.reliable.clone()),
            peer_host_name: Vec::new(),
            sessions: FxHashMap::default(),
            session_ids: IdAllocator::new(ShardSpec::SINGLE, ctx.config.id_hold),
            session_deadlines: VecDeque::new(),
            connects_queued: VecDeque::new(),
            created: ctx.now,
            last_heard: ctx.now,
            last_delivered: ctx.now,
            scheduled: None,
        }
    }

    /// Emit `msg` and queue it for reliable delivery to peer session `peer_session`.
    pub fn send(&mut self, ctx: &mut Ctx<'_>, peer_session: u16, msg: &ControlMessage) {
        let mut body = Vec::with_capacity(128);
        // Draw a Random Vector only when something will be hidden (§4.3);
        // most tunnels run without hiding.
        let config = ctx.config;
        let hiding = match self.secret.as_deref() {
            Some(secret) if config.hidden_avps.0 != 0 => Some(Hiding {
                secret,
                random_vector: ctx.rng.random(),
                attrs: config.hidden_avps,
            }),
            _ => None,
        };
        let queued = msg
            .emit(&mut body, hiding.as_ref())
            .ok()
            .and_then(|()| self.channel.try_send(peer_session, body).ok());
        match queued {
            Some(()) => ctx.stats.count_out(msg.message_type),
            // Only our own oversized values can fail here; count, don't send.
            None => ctx.stats.emit_failures += 1,
        }
    }

    /// Earliest instant this tunnel needs `handle_timeout`.
    pub fn next_deadline(&self, ctx: &Ctx<'_>) -> Option<Instant> {
        let own = match &self.state {
            TunnelState::WaitSccrp { .. } | TunnelState::WaitScccn { .. } => {
                Some(self.created + ctx.config.setup_timeout)
            }
            TunnelState::Established => Some(self.last_heard + ctx.config.hello_interval),
            // Past the hold, only the channel's own timers matter (we wait
            // for the StopCCN ack); a deadline left in the past would spin.
            TunnelState::Stopping { until } => (ctx.now < *until).then_some(*until),
            TunnelState::Closed => None,
        };
        let sessions = self.session_deadlines.front().map(|(at, _)| *at);
        [self.channel.poll_timeout(), own, sessions]
            .into_iter()
            .flatten()
            .min()
    }

    /// Run every timer that is due.
    pub fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        self.channel.handle_timeout(now);
        if self.channel.is_failed() {
            // §5.8: retries exhausted — the peer is unreachable; clean up
            // locally, there is nobody to send StopCCN to.
            if !matches!(self.state, TunnelState::Stopping { .. }) {
                ctx.stats.tunnel_timeouts += 1;
                self.tear_down(ctx, TunnelDownReason::PeerUnreachable);
            }
            self.state = TunnelState::Closed;
            return;
        }
        match self.state {
            TunnelState::WaitSccrp { .. } | TunnelState::WaitScccn { .. }
                if now >= self.created + ctx.config.setup_timeout =>
            {
                ctx.stats.setup_timeouts += 1;
                let result = ResultCode {
                    result: stopccn_result::GENERAL_ERROR,
                    error: Some(error_code::NONE),
                    message: Some(b"setup timeout".to_vec()),
                };
                self.stop(ctx, result, TunnelDownReason::SetupTimeout);
            }
            TunnelState::Established if now >= self.last_heard + ctx.config.hello_interval => {
                // §6.5: HELLO keeps an idle connection honest; it travels
                // reliably, so a dead peer shows up as exhausted retries.
                if self.channel.is_idle() {
                    self.send(ctx, 0, &ControlMessage::new(MessageType::Hello));
                }
                self.last_heard = now;
            }
            // §5.7: hold for the full retransmission cycle, and in any case
            // until our StopCCN is acked (or the channel gives up).
            TunnelState::Stopping { until } if now >= until && self.channel.is_idle() => {
                self.state = TunnelState::Closed;
                return;
            }
            _ => {}
        }
        self.expire_session_setups(ctx);
    }

    /// Hand one datagram's sequence numbers and body to the channel and
    /// process whatever became deliverable.
    pub fn receive(&mut self, ctx: &mut Ctx<'_>, ns: u16, nr: u16, session: u16, body: &[u8]) {
        self.last_heard = ctx.now;
        match self.channel.receive(ctx.now, ns, nr, session, body) {
            Receive::InOrder => {
                self.dispatch(ctx, session, body);
                while let Some(next) = self.channel.poll_deliver() {
                    self.dispatch(ctx, next.session_id, &next.body);
                }
            }
            Receive::Ack => ctx.stats.zlb_in += 1,
            Receive::Buffered => ctx.stats.out_of_order += 1,
            Receive::Duplicate => ctx.stats.duplicates += 1,
            Receive::OutOfWindow => ctx.stats.out_of_window += 1,
        }
    }

    /// Process one in-order control message for this tunnel.
    fn dispatch(&mut self, ctx: &mut Ctx<'_>, session: u16, body: &[u8]) {
        self.last_delivered = ctx.now;
        if matches!(
            self.state,
            TunnelState::Stopping { .. } | TunnelState::Closed
        ) {
            // §5.7: after StopCCN we only acknowledge.
            ctx.stats.ignored_while_stopping += 1;
            return;
        }
        let msg = match ControlMessage::parse(body, self.secret.as_deref()) {
            Ok(msg) => msg,
            Err(error) => {
                ctx.stats.malformed_messages += 1;
                self.reject_malformed(ctx, session, error);
                return;
            }
        };
        ctx.stats.count_in(msg.message_type);
        // §4.1: an unrecognized AVP with the M bit set ends the session the
        // message belongs to, or the whole tunnel for tunnel messages.
        if msg.unknown_mandatory().is_some() {
            ctx.stats.unknown_mandatory_avps += 1;
            let result = |code| ResultCode {
                result: code,
                error: Some(error_code::UNKNOWN_MANDATORY_AVP),
                message: None,
            };
            if !msg.message_type.is_session_message() {
                self.stop_general(ctx, result(stopccn_result::GENERAL_ERROR));
            } else if self.sessions.contains_key(&session) {
                self.close_session(ctx, session, result(cdn_result::GENERAL_ERROR));
            } else if let Some(peer_session) = msg
                .assigned_session_id()
                .filter(|_| matches!(msg.message_type, MessageType::Icrq | MessageType::Ocrq))
            {
                // A call request we cannot understand: refuse the call only.
                self.refuse_call(ctx, peer_session, result(cdn_result::GENERAL_ERROR));
            }
            return;
        }
        match msg.message_type {
            MessageType::Sccrp => self.on_sccrp(ctx, &msg),
            MessageType::Scccn => self.on_scccn(ctx, &msg),
            MessageType::StopCcn => self.on_stopccn(ctx, &msg),
            MessageType::Hello => {}
            MessageType::Sccrq => self.fsm_error(ctx, "SCCRQ on an existing tunnel"),
            MessageType::Unknown(_) => {
                // §3.2 / §4.4.1: Message Type always carries the M bit, so
                // an unknown type must clear the tunnel.
                self.stop_general(
                    ctx,
                    ResultCode {
                        result: stopccn_result::GENERAL_ERROR,
                        error: Some(error_code::BAD_VALUE),
                        message: Some(b"unknown message type".to_vec()),
                    },
                );
            }
            _ if self.state != TunnelState::Established => {
                self.fsm_error(ctx, "call message before the tunnel is up")
            }
            _ => self.dispatch_session(ctx, session, msg),
        }
    }

    /// A control message that does not parse: the RFC's answer is to clear
    /// whatever it belonged to with "length is wrong" / "bad value".
    fn reject_malformed(&mut self, ctx: &mut Ctx<'_>, session: u16, error: WireError) {
        let code = match error {
            WireError::Truncated | WireError::BadLength | WireError::AvpValueLength { .. } => {
                error_code::BAD_LENGTH
            }
            _ => error_code::BAD_VALUE,
        };
        let text = error.to_string().into_bytes();
        if session != 0 && self.sessions.contains_key(&session) {
            let result = ResultCode {
                result: cdn_result::GENERAL_ERROR,
                error: Some(code),
                message: Some(text),
            };
            self.close_session(ctx, session, result);
        } else if session == 0 {
            let result = ResultCode {
                result: stopccn_result::GENERAL_ERROR,
                error: Some(code),
                message: Some(text),
            };
            self.stop_general(ctx, result);
        }
        // A malformed message for a session we do not know costs nobody
        // anything: it is acked by the channel and counted.
    }

    fn fsm_error(&mut self, ctx: &mut Ctx<'_>, why: &str) {
        ctx.stats.fsm_errors += 1;
        self.stop_general(
            ctx,
            ResultCode {
                result: stopccn_result::FSM_ERROR,
                error: Some(error_code::NONE),
                message: Some(why.as_bytes().to_vec()),
            },
        );
    }

    /// LNS: build and send SCCRP for an accepted SCCRQ (§6.2).
    pub fn accept_sccrq(&mut self, ctx: &mut Ctx<'_>, sccrq: &ControlMessage) {
        self.peer_host_name = sccrq.host_name().unwrap_or_default().to_vec();
        let mut reply = self.start_message(ctx, MessageType::Sccrp);
        let mut our_challenge = None;
        if let Some(secret) = &self.secret {
            // §5.1.1: answer the peer's challenge, and pose our own so the
            // peer must prove it knows the secret too.
            if let Some(challenge) = sccrq.challenge() {
                reply.avps.push(Avp::ChallengeResponse(challenge_response(
                    MessageType::Sccrp,
                    secret,
                    challenge,
                )));
            }
            our_challenge = Some(pose_challenge(ctx, &mut reply));
        }
        self.state = TunnelState::WaitScccn {
            challenge: our_challenge,
        };
        self.send(ctx, 0, &reply);
    }

    /// LAC: send SCCRQ (§6.1).
    pub fn send_sccrq(&mut self, ctx: &mut Ctx<'_>) {
        let mut request = self.start_message(ctx, MessageType::Sccrq);
        let mut our_challenge = None;
        if self.secret.is_some() {
            our_challenge = Some(pose_challenge(ctx, &mut request));
        }
        self.state = TunnelState::WaitSccrp {
            challenge: our_challenge,
        };
        self.send(ctx, 0, &request);
    }

    /// The AVPs SCCRQ and SCCRP share (§6.1, §6.2).
    fn start_message(&self, ctx: &Ctx<'_>, message_type: MessageType) -> ControlMessage {
        let config = ctx.config;
        let mut msg = ControlMessage::new(message_type)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::HostName(config.host_name.clone()))
            .with(Avp::FramingCapabilities(config.framing_capabilities))
            .with(Avp::BearerCapabilities(config.bearer_capabilities))
            .with(Avp::AssignedTunnelId(self.id))
            .with(Avp::ReceiveWindowSize(config.reliable.receive_window))
            .with(Avp::FirmwareRevision(config.firmware_revision));
        if !config.vendor_name.is_empty() {
            msg.avps.push(Avp::VendorName(config.vendor_name.clone()));
        }
        msg
    }

    /// LAC: SCCRP arrived (§6.2): check the LNS's answer, answer its
    /// challenge in SCCCN, and the tunnel is up.
    fn on_sccrp(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        let TunnelState::WaitSccrp { challenge } = self.state else {
            return self.fsm_error(ctx, "unexpected SCCRP");
        };
        let Some(peer_id) = msg.assigned_tunnel_id().filter(|id| *id != 0) else {
            return self.stop_general(ctx, missing_avp("Assigned Tunnel ID"));
        };
        self.peer_id = peer_id;
        self.channel.set_peer_tunnel_id(peer_id);
        self.channel
            .set_peer_window(msg.receive_window_size().unwrap_or(4));
        self.peer_host_name = msg.host_name().unwrap_or_default().to_vec();
        if msg.protocol_version() != Some((1, 0)) {
            return self.refuse(ctx, stopccn_result::BAD_PROTOCOL_VERSION);
        }
        let mut connected = ControlMessage::new(MessageType::Scccn);
        // A refcount, not a copy: `self` is borrowed mutably below.
        match (self.secret.clone(), challenge) {
            (Some(secret), Some(ours)) => {
                if !answered(msg, MessageType::Sccrp, &secret, &ours) {
                    ctx.stats.auth_failures += 1;
                    return self.refuse(ctx, stopccn_result::NOT_AUTHORIZED);
                }
                if let Some(theirs) = msg.challenge() {
                    connected
                        .avps
                        .push(Avp::ChallengeResponse(challenge_response(
                            MessageType::Scccn,
                            &secret,
                            theirs,
                        )));
                }
            }
            _ if msg.challenge().is_some() => {
                // We cannot answer a challenge without a secret.
                ctx.stats.auth_failures += 1;
                return self.refuse(ctx, stopccn_result::NOT_AUTHORIZED);
            }
            _ => {}
        }
        self.send(ctx, 0, &connected);
        self.established(ctx);
    }

    /// LNS: SCCCN arrived (§6.3): check the Challenge Response.
    fn on_scccn(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        let TunnelState::WaitScccn { challenge } = self.state else {
            return self.fsm_error(ctx, "unexpected SCCCN");
        };
        if let (Some(secret), Some(ours)) = (&self.secret, challenge) {
            if !answered(msg, MessageType::Scccn, secret, &ours) {
                ctx.stats.auth_failures += 1;
                return self.refuse(ctx, stopccn_result::NOT_AUTHORIZED);
            }
        }
        // The SCCCN is acked by a ZLB after the delayed-ack timer unless a
        // session message overtakes it.
        self.established(ctx);
    }

    fn established(&mut self, ctx: &mut Ctx<'_>) {
        *ctx.half_open_tunnels = ctx.half_open_tunnels.saturating_sub(1);
        self.state = TunnelState::Established;
        ctx.stats.tunnels_established += 1;
        ctx.events.push_back(Event::TunnelUp {
            tunnel: self.id,
            peer_tunnel: self.peer_id,
            remote: self.remote,
            host_name: self.peer_host_name.clone(),
        });
    }

    /// StopCCN from the peer (§6.4): every session is gone with it; ack it
    /// promptly and hold the tunnel for late retransmissions.
    fn on_stopccn(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        let result = msg.result_code().cloned().unwrap_or(ResultCode {
            result: stopccn_result::CLEAR,
            error: None,
            message: None,
        });
        self.channel.ack_now();
        self.tear_down(ctx, TunnelDownReason::PeerStop(result));
        self.state = TunnelState::Stopping {
            until: ctx.now + ctx.config.stop_hold,
        };
    }

    /// Refuse the peer during setup with a StopCCN result code.
    fn refuse(&mut self, ctx: &mut Ctx<'_>, result: u16) {
        let result = ResultCode {
            result,
            error: None,
            message: None,
        };
        self.stop_general(ctx, result);
    }

    fn stop_general(&mut self, ctx: &mut Ctx<'_>, result: ResultCode) {
        let reason = TunnelDownReason::LocalStop(result.clone());
        self.stop(ctx, result, reason);
    }

    /// Send StopCCN (§6.4) and enter the hold period.
    pub fn stop(&mut self, ctx: &mut Ctx<'_>, result: ResultCode, reason: TunnelDownReason) {
        if matches!(
            self.state,
            TunnelState::Stopping { .. } | TunnelState::Closed
        ) {
            return;
        }
        // StopCCN clears every session (§6.4), so call messages still queued
        // behind the window would only delay it.
        self.channel.discard_unsent();
        let stop = ControlMessage::new(MessageType::StopCcn)
            .with(Avp::AssignedTunnelId(self.id))
            .with(Avp::ResultCode(result));
        self.send(ctx, 0, &stop);
        self.tear_down(ctx, reason);
        self.state = TunnelState::Stopping {
            until: ctx.now + ctx.config.stop_hold,
        };
    }

    /// Drop every session (StopCCN clears them implicitly, §6.4) and report
    /// the tunnel down.
    fn tear_down(&mut self, ctx: &mut Ctx<'_>, reason: TunnelDownReason) {
        if self.state.is_half_open() {
            *ctx.half_open_tunnels = ctx.half_open_tunnels.saturating_sub(1);
        }
        let mut ids: Vec<u16> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.remove_session(ctx, id, SessionDownReason::TunnelDown);
        }
        ctx.stats.tunnels_closed += 1;
        ctx.events.push_back(Event::TunnelDown {
            tunnel: self.id,
            reason,
        });
    }
}

/// §5.1.1: add a fresh random Challenge to `msg`; returns it.
fn pose_challenge(ctx: &mut Ctx<'_>, msg: &mut ControlMessage) -> [u8; 16] {
    let challenge: [u8; 16] = ctx.rng.random();
    msg.avps.push(Avp::Challenge(challenge.to_vec()));
    challenge
}

/// Whether `msg` (of type `carrier`) carries the right response to `ours`.
fn answered(msg: &ControlMessage, carrier: MessageType, secret: &[u8], ours: &[u8; 16]) -> bool {
    let expected = challenge_response(carrier, secret, ours);
    msg.challenge_response()
        .is_some_and(|got| responses_match(got, &expected))
}

fn missing_avp(name: &str) -> ResultCode {
    ResultCode {
        result: stopccn_result::GENERAL_ERROR,
        error: Some(error_code::BAD_VALUE),
        message: Some(format!("missing {name}").into_bytes()),
    }
}
