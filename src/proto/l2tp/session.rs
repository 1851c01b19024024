//! Calls inside a tunnel (RFC 2661 §5.6, §6.6–§6.16, §7.4): incoming calls
//! placed by the LAC, outgoing calls placed by the LNS, and their teardown.

use std::time::Instant;

use super::config::Role;
use super::endpoint::Ctx;
use super::event::{CallInfo, Event, SessionDownReason};
use super::tunnel::Tunnel;
use crate::wire::l2tp::avps::{caps, cdn_result, error_code};
use crate::wire::l2tp::{Avp, ControlMessage, MessageType, ResultCode};

/// Where a call is, named for what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// LAC: ICRQ sent.
    WaitIcrp,
    /// LNS: ICRP sent.
    WaitIccn,
    /// LNS: OCRQ sent.
    WaitOcrp,
    /// LNS: OCRP received, the LAC is dialling.
    WaitOccn,
    /// Connected; PPP runs.
    Established,
}

/// One call.
#[derive(Debug, Clone)]
pub struct Session {
    /// The peer's Assigned Session ID (0 until known).
    pub peer_id: u16,
    /// FSM state.
    pub state: SessionState,
    /// Everything the call messages carried, while the call is being set
    /// up. It moves into [`Event::SessionUp`] when the call connects: the
    /// PPP side consumes the proxy data and keeps what it reports, and an
    /// established session stays small (there may be a million of them).
    pub call: Option<Box<CallInfo>>,
    /// The setup clock of a half-open call; dropped when it connects, as
    /// an established call needs neither time (boxed: a connected call
    /// then costs a third of the bytes in its tunnel's map).
    pub setup: Option<Box<SetupClock>>,
}

/// When a call was created and when its unfinished setup is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupClock {
    /// When the session was created.
    pub created: Instant,
    /// When an unfinished setup is given up.
    pub deadline: Instant,
}

impl Session {
    /// The call parameters being gathered (recreated, empty, should a
    /// stray call message arrive after they moved on).
    fn call_mut(&mut self) -> &mut CallInfo {
        self.call.get_or_insert_with(Box::default)
    }

    fn is_half_open(&self) -> bool {
        self.state != SessionState::Established
    }
}

/// Why a new call cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRefusal {
    /// The tunnel is not established.
    TunnelNotUp,
    /// A session limit is reached.
    NoResources,
}

fn result(code: u16, error: Option<u16>, text: &str) -> ResultCode {
    ResultCode {
        result: code,
        error,
        message: (!text.is_empty()).then(|| text.as_bytes().to_vec()),
    }
}

impl Tunnel {
    pub(crate) fn dispatch_session(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: u16,
        msg: ControlMessage,
    ) {
        let role = ctx.config.role;
        match (role, msg.message_type) {
            (Role::Lns, MessageType::Icrq) => self.on_icrq(ctx, msg),
            (Role::Lac, MessageType::Ocrq) => self.on_ocrq(ctx, msg),
            (_, MessageType::Cdn) => self.on_cdn(ctx, session, &msg),
            _ => {
                let Some(current) = self.sessions.get(&session).map(|s| s.state) else {
                    // §5.6 / §4.1: a message for a session we do not have;
                    // it was acked, nothing else to do.
                    ctx.stats.unknown_session += 1;
                    return;
                };
                match (role, msg.message_type, current) {
                    (Role::Lac, MessageType::Icrp, SessionState::WaitIcrp) => {
                        self.on_icrp(ctx, session, &msg)
                    }
                    (Role::Lns, MessageType::Iccn, SessionState::WaitIccn) => {
                        self.on_connected(ctx, session, msg)
                    }
                    (Role::Lns, MessageType::Ocrp, SessionState::WaitOcrp) => {
                        self.on_ocrp(ctx, session, msg)
                    }
                    (Role::Lns, MessageType::Occn, SessionState::WaitOccn) => {
                        self.on_connected(ctx, session, msg)
                    }
                    (_, MessageType::Wen, SessionState::Established) => {
                        let errors = msg
                            .avps
                            .iter()
                            .find_map(|avp| match avp {
                                Avp::CallErrors(errors) => Some(*errors),
                                _ => None,
                            })
                            .unwrap_or_default();
                        ctx.events.push_back(Event::WanErrorNotify {
                            tunnel: self.id,
                            session,
                            errors,
                        });
                    }
                    (_, MessageType::Sli, SessionState::Established) => {
                        if let Some((send, receive)) = msg.avps.iter().find_map(|avp| match avp {
                            Avp::Accm { send, receive } => Some((*send, *receive)),
                            _ => None,
                        }) {
                            ctx.events.push_back(Event::SetLinkInfo {
                                tunnel: self.id,
                                session,
                                send_accm: send,
                                receive_accm: receive,
                            });
                        }
                    }
                    _ => {
                        // §7.4: a call message that does not fit the call's
                        // state clears the call.
                        ctx.stats.fsm_errors += 1;
                        let text = format!("unexpected {}", msg.message_type.name());
                        self.close_session(
                            ctx,
                            session,
                            result(cdn_result::GENERAL_ERROR, Some(error_code::NONE), &text),
                        );
                    }
                }
            }
        }
    }

    /// Admission for a new session: limits per tunnel and half-open.
    fn admit(&self, ctx: &Ctx<'_>) -> Result<(), CallRefusal> {
        if self.state != super::tunnel::TunnelState::Established {
            return Err(CallRefusal::TunnelNotUp);
        }
        let limits = &ctx.config.limits;
        if self.sessions.len() >= limits.max_sessions_per_tunnel
            || *ctx.half_open_sessions >= limits.max_half_open_sessions
        {
            return Err(CallRefusal::NoResources);
        }
        Ok(())
    }

    fn insert_session(
        &mut self,
        ctx: &mut Ctx<'_>,
        peer_id: u16,
        state: SessionState,
        call: CallInfo,
    ) -> Option<u16> {
        let id = self.session_ids.allocate(ctx.now, ctx.rng)?;
        self.sessions.insert(
            id,
            Session {
                peer_id,
                state,
                call: Some(Box::new(call)),
                setup: Some(Box::new(SetupClock {
                    created: ctx.now,
                    deadline: ctx.now + ctx.config.setup_timeout,
                })),
            },
        );
        *ctx.half_open_sessions += 1;
        self.session_deadlines
            .push_back((ctx.now + ctx.config.setup_timeout, id));
        Some(id)
    }

    /// Refuse a call request before any session exists for it: a CDN to
    /// the peer's session, naming no session of ours (§6.12).
    pub(crate) fn refuse_call(&mut self, ctx: &mut Ctx<'_>, peer_session: u16, code: ResultCode) {
        ctx.stats.sessions_refused += 1;
        let refusal = ControlMessage::new(MessageType::Cdn)
            .with(Avp::ResultCode(code))
            .with(Avp::AssignedSessionId(0));
        self.send(ctx, peer_session, &refusal);
    }

    /// Admit a call request (ICRQ or OCRQ) and answer it with `reply`
    /// carrying our new session ID, or refuse it with the RFC result code.
    fn accept_call(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: ControlMessage,
        state: SessionState,
        reply: MessageType,
    ) -> Option<u16> {
        let Some(peer_id) = msg.assigned_session_id().filter(|id| *id != 0) else {
            let code = result(
                cdn_result::GENERAL_ERROR,
                Some(error_code::BAD_VALUE),
                "missing Assigned Session ID",
            );
            self.refuse_call(ctx, 0, code);
            return None;
        };
        let mut call = CallInfo::default();
        absorb(&mut call, msg);
        // Limits first, then the admission rate, so a refused call spends
        // no token.
        let admitted =
            self.admit(ctx).is_ok() && ctx.session_rate.as_mut().is_none_or(|r| r.admit(ctx.now));
        let id = if admitted {
            self.insert_session(ctx, peer_id, state, call)
        } else {
            None
        };
        let Some(id) = id else {
            // §4.4.2: CDN result 4, "temporary lack of facilities".
            let code = result(
                cdn_result::TEMPORARY_NO_FACILITIES,
                Some(error_code::NO_RESOURCES),
                "",
            );
            self.refuse_call(ctx, peer_id, code);
            return None;
        };
        let answer = ControlMessage::new(reply).with(Avp::AssignedSessionId(id));
        self.send(ctx, peer_id, &answer);
        Some(id)
    }

    /// LNS: ICRQ (§6.6): ICRP, then wait for ICCN.
    fn on_icrq(&mut self, ctx: &mut Ctx<'_>, msg: ControlMessage) {
        self.accept_call(ctx, msg, SessionState::WaitIccn, MessageType::Icrp);
    }

    /// The peer's Assigned Session ID from a call reply, or the call is
    /// cleared for lacking it.
    fn reply_peer_id(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: u16,
        msg: &ControlMessage,
    ) -> Option<u16> {
        let peer_id = msg.assigned_session_id().filter(|id| *id != 0);
        if peer_id.is_none() {
            let code = result(
                cdn_result::GENERAL_ERROR,
                Some(error_code::BAD_VALUE),
                "missing Assigned Session ID",
            );
            self.close_session(ctx, session, code);
        }
        peer_id
    }

    /// LAC: ICRP (§6.7): answer with ICCN and the call is up.
    fn on_icrp(&mut self, ctx: &mut Ctx<'_>, session: u16, msg: &ControlMessage) {
        let Some(peer_id) = self.reply_peer_id(ctx, session, msg) else {
            return;
        };
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        entry.peer_id = peer_id;
        let connected = connected_message(MessageType::Iccn, entry.call_mut());
        self.send_connected(ctx, session, peer_id, &connected);
        self.session_up(ctx, session);
    }

    /// LNS: ICCN (§6.8) or OCCN (§6.11): the call is connected.
    fn on_connected(&mut self, ctx: &mut Ctx<'_>, session: u16, msg: ControlMessage) {
        if let Some(entry) = self.sessions.get_mut(&session) {
            absorb(entry.call_mut(), msg);
        }
        self.session_up(ctx, session);
    }

    /// LNS: OCRP (§6.10): the LAC accepted our outgoing call and dials.
    fn on_ocrp(&mut self, ctx: &mut Ctx<'_>, session: u16, msg: ControlMessage) {
        let Some(peer_id) = self.reply_peer_id(ctx, session, &msg) else {
            return;
        };
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.peer_id = peer_id;
            entry.state = SessionState::WaitOccn;
            absorb(entry.call_mut(), msg);
        }
    }

    /// LAC: OCRQ (§6.9): accept, "dial" at once, report connected.
    fn on_ocrq(&mut self, ctx: &mut Ctx<'_>, msg: ControlMessage) {
        let Some(id) = self.accept_call(ctx, msg, SessionState::WaitIcrp, MessageType::Ocrp) else {
            return;
        };
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        let peer_id = entry.peer_id;
        let call = entry.call_mut();
        let speed = call.maximum_bps.unwrap_or(0);
        call.tx_connect_speed.get_or_insert(speed);
        let connected = connected_message(MessageType::Occn, call);
        self.send_connected(ctx, id, peer_id, &connected);
        self.session_up(ctx, id);
    }

    /// LAC: queue ICCN / OCCN and remember it until it has gone out. The
    /// call is up from here on (§6.8), but an LNS knows it only once the
    /// message arrives, and may drop PPP frames that come before it; when
    /// the window holds the message back, the frames must wait too.
    fn send_connected(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: u16,
        peer_session: u16,
        msg: &ControlMessage,
    ) {
        let number = self.channel.queued_count();
        self.send(ctx, peer_session, msg);
        let channel = &self.channel;
        self.connects_queued.retain(|(k, _)| !channel.has_left(*k));
        if !channel.has_left(number) && channel.queued_count() > number {
            self.connects_queued.push_back((number, session));
        }
    }

    /// LAC: whether `session`'s ICCN / OCCN is still waiting to be sent.
    pub(crate) fn connect_unsent(&self, session: u16) -> bool {
        self.connects_queued
            .iter()
            .any(|(k, s)| *s == session && !self.channel.has_left(*k))
    }

    /// CDN from the peer (§6.12): the call is gone.
    fn on_cdn(&mut self, ctx: &mut Ctx<'_>, session: u16, msg: &ControlMessage) {
        // The header carries our session ID: even a refusal of our ICRQ is
        // addressed to the Assigned Session ID we sent in it.
        if !self.sessions.contains_key(&session) {
            ctx.stats.unknown_session += 1;
            return;
        }
        let code = msg.result_code().cloned().unwrap_or(ResultCode {
            result: cdn_result::GENERAL_ERROR,
            error: None,
            message: None,
        });
        self.remove_session(ctx, session, SessionDownReason::PeerDisconnect(code));
    }

    fn session_up(&mut self, ctx: &mut Ctx<'_>, session: u16) {
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        if entry.is_half_open() {
            *ctx.half_open_sessions = ctx.half_open_sessions.saturating_sub(1);
        }
        entry.state = SessionState::Established;
        let started = entry.setup.take().map_or(ctx.now, |c| c.created);
        ctx.stats.sessions_established += 1;
        ctx.events.push_back(Event::SessionUp {
            tunnel: self.id,
            session,
            peer_tunnel: self.peer_id,
            peer_session: entry.peer_id,
            call: entry.call.take().unwrap_or_default(),
            started,
        });
    }

    /// Clear a call from our side: CDN (§6.12) and forget it.
    pub(crate) fn close_session(&mut self, ctx: &mut Ctx<'_>, session: u16, code: ResultCode) {
        let Some(entry) = self.sessions.get(&session) else {
            return;
        };
        let peer_id = entry.peer_id;
        let cdn = ControlMessage::new(MessageType::Cdn)
            .with(Avp::ResultCode(code.clone()))
            .with(Avp::AssignedSessionId(session));
        self.send(ctx, peer_id, &cdn);
        self.remove_session(ctx, session, SessionDownReason::LocalDisconnect(code));
    }

    pub(crate) fn remove_session(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: u16,
        reason: SessionDownReason,
    ) {
        let Some(entry) = self.sessions.remove(&session) else {
            return;
        };
        if entry.is_half_open() {
            *ctx.half_open_sessions = ctx.half_open_sessions.saturating_sub(1);
        }
        self.session_ids.release(session, ctx.now);
        ctx.stats.sessions_closed += 1;
        ctx.events.push_back(Event::SessionDown {
            tunnel: self.id,
            session,
            reason,
        });
    }

    /// Clear calls still half-open at their deadline. While the tunnel is
    /// still working through a backlog — ours queued behind the window, or
    /// the peer's messages still arriving — the call may simply be waiting
    /// its turn, so the deadline moves on instead, up to four timeouts in
    /// all (a peer that keeps a call half-open on purpose is bounded by that
    /// and by the half-open limit).
    pub(crate) fn expire_session_setups(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(&(deadline, id)) = self.session_deadlines.front() {
            if deadline > ctx.now {
                break;
            }
            self.session_deadlines.pop_front();
            let due = self.sessions.get(&id).is_some_and(|s| {
                s.is_half_open() && s.setup.as_ref().is_some_and(|c| c.deadline == deadline)
            });
            if !due {
                continue;
            }
            let timeout = ctx.config.setup_timeout;
            // A peer backing off on a lost message goes quiet for up to the
            // retransmission cap; that is still a busy peer.
            let quiet = ctx.config.reliable.retransmit_cap.max(timeout / 10);
            let busy = !self.channel.is_idle()
                || self.channel.is_holding()
                || ctx.now < self.last_delivered + quiet;
            let created = self
                .sessions
                .get(&id)
                .and_then(|s| s.setup.as_ref())
                .map_or(ctx.now, |c| c.created);
            if busy && ctx.now < created + timeout * 4 {
                // Every queued deadline is at most `now + timeout`, so
                // pushing this one at the back keeps the queue sorted.
                let later = ctx.now + ctx.config.setup_timeout;
                if let Some(clock) = self.sessions.get_mut(&id).and_then(|s| s.setup.as_mut()) {
                    clock.deadline = later;
                }
                self.session_deadlines.push_back((later, id));
                continue;
            }
            ctx.stats.setup_timeouts += 1;
            self.close_session(ctx, id, result(cdn_result::TIMEOUT, None, ""));
            if let Some(Event::SessionDown { reason, .. }) = ctx.events.back_mut() {
                *reason = SessionDownReason::SetupTimeout;
            }
        }
    }

    /// LAC: place an incoming call (§6.6): send ICRQ.
    pub(crate) fn open_incoming_call(
        &mut self,
        ctx: &mut Ctx<'_>,
        call: CallInfo,
    ) -> Result<u16, CallRefusal> {
        self.admit(ctx)?;
        let request = request_message(MessageType::Icrq, &call);
        let id = self
            .insert_session(ctx, 0, SessionState::WaitIcrp, call)
            .ok_or(CallRefusal::NoResources)?;
        let request = request.with(Avp::AssignedSessionId(id));
        self.send(ctx, 0, &request);
        Ok(id)
    }

    /// LNS: ask the LAC to place an outgoing call (§6.9): send OCRQ.
    pub(crate) fn open_outgoing_call(
        &mut self,
        ctx: &mut Ctx<'_>,
        call: CallInfo,
    ) -> Result<u16, CallRefusal> {
        self.admit(ctx)?;
        let request = request_message(MessageType::Ocrq, &call);
        let id = self
            .insert_session(ctx, 0, SessionState::WaitOcrp, call)
            .ok_or(CallRefusal::NoResources)?;
        let request = request.with(Avp::AssignedSessionId(id));
        self.send(ctx, 0, &request);
        Ok(id)
    }

    /// Send an established session's SLI (§6.14) or WEN (§6.13).
    pub(crate) fn send_link_message(&mut self, ctx: &mut Ctx<'_>, session: u16, avp: Avp) -> bool {
        let Some(entry) = self.sessions.get(&session) else {
            return false;
        };
        if entry.state != SessionState::Established {
            return false;
        }
        let message_type = match avp {
            Avp::CallErrors(_) => MessageType::Wen,
            _ => MessageType::Sli,
        };
        let peer_id = entry.peer_id;
        self.send(ctx, peer_id, &ControlMessage::new(message_type).with(avp));
        true
    }
}

/// ICRQ / OCRQ body from call parameters (§6.6, §6.9); the caller adds the
/// Assigned Session ID.
fn request_message(message_type: MessageType, call: &CallInfo) -> ControlMessage {
    let mut msg = ControlMessage::new(message_type)
        .with(Avp::CallSerialNumber(call.call_serial_number.unwrap_or(0)));
    if message_type == MessageType::Ocrq {
        msg.avps
            .push(Avp::MinimumBps(call.minimum_bps.unwrap_or(0)));
        msg.avps
            .push(Avp::MaximumBps(call.maximum_bps.unwrap_or(u32::MAX)));
        msg.avps.push(Avp::BearerType(
            call.bearer_type
                .unwrap_or(caps::BEARER_DIGITAL | caps::BEARER_ANALOG),
        ));
        msg.avps.push(Avp::FramingType(
            call.framing_type
                .unwrap_or(caps::FRAMING_SYNC | caps::FRAMING_ASYNC),
        ));
        msg.avps.push(Avp::CalledNumber(
            call.called_number.clone().unwrap_or_default(),
        ));
    } else {
        if let Some(bearer) = call.bearer_type {
            msg.avps.push(Avp::BearerType(bearer));
        }
        if let Some(channel) = call.physical_channel_id {
            msg.avps.push(Avp::PhysicalChannelId(channel));
        }
        if let Some(number) = &call.calling_number {
            msg.avps.push(Avp::CallingNumber(number.clone()));
        }
        if let Some(number) = &call.called_number {
            msg.avps.push(Avp::CalledNumber(number.clone()));
        }
    }
    if let Some(sub) = &call.sub_address {
        msg.avps.push(Avp::SubAddress(sub.clone()));
    }
    msg
}

/// ICCN / OCCN body from call parameters (§6.8, §6.11), with the proxy LCP
/// and proxy authentication AVPs when the LAC has them (§4.4.5).
fn connected_message(message_type: MessageType, call: &CallInfo) -> ControlMessage {
    let mut msg = ControlMessage::new(message_type)
        .with(Avp::TxConnectSpeed(call.tx_connect_speed.unwrap_or(0)))
        .with(Avp::FramingType(
            call.framing_type.unwrap_or(caps::FRAMING_SYNC),
        ));
    if let Some(speed) = call.rx_connect_speed {
        msg.avps.push(Avp::RxConnectSpeed(speed));
    }
    if let Some(group) = &call.private_group_id {
        msg.avps.push(Avp::PrivateGroupId(group.clone()));
    }
    if call.sequencing_required {
        msg.avps.push(Avp::SequencingRequired);
    }
    if message_type == MessageType::Iccn {
        let lcp = &call.proxy_lcp;
        if let Some(options) = &lcp.initial_received {
            msg.avps
                .push(Avp::InitialReceivedLcpConfreq(options.clone()));
        }
        if let Some(options) = &lcp.last_sent {
            msg.avps.push(Avp::LastSentLcpConfreq(options.clone()));
        }
        if let Some(options) = &lcp.last_received {
            msg.avps.push(Avp::LastReceivedLcpConfreq(options.clone()));
        }
        let auth = &call.proxy_auth;
        if let Some(kind) = auth.authen_type {
            msg.avps.push(Avp::ProxyAuthenType(kind));
        }
        if let Some(name) = &auth.name {
            msg.avps.push(Avp::ProxyAuthenName(name.clone()));
        }
        if let Some(challenge) = &auth.challenge {
            msg.avps.push(Avp::ProxyAuthenChallenge(challenge.clone()));
        }
        if let Some(id) = auth.id {
            msg.avps.push(Avp::ProxyAuthenId(id));
        }
        if let Some(response) = &auth.response {
            msg.avps.push(Avp::ProxyAuthenResponse(response.clone()));
        }
    }
    msg
}

/// Move every call AVP of `msg` into `call`; later messages override.
/// Taking the message by value hands the parsed strings over instead of
/// copying them.
fn absorb(call: &mut CallInfo, msg: ControlMessage) {
    for avp in msg.avps {
        match avp {
            Avp::CallSerialNumber(v) => call.call_serial_number = Some(v),
            Avp::BearerType(v) => call.bearer_type = Some(v),
            Avp::FramingType(v) => call.framing_type = Some(v),
            Avp::CallingNumber(v) => call.calling_number = Some(v),
            Avp::CalledNumber(v) => call.called_number = Some(v),
            Avp::SubAddress(v) => call.sub_address = Some(v),
            Avp::TxConnectSpeed(v) => call.tx_connect_speed = Some(v),
            Avp::RxConnectSpeed(v) => call.rx_connect_speed = Some(v),
            Avp::PhysicalChannelId(v) => call.physical_channel_id = Some(v),
            Avp::PrivateGroupId(v) => call.private_group_id = Some(v),
            Avp::MinimumBps(v) => call.minimum_bps = Some(v),
            Avp::MaximumBps(v) => call.maximum_bps = Some(v),
            Avp::SequencingRequired => call.sequencing_required = true,
            Avp::InitialReceivedLcpConfreq(v) => call.proxy_lcp.initial_received = Some(v),
            Avp::LastSentLcpConfreq(v) => call.proxy_lcp.last_sent = Some(v),
            Avp::LastReceivedLcpConfreq(v) => call.proxy_lcp.last_received = Some(v),
            Avp::ProxyAuthenType(v) => call.proxy_auth.authen_type = Some(v),
            Avp::ProxyAuthenName(v) => call.proxy_auth.name = Some(v),
            Avp::ProxyAuthenChallenge(v) => call.proxy_auth.challenge = Some(v),
            Avp::ProxyAuthenId(v) => call.proxy_auth.id = Some(v),
            Avp::ProxyAuthenResponse(v) => call.proxy_auth.response = Some(v),
            _ => {}
        }
    }
}
