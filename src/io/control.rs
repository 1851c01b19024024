//! The control thread: runs the sans-IO `Node` (L2TP control connections,
//! PPP negotiation, AAA, pools) on real time and real sockets, installs and
//! removes sessions in every shard, and never blocks on anything but its
//! own wake-up.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use rustc_hash::FxHashMap;

use super::batch::SendBatch;
use super::manage::{Command, Query, Reply};
use super::queue::Limited;
use super::shard::{ShardCommand, ToControl};
use super::stats::{ControlSnapshot, PoolUse};
use super::wake::{Poller, Wake};
use crate::dataplane::{Ipv6Ifids, Sequencing, SessionEntry};
use crate::proto::aaa::prefix::prefix_addr;
use crate::proto::aaa::Aaa;
use crate::proto::l2tp::{Event, SessionDownReason};
use crate::proto::node::{Node, NodeEvent, SessionKey};
use crate::proto::ppp::link::{DownReason, LinkUp};
use crate::wire::l2tp::avps::stopccn_result;
use crate::wire::l2tp::ResultCode;

/// Datagrams taken from a queue per round before looking at the other:
/// the urgent queue gets a larger share.
const URGENT_BUDGET: usize = 256;
const SETUP_BUDGET: usize = 64;

/// Takes the shards' datagrams from the urgent and the setup queue: the
/// urgent one first and with the larger budget, but never a setup-queue
/// datagram before what its shard queued as urgent ahead of it.
#[derive(Debug, Default)]
pub struct Intake {
    /// Per shard, the `urgent_before` of its last urgent datagram handled.
    urgent_done: Vec<u64>,
}

impl Intake {
    /// One round: up to [`URGENT_BUDGET`] urgent datagrams, then up to
    /// [`SETUP_BUDGET`] setup ones, each given to `handle` with whether it
    /// came from the urgent queue.
    pub fn drain(
        &mut self,
        urgent: &Receiver<ToControl>,
        setup: &Receiver<ToControl>,
        mut handle: impl FnMut(ToControl, bool),
    ) {
        for _ in 0..URGENT_BUDGET {
            let Ok(input) = urgent.try_recv() else {
                break;
            };
            self.urgent(input, &mut handle);
        }
        for _ in 0..SETUP_BUDGET {
            let Ok(input) = setup.try_recv() else {
                break;
            };
            // What the shard queued as urgent before this datagram comes
            // first: a call's ICCN must not be handled after the PPP frame
            // behind it because a CDN ahead of it sat in the other queue
            // (the ICCN would wait in the reorder buffer while the frame
            // found no session and was lost, costing PPP's 3 s restart).
            while self.done(input.shard) < input.urgent_before {
                let Ok(earlier) = urgent.try_recv() else {
                    break;
                };
                self.urgent(earlier, &mut handle);
            }
            handle(input, false);
        }
    }

    fn urgent(&mut self, input: ToControl, handle: &mut impl FnMut(ToControl, bool)) {
        let shard = usize::from(input.shard);
        if self.urgent_done.len() <= shard {
            self.urgent_done.resize(shard + 1, 0);
        }
        self.urgent_done[shard] = input.urgent_before;
        handle(input, true);
    }

    fn done(&self, shard: u16) -> u64 {
        self.urgent_done
            .get(usize::from(shard))
            .copied()
            .unwrap_or(0)
    }
}

/// Shards to wake once a round's commands are all queued: one eventfd
/// write per shard and round instead of one per command.
#[derive(Debug, Default)]
pub struct PendingWakes {
    marked: Vec<bool>,
}

impl PendingWakes {
    fn mark(&mut self, index: usize) {
        if self.marked.len() <= index {
            self.marked.resize(index + 1, false);
        }
        self.marked[index] = true;
    }

    fn wake_marked(&mut self, shards: &[(Limited<ShardCommand>, Wake)]) {
        for (marked, (_, wake)) in self.marked.iter_mut().zip(shards) {
            if std::mem::take(marked) {
                wake.wake();
            }
        }
    }
}

/// How often the control thread gives back the queue capacity a burst
/// left behind ([`Node::shrink_queues`](crate::proto::node::Node::shrink_queues)).
const SHRINK_EVERY: Duration = Duration::from_secs(1);

/// How long a graceful stop waits for StopCCN acknowledgements.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A session as the control thread reports it, kept for every session
/// that is up. Small on purpose (there may be a million): its key is the
/// map's, and the LAC's address and the user name are the node's
/// ([`Node::data_path`](crate::proto::node::Node::data_path),
/// [`Node::link`](crate::proto::node::Node::link)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Its IPv4 address.
    pub ipv4: Option<std::net::Ipv4Addr>,
    /// Its IPv6 /64 (upper 64 bits).
    pub ipv6_prefix: Option<[u8; 8]>,
    /// When it came up.
    pub since: Instant,
    /// The shard that numbers its data messages, when it is sequenced.
    pub sequenced_by: Option<u16>,
    /// PPP is renegotiating: off the data plane until it is up again.
    pub renegotiating: bool,
}

/// What the control thread's owner can observe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlCounters {
    /// Sessions that reached the network phase.
    pub sessions_up: u64,
    /// Sessions that ended.
    pub sessions_down: u64,
    /// Up sessions whose PPP renegotiated LCP (taken off the data plane
    /// until they came back up).
    pub renegotiations: u64,
    /// Datagrams processed from each queue.
    pub urgent_in: u64,
    /// New tunnels and calls.
    pub setup_in: u64,
    /// Datagrams sent by the control thread.
    pub sent: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Sessions renegotiating PPP now (a gauge kept up to date as they
    /// pause and come back, so a scrape never walks the sessions).
    pub renegotiating: u64,
    /// Calls that ended before their subscriber came online, by
    /// [`SetupFailure`] index.
    pub setup_failures: [u64; SetupFailure::COUNT],
    /// PPP endings that are failures, by [`PppFailure`] index.
    pub ppp_failures: [u64; PppFailure::COUNT],
    /// ICRQ (or OCRQ) to PPP up, per session that came online.
    pub setup_latency: crate::metrics::Histogram,
}

/// Why a call never brought its subscriber online: PPP's verdict when it
/// decided, the L2TP ending otherwise (refused calls are counted by the
/// endpoint and never reach the control thread as calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupFailure {
    /// PPP ended it (see [`PppFailure`] and `DownReason`).
    Ppp(DownReason),
    /// The L2TP call ended first.
    L2tp(SessionDownReason),
}

impl SetupFailure {
    /// Number of distinct labels.
    pub const COUNT: usize = 14;

    /// Metric label of each index.
    pub const NAMES: [&'static str; SetupFailure::COUNT] = [
        "lcp_failed",
        "auth_refused",
        "auth_rejected",
        "auth_timeout",
        "auth_bad_authenticator",
        "echo_timeout",
        "looped_back",
        "ncp_failed",
        "no_address",
        "peer_terminated",
        "local_close",
        "cdn_received",
        "cdn_sent",
        "tunnel_down",
    ];

    /// The label index; an L2TP setup timeout shares `cdn_sent` with our
    /// other CDNs (its own label is `setup_timeout` in the L2TP family).
    pub fn index(self) -> usize {
        use crate::proto::ppp::auth::AuthFailure;
        match self {
            SetupFailure::Ppp(reason) => match reason {
                DownReason::NegotiationFailed => 0,
                DownReason::AuthRefused => 1,
                DownReason::AuthFailed(AuthFailure::Rejected) => 2,
                DownReason::AuthFailed(AuthFailure::Timeout) => 3,
                DownReason::AuthFailed(AuthFailure::BadAuthenticator) => 4,
                DownReason::EchoTimeout => 5,
                DownReason::LoopedBack => 6,
                DownReason::NoNetwork => 7,
                DownReason::NoAddress => 8,
                DownReason::PeerTerminated => 9,
                DownReason::LocalClose => 10,
                // The call went first: its CDN is the story.
                DownReason::CallCleared => 11,
            },
            SetupFailure::L2tp(reason) => match reason {
                SessionDownReason::PeerDisconnect(_) => 11,
                SessionDownReason::LocalDisconnect(_) | SessionDownReason::SetupTimeout => 12,
                SessionDownReason::TunnelDown => 13,
            },
        }
    }
}

/// PPP endings that are negotiation or authentication failures, with the
/// protocol that failed (a normal Terminate or a hang-up is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PppFailure;

impl PppFailure {
    /// Number of (protocol, reason) pairs.
    pub const COUNT: usize = 9;

    /// The (protocol, reason) labels of each index.
    pub const LABELS: [(&'static str, &'static str); PppFailure::COUNT] = [
        ("lcp", "negotiation_failed"),
        ("lcp", "looped_back"),
        ("lcp", "echo_timeout"),
        ("auth", "refused"),
        ("auth", "rejected"),
        ("auth", "timeout"),
        ("auth", "bad_authenticator"),
        ("ncp", "no_network"),
        ("ipcp", "no_address"),
    ];

    /// The index of `reason`, when it is a failure.
    pub fn index(reason: DownReason) -> Option<usize> {
        use crate::proto::ppp::auth::AuthFailure;
        Some(match reason {
            DownReason::NegotiationFailed => 0,
            DownReason::LoopedBack => 1,
            DownReason::EchoTimeout => 2,
            DownReason::AuthRefused => 3,
            DownReason::AuthFailed(AuthFailure::Rejected) => 4,
            DownReason::AuthFailed(AuthFailure::Timeout) => 5,
            DownReason::AuthFailed(AuthFailure::BadAuthenticator) => 6,
            DownReason::NoNetwork => 7,
            DownReason::NoAddress => 8,
            DownReason::PeerTerminated | DownReason::LocalClose | DownReason::CallCleared => {
                return None
            }
        })
    }
}

/// Re-reads the AAA backend's data (the users file): a summary or why not.
pub type Reloader<A> = Box<dyn FnMut(&mut A) -> Result<String, String> + Send>;

/// The control thread's state.
pub struct Control<A: Aaa> {
    /// The protocol cores.
    pub node: Node<A>,
    /// The control member of each listen address's reuseport group.
    pub sockets: Vec<(SocketAddr, OwnedFd)>,
    /// Traffic of established tunnels.
    pub urgent: Receiver<ToControl>,
    /// New tunnels and calls.
    pub setup: Receiver<ToControl>,
    /// Woken by shards.
    pub wake: Wake,
    /// Every shard's commands and wake.
    pub shards: Vec<(Limited<ShardCommand>, Wake)>,
    /// MSS clamp to install with each session of an IPv4 LAC.
    pub mss_clamp: Option<crate::dataplane::MssClamp>,
    /// The same for sessions of an IPv6 LAC (a smaller MRU).
    pub mss_clamp_v6: Option<crate::dataplane::MssClamp>,
    /// Set to stop gracefully.
    pub stop: Arc<AtomicBool>,
    /// Sessions up, for management.
    pub sessions: FxHashMap<SessionKey, SessionInfo>,
    /// Takes datagrams from the two queues in an order that keeps each
    /// tunnel's.
    pub intake: Intake,
    /// Datagrams `flush` queued, one batch per control socket (same order
    /// as `sockets`).
    pub outgoing: Vec<SendBatch>,
    /// Shards given commands since the last wake-up.
    pub wakes: PendingWakes,
    /// Management commands.
    pub queries: Receiver<Query>,
    /// Set (by SIGHUP) to reload the users file.
    pub reload: Arc<AtomicBool>,
    /// How to reload.
    pub reloader: Option<Reloader<A>>,
    /// Counters.
    pub counters: ControlCounters,
    /// The session whose PPP ending was just reported, and whether it is
    /// a setup failure still to count: when the call went first, its L2TP
    /// ending comes next and says why.
    pub awaiting_call_reason: Option<(SessionKey, bool)>,
    /// When each call whose PPP is still negotiating was created (for the
    /// setup latency histogram).
    pub setup_started: FxHashMap<SessionKey, Instant>,
}

impl<A: Aaa> std::fmt::Debug for Control<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("sessions", &self.sessions.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<A: Aaa> Control<A> {
    /// Run until stopped; then StopCCN to every tunnel, wait for the acks
    /// (at most [`STOP_GRACE`]) and stop the shards.
    pub fn run(mut self) -> Self {
        let mut poller = Poller::new(&[self.wake.fd()]);
        let mut stopping: Option<Instant> = None;
        let mut shrink_at = Instant::now();
        loop {
            let now = Instant::now();
            if now >= shrink_at {
                // A setup storm leaves queues at their peak capacity.
                self.node.shrink_queues();
                if self.sessions.capacity() > 2 * self.sessions.len() + 1024 {
                    self.sessions.shrink_to_fit();
                }
                // And the pages a storm's setup garbage freed.
                super::alloc::purge_freed();
                shrink_at = now + SHRINK_EVERY;
            }
            if stopping.is_none() && self.stop.load(Ordering::Relaxed) {
                tracing::info!(
                    tunnels = self.node.l2tp().tunnel_count(),
                    "stopping: StopCCN to every tunnel"
                );
                self.node.endpoint().close_all(now);
                stopping = Some(now + STOP_GRACE);
            }
            self.drain_queues(now);
            while let Ok(query) = self.queries.try_recv() {
                let answer = match query.command {
                    Command::ShowStats => Reply::Stats(Box::new(self.snapshot())),
                    command => Reply::Text(self.answer(now, command)),
                };
                let _ = query.reply.send(answer);
            }
            if self.reload.swap(false, Ordering::Relaxed) {
                tracing::info!("{}", self.reload_users());
            }
            if self.node.poll_timeout().is_some_and(|at| at <= now) {
                self.node.handle_timeout(now);
            }
            self.flush();
            if let Some(deadline) = stopping {
                if self.all_stops_acked() || now >= deadline {
                    break;
                }
            }
            let wait = self
                .node
                .poll_timeout()
                .map_or(Duration::from_millis(100), |at| {
                    at.saturating_duration_since(now)
                })
                .min(Duration::from_millis(100));
            if self.urgent.is_empty() && self.setup.is_empty() && self.queries.is_empty() {
                let _ = poller.wait(wait);
                self.wake.clear();
            }
        }
        for (tx, wake) in &self.shards {
            let _ = tx.send(ShardCommand::Stop);
            wake.wake();
        }
        self
    }

    fn reload_users(&mut self) -> String {
        match self.reloader.as_mut() {
            Some(reload) => match reload(self.node.aaa_mut()) {
                Ok(summary) => format!("reloaded: {summary}"),
                Err(why) => format!("reload failed, keeping the old users: {why}"),
            },
            None => "nothing to reload".into(),
        }
    }

    /// A management command's answer.
    fn answer(&mut self, now: Instant, command: Command) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        match command {
            Command::ShowTunnels => {
                let l2tp = self.node.l2tp();
                let _ = writeln!(
                    out,
                    "{:>6} {:>7} {:<28} {:<12} {:>8} HOST",
                    "ID", "PEER-ID", "REMOTE", "STATE", "SESSIONS"
                );
                let mut ids = l2tp.tunnel_ids();
                ids.sort_unstable();
                for t in ids.into_iter().filter_map(|id| l2tp.tunnel(id)) {
                    let state = format!("{:?}", t.state);
                    let state = state.split_whitespace().next().unwrap_or("").to_string();
                    let _ = writeln!(
                        out,
                        "{:>6} {:>7} {:<28} {:<12} {:>8} {}",
                        t.id,
                        t.peer_id,
                        t.remote,
                        state,
                        t.sessions,
                        String::from_utf8_lossy(&t.host_name)
                    );
                }
            }
            Command::ShowSessions => {
                let _ = writeln!(
                    out,
                    "{:>6} {:>7} {:<15} {:<24} {:<28} {:>8} USER",
                    "TUNNEL", "SESSION", "IPV4", "IPV6", "LAC", "UP(s)"
                );
                let mut sessions: Vec<(&SessionKey, &SessionInfo)> = self.sessions.iter().collect();
                sessions.sort_by_key(|(key, _)| **key);
                for (key, s) in sessions {
                    let lac = self
                        .node
                        .data_path(*key)
                        .map_or("-".to_string(), |path| path.remote.to_string());
                    let user = self
                        .node
                        .link(*key)
                        .map(|link| String::from_utf8_lossy(link.user()).into_owned())
                        .unwrap_or_default();
                    let ip = match (s.renegotiating, s.ipv4) {
                        (true, _) => "renegotiating".to_string(),
                        (false, Some(ip)) => ip.to_string(),
                        (false, None) => "-".to_string(),
                    };
                    let ipv6 = s
                        .ipv6_prefix
                        .map_or("-".to_string(), |p| format!("{}/64", prefix_addr(p)));
                    let _ = writeln!(
                        out,
                        "{:>6} {:>7} {:<15} {:<24} {:<28} {:>8} {}",
                        key.0,
                        key.1,
                        ip,
                        ipv6,
                        lac,
                        now.saturating_duration_since(s.since).as_secs(),
                        user
                    );
                }
            }
            Command::ShowStats => {
                // Answered as a snapshot (`run`), formatted by the asker.
                out.push_str(&self.snapshot().to_text());
            }
            Command::KillTunnel(id) => {
                let result = ResultCode {
                    result: stopccn_result::CLEAR,
                    error: None,
                    message: Some(b"administrative kill".to_vec()),
                };
                match self.node.endpoint().close_tunnel(now, id, result) {
                    Ok(()) => {
                        let _ = writeln!(out, "tunnel {id}: StopCCN sent");
                    }
                    Err(e) => {
                        let _ = writeln!(out, "error: tunnel {id}: {e:?}");
                    }
                }
            }
            Command::KillSession(tunnel, session) => {
                if self.node.data_path((tunnel, session)).is_some() {
                    self.node.hang_up(now, (tunnel, session));
                    let _ = writeln!(
                        out,
                        "session {tunnel}/{session}: LCP Terminate and CDN sent"
                    );
                } else {
                    let _ = writeln!(out, "error: no session {tunnel}/{session}");
                }
            }
            Command::Reload => {
                let _ = writeln!(out, "{}", self.reload_users());
            }
        }
        out
    }

    /// Everything `show stats` and `/metrics` report from this thread:
    /// copies of plain counters, and gauges whose cost does not grow with
    /// the sessions (tunnels are walked; there are at most 65,535).
    pub fn snapshot(&self) -> ControlSnapshot {
        let l2tp = self.node.l2tp();
        let pool_use = |name: &str, in_use: u32, size: u32, exhausted: u64| PoolUse {
            name: name.to_string(),
            in_use: u64::from(in_use),
            size: u64::from(size),
            exhausted,
            network: None,
        };
        ControlSnapshot {
            tunnels: l2tp.tunnels_by_state(),
            l2tp_sessions: l2tp.session_count() as u64,
            online: self.sessions.len() as u64,
            counters: self.counters.clone(),
            l2tp: l2tp.stats().clone(),
            channel: l2tp.channel_counters(),
            auth: self.node.aaa().auth_stats(),
            pools: self
                .node
                .pools()
                .iter()
                .map(|p| pool_use(p.name(), p.in_use(), p.size(), p.stats().exhausted))
                .collect(),
            prefix_pools: self
                .node
                .prefix_pools()
                .iter()
                .map(|p| {
                    let mut used = pool_use(p.name(), p.in_use(), p.size(), p.stats().exhausted);
                    used.network = Some((p.network(), p.prefix_len()));
                    used
                })
                .collect(),
            ipv6: self.node.ipv6_stats(),
            urgent_queue: self.urgent.len() as u64,
            setup_queue: self.setup.len() as u64,
        }
    }

    /// Every tunnel is gone or has its StopCCN acknowledged (what is left
    /// is the §5.7 hold, which only matters to a process that stays).
    fn all_stops_acked(&self) -> bool {
        let l2tp = self.node.l2tp();
        l2tp.tunnel_ids()
            .into_iter()
            .filter_map(|id| l2tp.tunnel(id))
            .all(|t| t.unacked == 0)
    }

    fn drain_queues(&mut self, now: Instant) {
        let node = &mut self.node;
        let counters = &mut self.counters;
        self.intake
            .drain(&self.urgent, &self.setup, |input, urgent| {
                if urgent {
                    counters.urgent_in += 1;
                } else {
                    counters.setup_in += 1;
                }
                node.handle_datagram(now, input.from, &input.datagram);
            });
    }

    /// Send what the node queued and act on its events.
    fn flush(&mut self) {
        while let Some((key, transmit)) = self.node.poll_transmit_keyed() {
            // RFC 2661 §5.4: every data message of a sequenced session is
            // numbered, ours included; once the session is in the data
            // plane its owner shard holds the counter.
            let owner = key.and_then(|k| Some((k, self.sessions.get(&k)?.sequenced_by?)));
            if let Some((key, shard)) = owner {
                if let Some((tx, _)) = self.shards.get(usize::from(shard)) {
                    let command = ShardCommand::Numbered {
                        key,
                        to: transmit.remote,
                        datagram: transmit.payload,
                    };
                    if tx.try_send(command).is_ok() {
                        self.wakes.mark(usize::from(shard));
                        self.counters.sent += 1;
                    } else {
                        self.counters.send_errors += 1;
                    }
                    continue;
                }
            }
            let socket = self
                .sockets
                .iter()
                .position(|(addr, _)| addr.is_ipv4() == transmit.remote.is_ipv4());
            let Some(socket) = socket else {
                self.counters.send_errors += 1;
                continue;
            };
            match self.outgoing.get_mut(socket) {
                Some(batch) => batch.push(transmit.remote, &transmit.payload),
                None => self.counters.send_errors += 1,
            }
        }
        self.send_queued();
        while let Some(event) = self.node.poll_event() {
            if !matches!(
                event,
                NodeEvent::SessionDown { .. } | NodeEvent::L2tp(Event::SessionDown { .. })
            ) {
                self.awaiting_call_reason = None;
            }
            match event {
                NodeEvent::SessionUp { key, up } => {
                    self.count_up(key);
                    self.install(key, &up);
                }
                NodeEvent::SessionRenegotiating { key } => self.pause(key),
                NodeEvent::SessionDown { key, reason } => {
                    self.count_ending(key, reason);
                    self.remove(key, reason);
                }
                NodeEvent::Data { key, packet, .. } => self.late_data(key, packet),
                NodeEvent::L2tp(Event::TunnelUp { tunnel, .. }) => {
                    tracing::info!(tunnel, "tunnel up");
                }
                NodeEvent::L2tp(Event::TunnelDown { tunnel, reason }) => {
                    tracing::info!(tunnel, ?reason, "tunnel down");
                }
                NodeEvent::L2tp(Event::SessionUp {
                    tunnel,
                    session,
                    started,
                    ..
                }) => {
                    // PPP starts: the setup clock runs until it is up.
                    self.setup_started.insert((tunnel, session), started);
                    tracing::info!(tunnel, session, "call connected");
                }
                NodeEvent::L2tp(Event::SessionDown {
                    tunnel,
                    session,
                    reason,
                }) => {
                    self.count_call_ending((tunnel, session), &reason);
                    tracing::info!(tunnel, session, ?reason, "call cleared");
                }
                _ => {}
            }
        }
        self.wakes.wake_marked(&self.shards);
    }

    /// One `sendmmsg` per socket for what `flush` queued; what a full
    /// socket buffer refuses is lost as on a wire (the peers retransmit).
    fn send_queued(&mut self) {
        for (batch, (_, socket)) in self.outgoing.iter_mut().zip(&self.sockets) {
            let queued = batch.len() as u64;
            if queued == 0 {
                continue;
            }
            let sent = batch.flush(socket.as_raw_fd()).map_or(0, |n| n as u64);
            self.counters.sent += sent;
            self.counters.send_errors += queued - sent;
        }
    }

    /// Queue `command` for shard `index`, waking it once `flush` ends.
    /// Install, Pause and Remove must not be lost, so they go past the
    /// queue's limit (which sheds only forwarded packets); the control
    /// thread never waits for a shard.
    fn command(&mut self, index: usize, command: ShardCommand) {
        let Some((tx, _)) = self.shards.get(index) else {
            return;
        };
        if tx.send(command).is_ok() {
            self.wakes.mark(index);
        }
    }

    /// A session's PPP reached the network phase: its setup time when it
    /// is new (from the call's creation), the end of its renegotiation
    /// when it is not.
    fn count_up(&mut self, key: SessionKey) {
        match self.sessions.get(&key) {
            Some(info) => {
                if info.renegotiating {
                    self.counters.renegotiating = self.counters.renegotiating.saturating_sub(1);
                }
            }
            None => {
                if let Some(started) = self.setup_started.remove(&key) {
                    let took = Instant::now().saturating_duration_since(started);
                    self.counters.setup_latency.observe(took);
                }
            }
        }
    }

    /// A session's PPP ended (`NodeEvent::SessionDown`): count PPP
    /// failures, and setup failures of sessions that never came online.
    fn count_ending(&mut self, key: SessionKey, reason: Option<DownReason>) {
        self.setup_started.remove(&key);
        if let Some(at) = reason.and_then(PppFailure::index) {
            self.counters.ppp_failures[at] += 1;
        }
        let never_online = !self.sessions.contains_key(&key);
        let ppp_decided = reason.filter(|r| *r != DownReason::CallCleared);
        if let (true, Some(r)) = (never_online, ppp_decided) {
            self.counters.setup_failures[SetupFailure::Ppp(r).index()] += 1;
        }
        // When the call went first, its L2TP event comes right after this
        // one and tells why; it is a setup failure if PPP never came up.
        self.awaiting_call_reason = Some((key, never_online && ppp_decided.is_none()));
    }

    /// An L2TP call ended. Right after `count_ending` of the same session
    /// it is that session's ending; otherwise PPP never ran on it (the
    /// call never connected) and it is a setup failure, unless it is the
    /// CDN we sent for a PPP ending, already counted.
    fn count_call_ending(&mut self, key: SessionKey, reason: &SessionDownReason) {
        self.setup_started.remove(&key);
        let failed = match self.awaiting_call_reason.take() {
            Some((awaited, failed)) if awaited == key => failed,
            _ => {
                !self.sessions.contains_key(&key)
                    && self.node.data_path(key).is_none()
                    && !matches!(reason, SessionDownReason::LocalDisconnect(_))
            }
        };
        if failed {
            let at = SetupFailure::L2tp(reason.clone()).index();
            self.counters.setup_failures[at] += 1;
        }
    }

    fn install(&mut self, key: SessionKey, up: &LinkUp) {
        let Some(path) = self.node.data_path(key) else {
            return;
        };
        let shards = u16::try_from(self.shards.len()).unwrap_or(u16::MAX).max(1);
        let entry = SessionEntry {
            key,
            peer: (path.peer_tunnel, path.peer_session),
            lac: path.remote,
            ipv4: up.ipv4,
            ipv6_prefix: up.ipv6_prefix,
            ipv6_ifids: match (up.ipv6_local, up.ipv6_peer) {
                (Some(ours), Some(peer)) => Some(Ipv6Ifids { ours, peer }),
                _ => None,
            },
            sequencing: path.next_ns.map(|next_ns| Sequencing {
                owner: key.0 % shards,
                next_ns,
            }),
            magic: up.lcp.our_magic,
            mtu: up.lcp.peer_mru,
            mss_clamp: if path.remote.ip().to_canonical().is_ipv6() {
                self.mss_clamp_v6
            } else {
                self.mss_clamp
            },
        };
        for index in 0..self.shards.len() {
            self.command(index, ShardCommand::Install(Box::new(entry.clone())));
        }
        let user = String::from_utf8_lossy(&up.user);
        let ipv6 = up.ipv6_prefix.map(|p| format!("{}/64", prefix_addr(p)));
        let info = SessionInfo {
            ipv4: up.ipv4,
            ipv6_prefix: up.ipv6_prefix,
            since: Instant::now(),
            sequenced_by: entry.sequencing.map(|s| s.owner),
            renegotiating: false,
        };
        if let Some(old) = self.sessions.get_mut(&key) {
            // Back after a renegotiation: same session, new terms.
            tracing::info!(tunnel = key.0, session = key.1, user = %user, ipv4 = ?up.ipv4, ?ipv6, "session up again");
            *old = SessionInfo {
                since: old.since,
                ..info
            };
            return;
        }
        tracing::info!(tunnel = key.0, session = key.1, user = %user, ipv4 = ?up.ipv4, ?ipv6, "session up");
        self.sessions.insert(key, info);
        self.counters.sessions_up += 1;
    }

    /// PPP renegotiates: the shards hold the session's IP traffic (no
    /// data may pass meanwhile, and its address or MRU may change) but keep
    /// its entry, whose data sequence counter numbers the renegotiation's
    /// frames; the next `SessionUp` installs it again.
    fn pause(&mut self, key: SessionKey) {
        let Some(info) = self.sessions.get_mut(&key) else {
            return;
        };
        if !info.renegotiating {
            self.counters.renegotiating += 1;
        }
        info.renegotiating = true;
        for index in 0..self.shards.len() {
            self.command(index, ShardCommand::Pause(key));
        }
        tracing::info!(tunnel = key.0, session = key.1, "session renegotiating PPP");
        self.counters.renegotiations += 1;
    }

    /// An IP packet the subscriber sent right after PPP came up, before its
    /// shard had the session: hand it to that shard's TUN queue, provided
    /// it comes from the subscriber's own address (IPv4) or /64 (IPv6).
    fn late_data(&mut self, key: SessionKey, packet: Vec<u8>) {
        let Some(info) = self.sessions.get(&key) else {
            return;
        };
        let source_ok = match (packet.first().map(|b| b >> 4), info.ipv4) {
            (Some(4), Some(ip)) => packet.get(12..16) == Some(&ip.octets()[..]),
            (Some(6), _) => info
                .ipv6_prefix
                .is_some_and(|p| packet.get(8..16) == Some(&p[..])),
            _ => false,
        };
        if !source_ok {
            return;
        }
        let index = usize::from(key.0) % self.shards.len().max(1);
        if let Some((tx, _)) = self.shards.get(index) {
            if tx.try_send(ShardCommand::ToTun(packet)).is_ok() {
                self.wakes.mark(index);
            }
        }
    }

    fn remove(&mut self, key: SessionKey, reason: Option<DownReason>) {
        if let Some(info) = self.sessions.remove(&key) {
            if info.renegotiating {
                self.counters.renegotiating = self.counters.renegotiating.saturating_sub(1);
            }
            for index in 0..self.shards.len() {
                self.command(index, ShardCommand::Remove(key));
            }
            tracing::info!(tunnel = key.0, session = key.1, ?reason, "session down");
            self.counters.sessions_down += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(shard: u16, tag: u8, urgent_before: u64) -> ToControl {
        ToControl {
            shard,
            socket: 0,
            from: SocketAddr::from(([192, 0, 2, 1], 1701)),
            datagram: vec![tag],
            urgent_before,
        }
    }

    /// A shard's order across its two queues: `(tag, urgent)` in the order
    /// it queued them, with the counts it stamps.
    fn queue(
        shard: u16,
        order: &[(u8, bool)],
        urgent: &crossbeam_channel::Sender<ToControl>,
        setup: &crossbeam_channel::Sender<ToControl>,
    ) {
        let mut sent = 0;
        for &(tag, is_urgent) in order {
            sent += u64::from(is_urgent);
            let queue = if is_urgent { urgent } else { setup };
            queue.send(datagram(shard, tag, sent)).unwrap();
        }
    }

    #[test]
    fn a_setup_datagram_waits_for_the_urgent_ones_its_shard_queued_before_it() {
        let (urgent_tx, urgent_rx) = crossbeam_channel::unbounded();
        let (setup_tx, setup_rx) = crossbeam_channel::unbounded();
        // More urgent datagrams than one round's budget, then a setup one
        // (an ICCN), then more urgent ones.
        let mut order: Vec<(u8, bool)> = (0..30).map(|i| (i, true)).collect();
        order.push((200, false));
        order.extend((30..40).map(|i| (i, true)));
        let budget = URGENT_BUDGET;
        let extra = budget + 10;
        let mut long: Vec<(u8, bool)> = Vec::new();
        for i in 0..extra {
            long.push(((i % 200) as u8, true));
        }
        long.push((201, false));
        queue(0, &long, &urgent_tx, &setup_tx);
        let mut seen = Vec::new();
        Intake::default().drain(&urgent_rx, &setup_rx, |d, urgent| {
            seen.push((d.datagram[0], urgent));
        });
        // Every urgent datagram queued before the setup one is handled
        // before it, although they exceed the urgent budget.
        let setup_at = seen.iter().position(|&(_, u)| !u).unwrap();
        assert_eq!(setup_at, extra, "{seen:?}");
        assert_eq!(seen[setup_at], (201, false));
        assert!(urgent_rx.is_empty());

        // Urgent datagrams queued after it may go first (they are
        // urgent), and other shards do not hold it back.
        queue(1, &order, &urgent_tx, &setup_tx);
        queue(0, &[(250, false)], &urgent_tx, &setup_tx);
        let mut intake = Intake::default();
        let mut seen = Vec::new();
        intake.drain(&urgent_rx, &setup_rx, |d, urgent| {
            seen.push((d.shard, d.datagram[0], urgent));
        });
        let urgent_count = seen.iter().filter(|s| s.2).count();
        assert_eq!(urgent_count, 40);
        assert!(
            seen.ends_with(&[(1, 200, false), (0, 250, false)]),
            "{seen:?}"
        );
    }

    #[test]
    fn an_urgent_datagram_lost_to_a_full_queue_holds_nothing_back() {
        let (urgent_tx, urgent_rx) = crossbeam_channel::unbounded();
        let (setup_tx, setup_rx) = crossbeam_channel::unbounded();
        // The shard counts only what it queued: nothing urgent before.
        setup_tx.send(datagram(0, 7, 0)).unwrap();
        let mut seen = Vec::new();
        Intake::default().drain(&urgent_rx, &setup_rx, |d, urgent| {
            seen.push((d.datagram[0], urgent));
        });
        assert_eq!(seen, [(7, false)]);
        drop(urgent_tx);
    }
}
