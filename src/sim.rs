//! A simulated network for the sans-IO endpoints: a LAC and an LNS, a clock
//! that jumps to the next thing that happens, and a seeded link that loses,
//! duplicates, delays and reorders datagrams.
//!
//! Tests, benchmarks and `lns simulate` drive the protocol core through it;
//! nothing here reads the clock or touches the network.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::proto::l2tp::{Endpoint, Event, L2tpConfig, Role};

/// Link impairments, applied to every datagram independently.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back by `reorder_delay` extra.
    pub reorder: f64,
    /// One-way latency.
    pub latency: Duration,
    /// Extra delay of reordered datagrams.
    pub reorder_delay: Duration,
}

impl Link {
    /// A perfect 1 ms link.
    pub const CLEAN: Link = Link {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        latency: Duration::from_millis(1),
        reorder_delay: Duration::from_millis(0),
    };

    /// Loss, duplication and reordering all at `p`.
    pub fn lossy(p: f64) -> Link {
        Link {
            loss: p,
            duplicate: p / 2.0,
            reorder: p,
            latency: Duration::from_millis(5),
            reorder_delay: Duration::from_millis(30),
        }
    }
}

/// A tiny deterministic PRNG (xorshift64*), so a failing seed replays.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// A datagram on the link: (arrival, tie-break, destination, bytes).
type InFlight = (Instant, u64, Side, Vec<u8>);

/// Datagrams on the simulated link, ordered by arrival.
///
/// Time only moves forward and every datagram that is not held back for
/// reordering arrives `latency` after it was sent, so those arrive in the
/// order sent: a FIFO keeps them. Only the held-back ones need the heap.
#[derive(Debug, Default)]
struct Flight {
    fifo: VecDeque<InFlight>,
    delayed: BinaryHeap<Reverse<InFlight>>,
    counter: u64,
}

impl Flight {
    /// Put `bytes` on the link toward `to`, applying the impairments.
    fn send(&mut self, now: Instant, link: &Link, rng: &mut Rng, to: Side, bytes: Vec<u8>) {
        let at = now + link.latency;
        let impaired = link.loss > 0.0 || link.duplicate > 0.0 || link.reorder > 0.0;
        if !impaired && self.fifo.back().is_none_or(|last| last.0 <= at) {
            // Nothing to draw: a clean link keeps the RNG for when it is not.
            self.counter += 1;
            self.fifo.push_back((at, self.counter, to, bytes));
            return;
        }
        if rng.chance(link.loss) {
            return;
        }
        let copies = if rng.chance(link.duplicate) { 2 } else { 1 };
        let mut bytes = Some(bytes);
        for copy in 1..=copies {
            let held = rng.chance(link.reorder);
            self.counter += 1;
            // The last copy takes the buffer itself.
            let payload = match (copy == copies, &mut bytes) {
                (true, slot) => slot.take().unwrap_or_default(),
                (false, Some(b)) => b.clone(),
                (false, None) => Vec::new(),
            };
            // A latency lowered mid-run could overtake the FIFO's tail.
            let in_order = self.fifo.back().is_none_or(|last| last.0 <= at);
            if held || !in_order {
                let at = if held { at + link.reorder_delay } else { at };
                self.delayed.push(Reverse((at, self.counter, to, payload)));
            } else {
                self.fifo.push_back((at, self.counter, to, payload));
            }
        }
    }

    /// When the next datagram arrives.
    fn next_arrival(&self) -> Option<Instant> {
        self.next_key().map(|(at, _)| at)
    }

    /// (arrival, send order) of the next datagram in either queue.
    fn next_key(&self) -> Option<(Instant, u64)> {
        let fifo = self.fifo.front().map(|(at, n, ..)| (*at, *n));
        let delayed = self.delayed.peek().map(|Reverse((at, n, ..))| (*at, *n));
        fifo.into_iter().chain(delayed).min()
    }

    /// The next datagram due by `now`.
    fn pop_due(&mut self, now: Instant) -> Option<(Side, Vec<u8>)> {
        let (at, n) = self.next_key()?;
        if at > now {
            return None;
        }
        let entry = if self.fifo.front().is_some_and(|e| (e.0, e.1) == (at, n)) {
            self.fifo.pop_front()
        } else {
            self.delayed.pop().map(|Reverse(e)| e)
        };
        entry.map(|(_, _, to, bytes)| (to, bytes))
    }
}

/// Which side of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// The LAC endpoint.
    Lac,
    /// The LNS endpoint.
    Lns,
}

/// A LAC and an LNS joined by an impaired link.
#[derive(Debug)]
pub struct Pair {
    /// Simulated time.
    pub now: Instant,
    /// When the pair was made.
    pub start: Instant,
    /// The LAC endpoint.
    pub lac: Endpoint,
    /// The LNS endpoint.
    pub lns: Endpoint,
    /// The LAC's address.
    pub lac_addr: SocketAddr,
    /// The LNS's address.
    pub lns_addr: SocketAddr,
    /// Impairments, changeable mid-run.
    pub link: Link,
    /// Drives the impairments.
    pub rng: Rng,
    /// Datagrams in flight: (arrival, tie-break, destination, bytes).
    flight: Flight,
    /// Events the LAC reported, in order.
    pub lac_events: Vec<Event>,
    /// Events the LNS reported, in order.
    pub lns_events: Vec<Event>,
    /// Keep copies of every datagram sent (off by default: storms are big).
    pub record: bool,
    /// Datagrams the LAC sent (before loss), when recording.
    pub sent_by_lac: Vec<Vec<u8>>,
    /// Datagrams the LNS sent (before loss), when recording.
    pub sent_by_lns: Vec<Vec<u8>>,
    /// Datagrams delivered to each side: (to LAC, to LNS).
    pub delivered: (u64, u64),
}

/// Default LAC configuration.
pub fn lac_config() -> L2tpConfig {
    L2tpConfig::new(Role::Lac)
}

/// Default LNS configuration.
pub fn lns_config() -> L2tpConfig {
    L2tpConfig::new(Role::Lns)
}

impl Pair {
    /// A pair starting at `now`, with RNGs derived from `seed`.
    pub fn new(lac: L2tpConfig, lns: L2tpConfig, link: Link, seed: u64, now: Instant) -> Self {
        Pair {
            now,
            start: now,
            lac: Endpoint::new(lac, seed ^ 0x1ac),
            lns: Endpoint::new(lns, seed ^ 0x1d5),
            lac_addr: SocketAddr::from(([192, 0, 2, 1], 1701)),
            lns_addr: SocketAddr::from(([192, 0, 2, 2], 1701)),
            link,
            rng: Rng::new(seed),
            flight: Flight::default(),
            lac_events: Vec::new(),
            lns_events: Vec::new(),
            record: true,
            sent_by_lac: Vec::new(),
            sent_by_lns: Vec::new(),
            delivered: (0, 0),
        }
    }

    /// Default endpoints on a clean link.
    pub fn clean(now: Instant) -> Self {
        Pair::new(lac_config(), lns_config(), Link::CLEAN, 1, now)
    }

    /// Time since the pair was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Put a datagram on the link toward `to`, applying impairments.
    pub fn put(&mut self, to: Side, bytes: Vec<u8>) {
        self.flight
            .send(self.now, &self.link, &mut self.rng, to, bytes);
    }

    /// Move every queued transmit and event out of both endpoints.
    pub fn drain(&mut self) {
        while let Some(t) = self.lac.poll_transmit() {
            if self.record {
                self.sent_by_lac.push(t.payload.clone());
            }
            self.put(Side::Lns, t.payload);
        }
        while let Some(t) = self.lns.poll_transmit() {
            if self.record {
                self.sent_by_lns.push(t.payload.clone());
            }
            self.put(Side::Lac, t.payload);
        }
        while let Some(e) = self.lac.poll_event() {
            self.lac_events.push(e);
        }
        while let Some(e) = self.lns.poll_event() {
            self.lns_events.push(e);
        }
    }

    /// Advance to the next arrival or timer and process it. False when
    /// nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.drain();
        let arrival = self.flight.next_arrival();
        let next = [arrival, self.lac.poll_timeout(), self.lns.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        while let Some((to, bytes)) = self.flight.pop_due(self.now) {
            // Drops are counted in the endpoints' stats.
            match to {
                Side::Lns => {
                    self.delivered.1 += 1;
                    let _ = self.lns.handle_datagram(self.now, self.lac_addr, &bytes);
                }
                Side::Lac => {
                    self.delivered.0 += 1;
                    let _ = self.lac.handle_datagram(self.now, self.lns_addr, &bytes);
                }
            }
        }
        self.lac.handle_timeout(self.now);
        self.lns.handle_timeout(self.now);
        self.drain();
        true
    }

    /// Step until `done` holds or `limit` of simulated time passes.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            if self.now > end || !self.step() {
                return done(self);
            }
        }
    }

    /// Step for `span` of simulated time.
    pub fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        self.run_until(span, |p| p.now >= end);
    }

    /// Bring up one tunnel within a minute of simulated time; returns
    /// (LAC tunnel ID, LNS tunnel ID), or `None` when it did not come up.
    pub fn tunnel_up(&mut self) -> Option<(u16, u16)> {
        let lac_tunnel = self.lac.connect(self.now, self.lns_addr).ok()?;
        let lns_tunnel = |p: &Pair| {
            p.lns_events.iter().find_map(|e| match e {
                Event::TunnelUp {
                    tunnel,
                    peer_tunnel,
                    ..
                } if *peer_tunnel == lac_tunnel => Some(*tunnel),
                _ => None,
            })
        };
        self.run_until(Duration::from_secs(60), |p| lns_tunnel(p).is_some());
        lns_tunnel(self).map(|lns| (lac_tunnel, lns))
    }

    /// LNS events of sessions that came up.
    pub fn lns_sessions_up(&self) -> usize {
        self.lns_events
            .iter()
            .filter(|e| matches!(e, Event::SessionUp { .. }))
            .count()
    }

    /// LAC events of sessions that came up.
    pub fn lac_sessions_up(&self) -> usize {
        self.lac_events
            .iter()
            .filter(|e| matches!(e, Event::SessionUp { .. }))
            .count()
    }
}

/// Anything the simulated network can drive: an L2TP endpoint, or a node
/// with PPP on top.
pub trait SimNode {
    /// What the node reports.
    type Event;
    /// One datagram from `from`.
    fn deliver(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]);
    /// Next datagram to send, with its destination.
    fn transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)>;
    /// Next event.
    fn event(&mut self) -> Option<Self::Event>;
    /// Next deadline.
    fn deadline(&mut self) -> Option<Instant>;
    /// Run what is due.
    fn timeout(&mut self, now: Instant);
}

impl SimNode for Endpoint {
    type Event = Event;
    fn deliver(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let _ = self.handle_datagram(now, from, datagram);
    }
    fn transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.poll_transmit().map(|t| (t.remote, t.payload))
    }
    fn event(&mut self) -> Option<Event> {
        self.poll_event()
    }
    fn deadline(&mut self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
}

impl<A: crate::proto::aaa::Aaa> SimNode for crate::proto::node::Node<A> {
    type Event = crate::proto::node::NodeEvent;
    fn deliver(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.handle_datagram(now, from, datagram)
    }
    fn transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.poll_transmit().map(|t| (t.remote, t.payload))
    }
    fn event(&mut self) -> Option<Self::Event> {
        self.poll_event()
    }
    fn deadline(&mut self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
}

/// Two [`SimNode`]s — `a` at 192.0.2.1 (the LAC side), `b` at 192.0.2.2
/// (the LNS side) — over an impaired link, in simulated time.
#[derive(Debug)]
pub struct Net<A: SimNode, B: SimNode> {
    /// Simulated time.
    pub now: Instant,
    /// When the net was made.
    pub start: Instant,
    /// The LAC side.
    pub a: A,
    /// The LNS side.
    pub b: B,
    /// `a`'s address.
    pub a_addr: SocketAddr,
    /// `b`'s address.
    pub b_addr: SocketAddr,
    /// Impairments, changeable mid-run.
    pub link: Link,
    /// Drives the impairments.
    pub rng: Rng,
    flight: Flight,
    /// Events of `a`, in order.
    pub a_events: Vec<A::Event>,
    /// Events of `b`, in order.
    pub b_events: Vec<B::Event>,
}

impl<A: SimNode, B: SimNode> Net<A, B> {
    /// Join `a` and `b` with `link`, starting at `now`.
    pub fn new(a: A, b: B, link: Link, seed: u64, now: Instant) -> Self {
        Net {
            now,
            start: now,
            a,
            b,
            a_addr: SocketAddr::from(([192, 0, 2, 1], 1701)),
            b_addr: SocketAddr::from(([192, 0, 2, 2], 1701)),
            link,
            rng: Rng::new(seed),
            flight: Flight::default(),
            a_events: Vec::new(),
            b_events: Vec::new(),
        }
    }

    fn put(&mut self, to: Side, bytes: Vec<u8>) {
        self.flight
            .send(self.now, &self.link, &mut self.rng, to, bytes);
    }

    /// Move transmits onto the link and events into the logs.
    pub fn drain(&mut self) {
        while let Some((_, bytes)) = self.a.transmit() {
            self.put(Side::Lns, bytes);
        }
        while let Some((_, bytes)) = self.b.transmit() {
            self.put(Side::Lac, bytes);
        }
        while let Some(e) = self.a.event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.event() {
            self.b_events.push(e);
        }
    }

    /// Advance to the next arrival or deadline. False when nothing is left.
    pub fn step(&mut self) -> bool {
        self.drain();
        let arrival = self.flight.next_arrival();
        let next = [arrival, self.a.deadline(), self.b.deadline()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        while let Some((to, bytes)) = self.flight.pop_due(self.now) {
            match to {
                Side::Lns => self.b.deliver(self.now, self.a_addr, &bytes),
                Side::Lac => self.a.deliver(self.now, self.b_addr, &bytes),
            }
        }
        self.a.timeout(self.now);
        self.b.timeout(self.now);
        self.drain();
        true
    }

    /// Step until `done` or `limit` of simulated time.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            if self.now > end || !self.step() {
                return done(self);
            }
        }
    }

    /// Step for `span` of simulated time.
    pub fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        self.run_until(span, |n| n.now >= end);
    }
}
