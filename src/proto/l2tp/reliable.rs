//! Reliable delivery of control messages (RFC 2661 §5.8 and Appendix A).
//!
//! A [`ControlChannel`] numbers our control messages, keeps them until the
//! peer acknowledges them, retransmits them with exponential backoff, and on
//! the receiving side orders the peer's messages and acknowledges them, with
//! a Zero-Length Body (ZLB) message when no message of ours can carry the ack.
//!
//! It is sans-IO. The caller drives it like this:
//!
//! 1. For every control packet from the peer, parse the header and call
//!    [`ControlChannel::receive`]. On [`Receive::InOrder`] process the body,
//!    then drain [`ControlChannel::poll_deliver`] for held messages that have
//!    become in order.
//! 2. Queue outgoing message bodies with [`ControlChannel::send`].
//! 3. Call [`ControlChannel::poll_transmit`] until it returns `false`, sending
//!    each packet it writes.
//! 4. Sleep until [`ControlChannel::poll_timeout`], then call
//!    [`ControlChannel::handle_timeout`] and go to 3.
//! 5. When [`ControlChannel::is_failed`] turns true, tear the tunnel down.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::seq;
use crate::wire::l2tp::header::Repr;

/// Bytes of the header of every control message: flags, Length, Tunnel ID,
/// Session ID, Ns and Nr (§3.1 makes L and S mandatory for control messages).
const CONTROL_HEADER_LEN: usize = 12;

/// Largest message body that fits the 16-bit Length field with the header.
pub const MAX_BODY_LEN: usize = u16::MAX as usize - CONTROL_HEADER_LEN;

/// Window sizes beyond half the sequence space would make "before" and
/// "after" ambiguous, so both windows are clamped to this.
const MAX_WINDOW: u16 = 0x7fff;

/// The peer's Receive Window Size when it sends no such AVP (§4.4.3).
const DEFAULT_PEER_WINDOW: u16 = 4;

/// Tuning of one control channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReliableConfig {
    /// Our Receive Window Size: the most out-of-order messages we hold.
    /// Messages up to this many past the next expected one are held; a
    /// peer obeying the window never sends more than `receive_window - 1`
    /// of them, so one extra is tolerated. Default 64: an LNS facing a
    /// storm of calls on few tunnels needs a deep pipe per tunnel.
    pub receive_window: u16,
    /// First retransmission timeout. Default 1 s.
    pub retransmit_initial: Duration,
    /// Ceiling of the doubling timeout; the RFC wants it no less than 8 s.
    pub retransmit_cap: Duration,
    /// Retransmissions of the oldest message before giving up. Default 5:
    /// one more timeout after the last retransmission fails the channel.
    pub max_retries: u32,
    /// How long an in-order message waits for a reply to carry its ack before
    /// a ZLB is sent. Default 100 ms, well below the peer's 1 s timeout.
    pub ack_delay: Duration,
    /// Appendix A slow start and congestion avoidance. Default on.
    pub slow_start: bool,
    /// Resend the oldest unacked message early — after half as long again as
    /// it has been in flight — when this many packets in a row repeat the same Nr
    /// while later messages are in flight (a receiver that holds
    /// out-of-order messages acks each at once, so repeats mean a gap).
    /// 0 turns it off and leaves recovery to the timer alone. Default 3.
    pub fast_retransmit_after: u32,
}

impl Default for ReliableConfig {
    fn default() -> Self {
        ReliableConfig {
            receive_window: 64,
            retransmit_initial: Duration::from_secs(1),
            retransmit_cap: Duration::from_secs(8),
            max_retries: 5,
            ack_delay: Duration::from_millis(100),
            slow_start: true,
            fast_retransmit_after: 3,
        }
    }
}

/// What [`ControlChannel::receive`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// A ZLB: only its Nr was used.
    Ack,
    /// The next expected message: the caller processes the body now, then
    /// drains [`ControlChannel::poll_deliver`] for held messages that follow.
    InOrder,
    /// Ahead of the expected Ns but inside our window: held, ack sent.
    Buffered,
    /// Already received: dropped, an ack is sent promptly (the peer
    /// evidently lost our earlier one).
    Duplicate,
    /// Too far ahead of the expected Ns: dropped.
    OutOfWindow,
}

/// A held message that has become in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Session ID from the header (0 = the tunnel itself).
    pub session_id: u16,
    /// The AVP bytes.
    pub body: Vec<u8>,
}

/// Counters of one channel; plain integers, summed by whoever scrapes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Messages transmitted for the first time.
    pub sent: u64,
    /// Retransmissions of messages already sent.
    pub retransmitted: u64,
    /// ZLB acks sent.
    pub zlb_sent: u64,
    /// Non-ZLB messages received (including duplicates and drops).
    pub received: u64,
    /// Messages received again: already delivered or already held.
    pub duplicates: u64,
    /// Messages received ahead of the expected Ns and held.
    pub out_of_order: u64,
    /// Messages dropped for being beyond our receive window.
    pub out_of_window: u64,
    /// Retransmissions triggered by repeated acks rather than the timer.
    pub fast_retransmits: u64,
    /// Times a new message had to wait because the send window was full
    /// (counted once per stall, not per poll).
    pub window_stalls: u64,
}

impl ChannelStats {
    /// Add `other` to these counters.
    pub fn add(&mut self, other: &ChannelStats) {
        self.sent += other.sent;
        self.retransmitted += other.retransmitted;
        self.zlb_sent += other.zlb_sent;
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.out_of_window += other.out_of_window;
        self.fast_retransmits += other.fast_retransmits;
        self.window_stalls += other.window_stalls;
    }
}

/// Why [`ControlChannel::try_send`] refused a body (our own misuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// An empty body would be a ZLB, which carries no message.
    EmptyBody,
    /// The body does not fit the 16-bit Length field.
    BodyTooLong,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::EmptyBody => f.write_str("control message body is empty"),
            SendError::BodyTooLong => f.write_str("control message body exceeds the Length field"),
        }
    }
}

impl std::error::Error for SendError {}

/// A message of ours, waiting to be sent or to be acknowledged.
#[derive(Debug, Clone)]
struct Outgoing {
    session_id: u16,
    body: Vec<u8>,
}

/// The reliable half of one L2TP control connection.
#[derive(Debug)]
pub struct ControlChannel {
    config: ReliableConfig,
    peer_tunnel_id: u16,
    /// The peer's Receive Window Size, clamped to `1..=MAX_WINDOW`.
    peer_window: u16,

    // --- sending ---
    /// Ns the next new message will carry; also the Ns of every ZLB.
    next_ns: u16,
    /// Queued by `send`, no Ns yet.
    pending: VecDeque<Outgoing>,
    /// Messages `send` has queued since the channel began, and how many of
    /// them have left `pending` (sent once, or discarded): a message queued
    /// as number k has gone out once `left > k`.
    queued: u64,
    left: u64,
    /// Sent at least once, not yet acknowledged; `in_flight[i]` carries
    /// Ns = `next_ns - in_flight.len() + i`.
    in_flight: VecDeque<Outgoing>,
    /// How many of `in_flight` (from the front) count as on the wire in the
    /// current round. A timeout resets it to 0, so the rest are sent again.
    outstanding: usize,
    /// Current retransmission timeout.
    rto: Duration,
    /// Retransmissions since new data was last acknowledged.
    retries: u32,
    /// The one retransmission timer, for the oldest unacked message.
    retransmit_at: Option<Instant>,
    /// Appendix A congestion window, slow-start threshold, and the acks
    /// counted towards the next increase in congestion avoidance.
    cwnd: u16,
    ssthresh: u16,
    acked_in_avoidance: u16,
    /// Packets in a row whose Nr acked nothing new while messages were in
    /// flight.
    repeated_acks: u32,
    /// A new message is waiting for the send window (counted once).
    stalled: bool,
    /// The retransmission timer was pulled in by repeated acks: when it
    /// fires, resend only the oldest message, without backing off.
    early_resend: bool,
    /// Send `in_flight[0]` again before anything else.
    resend_oldest: bool,
    failed: bool,

    // --- receiving ---
    /// Ns we expect next; every packet we send carries it as Nr.
    next_nr: u16,
    /// `held[i]` is the message with Ns = `next_nr + 1 + i`, if received.
    held: VecDeque<Option<Delivered>>,
    /// Held messages that have become in order, for `poll_deliver`.
    ready: VecDeque<Delivered>,
    /// Deadline of a pending ack (delayed, or `now` when prompt).
    ack_at: Option<Instant>,
    /// `ack_now` was called, or the ack deadline has passed.
    ack_forced: bool,

    stats: ChannelStats,
}

impl ControlChannel {
    /// Give back the queue capacity a burst of messages left behind.
    pub fn shrink_queues(&mut self) {
        crate::proto::shrink_queue(&mut self.pending);
        crate::proto::shrink_queue(&mut self.in_flight);
        crate::proto::shrink_queue(&mut self.held);
        crate::proto::shrink_queue(&mut self.ready);
    }

    /// A fresh channel: Ns = Nr = 0, peer tunnel ID 0, peer window 4.
    pub fn new(config: ReliableConfig) -> Self {
        Self::with_initial_sequence(config, 0, 0)
    }

    /// A channel whose next Ns and expected Nr start at the given values.
    ///
    /// §5.8 starts both at 0 on a new tunnel; other starting points serve
    /// tests of wrap-around.
    pub fn with_initial_sequence(mut config: ReliableConfig, ns: u16, nr: u16) -> Self {
        config.receive_window = config.receive_window.clamp(1, MAX_WINDOW);
        let rto = config.retransmit_initial;
        ControlChannel {
            config,
            peer_tunnel_id: 0,
            peer_window: DEFAULT_PEER_WINDOW,
            next_ns: ns,
            pending: VecDeque::new(),
            queued: 0,
            left: 0,
            in_flight: VecDeque::new(),
            outstanding: 0,
            rto,
            retries: 0,
            retransmit_at: None,
            // Appendix A: the congestion window starts at one message and
            // the threshold at the peer's receive window.
            cwnd: 1,
            ssthresh: DEFAULT_PEER_WINDOW,
            acked_in_avoidance: 0,
            repeated_acks: 0,
            stalled: false,
            early_resend: false,
            resend_oldest: false,
            failed: false,
            next_nr: nr,
            held: VecDeque::new(),
            ready: VecDeque::new(),
            ack_at: None,
            ack_forced: false,
            stats: ChannelStats::default(),
        }
    }

    /// Set the Tunnel ID the peer gave us (Assigned Tunnel ID AVP). Every
    /// packet written from now on carries it, retransmissions included.
    pub fn set_peer_tunnel_id(&mut self, id: u16) {
        self.peer_tunnel_id = id;
    }

    /// The Tunnel ID our packets carry.
    pub fn peer_tunnel_id(&self) -> u16 {
        self.peer_tunnel_id
    }

    /// Set the peer's Receive Window Size from its AVP.
    ///
    /// §4.4.3 forbids 0; we read it as 1 rather than stall forever. This
    /// also resets the slow-start threshold to the new window, so call it
    /// when the AVP arrives (SCCRQ/SCCRP), not later.
    pub fn set_peer_window(&mut self, size: u16) {
        let size = size.clamp(1, MAX_WINDOW);
        self.peer_window = size;
        // Appendix A: the slow-start threshold starts at the peer's window.
        self.ssthresh = size;
        self.cwnd = self.cwnd.min(size);
    }

    /// The peer's receive window in use (after clamping).
    pub fn peer_window(&self) -> u16 {
        self.peer_window
    }

    /// Queue one control message body (AVP bytes) for the peer's session
    /// `session_id` (0 = the tunnel).
    ///
    /// # Panics
    /// If the body is empty or longer than [`MAX_BODY_LEN`]; both are bugs
    /// of the caller, never the peer's doing. See [`Self::try_send`].
    pub fn send(&mut self, session_id: u16, body: Vec<u8>) {
        if let Err(error) = self.try_send(session_id, body) {
            panic!("ControlChannel::send: {error}");
        }
    }

    /// Like [`Self::send`], but refuses a bad body instead of panicking.
    pub fn try_send(&mut self, session_id: u16, body: Vec<u8>) -> Result<(), SendError> {
        if body.is_empty() {
            return Err(SendError::EmptyBody);
        }
        if body.len() > MAX_BODY_LEN {
            return Err(SendError::BodyTooLong);
        }
        self.pending.push_back(Outgoing { session_id, body });
        self.queued += 1;
        Ok(())
    }

    /// How many messages `send` has queued so far: the number the next
    /// one will get (the first is 0).
    pub fn queued_count(&self) -> u64 {
        self.queued
    }

    /// Whether message number `k` (see [`Self::queued_count`]) has left
    /// the queue: sent at least once (or discarded with the unsent rest).
    pub fn has_left(&self, k: u64) -> bool {
        k < self.left
    }

    /// Take in one control packet from the peer: its Ns, Nr, Session ID and
    /// body (empty for a ZLB).
    ///
    /// After [`Receive::InOrder`], drain [`Self::poll_deliver`] before the
    /// next call, or held messages would be processed after later ones.
    pub fn receive(
        &mut self,
        now: Instant,
        ns: u16,
        nr: u16,
        session_id: u16,
        body: &[u8],
    ) -> Receive {
        // §5.8: Nr acknowledges our messages in every packet the peer sends,
        // duplicates and ZLBs included, so it is used before anything else.
        self.acknowledge(now, nr, body.is_empty());

        // §5.8: a message with an empty body is a ZLB ack; its Ns is not
        // a message number and is not checked.
        if body.is_empty() {
            return Receive::Ack;
        }
        self.stats.received += 1;

        let ahead = seq::distance(self.next_nr, ns);
        if ahead == 0 {
            // The message we expect: Nr moves past it, and past any held
            // messages that now follow without a gap.
            self.next_nr = self.next_nr.wrapping_add(1);
            while let Some(slot) = self.held.pop_front() {
                match slot {
                    Some(message) => {
                        self.ready.push_back(message);
                        self.next_nr = self.next_nr.wrapping_add(1);
                    }
                    // The popped slot was the new expected Ns: still missing.
                    None => break,
                }
            }
            // §5.8: the ack may wait a little for a reply message to carry
            // it; a ZLB goes out only if none does in time.
            self.schedule_ack(now.checked_add(self.config.ack_delay).unwrap_or(now));
            Receive::InOrder
        } else if ahead < 0 {
            // §5.8: a message from before the expected Ns was already
            // received; our ack for it must have been lost, so re-ack at once
            // or the peer keeps retransmitting until it tears the tunnel down.
            self.stats.duplicates += 1;
            self.schedule_ack(now);
            Receive::Duplicate
        } else if (ahead as u16) <= self.config.receive_window {
            // §5.8 lets the receiver queue out-of-order messages that fall in
            // its window. Acking at once repeats our current Nr, which tells
            // the peer where the gap is.
            let index = usize::from(ahead as u16 - 1);
            if self.held.len() <= index {
                self.held.resize(index + 1, None);
            }
            match &mut self.held[index] {
                Some(_) => self.stats.duplicates += 1,
                slot @ None => {
                    *slot = Some(Delivered {
                        session_id,
                        body: body.to_vec(),
                    });
                    self.stats.out_of_order += 1;
                }
            }
            self.schedule_ack(now);
            Receive::Buffered
        } else {
            // Beyond what we advertised: the peer may not send it yet.
            self.stats.out_of_window += 1;
            Receive::OutOfWindow
        }
    }

    /// The next held message that has become in order, in Ns order.
    pub fn poll_deliver(&mut self) -> Option<Delivered> {
        self.ready.pop_front()
    }

    /// Write the next packet to send into `out` (cleared first): a new or
    /// retransmitted message, or a ZLB ack. Returns `false` when there is
    /// nothing to send now.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        out.clear();
        if self.failed {
            return false;
        }
        if self.resend_oldest {
            self.resend_oldest = false;
            if let Some(message) = self.in_flight.front() {
                let ns = self.send_base();
                if self.write(out, message.session_id, ns, &message.body) {
                    self.stats.retransmitted += 1;
                    self.stats.fast_retransmits += 1;
                    self.message_sent(now);
                    return true;
                }
            }
        }
        if self.outstanding < self.send_window() {
            if self.outstanding < self.in_flight.len() {
                // After a timeout we go back to the oldest unacked message and
                // send each again, with the same Ns but the current Nr.
                let index = self.outstanding;
                let ns = self.send_base().wrapping_add(index as u16);
                let message = &self.in_flight[index];
                if !self.write(out, message.session_id, ns, &message.body) {
                    return false;
                }
                self.outstanding += 1;
                self.stats.retransmitted += 1;
                self.message_sent(now);
                return true;
            }
            if let Some(message) = self.pending.front() {
                // §5.8: each new message takes the next Ns.
                let ns = self.next_ns;
                if !self.write(out, message.session_id, ns, &message.body) {
                    return false;
                }
                if let Some(message) = self.pending.pop_front() {
                    self.in_flight.push_back(message);
                    self.left += 1;
                }
                self.next_ns = self.next_ns.wrapping_add(1);
                self.outstanding += 1;
                self.stats.sent += 1;
                self.stalled = false;
                self.message_sent(now);
                return true;
            }
        } else if !self.pending.is_empty() && !self.stalled {
            // New messages wait for acks: the peer's window (or ours,
            // congestion) is the bottleneck. Worth a metric.
            self.stalled = true;
            self.stats.window_stalls += 1;
        }
        if self.ack_forced || self.ack_at.is_some_and(|at| at <= now) {
            // §5.8: a ZLB carries the next Ns we will send, without using it
            // up, and our current Nr.
            if !self.write(out, 0, self.next_ns, &[]) {
                return false;
            }
            self.ack_at = None;
            self.ack_forced = false;
            self.stats.zlb_sent += 1;
            return true;
        }
        false
    }

    /// The earliest instant at which [`Self::handle_timeout`] has work.
    ///
    /// An ack requested with [`Self::ack_now`] has no deadline here: call
    /// [`Self::poll_transmit`] right after.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed {
            return None;
        }
        match (self.retransmit_at, self.ack_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Act on the retransmission and ack deadlines that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.failed {
            return;
        }
        if self.ack_at.is_some_and(|at| at <= now) {
            self.ack_at = None;
            self.ack_forced = true;
        }
        let Some(at) = self.retransmit_at else {
            return;
        };
        if at > now {
            return;
        }
        self.retransmit_at = None;
        if self.in_flight.is_empty() {
            return;
        }
        if self.early_resend {
            // Repeated acks pointed at a gap and it has not closed since:
            // resend the missing message only; the rest arrived.
            self.early_resend = false;
            self.resend_oldest = true;
            // The window stays as it is: the later messages got through, so
            // the path is not congested. Control traffic is a trickle next
            // to the data it steers, and access links lose packets for
            // reasons other than congestion; halving here would throttle a
            // setup storm for nothing. A full timeout still restarts slow
            // start (Appendix A).
            self.retransmit_at = now.checked_add(self.rto);
            return;
        }
        // §5.8: after the configured number of retransmissions without an
        // ack, the peer is considered gone and the tunnel is cleaned up.
        if self.retries >= self.config.max_retries {
            self.failed = true;
            self.ack_at = None;
            self.ack_forced = false;
            return;
        }
        self.retries += 1;
        // §5.8: each retransmission waits twice as long as the one before,
        // up to a ceiling of no less than 8 seconds.
        self.rto = self.rto.saturating_mul(2).min(
            self.config
                .retransmit_cap
                .max(self.config.retransmit_initial),
        );
        // Everything unacked counts as lost: send again from the oldest.
        self.outstanding = 0;
        if self.config.slow_start {
            // Appendix A: on a retransmission timeout the threshold drops to
            // half the congestion window (at least one) and the window
            // restarts at one message.
            self.ssthresh = (self.cwnd / 2).max(1);
            self.cwnd = 1;
            self.acked_in_avoidance = 0;
        }
    }

    /// Forget messages queued but never sent (they have no Ns yet, so the
    /// peer cannot tell). Returns how many were dropped.
    pub fn discard_unsent(&mut self) -> usize {
        let dropped = self.pending.len();
        self.pending.clear();
        self.left += dropped as u64;
        dropped
    }

    /// Make the next [`Self::poll_transmit`] send a ZLB unless a message
    /// goes out that carries the ack anyway.
    pub fn ack_now(&mut self) {
        self.ack_forced = true;
    }

    /// Retries are exhausted: the tunnel must be torn down.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Nothing queued and nothing waiting for an ack.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_empty()
    }

    /// Messages from the peer are held behind a gap: the peer is in the
    /// middle of delivering something.
    pub fn is_holding(&self) -> bool {
        self.held.iter().any(Option::is_some)
    }

    /// Messages sent but not acknowledged, plus messages queued.
    pub fn unacked(&self) -> usize {
        self.in_flight.len() + self.pending.len()
    }

    /// The Ns the next new message will carry (and every ZLB until then).
    pub fn next_ns(&self) -> u16 {
        self.next_ns
    }

    /// The Ns we expect next from the peer: the Nr of our packets.
    pub fn next_nr(&self) -> u16 {
        self.next_nr
    }

    /// Counters.
    pub fn stats(&self) -> &ChannelStats {
        &self.stats
    }

    /// Ns of the oldest unacknowledged message.
    fn send_base(&self) -> u16 {
        // in_flight never exceeds MAX_WINDOW entries, so this fits.
        self.next_ns.wrapping_sub(self.in_flight.len() as u16)
    }

    /// Messages that may be on the wire unacknowledged at once.
    fn send_window(&self) -> usize {
        // §5.8: never more than the peer's receive window; Appendix A:
        // never more than the congestion window either.
        let window = if self.config.slow_start {
            self.peer_window.min(self.cwnd)
        } else {
            self.peer_window
        };
        usize::from(window.max(1))
    }

    /// Use the peer's Nr: release what it acknowledges.
    fn acknowledge(&mut self, now: Instant, nr: u16, zlb: bool) {
        // §5.8: Nr is the next Ns the peer expects, so it acknowledges every
        // message of ours before it. An Nr at or before our oldest unacked
        // message acks nothing new; one past what we have sent is bogus.
        // Both are ignored.
        let acked = seq::distance(self.send_base(), nr);
        // Only ZLBs count as repeats: a peer sending its own messages in a
        // burst repeats its Nr on each without implying any gap.
        if acked == 0 && zlb && self.outstanding > 1 {
            self.count_repeated_ack(now);
        }
        if acked <= 0 || acked as usize > self.in_flight.len() {
            return;
        }
        let acked = acked as usize;
        self.repeated_acks = 0;
        self.early_resend = false;
        self.in_flight.drain(..acked);
        self.outstanding = self.outstanding.saturating_sub(acked);

        // New data acknowledged: the peer is alive, so the backoff starts
        // over and the timer covers the new oldest message.
        self.rto = self.config.retransmit_initial;
        self.retries = 0;
        self.retransmit_at = if self.outstanding > 0 {
            now.checked_add(self.rto)
        } else {
            None
        };

        if self.config.slow_start {
            // Appendix A, counting each acknowledged message as one ack (the
            // peer's acks are cumulative and may be delayed to cover several):
            // below the threshold the window grows by one per ack (slow
            // start); above it, by one per window's worth of acks
            // (congestion avoidance). It never needs to exceed the peer's
            // window, which bounds sending anyway.
            for _ in 0..acked {
                if self.cwnd < self.ssthresh {
                    self.cwnd += 1;
                } else {
                    self.acked_in_avoidance += 1;
                    if self.acked_in_avoidance >= self.cwnd {
                        self.acked_in_avoidance = 0;
                        self.cwnd = self.cwnd.saturating_add(1);
                    }
                }
                self.cwnd = self.cwnd.min(self.peer_window);
            }
        }
    }

    /// The peer repeated, in a ZLB, an Nr that acks nothing while later messages are in
    /// flight. RFC 2661 leaves loss recovery to the timer; but a receiver
    /// that holds out-of-order messages acks each at once (as ours does), so
    /// a run of repeats says the oldest message is missing and later ones
    /// arrived. The time the oldest has been in flight is at least a round
    /// trip; a merely reordered message shows up well within half of that
    /// again, so we resend then instead of waiting out the timeout. A wrong
    /// guess costs the peer one duplicate.
    fn count_repeated_ack(&mut self, now: Instant) {
        let threshold = self.config.fast_retransmit_after;
        if threshold == 0 {
            return;
        }
        self.repeated_acks += 1;
        if self.repeated_acks != threshold {
            return;
        }
        let Some(at) = self.retransmit_at else {
            return;
        };
        // `at` is one timeout after the oldest message went out (or after
        // the last ack, which is later: a conservative estimate).
        let sent = at.checked_sub(self.rto).unwrap_or(now).min(now);
        let early = now + (now - sent) / 2;
        if early < at {
            self.retransmit_at = Some(early);
            self.early_resend = true;
        }
    }

    /// Ask for an ack by `at`, keeping an earlier deadline if there is one.
    fn schedule_ack(&mut self, at: Instant) {
        self.ack_at = Some(self.ack_at.map_or(at, |old| old.min(at)));
    }

    /// Bookkeeping after a message (not a ZLB) went out.
    fn message_sent(&mut self, now: Instant) {
        // Every message carries our current Nr, which is the ack: any
        // pending delayed ack has been sent with it.
        self.ack_at = None;
        self.ack_forced = false;
        if self.retransmit_at.is_none() {
            self.retransmit_at = now.checked_add(self.rto);
        }
    }

    /// Write a control packet with our current Nr into `out`.
    fn write(&self, out: &mut Vec<u8>, session_id: u16, ns: u16, body: &[u8]) -> bool {
        let repr = Repr::control(self.peer_tunnel_id, session_id, ns, self.next_nr);
        out.clear();
        out.resize(repr.header_len(), 0);
        match repr.emit(out, body.len()) {
            Ok(_) => {
                out.extend_from_slice(body);
                true
            }
            // Bodies are checked in `try_send`, so this does not happen.
            Err(_) => {
                out.clear();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::l2tp::header::Packet;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    /// One packet as the peer sees it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Sent {
        tunnel_id: u16,
        session_id: u16,
        ns: u16,
        nr: u16,
        body: Vec<u8>,
    }

    fn parse(bytes: &[u8]) -> Sent {
        let packet = Packet::new_checked(bytes).unwrap();
        assert!(packet.is_control());
        assert_eq!(packet.length(), Some(bytes.len() as u16));
        Sent {
            tunnel_id: packet.tunnel_id(),
            session_id: packet.session_id(),
            ns: packet.ns().unwrap(),
            nr: packet.nr().unwrap(),
            body: packet.payload().to_vec(),
        }
    }

    /// Everything `poll_transmit` has to send at `now`.
    fn transmit_all(ch: &mut ControlChannel, now: Instant) -> Vec<Sent> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        while ch.poll_transmit(now, &mut out) {
            sent.push(parse(&out));
            assert!(sent.len() < 100_000, "poll_transmit never ran dry");
        }
        assert!(out.is_empty());
        sent
    }

    fn no_slow_start() -> ReliableConfig {
        ReliableConfig {
            slow_start: false,
            ..ReliableConfig::default()
        }
    }

    fn nss(sent: &[Sent]) -> Vec<u16> {
        sent.iter().map(|s| s.ns).collect()
    }

    /// A channel to a peer with a window of 2 and five messages queued:
    /// Ns 0 and 1 sent, the rest waiting for the window.
    fn channel_with_a_full_window(t0: Instant) -> ControlChannel {
        let mut ch = ControlChannel::new(no_slow_start());
        ch.set_peer_window(2);
        for i in 0..5u8 {
            ch.send(0, vec![i + 1]);
        }
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![0, 1]);
        ch
    }

    #[test]
    fn a_full_window_counts_one_stall_until_it_opens() {
        let t0 = Instant::now();
        let mut ch = channel_with_a_full_window(t0);
        assert_eq!(ch.stats().window_stalls, 1);
        // Asking again while it is still full is the same stall.
        assert!(transmit_all(&mut ch, t0).is_empty());
        assert_eq!(ch.stats().window_stalls, 1);
        // An ack opens the window: two more go, and it is full again.
        ch.receive(t0 + MS, 0, 2, 0, &[]);
        assert_eq!(nss(&transmit_all(&mut ch, t0 + MS)), vec![2, 3]);
        assert_eq!(ch.stats().window_stalls, 2);
        // The last one fits: no stall.
        ch.receive(t0 + 2 * MS, 0, 4, 0, &[]);
        assert_eq!(nss(&transmit_all(&mut ch, t0 + 2 * MS)), vec![4]);
        assert_eq!(ch.stats().window_stalls, 2);
        let mut total = ChannelStats::default();
        total.add(ch.stats());
        total.add(ch.stats());
        assert_eq!((total.window_stalls, total.sent), (4, 10));
    }

    #[test]
    fn repeated_acks_resend_the_oldest_at_once() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        ch.set_peer_window(8);
        for i in 0..5u8 {
            ch.send(0, vec![i + 1]);
        }
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![0, 1, 2, 3, 4]);
        // Message 0 was lost; the peer acks 1, 2 and 3 at once, each with
        // Nr 0. After the third repeat at 10 ms, the oldest has been out for
        // 10 ms: the 1 s timer is pulled in to 15 ms, and then only message 0
        // is resent.
        assert_eq!(ch.poll_timeout(), Some(t0 + SEC));
        assert_eq!(ch.receive(t0 + 10 * MS, 0, 0, 0, &[]), Receive::Ack);
        assert_eq!(ch.receive(t0 + 10 * MS, 0, 0, 0, &[]), Receive::Ack);
        assert_eq!(ch.poll_timeout(), Some(t0 + SEC));
        assert_eq!(ch.receive(t0 + 10 * MS, 0, 0, 0, &[]), Receive::Ack);
        assert_eq!(ch.poll_timeout(), Some(t0 + 15 * MS));
        assert!(transmit_all(&mut ch, t0 + 10 * MS).is_empty());
        ch.handle_timeout(t0 + 15 * MS);
        let resent = transmit_all(&mut ch, t0 + 15 * MS);
        assert_eq!(nss(&resent), vec![0]);
        assert_eq!(resent[0].body, vec![1]);
        assert_eq!(ch.stats().fast_retransmits, 1);
        // No backoff: the next timeout is a plain 1 s away.
        assert_eq!(ch.poll_timeout(), Some(t0 + 1015 * MS));
        // More repeats of the same gap do not pull the timer in again.
        ch.receive(t0 + 20 * MS, 0, 0, 0, &[]);
        assert_eq!(ch.poll_timeout(), Some(t0 + 1015 * MS));
        // The gap closes: everything acked.
        ch.receive(t0, 0, 5, 0, &[]);
        assert!(ch.is_idle());
    }

    #[test]
    fn a_message_counts_as_gone_once_sent_or_discarded() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        ch.set_peer_window(2);
        assert_eq!(ch.queued_count(), 0);
        for i in 0..4u8 {
            ch.send(0, vec![i + 1]);
        }
        assert_eq!(ch.queued_count(), 4);
        assert!(!ch.has_left(0));
        // The window lets two out; the other two wait.
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![0, 1]);
        assert!(ch.has_left(0) && ch.has_left(1));
        assert!(!ch.has_left(2) && !ch.has_left(3));
        // A retransmission does not count twice.
        ch.handle_timeout(t0 + SEC);
        assert_eq!(nss(&transmit_all(&mut ch, t0 + SEC)), vec![0, 1]);
        assert!(!ch.has_left(2));
        // An ack opens the window for one more.
        ch.receive(t0 + SEC, 0, 1, 0, &[]);
        assert_eq!(nss(&transmit_all(&mut ch, t0 + SEC)), vec![2]);
        assert!(ch.has_left(2) && !ch.has_left(3));
        // Discarded counts as gone: nobody waits on it forever.
        assert_eq!(ch.discard_unsent(), 1);
        assert!(ch.has_left(3));
        assert_eq!(ch.queued_count(), 4);
    }

    #[test]
    fn unsent_messages_can_be_discarded() {
        let t0 = Instant::now();
        let mut ch = channel_with_a_full_window(t0);
        assert_eq!(ch.discard_unsent(), 3);
        ch.send(0, vec![9]);
        ch.receive(t0, 0, 2, 0, &[]);
        // The next message takes Ns 2: nothing was skipped.
        let sent = transmit_all(&mut ch, t0);
        assert_eq!(nss(&sent), vec![2]);
        assert_eq!(sent[0].body, vec![9]);
    }

    #[test]
    fn reordering_closes_the_gap_before_the_early_resend() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        ch.set_peer_window(8);
        for i in 0..5u8 {
            ch.send(0, vec![i + 1]);
        }
        transmit_all(&mut ch, t0);
        for _ in 0..3 {
            ch.receive(t0 + MS, 0, 0, 0, &[]);
        }
        // Message 0 was only late: the cumulative ack arrives.
        ch.receive(t0 + 2 * MS, 0, 5, 0, &[]);
        assert_eq!(ch.poll_timeout(), None);
        assert_eq!(ch.stats().fast_retransmits, 0);
        assert_eq!(ch.stats().retransmitted, 0);
    }

    #[test]
    fn fast_retransmit_can_be_turned_off() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig {
            fast_retransmit_after: 0,
            ..no_slow_start()
        });
        ch.set_peer_window(8);
        for i in 0..5u8 {
            ch.send(0, vec![i + 1]);
        }
        transmit_all(&mut ch, t0);
        for _ in 0..5 {
            ch.receive(t0, 0, 0, 0, &[]);
        }
        assert_eq!(ch.poll_timeout(), Some(t0 + SEC));
        assert_eq!(ch.stats().fast_retransmits, 0);
    }

    #[test]
    fn header_length_constant_matches_the_codec() {
        assert_eq!(Repr::control(1, 2, 3, 4).header_len(), CONTROL_HEADER_LEN);
    }

    #[test]
    fn try_send_rejects_bad_bodies() {
        let mut ch = ControlChannel::new(ReliableConfig::default());
        assert_eq!(ch.try_send(0, Vec::new()), Err(SendError::EmptyBody));
        assert_eq!(
            ch.try_send(0, vec![0; MAX_BODY_LEN + 1]),
            Err(SendError::BodyTooLong)
        );
        assert_eq!(ch.try_send(0, vec![0; MAX_BODY_LEN]), Ok(()));
        let sent = transmit_all(&mut ch, Instant::now());
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].body.len(), MAX_BODY_LEN);
    }

    #[test]
    fn messages_take_consecutive_ns_and_zlb_does_not_consume_one() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        ch.set_peer_tunnel_id(0x1234);
        assert_eq!(ch.peer_tunnel_id(), 0x1234);
        ch.send(0, vec![1]);
        ch.send(9, vec![2, 2]);
        let sent = transmit_all(&mut ch, t0);
        assert_eq!(
            sent,
            vec![
                Sent {
                    tunnel_id: 0x1234,
                    session_id: 0,
                    ns: 0,
                    nr: 0,
                    body: vec![1]
                },
                Sent {
                    tunnel_id: 0x1234,
                    session_id: 9,
                    ns: 1,
                    nr: 0,
                    body: vec![2, 2]
                },
            ]
        );
        assert_eq!(ch.next_ns(), 2);
        ch.ack_now();
        let zlb = transmit_all(&mut ch, t0);
        assert_eq!(zlb.len(), 1);
        assert_eq!((zlb[0].ns, zlb[0].nr, zlb[0].body.len()), (2, 0, 0));
        assert_eq!(ch.next_ns(), 2, "a ZLB must not use up an Ns");
        assert_eq!(ch.stats().sent, 2);
        assert_eq!(ch.stats().zlb_sent, 1);
    }

    #[test]
    fn every_packet_carries_the_current_nr() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        assert_eq!(ch.receive(t0, 0, 0, 0, b"sccrq"), Receive::InOrder);
        assert_eq!(ch.next_nr(), 1);
        ch.send(0, b"sccrp".to_vec());
        let sent = transmit_all(&mut ch, t0);
        assert_eq!(nss(&sent), vec![0]);
        assert_eq!(sent[0].nr, 1);
    }

    #[test]
    fn in_order_message_gets_a_delayed_zlb() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        assert_eq!(ch.receive(t0, 0, 0, 0, b"hello"), Receive::InOrder);
        assert!(
            transmit_all(&mut ch, t0).is_empty(),
            "ack waits for a reply"
        );
        assert_eq!(ch.poll_timeout(), Some(t0 + 100 * MS));
        assert!(transmit_all(&mut ch, t0 + 99 * MS).is_empty());
        ch.handle_timeout(t0 + 100 * MS);
        let zlb = transmit_all(&mut ch, t0 + 100 * MS);
        assert_eq!(zlb.len(), 1);
        assert_eq!((zlb[0].ns, zlb[0].nr, zlb[0].body.len()), (0, 1, 0));
        assert_eq!(ch.poll_timeout(), None);
        assert_eq!(ch.stats().zlb_sent, 1);
    }

    #[test]
    fn reply_carries_the_ack_and_cancels_the_zlb() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        assert_eq!(ch.receive(t0, 0, 0, 0, b"hello"), Receive::InOrder);
        ch.send(0, b"reply".to_vec());
        let sent = transmit_all(&mut ch, t0 + 10 * MS);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].nr, 1);
        // Only the retransmission timer remains.
        assert_eq!(ch.poll_timeout(), Some(t0 + 10 * MS + SEC));
        ch.handle_timeout(t0 + 200 * MS);
        assert!(transmit_all(&mut ch, t0 + 200 * MS).is_empty());
        assert_eq!(ch.stats().zlb_sent, 0);
    }

    #[test]
    fn ack_now_sends_a_zlb_immediately() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        assert!(transmit_all(&mut ch, t0).is_empty());
        ch.ack_now();
        assert_eq!(transmit_all(&mut ch, t0).len(), 1);
        assert!(transmit_all(&mut ch, t0).is_empty());
    }

    #[test]
    fn nr_acknowledges_every_message_before_it() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        for i in 0..3 {
            ch.send(0, vec![i]);
        }
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![0, 1, 2]);
        assert_eq!(ch.unacked(), 3);
        assert_eq!(ch.receive(t0, 0, 2, 0, &[]), Receive::Ack);
        assert_eq!(ch.unacked(), 1);
        assert!(!ch.is_idle());
        assert_eq!(ch.receive(t0, 0, 3, 0, &[]), Receive::Ack);
        assert_eq!(ch.unacked(), 0);
        assert!(ch.is_idle());
        assert_eq!(ch.poll_timeout(), None, "nothing left to time");
    }

    #[test]
    fn nr_acking_unsent_or_old_messages_is_ignored() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        ch.send(0, vec![1]);
        ch.send(0, vec![2]);
        ch.send(0, vec![3]);
        ch.set_peer_window(2);
        assert_eq!(transmit_all(&mut ch, t0).len(), 2);
        // Acks the queued but unsent message too: bogus.
        ch.receive(t0, 0, 3, 0, &[]);
        assert_eq!(ch.unacked(), 3);
        for nr in [5, 0x7fff, 0x8000, 0x8001, 65535, 0] {
            ch.receive(t0, 0, nr, 0, &[]);
            assert_eq!(ch.unacked(), 3, "nr {nr}");
        }
        ch.receive(t0, 0, 1, 0, &[]);
        assert_eq!(ch.unacked(), 2);
        // An Nr behind the oldest unacked one is a stale ack.
        ch.receive(t0, 0, 0, 0, &[]);
        assert_eq!(ch.unacked(), 2);
    }

    #[test]
    fn nr_is_used_even_on_duplicates() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        assert_eq!(ch.receive(t0, 0, 0, 0, b"sccrq"), Receive::InOrder);
        ch.send(0, b"sccrp".to_vec());
        assert_eq!(transmit_all(&mut ch, t0).len(), 1);
        // The peer retransmits its first message, now acking ours.
        assert_eq!(ch.receive(t0, 0, 1, 0, b"sccrq"), Receive::Duplicate);
        assert!(ch.is_idle());
    }

    #[test]
    fn nr_is_used_even_on_out_of_window_messages() {
        let t0 = Instant::now();
        let config = ReliableConfig {
            receive_window: 4,
            ..ReliableConfig::default()
        };
        let mut ch = ControlChannel::new(config);
        ch.send(0, vec![1]);
        assert_eq!(transmit_all(&mut ch, t0).len(), 1);
        assert_eq!(ch.receive(t0, 9, 1, 0, b"x"), Receive::OutOfWindow);
        assert!(ch.is_idle());
    }

    #[test]
    fn in_flight_is_bounded_by_the_peer_window() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        for i in 0..10 {
            ch.send(0, vec![i]);
        }
        // RFC default window of 4 before any Receive Window Size AVP.
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![0, 1, 2, 3]);
        assert_eq!(ch.unacked(), 10);
        ch.receive(t0, 0, 2, 0, &[]);
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![4, 5]);
        ch.set_peer_window(6);
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![6, 7]);
        ch.receive(t0, 0, 8, 0, &[]);
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![8, 9]);
        ch.receive(t0, 0, 10, 0, &[]);
        assert!(ch.is_idle());
    }

    #[test]
    fn zero_peer_window_is_treated_as_one() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        ch.set_peer_window(0);
        assert_eq!(ch.peer_window(), 1);
        ch.send(0, vec![1]);
        ch.send(0, vec![2]);
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![0]);
        ch.receive(t0, 0, 1, 0, &[]);
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![1]);
    }

    #[test]
    fn slow_start_then_congestion_avoidance_then_timeout() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        ch.set_peer_window(16);
        for i in 0..100u8 {
            ch.send(0, vec![i]);
        }
        // Slow start: 1, 2, 4, 8 messages per round trip.
        let mut next = 0u16;
        for round in [1u16, 2, 4, 8] {
            let sent = transmit_all(&mut ch, t0);
            assert_eq!(nss(&sent), (next..next + round).collect::<Vec<_>>());
            next += round;
            ch.receive(t0, 0, next, 0, &[]);
            assert_eq!(ch.cwnd, round * 2);
        }
        // 16 out, all lost: the timeout halves the threshold and restarts
        // the window at one message, which is the oldest unacked.
        assert_eq!(transmit_all(&mut ch, t0).len(), 16);
        ch.handle_timeout(t0 + SEC);
        assert_eq!((ch.cwnd, ch.ssthresh), (1, 8));
        let sent = transmit_all(&mut ch, t0 + SEC);
        assert_eq!(nss(&sent), vec![next]);
        assert_eq!(ch.stats().retransmitted, 1);
        // Back to slow start up to the threshold of 8 ...
        ch.receive(t0 + SEC, 0, next + 1, 0, &[]);
        assert_eq!(ch.cwnd, 2);
        assert_eq!(
            nss(&transmit_all(&mut ch, t0 + SEC)),
            vec![next + 1, next + 2]
        );
        ch.receive(t0 + SEC, 0, next + 3, 0, &[]);
        assert_eq!(ch.cwnd, 4);
        assert_eq!(transmit_all(&mut ch, t0 + SEC).len(), 4);
        ch.receive(t0 + SEC, 0, next + 7, 0, &[]);
        assert_eq!(ch.cwnd, 8);
        // ... then one more message per window's worth of acks.
        assert_eq!(transmit_all(&mut ch, t0 + SEC).len(), 8);
        ch.receive(t0 + SEC, 0, next + 14, 0, &[]);
        assert_eq!(ch.cwnd, 8, "7 acks are not yet a window of 8");
        ch.receive(t0 + SEC, 0, next + 15, 0, &[]);
        assert_eq!(ch.cwnd, 9);
        assert_eq!(ch.acked_in_avoidance, 0);
    }

    #[test]
    fn congestion_window_never_exceeds_the_peer_window() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        ch.set_peer_window(2);
        for i in 0..21u8 {
            ch.send(0, vec![i]);
        }
        // One message in the first round trip, then two per round.
        for round in 0..11 {
            let sent = transmit_all(&mut ch, t0);
            assert_eq!(sent.len(), if round == 0 { 1 } else { 2 });
            let last = sent.last().unwrap().ns;
            ch.receive(t0, 0, last.wrapping_add(1), 0, &[]);
            assert!(ch.cwnd <= 2);
        }
        assert!(ch.is_idle());
    }

    #[test]
    fn retransmission_keeps_ns_but_uses_current_nr_and_tunnel_id() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        ch.send(0, b"sccrq".to_vec());
        let first = transmit_all(&mut ch, t0);
        assert_eq!((first[0].tunnel_id, first[0].ns, first[0].nr), (0, 0, 0));
        // Meanwhile the peer's first message arrives (without acking ours)
        // and tells us its tunnel ID.
        assert_eq!(ch.receive(t0 + 500 * MS, 0, 0, 0, b"x"), Receive::InOrder);
        ch.set_peer_tunnel_id(77);
        assert_eq!(ch.poll_timeout(), Some(t0 + 500 * MS + ch.config.ack_delay));
        // The delayed ack goes out as a ZLB first ...
        ch.handle_timeout(t0 + 600 * MS);
        let zlb = transmit_all(&mut ch, t0 + 600 * MS);
        assert_eq!((zlb[0].tunnel_id, zlb[0].ns, zlb[0].nr), (77, 1, 1));
        assert!(zlb[0].body.is_empty());
        // ... then the timer fires for the unacked message.
        assert_eq!(ch.poll_timeout(), Some(t0 + SEC));
        ch.handle_timeout(t0 + SEC);
        let again = transmit_all(&mut ch, t0 + SEC);
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0],
            Sent {
                tunnel_id: 77,
                session_id: 0,
                ns: 0,
                nr: 1,
                body: b"sccrq".to_vec()
            }
        );
        assert_eq!(ch.stats().retransmitted, 1);
        assert_eq!(ch.stats().sent, 1);
    }

    #[test]
    fn timeout_goes_back_to_the_oldest_and_resends_as_the_window_allows() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        for i in 0..6u8 {
            ch.send(0, vec![i]);
        }
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![0, 1, 2, 3]);
        ch.handle_timeout(t0 + SEC);
        assert_eq!(nss(&transmit_all(&mut ch, t0 + SEC)), vec![0, 1, 2, 3]);
        assert_eq!(ch.stats().retransmitted, 4);
        // The peer had 0 and 1; its ack opens room for 4 and 5.
        ch.receive(t0 + SEC, 0, 2, 0, &[]);
        assert_eq!(nss(&transmit_all(&mut ch, t0 + SEC)), vec![4, 5]);
        assert_eq!(ch.stats().sent, 6);
    }

    #[test]
    fn backoff_restarts_when_new_data_is_acked() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(no_slow_start());
        ch.set_peer_window(1);
        ch.send(0, vec![1]);
        ch.send(0, vec![2]);
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![0]);
        ch.handle_timeout(t0 + SEC);
        assert_eq!(nss(&transmit_all(&mut ch, t0 + SEC)), vec![0]);
        assert_eq!(ch.poll_timeout(), Some(t0 + 3 * SEC));
        ch.handle_timeout(t0 + 3 * SEC);
        assert_eq!(nss(&transmit_all(&mut ch, t0 + 3 * SEC)), vec![0]);
        assert_eq!(ch.poll_timeout(), Some(t0 + 7 * SEC));
        let t1 = t0 + 3500 * MS;
        ch.receive(t1, 0, 1, 0, &[]);
        assert_eq!(nss(&transmit_all(&mut ch, t1)), vec![1]);
        assert_eq!(ch.poll_timeout(), Some(t1 + SEC), "timeout back to 1 s");
        assert_eq!(ch.retries, 0);
    }

    /// With the defaults a dead peer sees the message at 0 s and again after
    /// 1, 2, 4, 8 and 8 s (the cap); the next timeout, 8 s later, fails.
    #[test]
    fn dead_peer_fails_after_retries_at_doubling_intervals() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        ch.set_peer_tunnel_id(5);
        ch.send(0, b"hello".to_vec());
        assert_eq!(transmit_all(&mut ch, t0).len(), 1);
        let mut resent_at = Vec::new();
        let mut failed_at = None;
        for _ in 0..20 {
            let Some(at) = ch.poll_timeout() else { break };
            ch.handle_timeout(at);
            for packet in transmit_all(&mut ch, at) {
                assert_eq!((packet.ns, packet.nr, packet.tunnel_id), (0, 0, 5));
                resent_at.push(at - t0);
            }
            if ch.is_failed() {
                failed_at = Some(at - t0);
                break;
            }
        }
        let secs = |list: &[u64]| {
            list.iter()
                .map(|&s| Duration::from_secs(s))
                .collect::<Vec<_>>()
        };
        assert_eq!(resent_at, secs(&[1, 3, 7, 15, 23]));
        assert_eq!(failed_at, Some(31 * SEC));
        assert_eq!(ch.stats().retransmitted, 5);
        // Failed means silent: nothing more to send, no timer, not even acks.
        assert_eq!(ch.poll_timeout(), None);
        ch.ack_now();
        ch.send(0, b"more".to_vec());
        assert!(transmit_all(&mut ch, t0 + 40 * SEC).is_empty());
    }

    #[test]
    fn out_of_order_messages_are_held_and_released_in_order() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        assert_eq!(ch.receive(t0, 2, 0, 12, b"two"), Receive::Buffered);
        // Prompt ack repeating the Nr we still wait for.
        assert_eq!(ch.poll_timeout(), Some(t0));
        let zlb = transmit_all(&mut ch, t0);
        assert_eq!((zlb.len(), zlb[0].nr), (1, 0));
        assert_eq!(ch.receive(t0, 1, 0, 11, b"one"), Receive::Buffered);
        // Held twice is stored once.
        assert_eq!(ch.receive(t0, 2, 0, 12, b"two"), Receive::Buffered);
        assert_eq!(ch.stats().duplicates, 1);
        assert_eq!(ch.stats().out_of_order, 2);
        assert_eq!(ch.poll_deliver(), None);
        assert_eq!(ch.receive(t0, 0, 0, 10, b"zero"), Receive::InOrder);
        assert_eq!(ch.next_nr(), 3);
        assert_eq!(
            ch.poll_deliver(),
            Some(Delivered {
                session_id: 11,
                body: b"one".to_vec()
            })
        );
        assert_eq!(
            ch.poll_deliver(),
            Some(Delivered {
                session_id: 12,
                body: b"two".to_vec()
            })
        );
        assert_eq!(ch.poll_deliver(), None);
        // A later gap still holds what is behind it.
        assert_eq!(ch.receive(t0, 4, 0, 0, b"four"), Receive::Buffered);
        assert_eq!(ch.receive(t0, 3, 0, 0, b"three"), Receive::InOrder);
        assert_eq!(ch.poll_deliver().map(|d| d.body), Some(b"four".to_vec()));
        assert_eq!(ch.next_nr(), 5);
        assert!(ch.held.is_empty());
    }

    #[test]
    fn duplicate_is_acked_promptly() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::new(ReliableConfig::default());
        assert_eq!(ch.receive(t0, 0, 0, 0, b"a"), Receive::InOrder);
        assert_eq!(ch.receive(t0, 1, 0, 0, b"b"), Receive::InOrder);
        ch.handle_timeout(t0 + 100 * MS);
        assert_eq!(transmit_all(&mut ch, t0 + 100 * MS).len(), 1);
        let t1 = t0 + SEC;
        assert_eq!(ch.receive(t1, 0, 0, 0, b"a"), Receive::Duplicate);
        assert_eq!(ch.poll_timeout(), Some(t1));
        let zlb = transmit_all(&mut ch, t1);
        assert_eq!((zlb.len(), zlb[0].nr), (1, 2));
        assert_eq!(ch.stats().duplicates, 1);
        assert_eq!(ch.stats().received, 3);
    }

    #[test]
    fn beyond_the_receive_window_is_dropped() {
        let t0 = Instant::now();
        let config = ReliableConfig {
            receive_window: 4,
            ..ReliableConfig::default()
        };
        let mut ch = ControlChannel::new(config);
        assert_eq!(ch.receive(t0, 5, 0, 0, b"x"), Receive::OutOfWindow);
        assert_eq!(ch.receive(t0, 0x7fff, 0, 0, b"x"), Receive::OutOfWindow);
        assert_eq!(ch.stats().out_of_window, 2);
        assert_eq!(ch.poll_timeout(), None, "no ack for a dropped message");
        for ns in 1..=4 {
            assert_eq!(ch.receive(t0, ns, 0, 0, b"x"), Receive::Buffered);
        }
        assert_eq!(ch.held.len(), 4);
    }

    #[test]
    fn receive_window_of_one_holds_one_message() {
        let t0 = Instant::now();
        let config = ReliableConfig {
            receive_window: 1,
            ..ReliableConfig::default()
        };
        let mut ch = ControlChannel::new(config);
        assert_eq!(ch.receive(t0, 2, 0, 0, b"y"), Receive::OutOfWindow);
        assert_eq!(ch.receive(t0, 1, 0, 0, b"x"), Receive::Buffered);
        assert_eq!(ch.receive(t0, 0, 0, 0, b"w"), Receive::InOrder);
        assert_eq!(ch.poll_deliver().map(|d| d.body), Some(b"x".to_vec()));
        assert_eq!(ch.next_nr(), 2);
    }

    #[test]
    fn receiving_wraps_around() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::with_initial_sequence(ReliableConfig::default(), 0, 65534);
        assert_eq!(ch.receive(t0, 65535, 0, 0, b"b"), Receive::Buffered);
        assert_eq!(ch.receive(t0, 1, 0, 0, b"d"), Receive::Buffered);
        assert_eq!(ch.receive(t0, 65534, 0, 0, b"a"), Receive::InOrder);
        assert_eq!(ch.poll_deliver().map(|d| d.body), Some(b"b".to_vec()));
        assert_eq!(ch.poll_deliver(), None);
        assert_eq!(ch.next_nr(), 0);
        assert_eq!(ch.receive(t0, 0, 0, 0, b"c"), Receive::InOrder);
        assert_eq!(ch.poll_deliver().map(|d| d.body), Some(b"d".to_vec()));
        assert_eq!(ch.next_nr(), 2);
        assert_eq!(ch.receive(t0, 65535, 0, 0, b"b"), Receive::Duplicate);
        assert_eq!(ch.receive(t0, 65000, 0, 0, b"old"), Receive::Duplicate);
    }

    #[test]
    fn sending_wraps_around() {
        let t0 = Instant::now();
        let mut ch = ControlChannel::with_initial_sequence(no_slow_start(), 65534, 0);
        for i in 0..5u8 {
            ch.send(0, vec![i]);
        }
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![65534, 65535, 0, 1]);
        assert_eq!(ch.next_ns(), 2);
        ch.receive(t0, 0, 0, 0, &[]);
        assert_eq!(ch.unacked(), 3, "Nr 0 acks 65534 and 65535");
        assert_eq!(nss(&transmit_all(&mut ch, t0)), vec![2]);
        ch.receive(t0, 0, 3, 0, &[]);
        assert!(ch.is_idle());
    }

    /// §5.8's lost-ack case: our ack vanishes, the peer retransmits, we see a
    /// duplicate and ack it again at once, and the peer is satisfied.
    #[test]
    fn lost_ack_leads_to_a_duplicate_that_is_acked_again() {
        let t0 = Instant::now();
        let mut lac = ControlChannel::new(ReliableConfig::default());
        let mut lns = ControlChannel::new(ReliableConfig::default());
        lac.set_peer_tunnel_id(2);
        lns.set_peer_tunnel_id(1);
        lac.send(0, b"hello".to_vec());
        let hello = transmit_all(&mut lac, t0).remove(0);
        let got = lns.receive(
            t0 + 10 * MS,
            hello.ns,
            hello.nr,
            hello.session_id,
            &hello.body,
        );
        assert_eq!(got, Receive::InOrder);
        // The LNS's delayed ZLB is lost on the way.
        let due = lns.poll_timeout().unwrap();
        lns.handle_timeout(due);
        let lost = transmit_all(&mut lns, due);
        assert_eq!((lost.len(), lost[0].nr), (1, 1));
        // The LAC times out and retransmits.
        let due = lac.poll_timeout().unwrap();
        assert_eq!(due, t0 + SEC);
        lac.handle_timeout(due);
        let again = transmit_all(&mut lac, due).remove(0);
        assert_eq!(again, hello);
        let got = lns.receive(due, again.ns, again.nr, again.session_id, &again.body);
        assert_eq!(got, Receive::Duplicate);
        let ack = transmit_all(&mut lns, due);
        assert_eq!(ack.len(), 1);
        assert!(ack[0].body.is_empty());
        assert_eq!(lac.receive(due, ack[0].ns, ack[0].nr, 0, &[]), Receive::Ack);
        assert!(lac.is_idle());
        assert_eq!(lac.poll_timeout(), None);
        assert_eq!(lns.stats().duplicates, 1);
        assert_eq!(lac.stats().retransmitted, 1);
    }

    /// A small xorshift64 generator, seeded, so simulations repeat exactly.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    /// Impairments of the simulated link, applied to each packet.
    struct Netem {
        loss_percent: u64,
        duplicate_percent: u64,
        /// Delay is drawn from `min_delay .. min_delay + jitter`; packets sent
        /// together therefore arrive shuffled.
        min_delay: Duration,
        jitter_ms: u64,
    }

    struct Setup {
        seed: u64,
        config: ReliableConfig,
        window: u16,
        /// Initial Ns of side 0 and side 1.
        start: (u16, u16),
        messages: u32,
        netem: Netem,
    }

    fn lossy() -> Netem {
        Netem {
            loss_percent: 20,
            duplicate_percent: 10,
            min_delay: 5 * MS,
            jitter_ms: 50,
        }
    }

    fn body_for(side: u8, index: u32) -> Vec<u8> {
        let mut body = vec![side];
        body.extend_from_slice(&index.to_be_bytes());
        body.resize(5 + (index % 7) as usize, 0xee);
        body
    }

    fn session_for(index: u32) -> u16 {
        (index % 3) as u16
    }

    /// Two channels over an in-memory link; the clock jumps to the next
    /// deadline or arrival. Returns both channels after every message was
    /// delivered exactly once and in order both ways and both are idle.
    fn run_pair(setup: Setup) -> [ControlChannel; 2] {
        let Setup {
            seed,
            mut config,
            window,
            start,
            messages,
            netem,
        } = setup;
        config.receive_window = window;
        let t0 = Instant::now();
        let mut rng = XorShift(seed);
        let mut sides = [
            ControlChannel::with_initial_sequence(config.clone(), start.0, start.1),
            ControlChannel::with_initial_sequence(config, start.1, start.0),
        ];
        for (side, ch) in sides.iter_mut().enumerate() {
            ch.set_peer_tunnel_id(100 + (1 - side as u16));
            ch.set_peer_window(window);
            for index in 0..messages {
                ch.send(session_for(index), body_for(side as u8, index));
            }
        }
        // links[s]: packets from side s to side 1 - s, with arrival times.
        let mut links: [Vec<(Instant, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
        let mut received: [Vec<(u16, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
        let mut out = Vec::new();
        let mut now = t0;
        for _step in 0..400_000 {
            for side in 0..2 {
                sides[side].handle_timeout(now);
                assert!(!sides[side].is_failed(), "side {side} failed, seed {seed}");
                while sides[side].poll_transmit(now, &mut out) {
                    if rng.chance(netem.loss_percent) {
                        continue;
                    }
                    let copies = if rng.chance(netem.duplicate_percent) {
                        2
                    } else {
                        1
                    };
                    for _ in 0..copies {
                        let delay =
                            netem.min_delay + Duration::from_millis(rng.below(netem.jitter_ms));
                        links[side].push((now + delay, out.clone()));
                    }
                }
            }
            let mut delivered = false;
            for (side, link) in links.iter_mut().enumerate() {
                let peer = 1 - side;
                // Stable sort: packets due at the same instant keep send order.
                link.sort_by_key(|(at, _)| *at);
                let due = link.iter().take_while(|(at, _)| *at <= now).count();
                for (_, bytes) in link.drain(..due) {
                    delivered = true;
                    let packet = parse(&bytes);
                    assert_eq!(packet.tunnel_id, 100 + peer as u16);
                    let ch = &mut sides[peer];
                    let got =
                        ch.receive(now, packet.ns, packet.nr, packet.session_id, &packet.body);
                    if got == Receive::InOrder {
                        received[peer].push((packet.session_id, packet.body));
                        while let Some(d) = ch.poll_deliver() {
                            received[peer].push((d.session_id, d.body));
                        }
                    }
                    assert_eq!(ch.poll_deliver(), None);
                }
            }
            if delivered {
                // Let both sides answer at this same instant.
                continue;
            }
            let all_received = received.iter().all(|r| r.len() >= messages as usize);
            if all_received && sides.iter().all(ControlChannel::is_idle) {
                for (side, got) in received.iter().enumerate() {
                    let from = (1 - side) as u8;
                    let expected: Vec<_> = (0..messages)
                        .map(|i| (session_for(i), body_for(from, i)))
                        .collect();
                    assert!(got == &expected, "side {side}: wrong delivery, seed {seed}");
                }
                return sides;
            }
            let next = sides
                .iter()
                .filter_map(ControlChannel::poll_timeout)
                .chain(links.iter().flatten().map(|(at, _)| *at))
                .min();
            let Some(next) = next else {
                panic!("stalled with nothing scheduled, seed {seed}");
            };
            now = now.max(next);
        }
        panic!("simulation did not finish, seed {seed}");
    }

    /// Retries are raised so that a 20%-loss link cannot fail the channel by
    /// bad luck; the failure path has its own test.
    fn patient(slow_start: bool) -> ReliableConfig {
        ReliableConfig {
            max_retries: 12,
            slow_start,
            ..ReliableConfig::default()
        }
    }

    #[test]
    fn lossy_link_window_4_delivers_everything_once_in_order() {
        for seed in [1, 0x9e37_79b9_7f4a_7c15, 42] {
            let sides = run_pair(Setup {
                seed,
                config: patient(true),
                window: 4,
                start: (0, 0),
                messages: 500,
                netem: lossy(),
            });
            for ch in &sides {
                let stats = ch.stats();
                assert_eq!(stats.sent, 500);
                assert!(stats.retransmitted > 0);
                assert!(stats.duplicates > 0);
                assert!(stats.out_of_order > 0);
            }
        }
    }

    #[test]
    fn lossy_link_window_1_delivers_everything_once_in_order() {
        let sides = run_pair(Setup {
            seed: 7,
            config: patient(true),
            window: 1,
            start: (0, 0),
            messages: 500,
            netem: lossy(),
        });
        for ch in &sides {
            assert_eq!(ch.stats().out_of_order, 0, "window 1 holds nothing");
            assert!(ch.stats().retransmitted > 0);
        }
    }

    #[test]
    fn lossy_link_delivers_across_sequence_wrap_around() {
        for (seed, window) in [(3, 4), (5, 1), (11, 16)] {
            let sides = run_pair(Setup {
                seed,
                config: patient(true),
                window,
                start: (65530, 65100),
                messages: 500,
                netem: lossy(),
            });
            assert_eq!(sides[0].next_ns(), 65530u16.wrapping_add(500));
            assert_eq!(sides[0].next_nr(), 65100u16.wrapping_add(500));
            assert_eq!(sides[1].next_ns(), 65100u16.wrapping_add(500));
        }
    }

    #[test]
    fn lossy_link_without_slow_start_delivers_everything() {
        run_pair(Setup {
            seed: 99,
            config: patient(false),
            window: 8,
            start: (0, 0),
            messages: 500,
            netem: lossy(),
        });
    }

    #[test]
    fn clean_link_needs_no_retransmission() {
        let sides = run_pair(Setup {
            seed: 1,
            config: ReliableConfig::default(),
            window: 4,
            start: (0, 0),
            messages: 200,
            netem: Netem {
                loss_percent: 0,
                duplicate_percent: 0,
                min_delay: 20 * MS,
                jitter_ms: 1,
            },
        });
        for ch in &sides {
            assert_eq!(ch.stats().retransmitted, 0);
            assert_eq!(ch.stats().duplicates, 0);
        }
    }

    /// Arbitrary peer input (any Ns, Nr, body) interleaved with timers and
    /// sends never panics and keeps the internal bounds.
    #[test]
    fn random_peer_input_never_panics() {
        let t0 = Instant::now();
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for slow_start in [true, false] {
            let config = ReliableConfig {
                receive_window: 8,
                slow_start,
                ..ReliableConfig::default()
            };
            let mut ch = ControlChannel::with_initial_sequence(config, 65520, 65530);
            ch.set_peer_window(rng.below(40) as u16);
            let mut now = t0;
            let mut out = Vec::new();
            for step in 0..20_000u32 {
                now += Duration::from_millis(rng.below(300));
                match rng.below(4) {
                    0 => ch.send((step % 5) as u16, vec![step as u8; 1 + (step % 3) as usize]),
                    1 => ch.handle_timeout(now),
                    _ => {
                        // Mostly near the window, sometimes anywhere.
                        let near = rng.chance(80);
                        let ns = if near {
                            ch.next_nr()
                                .wrapping_add(rng.below(12) as u16)
                                .wrapping_sub(2)
                        } else {
                            rng.next() as u16
                        };
                        let nr = if near {
                            ch.next_ns().wrapping_sub(rng.below(8) as u16)
                        } else {
                            rng.next() as u16
                        };
                        let body = vec![0xab; rng.below(3) as usize];
                        ch.receive(now, ns, nr, 0, &body);
                        while ch.poll_deliver().is_some() {}
                    }
                }
                while ch.poll_transmit(now, &mut out) {
                    parse(&out);
                }
                assert!(ch.held.len() <= 8);
                assert!(ch.outstanding <= ch.in_flight.len());
                assert!(ch.in_flight.len() <= usize::from(ch.peer_window));
                if ch.is_failed() {
                    break;
                }
            }
        }
    }
}
