//! One worker thread: a share of the tunnels, spread over groups that each
//! own a UDP socket (one source port) and a LAC [`Node`]; socket I/O on
//! the path [`crate::socket_io`] chose (io_uring or `poll` + batches), a token
//! bucket for pacing.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lns::proto::l2tp::{CallInfo, Event, L2tpConfig, Role, SessionDownReason, TunnelDownReason};
use lns::proto::node::{NoAaa, Node, NodeEvent, SessionKey, Subscriber};
use lns::proto::ppp::auth::AuthFailure;
use lns::proto::ppp::link::{DownReason, LinkConfig};
use lns::wire::l2tp::avps::{cdn_result, error_code, stopccn_result};
use lns::wire::l2tp::ResultCode;
use lns::wire::ppp::frame::protocol;
use lns::wire::ppp::lcp::AuthMethod;

use crate::data::{self, Arrival, Probe, Schedule, SeqWindow};
use crate::options::{expand, Options, Rate, Teardown};
use crate::pacing::TokenBucket;
use crate::report::Tally;
use crate::socket_io::{Path, WorkerIo};

/// At most this many sockets (source ports) per worker.
pub const MAX_GROUPS_PER_WORKER: usize = 64;

/// How long teardown may take after setup and hold (on top of `--timeout`).
pub const TEARDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long, after the hold, probes still on their way may come back
/// before what is missing counts as lost (less when all are back).
pub const DATA_DRAIN: Duration = Duration::from_secs(2);

/// How long, after the churn, its last dials may take to come up before
/// they count as unfinished: more than PPP's 3 s restart timer (RFC 1661
/// §4.6), so a dial whose first LCP frame was lost still completes.
pub const CHURN_DRAIN: Duration = Duration::from_secs(4);

/// At most this many probes per pass of the loop, so a worker that fell
/// behind still reads its sockets between bursts and never throws a burst
/// bigger than an LNS's queues at it (a TUN queue is typically 4096 deep:
/// catching up 4096 at once lost packets there on a loaded machine).
const DATA_BURST: u64 = 256;

/// The longest wait: shared state (the setup barrier) is looked at
/// this often.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// Socket buffers: a storm's answers arrive in bursts.
const SOCKET_BUFFER: i32 = 4 << 20;

/// State shared by the workers and the thread that started them.
#[derive(Debug, Default)]
pub struct Shared {
    /// Workers whose setup is over (every session up or failed).
    pub setup_done: AtomicUsize,
    /// Live counts for the progress line.
    pub attempted: AtomicU64,
    /// See `attempted`.
    pub established: AtomicU64,
    /// See `attempted`.
    pub failed: AtomicU64,
    /// Live data counts for the timeline: each worker adds what it counted
    /// once per turn of its loop, not per packet.
    pub data_sent: AtomicU64,
    /// See `data_sent`.
    pub data_received: AtomicU64,
    /// See `data_sent`.
    pub data_sent_bytes: AtomicU64,
    /// See `data_sent`.
    pub data_received_bytes: AtomicU64,
    /// Why a worker runs the fallback though io_uring was chosen (its
    /// ring could not be set up); the first such reason.
    pub io_fallback: std::sync::OnceLock<String>,
}

impl Shared {
    /// Add what `data` counted since `published` (what was added before)
    /// and remember it.
    fn publish_data(&self, data: &crate::report::DataTally, published: &mut [u64; 4]) {
        let now = [
            data.sent,
            data.received,
            data.sent_bytes,
            data.received_bytes,
        ];
        let counters = [
            &self.data_sent,
            &self.data_received,
            &self.data_sent_bytes,
            &self.data_received_bytes,
        ];
        for ((counter, now), before) in counters.into_iter().zip(now).zip(published.iter_mut()) {
            if now > *before {
                counter.fetch_add(now - *before, Ordering::Relaxed);
                *before = now;
            }
        }
    }
}

/// A group: one socket, one LAC node, some tunnels.
pub struct Group {
    socket: UdpSocket,
    node: Node<NoAaa>,
    /// The most retransmissions the node's live tunnels summed to.
    retransmissions: u64,
    /// Retransmissions of the nodes a flap threw away.
    retransmissions_before: u64,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

/// Bind `count` sockets for a worker (done before any thread starts, so a
/// bad `--bind` fails the run at once).
pub fn bind_groups(options: &Options, count: usize, seed: u64) -> io::Result<Vec<Group>> {
    let local = options.bind.unwrap_or(match options.lns.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    (0..count)
        .map(|i| {
            let socket = UdpSocket::bind(SocketAddr::new(local, 0))?;
            socket.set_nonblocking(true)?;
            enlarge_buffers(&socket);
            Ok(Group {
                socket,
                node: lac_node(options, seed.wrapping_add(i as u64 * 0x9e37_79b9)),
                retransmissions: 0,
                retransmissions_before: 0,
            })
        })
        .collect()
}

fn enlarge_buffers(socket: &UdpSocket) {
    let set = |option: libc::c_int, value: i32| {
        // SAFETY: setsockopt with a pointer to a live int of the size given.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                std::ptr::addr_of!(value).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        }
    };
    // The FORCE variants pass the sysctl caps when we are privileged.
    if set(libc::SO_RCVBUFFORCE, SOCKET_BUFFER) != 0 {
        set(libc::SO_RCVBUF, SOCKET_BUFFER);
    }
    if set(libc::SO_SNDBUFFORCE, SOCKET_BUFFER) != 0 {
        set(libc::SO_SNDBUF, SOCKET_BUFFER);
    }
}

/// A LAC node with the run's tunnel and PPP settings.
fn lac_node(options: &Options, seed: u64) -> Node<NoAaa> {
    let mut l2tp = L2tpConfig::new(Role::Lac);
    l2tp.host_name = b"loadgen".to_vec();
    l2tp.vendor_name = b"lns-rs loadgen".to_vec();
    l2tp.secret = options.secret.as_ref().map(|s| s.as_bytes().to_vec());
    if options.hidden {
        l2tp.hidden_avps = L2tpConfig::sensitive_avps();
    }
    let mut link = LinkConfig::client(b"", b"");
    link.lcp.auth = options.auth.iter().map(|a| AuthMethod::from(*a)).collect();
    link.ipv6cp = options.ipv6;
    Node::new(l2tp, link, NoAaa::default(), Vec::new(), seed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TunnelPhase {
    Connecting,
    Up,
    /// Never came up, or went down before teardown.
    Gone,
}

#[derive(Debug)]
struct TunnelSlot {
    group: usize,
    /// Global tunnel index (sessions are numbered from it).
    index: u32,
    id: u16,
    phase: TunnelPhase,
    /// Sessions dialled on it so far.
    dialled: u32,
    /// We sent it StopCCN.
    stopped: bool,
    /// Opened again after a flap: its counts go to the flap report.
    reopened: bool,
}

/// Why a call was dialled: its counts go to that part of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The initial setup.
    Setup,
    /// In place of a session the churn hung up.
    Churn,
    /// Again, on a tunnel that came back after a flap.
    Redial,
}

#[derive(Debug)]
struct Call {
    /// Global session index (`{n}`).
    index: u64,
    origin: Origin,
    /// The churn hung it up: its end is a churn teardown.
    hung_up: bool,
    /// The address IPCP gave the subscriber.
    ipv4: Option<Ipv4Addr>,
    /// Probe sequence numbers back so far.
    window: SeqWindow,
    /// The same over IPv6.
    window6: SeqWindow,
    dialled: Instant,
    up: bool,
    /// Already counted as failed (timeout): later news is ignored.
    settled: bool,
    ppp_reason: Option<DownReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    /// Our setup is over; waiting for the other workers.
    Waiting,
    Hold {
        until: Instant,
    },
    /// Data sent; waiting (bounded) for the last probes to come back.
    Drain {
        until: Instant,
    },
    /// Sessions hung up; StopCCN once they are gone (or at `stop_at`).
    Closing {
        stop_at: Instant,
        end: Instant,
    },
    /// StopCCN sent; waiting for the acknowledgements.
    Stopping {
        end: Instant,
    },
    Done,
}

/// One worker's run.
pub struct Worker<'a> {
    options: &'a Options,
    shared: &'a Shared,
    workers: usize,
    groups: Vec<Group>,
    slots: Vec<TunnelSlot>,
    by_id: HashMap<(usize, u16), usize>,
    calls: HashMap<(usize, SessionKey), Call>,
    /// Slots that are up with sessions left to dial, in turn.
    ready: VecDeque<usize>,
    /// Calls dialled and neither up nor settled: setup is over when this,
    /// `opening` and `ready` are all empty (kept as counts so the check
    /// costs nothing with a hundred thousand calls).
    pending: usize,
    /// Tunnels still connecting.
    opening: usize,
    bucket: Option<TokenBucket>,
    tally: Tally,
    phase: Phase,
    deadline: Instant,
    teardown_started: Option<Instant>,
    teardown_took: Duration,
    /// The group sockets' I/O (lives on the worker's thread: it holds
    /// raw pointers).
    io: WorkerIo,
    /// Data traffic during the hold, when asked for.
    data: Option<DataRun>,
    /// Probe send times count from here.
    epoch: Instant,
    /// Sessions in the order they came up (stale entries are skipped):
    /// the churn hangs up the longest-held first.
    up_order: VecDeque<(usize, SessionKey)>,
    /// The churn's pacing, during the hold of `--scenario churn`.
    churn: Option<TokenBucket>,
    /// The next time every tunnel vanishes (`--scenario flap`).
    next_flap: Option<Instant>,
}

/// A session that sends probes.
#[derive(Debug, Clone, Copy)]
struct Target {
    group: usize,
    key: SessionKey,
    src: Ipv4Addr,
    index: u32,
}

/// The worker's data traffic: who sends, when, and a buffer to build in.
#[derive(Debug)]
struct DataRun {
    reflector: SocketAddrV4,
    reflector6: Option<SocketAddrV6>,
    size: u16,
    targets: Vec<Target>,
    schedule: Schedule,
    packet: Vec<u8>,
}

impl std::fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("groups", &self.groups.len())
            .field("tunnels", &self.slots.len())
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<'a> Worker<'a> {
    /// A worker for the global tunnel indices `tunnels` over `groups`,
    /// its sockets' I/O on `path`.
    pub fn new(
        options: &'a Options,
        shared: &'a Shared,
        workers: usize,
        groups: Vec<Group>,
        tunnels: Vec<u32>,
        deadline: Instant,
        path: Path,
    ) -> Self {
        let (io, fell_back) =
            WorkerIo::new(path, groups.iter().map(|g| g.socket.as_raw_fd()).collect());
        if let Some(reason) = fell_back {
            let _ = shared.io_fallback.set(reason);
        }
        let now = Instant::now();
        let bucket = match options.effective_rate() {
            Rate::PerSecond(r) => Some(TokenBucket::new(r / workers.max(1) as f64, now)),
            Rate::Unlimited => None,
        };
        let mut worker = Worker {
            options,
            shared,
            workers,
            groups,
            slots: Vec::with_capacity(tunnels.len()),
            by_id: HashMap::new(),
            calls: HashMap::new(),
            ready: VecDeque::new(),
            pending: 0,
            opening: 0,
            bucket,
            tally: Tally::default(),
            phase: Phase::Setup,
            deadline,
            teardown_started: None,
            teardown_took: Duration::ZERO,
            io,
            data: None,
            epoch: now,
            up_order: VecDeque::new(),
            churn: None,
            next_flap: None,
        };
        let groups = worker.groups.len().max(1);
        for (i, index) in tunnels.into_iter().enumerate() {
            let group = i % groups;
            worker.tally.tunnels_attempted += 1;
            let Some(g) = worker.groups.get_mut(group) else {
                worker.tally.tunnel_failed("no_socket");
                continue;
            };
            match g.node.endpoint().connect(now, options.lns) {
                Ok(id) => {
                    worker.opening += 1;
                    worker.by_id.insert((group, id), worker.slots.len());
                    worker.slots.push(TunnelSlot {
                        group,
                        index,
                        id,
                        phase: TunnelPhase::Connecting,
                        dialled: 0,
                        stopped: false,
                        reopened: false,
                    });
                }
                Err(e) => worker
                    .tally
                    .tunnel_failed(&format!("local_{e:?}").to_lowercase()),
            }
        }
        worker
    }

    /// Run to the end; the counters and how long teardown took.
    pub fn run(mut self) -> (Tally, Duration) {
        let mut published = [0; 4];
        while self.phase != Phase::Done {
            self.shared.publish_data(&self.tally.data, &mut published);
            let now = Instant::now();
            self.service_groups(now);
            self.advance(now);
            if self.phase == Phase::Done {
                break;
            }
            self.dial_due(now);
            self.churn_due(now);
            self.flap_due(now);
            self.send_data_due(now, DATA_BURST);
            self.flush();
            let wake = self.next_wake(now);
            let groups = &mut self.groups;
            self.io.wait(wake, |g, at, from, datagram| {
                if let Some(group) = groups.get_mut(g) {
                    group.node.handle_datagram(at, from, datagram);
                }
            });
        }
        self.shared.publish_data(&self.tally.data, &mut published);
        self.sample_retransmissions();
        let tally_retrans: u64 = self
            .groups
            .iter()
            .map(|g| g.retransmissions + g.retransmissions_before)
            .sum();
        self.tally.retransmissions = tally_retrans;
        let (user, system) = thread_cpu();
        self.tally.cpu_user = user;
        self.tally.cpu_system = system;
        (self.tally, self.teardown_took)
    }

    /// Timers and events of every group.
    fn service_groups(&mut self, now: Instant) {
        for g in 0..self.groups.len() {
            let group = &mut self.groups[g];
            if group.node.poll_timeout().is_some_and(|at| at <= now) {
                group.node.handle_timeout(now);
            }
            while let Some(event) = self.groups[g].node.poll_event() {
                self.on_event(g, now, event);
            }
        }
    }

    fn tearing_down(&self) -> bool {
        self.teardown_started.is_some()
    }

    fn on_event(&mut self, g: usize, now: Instant, event: NodeEvent) {
        match event {
            NodeEvent::SessionUp { key, up } => {
                if let Some(call) = self.calls.get_mut(&(g, key)) {
                    call.ipv4 = up.ipv4;
                    if !call.up && !call.settled {
                        call.up = true;
                        match call.origin {
                            Origin::Setup => {
                                self.pending -= 1;
                                self.tally.up(call.dialled, now);
                                self.shared.established.fetch_add(1, Ordering::Relaxed);
                            }
                            Origin::Churn => self.tally.churn.up(call.dialled, now),
                            Origin::Redial => self.tally.flap.up(call.dialled, now),
                        }
                        self.up_order.push_back((g, key));
                    }
                }
            }
            NodeEvent::SessionDown {
                key,
                reason: Some(reason),
            } => {
                if let Some(call) = self.calls.get_mut(&(g, key)) {
                    call.ppp_reason.get_or_insert(reason);
                }
            }
            NodeEvent::L2tp(Event::SessionDown {
                tunnel,
                session,
                reason,
            }) => {
                let Some(call) = self.calls.remove(&(g, (tunnel, session))) else {
                    return;
                };
                if !call.up && !call.settled && call.origin == Origin::Setup {
                    self.pending -= 1;
                }
                if call.hung_up {
                    self.tally.churn.teardowns += 1;
                } else if self.tearing_down() {
                    self.tally.sessions_closed += 1;
                } else if call.settled {
                    // Counted already.
                } else if call.up {
                    self.tally.lose(&session_reason(call.ppp_reason, &reason));
                } else {
                    let why = session_reason(call.ppp_reason, &reason);
                    match call.origin {
                        Origin::Setup => {
                            self.tally.fail(&why);
                            self.shared.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Origin::Churn => bump(&mut self.tally.churn.failed, why),
                        Origin::Redial => bump(&mut self.tally.flap.failed, why),
                    }
                }
            }
            NodeEvent::L2tp(Event::TunnelUp { tunnel, .. }) => {
                if let Some(&slot) = self.by_id.get(&(g, tunnel)) {
                    let s = &mut self.slots[slot];
                    if s.phase == TunnelPhase::Connecting {
                        s.phase = TunnelPhase::Up;
                        if s.reopened {
                            self.tally.flap.tunnels_back += 1;
                        } else {
                            self.opening -= 1;
                            self.tally.tunnels_established += 1;
                        }
                        self.ready.push_back(slot);
                    }
                }
            }
            NodeEvent::L2tp(Event::TunnelDown { tunnel, reason }) => {
                if let Some(&slot) = self.by_id.get(&(g, tunnel)) {
                    let tearing_down = self.tearing_down();
                    let s = &mut self.slots[slot];
                    match s.phase {
                        TunnelPhase::Connecting if s.reopened => {
                            bump(&mut self.tally.flap.tunnels_failed, tunnel_reason(&reason));
                        }
                        TunnelPhase::Connecting => {
                            self.opening -= 1;
                            self.tally.tunnel_failed(&tunnel_reason(&reason));
                        }
                        TunnelPhase::Up if !tearing_down => {
                            self.tally
                                .lose(&format!("tunnel_{}", tunnel_reason(&reason)));
                        }
                        _ => {}
                    }
                    s.phase = TunnelPhase::Gone;
                }
            }
            NodeEvent::Data {
                key,
                protocol,
                packet,
            } => self.on_data(g, now, key, protocol, &packet),
            _ => {}
        }
    }

    /// A data packet on a session: a probe back from the reflector, once
    /// data flows and until the drain is over.
    fn on_data(&mut self, g: usize, now: Instant, key: SessionKey, proto: u16, packet: &[u8]) {
        if !matches!(self.phase, Phase::Hold { .. } | Phase::Drain { .. }) {
            return;
        }
        let Some(run) = &self.data else {
            return;
        };
        let tally = &mut self.tally.data;
        let v6 = proto == protocol::IPV6;
        // The probe and whether it came back to the session's own address.
        let probe = match (proto, run.reflector6) {
            (protocol::IPV4, _) => data::parse(packet, run.reflector).map(|(dst, probe)| {
                (
                    Some(dst) == self.calls.get(&(g, key)).and_then(|c| c.ipv4),
                    probe,
                )
            }),
            (protocol::IPV6, Some(reflector6)) => data::parse6(packet, reflector6)
                .map(|(dst, probe)| (Some(dst) == self.groups[g].node.ipv6_address(key), probe)),
            _ => None,
        };
        let call = self.calls.get_mut(&(g, key));
        let (Some((true, probe)), Some(call)) = (probe, call) else {
            tally.unmatched += 1;
            return;
        };
        if u64::from(probe.index) != call.index {
            tally.unmatched += 1;
            return;
        }
        let window = if v6 {
            &mut call.window6
        } else {
            &mut call.window
        };
        match window.accept(probe.seq) {
            Arrival::Duplicate => tally.duplicates += 1,
            arrival => {
                if arrival == Arrival::Reordered {
                    tally.reordered += 1;
                }
                tally.received += 1;
                if v6 {
                    tally.received_v6 += 1;
                }
                tally.received_bytes += packet.len() as u64;
                let now_ns = now.saturating_duration_since(self.epoch).as_nanos();
                let rtt = u64::try_from(now_ns)
                    .unwrap_or(u64::MAX)
                    .saturating_sub(probe.sent_ns);
                tally.record_rtt(Duration::from_nanos(rtt));
            }
        }
    }

    /// The hold begins: every session that is up with an address sends
    /// probes until `until`.
    fn start_data(&mut self, now: Instant, until: Instant) {
        let Some(reflector) = self
            .options
            .reflector
            .filter(|_| self.options.data_enabled())
        else {
            return;
        };
        let mut targets: Vec<Target> = self
            .calls
            .iter()
            .filter(|(_, call)| call.up && !call.settled)
            .filter_map(|(&(group, key), call)| {
                Some(Target {
                    group,
                    key,
                    src: call.ipv4?,
                    index: u32::try_from(call.index).ok()?,
                })
            })
            .collect();
        // Session order, so each worker's packets go out in a stable order.
        targets.sort_unstable_by_key(|t| t.index);
        self.tally.data_sessions = targets.len() as u64;
        self.tally.data.start = Some(now);
        self.tally.data.end = Some(until);
        let schedule = Schedule::new(now, until, self.options.data_pps, targets.len());
        self.data = Some(DataRun {
            reflector,
            reflector6: self.options.reflector6,
            size: self.options.data_size,
            targets,
            schedule,
            packet: Vec::with_capacity(usize::from(self.options.data_size) + 28),
        });
    }

    /// Hand the node the probes that are due (at most `cap`).
    fn send_data_due(&mut self, now: Instant, cap: u64) {
        // During the drain too: what fell due before the end of the hold
        // still goes, however late, in bursts of at most `cap`.
        if !matches!(self.phase, Phase::Hold { .. } | Phase::Drain { .. }) {
            return;
        }
        let Some(run) = &mut self.data else {
            return;
        };
        let sent_ns =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let tally = &mut self.tally.data;
        for (t, seq) in run.schedule.due(now, cap) {
            let Some(target) = run.targets.get(t) else {
                continue;
            };
            let probe = Probe {
                index: target.index,
                seq,
                sent_ns,
            };
            // Spread the flows over source ports (and the reflector's
            // sockets) by session.
            let sport = 49_152 + (target.index % 16_384) as u16;
            data::build(
                &mut run.packet,
                target.src,
                sport,
                run.reflector,
                run.size,
                probe,
            );
            let node = &mut self.groups[target.group].node;
            if node.send_data(target.key, protocol::IPV4, &run.packet) {
                tally.sent += 1;
                tally.sent_bytes += run.packet.len() as u64;
            } else {
                tally.unsendable += 1;
            }
            // IPv6 too once the session has its address (the LNS's Router
            // Advertisement may come a little after IPv6CP).
            let src6 = run
                .reflector6
                .and_then(|r| Some((r, node.ipv6_address(target.key)?)));
            if let Some((reflector6, src6)) = src6 {
                data::build6(&mut run.packet, src6, sport, reflector6, run.size, probe);
                if node.send_data(target.key, protocol::IPV6, &run.packet) {
                    tally.sent += 1;
                    tally.sent_v6 += 1;
                    tally.sent_bytes += run.packet.len() as u64;
                }
            }
        }
    }

    /// Some dial of the churn is still setting up.
    fn churn_setting_up(&self) -> bool {
        self.churn.is_some()
            && self
                .calls
                .values()
                .any(|c| c.origin == Origin::Churn && !c.up && !c.settled)
    }

    /// Every probe sent has come back.
    fn data_all_back(&self) -> bool {
        let d = &self.tally.data;
        let all_sent = self.data.as_ref().is_none_or(|run| run.schedule.finished());
        all_sent && d.received >= d.sent
    }

    /// No tunnel still opening, no session left to dial (a slot that is
    /// up with sessions to dial is always in `ready`), no call in setup.
    fn setup_finished(&self) -> bool {
        self.opening == 0 && self.ready.is_empty() && self.pending == 0
    }

    fn advance(&mut self, now: Instant) {
        match self.phase {
            Phase::Setup => {
                let timed_out = now >= self.deadline;
                if timed_out || self.setup_finished() {
                    if timed_out {
                        self.time_out();
                    }
                    self.shared.setup_done.fetch_add(1, Ordering::AcqRel);
                    self.phase = Phase::Waiting;
                    self.advance(now);
                }
            }
            Phase::Waiting => {
                let all = self.shared.setup_done.load(Ordering::Acquire) >= self.workers;
                if all || now >= self.deadline {
                    let until = (now + self.options.hold_duration()).min(self.deadline.max(now));
                    self.start_data(now, until);
                    self.start_churn(now, until);
                    self.next_flap = self.options.flap_interval().map(|i| now + i);
                    self.phase = Phase::Hold { until };
                    self.advance(now);
                }
            }
            Phase::Hold { until } => {
                if now >= until {
                    let churning = self.churn_setting_up();
                    if self.data.is_some() || churning {
                        let drain = if churning { CHURN_DRAIN } else { DATA_DRAIN };
                        self.phase = Phase::Drain { until: now + drain };
                        self.advance(now);
                    } else {
                        self.start_teardown(now);
                    }
                }
            }
            Phase::Drain { until } => {
                if now >= until || (self.data_all_back() && !self.churn_setting_up()) {
                    self.start_teardown(now);
                }
            }
            Phase::Closing { stop_at, end } => {
                if self.calls.is_empty() || now >= stop_at {
                    self.stop_tunnels(now, end);
                }
            }
            Phase::Stopping { end } => {
                let pending = self.count_unacked();
                if pending == 0 || now >= end {
                    self.finish(now);
                }
            }
            Phase::Done => {}
        }
    }

    /// The run's deadline passed during setup: what is not up has failed.
    fn time_out(&mut self) {
        for call in self.calls.values_mut() {
            if !call.up && !call.settled {
                call.settled = true;
                self.pending -= 1;
                self.tally.fail("timeout");
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        for slot in &mut self.slots {
            if slot.phase == TunnelPhase::Connecting {
                slot.phase = TunnelPhase::Gone;
                self.opening -= 1;
                self.tally.tunnel_failed("timeout");
            }
        }
        self.ready.clear();
    }

    fn start_teardown(&mut self, now: Instant) {
        self.sample_retransmissions();
        self.teardown_started = Some(now);
        for call in self.calls.values() {
            if !call.up && !call.settled && call.origin == Origin::Churn {
                self.tally.churn.unfinished += 1;
            }
        }
        self.tally.flap.unfinished += self.flap_unfinished();
        match self.options.teardown {
            Teardown::Vanish => self.finish(now),
            Teardown::Cdn => {
                let end = now + TEARDOWN_GRACE;
                for (&(g, key), call) in &self.calls {
                    let node = &mut self.groups[g].node;
                    if call.hung_up {
                        // Closing already.
                    } else if call.up {
                        // LCP Terminate, then CDN once it is acknowledged.
                        node.hang_up(now, key);
                    } else {
                        let _ = node
                            .endpoint()
                            .close_session(now, key.0, key.1, admin_cdn());
                    }
                }
                // Most of the grace for the CDNs, the rest for StopCCN.
                let stop_at = now + TEARDOWN_GRACE * 3 / 5;
                self.phase = Phase::Closing { stop_at, end };
            }
        }
    }

    fn stop_tunnels(&mut self, now: Instant, end: Instant) {
        self.sample_retransmissions();
        for slot in &mut self.slots {
            if slot.phase == TunnelPhase::Up {
                let node = &mut self.groups[slot.group].node;
                let result = ResultCode {
                    result: stopccn_result::CLEAR,
                    error: Some(error_code::NONE),
                    message: Some(b"loadgen run over".to_vec()),
                };
                if node.endpoint().close_tunnel(now, slot.id, result).is_ok() {
                    slot.stopped = true;
                    self.tally.tunnels_closed += 1;
                }
            }
        }
        self.phase = Phase::Stopping { end };
    }

    /// Tunnels we closed whose StopCCN the LNS has not acknowledged.
    fn count_unacked(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| {
                s.stopped
                    && self.groups[s.group]
                        .node
                        .l2tp()
                        .tunnel(s.id)
                        .is_some_and(|t| t.unacked > 0)
            })
            .count()
    }

    fn finish(&mut self, now: Instant) {
        if self.options.teardown == Teardown::Cdn {
            let unacked = self.count_unacked() as u64;
            self.tally.tunnels_acked = self.tally.tunnels_closed.saturating_sub(unacked);
        }
        if let Some(started) = self.teardown_started {
            self.teardown_took = now.saturating_duration_since(started);
        }
        self.phase = Phase::Done;
    }

    fn sample_retransmissions(&mut self) {
        for group in &mut self.groups {
            let now = group.node.l2tp().retransmissions();
            group.retransmissions = group.retransmissions.max(now);
        }
    }

    /// Dial what the bucket allows, tunnels in turn.
    fn dial_due(&mut self, now: Instant) {
        // Tunnels back after a flap dial their sessions again during the
        // hold.
        if !matches!(self.phase, Phase::Setup | Phase::Hold { .. }) {
            return;
        }
        while let Some(&slot) = self.ready.front() {
            let s = &self.slots[slot];
            if s.phase != TunnelPhase::Up || s.dialled >= self.options.sessions_per_tunnel {
                // Its tunnel went down meanwhile.
                self.ready.pop_front();
                continue;
            }
            if let Some(bucket) = &mut self.bucket {
                if bucket.take(now, 1) == 0 {
                    return;
                }
            }
            self.ready.pop_front();
            self.dial(now, slot);
            if self.slots[slot].dialled < self.options.sessions_per_tunnel {
                self.ready.push_back(slot);
            }
        }
    }

    fn dial(&mut self, now: Instant, slot: usize) {
        let s = &mut self.slots[slot];
        let n =
            u64::from(s.index) * u64::from(self.options.sessions_per_tunnel) + u64::from(s.dialled);
        s.dialled += 1;
        let (g, tunnel) = (s.group, s.id);
        let origin = if s.reopened {
            Origin::Redial
        } else {
            Origin::Setup
        };
        self.dial_index(now, g, tunnel, n, origin);
    }

    /// Dial subscriber `n` on tunnel `tunnel` of group `g`.
    fn dial_index(&mut self, now: Instant, g: usize, tunnel: u16, n: u64, origin: Origin) {
        let o = self.options;
        let call = CallInfo {
            calling_number: o.calling.as_ref().map(|t| expand(t, n).into_bytes()),
            called_number: o.called.as_ref().map(|c| c.clone().into_bytes()),
            call_serial_number: Some(n as u32),
            ..CallInfo::default()
        };
        let subscriber = Subscriber {
            user: expand(&o.user, n).into_bytes(),
            password: expand(&o.password, n).into_bytes(),
            proxy: o.proxy,
        };
        match origin {
            Origin::Setup => {
                self.tally.dialled(now);
                self.shared.attempted.fetch_add(1, Ordering::Relaxed);
            }
            Origin::Churn => self.tally.churn.dialled += 1,
            Origin::Redial => self.tally.flap.redialled += 1,
        }
        match self.groups[g].node.dial(now, tunnel, call, subscriber) {
            Some(session) => {
                if origin == Origin::Setup {
                    self.pending += 1;
                }
                self.calls.insert(
                    (g, (tunnel, session)),
                    Call {
                        index: n,
                        origin,
                        hung_up: false,
                        ipv4: None,
                        window: SeqWindow::default(),
                        window6: SeqWindow::default(),
                        dialled: now,
                        up: false,
                        settled: false,
                        ppp_reason: None,
                    },
                );
            }
            None => match origin {
                Origin::Setup => {
                    self.tally.fail("dial_refused_locally");
                    self.shared.failed.fetch_add(1, Ordering::Relaxed);
                }
                Origin::Churn => bump(&mut self.tally.churn.failed, "dial_refused_locally".into()),
                Origin::Redial => bump(&mut self.tally.flap.failed, "dial_refused_locally".into()),
            },
        }
    }

    /// Sessions of reopened tunnels not up: dialled and still setting up,
    /// or not dialled yet.
    fn flap_unfinished(&self) -> u64 {
        let setting_up = self
            .calls
            .values()
            .filter(|c| c.origin == Origin::Redial && !c.up && !c.settled)
            .count() as u64;
        let undialled: u64 = self
            .slots
            .iter()
            .filter(|s| s.reopened)
            .map(|s| u64::from(self.options.sessions_per_tunnel.saturating_sub(s.dialled)))
            .sum();
        setting_up + undialled
    }

    /// `--scenario flap`: when the interval is up, every tunnel of this
    /// worker vanishes and comes back.
    fn flap_due(&mut self, now: Instant) {
        let Phase::Hold { until } = self.phase else {
            return;
        };
        let Some(at) = self.next_flap.filter(|&at| at <= now && at < until) else {
            return;
        };
        self.flap(now);
        let interval = self.options.flap_interval().unwrap_or(Duration::MAX);
        // A worker that fell behind flaps once, not once per missed tick.
        self.next_flap = at.checked_add(interval).map(|next| next.max(now));
    }

    /// Every tunnel vanishes without StopCCN, as when the LAC reboots: each
    /// group's node (the LAC behind that socket) is replaced by a fresh
    /// one that knows nothing of the old tunnels and sessions, so nothing
    /// more is said on them (what the LNS still sends there is dropped as
    /// for an unknown tunnel). Then every tunnel is opened again with a
    /// new SCCRQ from the same socket, and once up dials the same
    /// subscribers again at `--rate`.
    fn flap(&mut self, now: Instant) {
        self.sample_retransmissions();
        let f = &mut self.tally.flap;
        f.flaps += 1;
        f.sessions_vanished += self.calls.values().filter(|c| c.up).count() as u64;
        f.tunnels_vanished += self
            .slots
            .iter()
            .filter(|s| s.phase != TunnelPhase::Gone)
            .count() as u64;
        self.tally.flap.unfinished += self.flap_unfinished();
        self.calls.clear();
        self.up_order.clear();
        self.ready.clear();
        self.by_id.clear();
        // The data of the vanished sessions cannot be sent any more.
        self.data = None;
        let epoch_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        for (i, group) in self.groups.iter_mut().enumerate() {
            group.retransmissions_before += group.retransmissions;
            group.retransmissions = 0;
            let port = group.socket.local_addr().map_or(0, |a| a.port());
            let seed = epoch_ns ^ (u64::from(port) << 40) ^ (i as u64).rotate_left(20);
            group.node = lac_node(self.options, seed);
        }
        for (index, slot) in self.slots.iter_mut().enumerate() {
            slot.reopened = true;
            slot.dialled = 0;
            slot.stopped = false;
            slot.phase = TunnelPhase::Gone;
            self.tally.flap.tunnels_reopened += 1;
            match self.groups[slot.group]
                .node
                .endpoint()
                .connect(now, self.options.lns)
            {
                Ok(id) => {
                    slot.id = id;
                    slot.phase = TunnelPhase::Connecting;
                    self.by_id.insert((slot.group, id), index);
                }
                Err(e) => bump(
                    &mut self.tally.flap.tunnels_failed,
                    format!("local_{e:?}").to_lowercase(),
                ),
            }
        }
    }

    /// `--scenario churn`: the hold begins, and with it the churn.
    fn start_churn(&mut self, now: Instant, until: Instant) {
        if let Some(rate) = self.options.churn_rate() {
            // 50 ms worth of burst (at least 2): at tens of cycles a
            // second per worker, a burst of one would lose the fraction
            // owed each time the loop wakes late.
            let rate = rate / self.workers.max(1) as f64;
            self.churn = Some(TokenBucket::with_burst(rate, (rate / 20.0).max(2.0), now));
            self.tally.churn.start = Some(now);
            self.tally.churn.end = Some(until);
        }
    }

    /// The churn cycles that are due: the longest-held session hangs up
    /// (LCP Terminate, then CDN) and its subscriber (the same `{n}`) dials
    /// again at once on the same tunnel, so the population stays steady.
    fn churn_due(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Hold { .. }) {
            return;
        }
        let Some(bucket) = &mut self.churn else {
            return;
        };
        let due = bucket.take(now, u64::MAX);
        for _ in 0..due {
            // The longest-held session still up (entries of sessions gone
            // or hung up already are stale).
            let next = loop {
                let Some((g, key)) = self.up_order.pop_front() else {
                    break None;
                };
                match self.calls.get_mut(&(g, key)) {
                    Some(call) if call.up && !call.hung_up => {
                        call.hung_up = true;
                        break Some((g, key, call.index));
                    }
                    _ => {}
                }
            };
            let Some((g, key, index)) = next else {
                // Nothing up to hang up: the token is spent.
                return;
            };
            self.tally.churn.cycles += 1;
            self.groups[g].node.hang_up(now, key);
            let tunnel_up = self
                .by_id
                .get(&(g, key.0))
                .is_some_and(|&slot| self.slots[slot].phase == TunnelPhase::Up);
            if tunnel_up {
                self.dial_index(now, g, key.0, index, Origin::Churn);
            } else {
                bump(&mut self.tally.churn.failed, "tunnel_down".into());
            }
        }
    }

    /// Hand every queued datagram to the kernel, as far as the sockets
    /// take them (what they refuse is lost like on a wire; the protocols
    /// retransmit).
    fn flush(&mut self) {
        // The node hands control and data over in the order they arose
        // (a call's PPP never ahead of its ICCN), so they go as they come.
        for (g, group) in self.groups.iter_mut().enumerate() {
            while let Some(t) = group.node.poll_transmit() {
                self.io.send(g, t.remote, &t.payload);
            }
        }
        self.io.flush();
    }

    fn next_wake(&mut self, now: Instant) -> Instant {
        let mut wake = now + MAX_SLEEP;
        for group in &mut self.groups {
            if let Some(at) = group.node.poll_timeout() {
                wake = wake.min(at);
            }
        }
        if matches!(self.phase, Phase::Setup | Phase::Hold { .. }) && !self.ready.is_empty() {
            if let Some(bucket) = &mut self.bucket {
                wake = wake.min(bucket.next_token(now));
            } else {
                wake = now;
            }
        }
        match self.phase {
            Phase::Setup | Phase::Waiting => wake.min(self.deadline),
            Phase::Hold { until } => {
                let next = self.data.as_ref().and_then(|d| d.schedule.next_due());
                let churn = self.churn.as_mut().map(|b| b.next_token(now));
                wake.min(until)
                    .min(next.unwrap_or(until))
                    .min(churn.unwrap_or(until))
                    .min(self.next_flap.unwrap_or(until))
            }
            Phase::Drain { until } => {
                // Probes still owed from the hold go out as soon as may be.
                let next = self.data.as_ref().and_then(|d| d.schedule.next_due());
                wake.min(until).min(next.map_or(until, |at| at.max(now)))
            }
            Phase::Closing { stop_at, .. } => wake.min(stop_at),
            Phase::Stopping { end } => wake.min(end),
            Phase::Done => now,
        }
    }
}

fn bump(map: &mut std::collections::BTreeMap<String, u64>, reason: String) {
    *map.entry(reason).or_default() += 1;
}

fn admin_cdn() -> ResultCode {
    ResultCode {
        result: cdn_result::ADMIN,
        error: Some(error_code::NONE),
        message: Some(b"loadgen run over".to_vec()),
    }
}

/// A short, stable name for why a session ended: PPP's reason when it had
/// one of its own, else the L2TP one.
pub fn session_reason(ppp: Option<DownReason>, l2tp: &SessionDownReason) -> String {
    let ppp = match ppp {
        Some(DownReason::AuthFailed(AuthFailure::Rejected)) => Some("auth_failed"),
        Some(DownReason::AuthFailed(AuthFailure::Timeout)) => Some("auth_timeout"),
        Some(DownReason::AuthFailed(AuthFailure::BadAuthenticator)) => {
            Some("auth_bad_authenticator")
        }
        Some(DownReason::AuthRefused) => Some("auth_refused"),
        Some(DownReason::NegotiationFailed) => Some("lcp_negotiation_failed"),
        Some(DownReason::NoAddress) => Some("no_address"),
        Some(DownReason::NoNetwork) => Some("no_network_protocol"),
        Some(DownReason::EchoTimeout) => Some("echo_timeout"),
        Some(DownReason::LoopedBack) => Some("looped_back"),
        Some(DownReason::PeerTerminated) => Some("lcp_terminated_by_lns"),
        Some(DownReason::LocalClose | DownReason::CallCleared) | None => None,
    };
    if let Some(name) = ppp {
        return name.to_string();
    }
    match l2tp {
        SessionDownReason::PeerDisconnect(rc) => format!("cdn_{}", cdn_name(rc.result)),
        SessionDownReason::LocalDisconnect(_) => "cdn_sent".to_string(),
        SessionDownReason::TunnelDown => "tunnel_down".to_string(),
        SessionDownReason::SetupTimeout => "call_setup_timeout".to_string(),
    }
}

/// The same for a tunnel.
pub fn tunnel_reason(reason: &TunnelDownReason) -> String {
    match reason {
        TunnelDownReason::PeerStop(rc) => format!("stopccn_{}", stopccn_name(rc.result)),
        TunnelDownReason::LocalStop(rc) => format!("stopccn_sent_{}", stopccn_name(rc.result)),
        TunnelDownReason::PeerUnreachable => "peer_unreachable".to_string(),
        TunnelDownReason::SetupTimeout => "setup_timeout".to_string(),
    }
}

/// CDN Result Codes by name (RFC 2661 §4.4.2).
fn cdn_name(result: u16) -> String {
    match result {
        1 => "lost_carrier".into(),
        2 => "general_error".into(),
        3 => "admin".into(),
        4 => "no_facilities_temporary".into(),
        5 => "no_facilities_permanent".into(),
        6 => "invalid_destination".into(),
        7 => "no_carrier".into(),
        8 => "busy".into(),
        9 => "no_dial_tone".into(),
        10 => "timeout".into(),
        11 => "no_framing".into(),
        n => format!("result_{n}"),
    }
}

/// StopCCN Result Codes by name (RFC 2661 §4.4.2).
fn stopccn_name(result: u16) -> String {
    match result {
        1 => "clear".into(),
        2 => "general_error".into(),
        3 => "already_exists".into(),
        4 => "not_authorized".into(),
        5 => "bad_protocol_version".into(),
        6 => "shutting_down".into(),
        7 => "fsm_error".into(),
        n => format!("result_{n}"),
    }
}

/// This thread's CPU time so far (user, system).
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: zeroed rusage is valid; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a live rusage for the call to fill.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_prefer_ppp_then_l2tp() {
        let cdn = |result| {
            SessionDownReason::PeerDisconnect(ResultCode {
                result,
                error: None,
                message: None,
            })
        };
        assert_eq!(
            session_reason(Some(DownReason::AuthFailed(AuthFailure::Rejected)), &cdn(2)),
            "auth_failed"
        );
        assert_eq!(
            session_reason(Some(DownReason::CallCleared), &cdn(4)),
            "cdn_no_facilities_temporary"
        );
        assert_eq!(session_reason(None, &cdn(42)), "cdn_result_42");
        assert_eq!(
            session_reason(None, &SessionDownReason::SetupTimeout),
            "call_setup_timeout"
        );
        assert_eq!(
            tunnel_reason(&TunnelDownReason::PeerStop(ResultCode {
                result: 4,
                error: None,
                message: None
            })),
            "stopccn_not_authorized"
        );
        assert_eq!(
            tunnel_reason(&TunnelDownReason::PeerUnreachable),
            "peer_unreachable"
        );
    }
}
