//! Counting and reporting, sans-IO: each worker keeps a [`Tally`], the
//! tallies merge into one, and [`Report::build`] turns it into the text and
//! JSON report (schema in the crate README).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::options::{Options, Rate, Teardown};
use crate::target::TargetReport;
use crate::timeline::Timeline;

/// The `schema` field of every JSON report; bumped when a field changes
/// meaning or goes away (new fields may appear without a bump).
pub const SCHEMA: &str = "loadgen-report/4";

/// The largest setup latency the histogram holds, in microseconds (one
/// hour); longer ones are clamped to it.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// The largest round-trip time the histogram holds, in microseconds (one
/// minute); longer ones are clamped to it.
const RTT_MAX_US: u64 = 60_000_000;

/// One worker's data counters.
#[derive(Debug, Clone)]
pub struct DataTally {
    /// Probes handed to the node for sending.
    pub sent: u64,
    /// Probes back from the reflector, each counted once.
    pub received: u64,
    /// Probes back a second time (within the sequence window).
    pub duplicates: u64,
    /// Probes back after a later one of the same session.
    pub reordered: u64,
    /// Data packets on our sessions that were not our probes (or came back
    /// to the wrong session).
    pub unmatched: u64,
    /// IPv4 bytes sent (headers included).
    pub sent_bytes: u64,
    /// IPv4 bytes received back (each probe once).
    pub received_bytes: u64,
    /// Probes sessions could not send (the session was gone).
    pub unsendable: u64,
    /// Of `sent`, over IPv6.
    pub sent_v6: u64,
    /// Of `received`, over IPv6.
    pub received_v6: u64,
    /// Round-trip time, microseconds.
    pub rtt: Histogram<u64>,
    /// When sending began.
    pub start: Option<Instant>,
    /// When sending was over (the hold's end).
    pub end: Option<Instant>,
}

impl Default for DataTally {
    fn default() -> Self {
        DataTally {
            sent: 0,
            received: 0,
            duplicates: 0,
            reordered: 0,
            unmatched: 0,
            sent_bytes: 0,
            received_bytes: 0,
            unsendable: 0,
            sent_v6: 0,
            received_v6: 0,
            rtt: histogram(RTT_MAX_US),
            start: None,
            end: None,
        }
    }
}

impl DataTally {
    /// A probe came back after `rtt`.
    pub fn record_rtt(&mut self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.rtt.saturating_record(us.clamp(1, RTT_MAX_US));
    }

    /// Fold `other` into this tally.
    pub fn merge(&mut self, other: &DataTally) {
        self.sent += other.sent;
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.unmatched += other.unmatched;
        self.sent_bytes += other.sent_bytes;
        self.received_bytes += other.received_bytes;
        self.unsendable += other.unsendable;
        self.sent_v6 += other.sent_v6;
        self.received_v6 += other.received_v6;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.rtt.add(&other.rtt);
        self.start = earliest(self.start, other.start);
        self.end = latest(self.end, other.end);
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// One worker's counters of the `churn` scenario.
#[derive(Debug, Clone)]
pub struct ChurnTally {
    /// Sessions hung up by the churn (each followed by a new dial).
    pub cycles: u64,
    /// Sessions dialled during the churn.
    pub dialled: u64,
    /// Of those, sessions that came up.
    pub setups: u64,
    /// Hung-up sessions whose call ended (CDN sent).
    pub teardowns: u64,
    /// Sessions dialled during the churn that failed, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Sessions dialled during the churn still setting up when it ended.
    pub unfinished: u64,
    /// Dial to PPP up of the churn's sessions, microseconds.
    pub latency: Histogram<u64>,
    /// When the churn began.
    pub start: Option<Instant>,
    /// When it ended.
    pub end: Option<Instant>,
}

impl Default for ChurnTally {
    fn default() -> Self {
        ChurnTally {
            cycles: 0,
            dialled: 0,
            setups: 0,
            teardowns: 0,
            failed: BTreeMap::new(),
            unfinished: 0,
            latency: histogram(LATENCY_MAX_US),
            start: None,
            end: None,
        }
    }
}

impl ChurnTally {
    /// A session dialled at `dialled` during the churn came up at `at`.
    pub fn up(&mut self, dialled: Instant, at: Instant) {
        self.setups += 1;
        record_latency(&mut self.latency, dialled, at);
    }

    /// Fold `other` into this tally.
    pub fn merge(&mut self, other: &ChurnTally) {
        self.cycles += other.cycles;
        self.dialled += other.dialled;
        self.setups += other.setups;
        self.teardowns += other.teardowns;
        for (reason, n) in &other.failed {
            bump(&mut self.failed, reason, *n);
        }
        self.unfinished += other.unfinished;
        let _ = self.latency.add(&other.latency);
        self.start = earliest(self.start, other.start);
        self.end = latest(self.end, other.end);
    }
}

/// One worker's counters of the `flap` scenario.
#[derive(Debug, Clone)]
pub struct FlapTally {
    /// Times the worker's tunnels vanished.
    pub flaps: u64,
    /// Tunnels forgotten without StopCCN (over all flaps).
    pub tunnels_vanished: u64,
    /// Sessions that were up when their tunnel vanished.
    pub sessions_vanished: u64,
    /// Tunnels opened again after a flap.
    pub tunnels_reopened: u64,
    /// Of those, tunnels that came up.
    pub tunnels_back: u64,
    /// Tunnels opened again that never came up, by reason.
    pub tunnels_failed: BTreeMap<String, u64>,
    /// Sessions dialled again after a flap.
    pub redialled: u64,
    /// Of those, sessions that came up.
    pub reestablished: u64,
    /// Sessions dialled again that failed, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Sessions dialled again still setting up (or not dialled yet) when
    /// the next flap or the end came.
    pub unfinished: u64,
    /// Dial to PPP up of the re-dialled sessions, microseconds.
    pub latency: Histogram<u64>,
}

impl Default for FlapTally {
    fn default() -> Self {
        FlapTally {
            flaps: 0,
            tunnels_vanished: 0,
            sessions_vanished: 0,
            tunnels_reopened: 0,
            tunnels_back: 0,
            tunnels_failed: BTreeMap::new(),
            redialled: 0,
            reestablished: 0,
            failed: BTreeMap::new(),
            unfinished: 0,
            latency: histogram(LATENCY_MAX_US),
        }
    }
}

impl FlapTally {
    /// A session dialled again at `dialled` came up at `at`.
    pub fn up(&mut self, dialled: Instant, at: Instant) {
        self.reestablished += 1;
        record_latency(&mut self.latency, dialled, at);
    }

    /// Fold `other` into this tally.
    pub fn merge(&mut self, other: &FlapTally) {
        self.flaps = self.flaps.max(other.flaps);
        self.tunnels_vanished += other.tunnels_vanished;
        self.sessions_vanished += other.sessions_vanished;
        self.tunnels_reopened += other.tunnels_reopened;
        self.tunnels_back += other.tunnels_back;
        for (reason, n) in &other.tunnels_failed {
            bump(&mut self.tunnels_failed, reason, *n);
        }
        self.redialled += other.redialled;
        self.reestablished += other.reestablished;
        for (reason, n) in &other.failed {
            bump(&mut self.failed, reason, *n);
        }
        self.unfinished += other.unfinished;
        let _ = self.latency.add(&other.latency);
    }
}

fn record_latency(h: &mut Histogram<u64>, dialled: Instant, at: Instant) {
    let us = at.saturating_duration_since(dialled).as_micros();
    let us = u64::try_from(us)
        .unwrap_or(u64::MAX)
        .clamp(1, LATENCY_MAX_US);
    h.saturating_record(us);
}

/// One worker's counters.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Sessions dialled (ICRQ sent or refused locally).
    pub attempted: u64,
    /// Sessions whose PPP reached the network phase.
    pub established: u64,
    /// Dialled sessions that never came up, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Sessions that came up and went down before teardown, by reason.
    pub lost: BTreeMap<String, u64>,
    /// Dial to PPP up, in microseconds.
    pub latency: Histogram<u64>,
    /// The first dial.
    pub first_dial: Option<Instant>,
    /// The last dial.
    pub last_dial: Option<Instant>,
    /// The last session up.
    pub last_up: Option<Instant>,
    /// Tunnels we tried to open.
    pub tunnels_attempted: u64,
    /// Tunnels that came up.
    pub tunnels_established: u64,
    /// Tunnels that never came up, by reason.
    pub tunnels_failed: BTreeMap<String, u64>,
    /// Control messages we retransmitted (as far as the endpoints counted
    /// them before their tunnels closed).
    pub retransmissions: u64,
    /// Sessions that ended during teardown.
    pub sessions_closed: u64,
    /// Tunnels we closed with StopCCN during teardown.
    pub tunnels_closed: u64,
    /// Of those, tunnels whose StopCCN the LNS acknowledged in time.
    pub tunnels_acked: u64,
    /// CPU time of the worker threads (user, system).
    pub cpu_user: Duration,
    /// See `cpu_user`.
    pub cpu_system: Duration,
    /// Sessions that sent data.
    pub data_sessions: u64,
    /// Data traffic.
    pub data: DataTally,
    /// The `churn` scenario.
    pub churn: ChurnTally,
    /// The `flap` scenario.
    pub flap: FlapTally,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            attempted: 0,
            established: 0,
            failed: BTreeMap::new(),
            lost: BTreeMap::new(),
            latency: histogram(LATENCY_MAX_US),
            first_dial: None,
            last_dial: None,
            last_up: None,
            tunnels_attempted: 0,
            tunnels_established: 0,
            tunnels_failed: BTreeMap::new(),
            retransmissions: 0,
            sessions_closed: 0,
            tunnels_closed: 0,
            tunnels_acked: 0,
            cpu_user: Duration::ZERO,
            cpu_system: Duration::ZERO,
            data_sessions: 0,
            data: DataTally::default(),
            churn: ChurnTally::default(),
            flap: FlapTally::default(),
        }
    }
}

fn histogram(max_us: u64) -> Histogram<u64> {
    // Three significant digits over 1 µs .. `max_us` (an hour or a
    // minute): fixed bounds that are always valid.
    match Histogram::new_with_bounds(1, max_us, 3) {
        Ok(h) => h,
        Err(_) => unreachable!("constant histogram bounds are valid"),
    }
}

fn bump(map: &mut BTreeMap<String, u64>, reason: &str, by: u64) {
    if by > 0 {
        *map.entry(reason.to_string()).or_default() += by;
    }
}

impl Tally {
    /// A session was dialled at `at`.
    pub fn dialled(&mut self, at: Instant) {
        self.attempted += 1;
        if self.first_dial.is_none_or(|first| at < first) {
            self.first_dial = Some(at);
        }
        if self.last_dial.is_none_or(|last| at > last) {
            self.last_dial = Some(at);
        }
    }

    /// A session dialled at `dialled` came up at `at`.
    pub fn up(&mut self, dialled: Instant, at: Instant) {
        self.established += 1;
        record_latency(&mut self.latency, dialled, at);
        if self.last_up.is_none_or(|last| at > last) {
            self.last_up = Some(at);
        }
    }

    /// A dialled session failed.
    pub fn fail(&mut self, reason: &str) {
        bump(&mut self.failed, reason, 1);
    }

    /// An established session went down before teardown.
    pub fn lose(&mut self, reason: &str) {
        bump(&mut self.lost, reason, 1);
    }

    /// A tunnel never came up.
    pub fn tunnel_failed(&mut self, reason: &str) {
        bump(&mut self.tunnels_failed, reason, 1);
    }

    /// Sessions that failed.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Fold `other` into this tally.
    pub fn merge(&mut self, other: &Tally) {
        self.attempted += other.attempted;
        self.established += other.established;
        for (reason, n) in &other.failed {
            bump(&mut self.failed, reason, *n);
        }
        for (reason, n) in &other.lost {
            bump(&mut self.lost, reason, *n);
        }
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.first_dial = earliest(self.first_dial, other.first_dial);
        self.last_dial = latest(self.last_dial, other.last_dial);
        self.last_up = latest(self.last_up, other.last_up);
        self.tunnels_attempted += other.tunnels_attempted;
        self.tunnels_established += other.tunnels_established;
        for (reason, n) in &other.tunnels_failed {
            bump(&mut self.tunnels_failed, reason, *n);
        }
        self.retransmissions += other.retransmissions;
        self.sessions_closed += other.sessions_closed;
        self.tunnels_closed += other.tunnels_closed;
        self.tunnels_acked += other.tunnels_acked;
        self.cpu_user += other.cpu_user;
        self.cpu_system += other.cpu_system;
        self.data_sessions += other.data_sessions;
        self.data.merge(&other.data);
        self.churn.merge(&other.churn);
        self.flap.merge(&other.flap);
    }
}

/// The final report; also the JSON document (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The LNS loaded.
    pub lns: String,
    /// `ramp` or `storm`.
    pub scenario: String,
    /// What was asked.
    pub settings: Settings,
    /// Session counts.
    pub sessions: Sessions,
    /// Tunnel counts.
    pub tunnels: Tunnels,
    /// Sessions established per second between the first dial and the last
    /// session up (0 when none came up).
    pub setup_rate_per_s: f64,
    /// That window, in seconds.
    pub setup_window_s: f64,
    /// Sessions dialled per second between the first and the last dial:
    /// the pacing achieved (0 with fewer than two dials). Differs from
    /// `setup_rate_per_s` when the last sessions were slow to come up.
    pub dial_rate_per_s: f64,
    /// Setup latency (dial to PPP up); null when no session came up.
    pub setup_latency_ms: Option<Latency>,
    /// The distribution behind `setup_latency_ms`: logarithmic buckets
    /// (ten a decade) from the first to the last that holds a session.
    pub setup_latency_histogram: Vec<LatencyBucket>,
    /// Counts over the run, sampled at a fixed interval.
    pub timeline: Timeline,
    /// Control messages loadgen retransmitted (a lower bound: counters of
    /// tunnels closed before the last sample are lost).
    pub retransmissions: u64,
    /// How the run ended.
    pub teardown: TeardownReport,
    /// Data traffic through the sessions; null when no data was asked for.
    pub data: Option<DataReport>,
    /// loadgen's own CPU use (its worker threads).
    pub cpu: Cpu,
    /// Wall-clock time of the whole run, seconds.
    pub wall_s: f64,
    /// The `churn` scenario's cycles; null for the other scenarios.
    pub churn: Option<ChurnReport>,
    /// The `flap` scenario's flaps; null for the other scenarios.
    pub flap: Option<FlapReport>,
    /// The LNS process's CPU and memory (`--lns-pid`, `--lns-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetReport>,
    /// The workers' I/O path (set by [`crate::run`]; absent from reports
    /// built otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IoReport>,
}

/// Which I/O path the workers ran (`--io`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoReport {
    /// What `--io` asked for: `auto`, `uring` or `fallback`.
    pub asked: String,
    /// What ran: `io_uring` or `fallback`.
    pub path: String,
    /// Why the fallback ran; null on io_uring.
    pub reason: Option<String>,
}

impl IoReport {
    /// `path` ran when `asked` was asked for, for `reason`.
    pub fn new(
        asked: crate::socket_io::IoChoice,
        path: crate::socket_io::Path,
        reason: Option<String>,
    ) -> Self {
        IoReport {
            asked: format!("{asked:?}").to_lowercase(),
            path: path.name().to_string(),
            reason: match path {
                crate::socket_io::Path::IoUring => None,
                crate::socket_io::Path::Fallback => reason,
            },
        }
    }
}

/// The settings that shape the numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Tunnels asked for.
    pub tunnels: u64,
    /// Sessions per tunnel.
    pub sessions_per_tunnel: u64,
    /// Target rate in sessions per second; null for unlimited.
    pub rate_per_s: Option<f64>,
    /// Worker threads.
    pub workers: u64,
    /// Proxy LCP and authentication.
    pub proxy: bool,
    /// Tunnel authentication with a secret.
    pub tunnel_auth: bool,
    /// Hidden AVPs.
    pub hidden_avps: bool,
    /// Methods the subscribers agree to, in order of preference.
    pub auth: Vec<String>,
    /// Hold, seconds.
    pub hold_s: f64,
    /// Timeout, seconds.
    pub timeout_s: f64,
    /// Data packets per second per session (0: none).
    pub data_pps: f64,
    /// UDP payload bytes of a data packet.
    pub data_size: u64,
    /// The reflector; null when none.
    pub reflector: Option<String>,
    /// The IPv6 reflector; null when none.
    pub reflector6: Option<String>,
    /// `--duration` of `churn`, `flap` and `soak`, seconds; null for the
    /// others.
    pub duration_s: Option<f64>,
    /// `--churn-rate`, hang-ups per second; null unless `churn`.
    pub churn_rate_per_s: Option<f64>,
    /// `--flap-interval`, seconds; null unless `flap`.
    pub flap_interval_s: Option<f64>,
}

/// The `churn` scenario: hang-ups and new dials during `--duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnReport {
    /// How long the churn ran, seconds.
    pub window_s: f64,
    /// Sessions hung up (LCP Terminate, then CDN), each followed by a new
    /// dial of the same subscriber: the churn cycles.
    pub cycles: u64,
    /// `cycles ÷ window_s`.
    pub cycles_per_s: f64,
    /// Hung-up sessions whose call ended (CDN sent).
    pub teardowns: u64,
    /// Sessions dialled during the churn.
    pub dialled: u64,
    /// Of those, sessions that came up.
    pub setups: u64,
    /// Of those, sessions that failed.
    pub failed: u64,
    /// `failed` by reason.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Of those, sessions still setting up when the churn ended (closed
    /// by the teardown).
    pub unfinished: u64,
    /// Setup latency of the sessions dialled during the churn (a
    /// histogram of their own; `setup_latency_ms` is the initial setup's);
    /// null when none came up.
    pub setup_latency_ms: Option<Latency>,
}

/// The `flap` scenario: tunnels that vanished and came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlapReport {
    /// Times every tunnel vanished.
    pub flaps: u64,
    /// Tunnels forgotten without StopCCN, over all flaps.
    pub tunnels_vanished: u64,
    /// Sessions up when their tunnel vanished.
    pub sessions_vanished: u64,
    /// Tunnels opened again (SCCRQ from the same socket).
    pub tunnels_reopened: u64,
    /// Of those, tunnels that came up.
    pub tunnels_back: u64,
    /// Tunnels opened again that did not come up, by reason.
    pub tunnels_failed_by_reason: BTreeMap<String, u64>,
    /// Sessions dialled again on the reopened tunnels.
    pub redialled: u64,
    /// Of those, sessions that came up again.
    pub reestablished: u64,
    /// Sessions dialled again that failed, by reason.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Sessions to dial again that were not up (or not dialled) when the
    /// next flap or the end came.
    pub unfinished: u64,
    /// Setup latency of the re-dialled sessions (a histogram of their
    /// own); null when none came up.
    pub setup_latency_ms: Option<Latency>,
}

/// Data traffic through the sessions, to the reflector and back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataReport {
    /// Sessions that sent data (those up when the hold began).
    pub sessions: u64,
    /// How long sessions sent, seconds (the hold).
    pub window_s: f64,
    /// Probes sent (upstream, toward the reflector).
    pub sent: u64,
    /// Probes back (downstream), each counted once.
    pub received: u64,
    /// `sent − received` after the drain grace.
    pub lost: u64,
    /// `lost` in percent of `sent` (0 when none sent).
    pub loss_percent: f64,
    /// Probes back more than once.
    pub duplicates: u64,
    /// Probes back after a later probe of the same session.
    pub reordered: u64,
    /// Other data packets on the sessions.
    pub unmatched: u64,
    /// Probes not sent because their session was gone.
    pub unsendable: u64,
    /// Of `sent`, over IPv6.
    pub sent_ipv6: u64,
    /// Of `received`, over IPv6.
    pub received_ipv6: u64,
    /// Upstream probes per second (`sent ÷ window_s`).
    pub upstream_pps: f64,
    /// Downstream probes per second (`received ÷ window_s`).
    pub downstream_pps: f64,
    /// Upstream bits per second of IPv4 packets (headers included).
    pub upstream_bps: f64,
    /// Downstream bits per second, the same way.
    pub downstream_bps: f64,
    /// Round-trip time percentiles; null when nothing came back.
    pub rtt_ms: Option<Latency>,
}

/// Session counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    /// tunnels × sessions per tunnel.
    pub planned: u64,
    /// Dialled.
    pub attempted: u64,
    /// Came up.
    pub established: u64,
    /// Dialled and never came up.
    pub failed: u64,
    /// `failed` by reason.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Never dialled (their tunnel failed, or the run timed out first).
    pub not_attempted: u64,
    /// Came up, then went down before teardown, by reason.
    pub lost_by_reason: BTreeMap<String, u64>,
}

/// Tunnel counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tunnels {
    /// Tried (SCCRQ sent).
    pub attempted: u64,
    /// Came up (SCCCN acknowledged).
    pub established: u64,
    /// Never came up.
    pub failed: u64,
    /// `failed` by reason.
    pub failed_by_reason: BTreeMap<String, u64>,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Sessions whose latency lies in `(from_ms, to_ms]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyBucket {
    /// Lower bound, milliseconds (exclusive).
    pub from_ms: f64,
    /// Upper bound, milliseconds (inclusive).
    pub to_ms: f64,
    /// Sessions in the bucket.
    pub count: u64,
}

/// The end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeardownReport {
    /// `cdn` or `vanish`.
    pub style: String,
    /// Sessions that ended during teardown (CDN exchanged).
    pub sessions_closed: u64,
    /// Tunnels closed with StopCCN.
    pub tunnels_closed: u64,
    /// Of those, acknowledged by the LNS before the teardown bound.
    pub tunnels_acked: u64,
    /// How long teardown took, seconds.
    pub duration_s: f64,
}

/// CPU time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// User time, seconds.
    pub user_s: f64,
    /// System time, seconds.
    pub system_s: f64,
    /// (user + system) / wall, in percent of one core.
    pub percent_of_one_core: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Percentiles of a histogram of microseconds, in milliseconds; `None`
/// when it is empty.
fn percentiles(h: &Histogram<u64>) -> Option<Latency> {
    (!h.is_empty()).then(|| Latency {
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p99_9: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
    })
}

/// Ten buckets a decade: fine enough to show the shape of a setup storm,
/// coarse enough that an hour's range is under a hundred buckets.
fn log_buckets(h: &Histogram<u64>) -> Vec<LatencyBucket> {
    let mut buckets = Vec::new();
    let mut from = 0;
    for step in h.iter_log(1, 10f64.powf(0.1)) {
        let to = step.value_iterated_to();
        buckets.push(LatencyBucket {
            from_ms: ms(from),
            to_ms: ms(to),
            count: step.count_since_last_iteration(),
        });
        from = to;
    }
    // Leading and trailing empty buckets say nothing.
    let first = buckets.iter().position(|b| b.count > 0);
    let last = buckets.iter().rposition(|b| b.count > 0);
    match (first, last) {
        (Some(first), Some(last)) => buckets.drain(first..=last).collect(),
        _ => Vec::new(),
    }
}

impl DataReport {
    /// The data part of the report for `sessions` senders.
    pub fn build(d: &DataTally, sessions: u64) -> DataReport {
        let window = match (d.start, d.end) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        };
        let per_s = |n: u64| {
            if window.is_zero() {
                0.0
            } else {
                n as f64 / window.as_secs_f64()
            }
        };
        let lost = d.sent.saturating_sub(d.received);
        DataReport {
            sessions,
            window_s: window.as_secs_f64(),
            sent: d.sent,
            received: d.received,
            lost,
            loss_percent: if d.sent == 0 {
                0.0
            } else {
                100.0 * lost as f64 / d.sent as f64
            },
            duplicates: d.duplicates,
            reordered: d.reordered,
            unmatched: d.unmatched,
            unsendable: d.unsendable,
            sent_ipv6: d.sent_v6,
            received_ipv6: d.received_v6,
            upstream_pps: per_s(d.sent),
            downstream_pps: per_s(d.received),
            upstream_bps: per_s(d.sent_bytes) * 8.0,
            downstream_bps: per_s(d.received_bytes) * 8.0,
            rtt_ms: percentiles(&d.rtt),
        }
    }
}

impl ChurnReport {
    /// The churn part of the report.
    pub fn build(c: &ChurnTally) -> ChurnReport {
        let window = match (c.start, c.end) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        };
        ChurnReport {
            window_s: window.as_secs_f64(),
            cycles: c.cycles,
            cycles_per_s: if window.is_zero() {
                0.0
            } else {
                c.cycles as f64 / window.as_secs_f64()
            },
            teardowns: c.teardowns,
            dialled: c.dialled,
            setups: c.setups,
            failed: c.failed.values().sum(),
            failed_by_reason: c.failed.clone(),
            unfinished: c.unfinished,
            setup_latency_ms: percentiles(&c.latency),
        }
    }
}

impl FlapReport {
    /// The flap part of the report.
    pub fn build(f: &FlapTally) -> FlapReport {
        FlapReport {
            flaps: f.flaps,
            tunnels_vanished: f.tunnels_vanished,
            sessions_vanished: f.sessions_vanished,
            tunnels_reopened: f.tunnels_reopened,
            tunnels_back: f.tunnels_back,
            tunnels_failed_by_reason: f.tunnels_failed.clone(),
            redialled: f.redialled,
            reestablished: f.reestablished,
            failed_by_reason: f.failed.clone(),
            unfinished: f.unfinished,
            setup_latency_ms: percentiles(&f.latency),
        }
    }
}

fn latency_line(f: &mut fmt::Formatter<'_>, label: &str, l: Option<&Latency>) -> fmt::Result {
    match l {
        Some(l) => writeln!(
            f,
            "{label}p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
            l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
        ),
        None => writeln!(f, "{label}(no session came up)"),
    }
}

/// A rate in bits per second with a unit.
fn bits(bps: f64) -> String {
    match bps {
        b if b >= 1e9 => format!("{:.2} Gbit/s", b / 1e9),
        b if b >= 1e6 => format!("{:.2} Mbit/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kbit/s", b / 1e3),
        b => format!("{b:.0} bit/s"),
    }
}

impl Report {
    /// The report of a run with `options` that ended with `tally` after
    /// `wall`, its teardown having taken `teardown`.
    pub fn build(
        options: &Options,
        workers: usize,
        tally: &Tally,
        wall: Duration,
        teardown: Duration,
    ) -> Report {
        let data_sessions = tally.data_sessions;
        let window = match (tally.first_dial, tally.last_up) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        };
        let setup_rate_per_s = if tally.established == 0 {
            0.0
        } else if window.is_zero() {
            // One session up within the clock's resolution.
            tally.established as f64 / 1e-6
        } else {
            tally.established as f64 / window.as_secs_f64()
        };
        let dial_rate_per_s = match (tally.first_dial, tally.last_dial) {
            (Some(first), Some(last)) if last > first && tally.attempted > 1 => {
                // n dials span n - 1 intervals.
                (tally.attempted - 1) as f64 / last.duration_since(first).as_secs_f64()
            }
            _ => 0.0,
        };
        let latency = percentiles(&tally.latency);
        let failed = tally.failed_total();
        let planned = options.total_sessions();
        let cpu = tally.cpu_user + tally.cpu_system;
        let tunnels_failed: u64 = tally.tunnels_failed.values().sum();
        Report {
            schema: SCHEMA.to_string(),
            lns: options.lns.to_string(),
            scenario: options.scenario_name().to_string(),
            settings: Settings {
                tunnels: u64::from(options.tunnels),
                sessions_per_tunnel: u64::from(options.sessions_per_tunnel),
                rate_per_s: match options.effective_rate() {
                    Rate::PerSecond(r) => Some(r),
                    Rate::Unlimited => None,
                },
                workers: workers as u64,
                proxy: options.proxy,
                tunnel_auth: options.secret.is_some(),
                hidden_avps: options.hidden,
                auth: options
                    .auth
                    .iter()
                    .map(|a| format!("{a:?}").to_lowercase())
                    .collect(),
                hold_s: options.hold_duration().as_secs_f64(),
                timeout_s: options.timeout_duration().as_secs_f64(),
                data_pps: options.data_pps,
                data_size: u64::from(options.data_size),
                reflector: options.reflector.map(|r| r.to_string()),
                reflector6: options.reflector6.map(|r| r.to_string()),
                duration_s: options.scenario_duration().map(|d| d.as_secs_f64()),
                churn_rate_per_s: options.churn_rate(),
                flap_interval_s: options.flap_interval().map(|d| d.as_secs_f64()),
            },
            sessions: Sessions {
                planned,
                attempted: tally.attempted,
                established: tally.established,
                failed,
                failed_by_reason: tally.failed.clone(),
                not_attempted: planned.saturating_sub(tally.attempted),
                lost_by_reason: tally.lost.clone(),
            },
            tunnels: Tunnels {
                attempted: tally.tunnels_attempted,
                established: tally.tunnels_established,
                failed: tunnels_failed,
                failed_by_reason: tally.tunnels_failed.clone(),
            },
            setup_rate_per_s,
            setup_window_s: window.as_secs_f64(),
            dial_rate_per_s,
            setup_latency_ms: latency,
            setup_latency_histogram: log_buckets(&tally.latency),
            timeline: Timeline::default(),
            retransmissions: tally.retransmissions,
            teardown: TeardownReport {
                style: match options.teardown {
                    Teardown::Cdn => "cdn",
                    Teardown::Vanish => "vanish",
                }
                .to_string(),
                sessions_closed: tally.sessions_closed,
                tunnels_closed: tally.tunnels_closed,
                tunnels_acked: tally.tunnels_acked,
                duration_s: teardown.as_secs_f64(),
            },
            data: options
                .data_enabled()
                .then(|| DataReport::build(&tally.data, data_sessions)),
            cpu: Cpu {
                user_s: tally.cpu_user.as_secs_f64(),
                system_s: tally.cpu_system.as_secs_f64(),
                percent_of_one_core: if wall.is_zero() {
                    0.0
                } else {
                    100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
                },
            },
            churn: options
                .churn_rate()
                .map(|_| ChurnReport::build(&tally.churn)),
            flap: options
                .flap_interval()
                .map(|_| FlapReport::build(&tally.flap)),
            wall_s: wall.as_secs_f64(),
            target: None,
            io: None,
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Write the JSON report to `path` (what `--json FILE` does).
    pub fn write_json(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_json() + "\n")
    }

    /// Print the report as `--json` asks: none, the text on stdout; `-`,
    /// only the JSON on stdout; a path, the text on stdout and the JSON
    /// into that file.
    pub fn emit(&self, json: Option<&str>) -> std::io::Result<()> {
        match json {
            Some("-") => println!("{}", self.to_json()),
            Some(path) => {
                print!("{self}");
                self.write_json(path.as_ref())?;
            }
            None => print!("{self}"),
        }
        Ok(())
    }
}

fn reasons(f: &mut fmt::Formatter<'_>, map: &BTreeMap<String, u64>) -> fmt::Result {
    for (reason, n) in map {
        writeln!(f, "    {reason:<28} {n}")?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.sessions;
        let t = &self.tunnels;
        let rate = self
            .settings
            .rate_per_s
            .map_or("unlimited".to_string(), |r| format!("{r}/s"));
        writeln!(
            f,
            "loadgen report: {} against {} ({} tunnels x {} sessions, rate {rate}, {} workers)",
            self.scenario,
            self.lns,
            t.attempted,
            self.settings.sessions_per_tunnel,
            self.settings.workers
        )?;
        writeln!(
            f,
            "  tunnels     {} up of {} tried, {} failed",
            t.established, t.attempted, t.failed
        )?;
        reasons(f, &t.failed_by_reason)?;
        writeln!(
            f,
            "  sessions    {} established of {} attempted ({} planned), {} failed, {} not attempted",
            s.established, s.attempted, s.planned, s.failed, s.not_attempted
        )?;
        reasons(f, &s.failed_by_reason)?;
        if !s.lost_by_reason.is_empty() {
            writeln!(f, "  lost after coming up:")?;
            reasons(f, &s.lost_by_reason)?;
        }
        writeln!(
            f,
            "  setup rate  {:.1} sessions/s over {:.3} s (dialled at {:.1}/s)",
            self.setup_rate_per_s, self.setup_window_s, self.dial_rate_per_s
        )?;
        match &self.setup_latency_ms {
            Some(l) => writeln!(
                f,
                "  setup ms    p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
                l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
            )?,
            None => writeln!(f, "  setup ms    (no session came up)")?,
        }
        writeln!(f, "  retransmissions {}", self.retransmissions)?;
        if let Some(data) = &self.data {
            writeln!(
                f,
                "  data        {} sessions x {}/s of {} B to {} for {:.3} s",
                data.sessions,
                self.settings.data_pps,
                self.settings.data_size,
                self.settings.reflector.as_deref().unwrap_or("-"),
                data.window_s
            )?;
            writeln!(
                f,
                "    up        {} sent, {:.1} packets/s, {}",
                data.sent,
                data.upstream_pps,
                bits(data.upstream_bps)
            )?;
            writeln!(
                f,
                "    down      {} received, {:.1} packets/s, {}",
                data.received,
                data.downstream_pps,
                bits(data.downstream_bps)
            )?;
            if self.settings.reflector6.is_some() {
                writeln!(
                    f,
                    "    ipv6      {} sent, {} received (to {})",
                    data.sent_ipv6,
                    data.received_ipv6,
                    self.settings.reflector6.as_deref().unwrap_or("-")
                )?;
            }
            writeln!(
                f,
                "    loss      {} ({:.3}%), {} duplicates, {} reordered, {} unmatched, {} unsendable",
                data.lost,
                data.loss_percent,
                data.duplicates,
                data.reordered,
                data.unmatched,
                data.unsendable
            )?;
            match &data.rtt_ms {
                Some(l) => writeln!(
                    f,
                    "    rtt ms    p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
                    l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
                )?,
                None => writeln!(f, "    rtt ms    (nothing came back)")?,
            }
        }
        if let Some(c) = &self.churn {
            writeln!(
                f,
                "  churn       {} cycles in {:.3} s ({:.1}/s): {} torn down; {} dialled, {} up, {} failed, {} unfinished",
                c.cycles, c.window_s, c.cycles_per_s, c.teardowns, c.dialled, c.setups, c.failed, c.unfinished
            )?;
            reasons(f, &c.failed_by_reason)?;
            latency_line(f, "    setup ms  ", c.setup_latency_ms.as_ref())?;
        }
        if let Some(p) = &self.flap {
            writeln!(
                f,
                "  flap        {} flaps: {} tunnels vanished ({} sessions up), {} reopened, {} back",
                p.flaps, p.tunnels_vanished, p.sessions_vanished, p.tunnels_reopened, p.tunnels_back
            )?;
            reasons(f, &p.tunnels_failed_by_reason)?;
            writeln!(
                f,
                "    sessions  {} dialled again, {} re-established, {} unfinished",
                p.redialled, p.reestablished, p.unfinished
            )?;
            reasons(f, &p.failed_by_reason)?;
            latency_line(f, "    setup ms  ", p.setup_latency_ms.as_ref())?;
        }
        let d = &self.teardown;
        writeln!(
            f,
            "  teardown    {}: {} sessions closed, {} tunnels closed ({} acked) in {:.3} s",
            d.style, d.sessions_closed, d.tunnels_closed, d.tunnels_acked, d.duration_s
        )?;
        writeln!(
            f,
            "  cpu         user {:.3} s, system {:.3} s ({:.1}% of one core); wall {:.3} s",
            self.cpu.user_s, self.cpu.system_s, self.cpu.percent_of_one_core, self.wall_s
        )?;
        if let Some(io) = &self.io {
            match &io.reason {
                Some(reason) => writeln!(f, "  io          {} ({reason})", io.path)?,
                None => writeln!(f, "  io          {} (asked {})", io.path, io.asked)?,
            }
        }
        if let Some(t) = &self.target {
            let per_session = t
                .rss_per_session_b
                .map_or(String::new(), |b| format!(" ({b:.0} B per session)"));
            writeln!(
                f,
                "  lns         {} pid {}: cpu user {:.3} s, system {:.3} s ({:.1}% of one core); \
                 rss {} KiB before, {} KiB max{per_session}, {} KiB after",
                t.name,
                t.pid,
                t.cpu_user_s,
                t.cpu_system_s,
                t.cpu_percent_of_one_core,
                t.rss_before_kib,
                t.rss_max_kib,
                t.rss_after_kib
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options::new("192.0.2.1:1701".parse().unwrap())
    }

    #[test]
    fn tallies_merge_counts_reasons_histograms_and_times() {
        let t0 = Instant::now();
        let mut a = Tally::default();
        let mut b = Tally::default();
        for i in 0..10u64 {
            let at = t0 + Duration::from_millis(i);
            a.dialled(at);
            a.up(at, at + Duration::from_millis(2));
        }
        b.dialled(t0 + Duration::from_millis(1));
        b.fail("auth_failed");
        b.dialled(t0 + Duration::from_millis(50));
        b.up(
            t0 + Duration::from_millis(50),
            t0 + Duration::from_millis(100),
        );
        b.tunnel_failed("setup_timeout");
        a.fail("auth_failed");
        a.merge(&b);
        assert_eq!(a.attempted, 12);
        assert_eq!(a.established, 11);
        assert_eq!(a.failed.get("auth_failed"), Some(&2));
        assert_eq!(a.failed_total(), 2);
        assert_eq!(a.latency.len(), 11);
        assert_eq!(a.first_dial, Some(t0));
        assert_eq!(a.last_up, Some(t0 + Duration::from_millis(100)));
        assert_eq!(a.tunnels_failed.get("setup_timeout"), Some(&1));
    }

    #[test]
    fn the_report_computes_rate_and_ordered_percentiles() {
        let t0 = Instant::now();
        let mut tally = Tally::default();
        // 1000 sessions dialled over a second, each up 1..=1000 ms later:
        // the last comes up at 1.999 s.
        for i in 0..1000u64 {
            let dial = t0 + Duration::from_millis(i);
            tally.dialled(dial);
            tally.up(dial, dial + Duration::from_millis(i + 1));
        }
        tally.tunnels_attempted = 2;
        tally.tunnels_established = 2;
        let mut o = options();
        o.tunnels = 2;
        o.sessions_per_tunnel = 500;
        let r = Report::build(&o, 2, &tally, Duration::from_secs(3), Duration::ZERO);
        assert_eq!(r.sessions.established, 1000);
        assert_eq!(r.sessions.not_attempted, 0);
        assert!((r.setup_window_s - 1.999).abs() < 1e-9);
        assert!((r.setup_rate_per_s - 1000.0 / 1.999).abs() < 1e-6);
        // 1000 dials 1 ms apart: 999 intervals in 0.999 s.
        assert!(
            (r.dial_rate_per_s - 1000.0).abs() < 1e-6,
            "{}",
            r.dial_rate_per_s
        );
        let l = r.setup_latency_ms.clone().unwrap();
        assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p99_9 && l.p99_9 <= l.max);
        // Three significant digits.
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
        // The distribution holds every session in contiguous buckets, the
        // median among them.
        let buckets = &r.setup_latency_histogram;
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 1000);
        assert!(buckets.windows(2).all(|w| w[0].to_ms == w[1].from_ms));
        assert!(buckets.len() < 40, "{}", buckets.len());
        assert!(buckets[0].from_ms < 1.0 && buckets[0].count > 0);
        assert!(buckets
            .iter()
            .any(|b| b.from_ms < l.p50 && l.p50 <= b.to_ms));
        let text = r.to_string();
        assert!(
            text.contains("1000 established of 1000 attempted"),
            "{text}"
        );
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn data_counts_become_rates_loss_and_ordered_rtt_percentiles() {
        let t0 = Instant::now();
        let mut a = DataTally::default();
        let mut b = DataTally::default();
        a.start = Some(t0 + Duration::from_millis(10));
        b.start = Some(t0);
        a.end = Some(t0 + Duration::from_secs(2));
        b.end = Some(t0 + Duration::from_millis(1500));
        // 1000 probes of 92 bytes each way, RTT 1..=1000 µs; 10 lost.
        for (i, tally) in [(0u64, &mut a), (1, &mut b)] {
            for k in 0..500u64 {
                tally.sent += 1;
                tally.sent_bytes += 92;
                if k % 100 != 0 {
                    tally.received += 1;
                    tally.received_bytes += 92;
                    tally.record_rtt(Duration::from_micros(2 * k + i + 1));
                }
            }
        }
        a.duplicates = 1;
        a.merge(&b);
        let mut o = options();
        o.data_pps = 250.0;
        o.hold = 2.0;
        o.reflector = Some("100.64.0.1:7".parse().unwrap());
        let mut tally = Tally {
            data: a,
            data_sessions: 2,
            ..Tally::default()
        };
        tally.tunnels_attempted = 1;
        let r = Report::build(&o, 1, &tally, Duration::from_secs(3), Duration::ZERO);
        let d = r.data.clone().unwrap();
        assert_eq!((d.sessions, d.sent, d.received, d.lost), (2, 1000, 990, 10));
        assert_eq!(d.duplicates, 1);
        assert!((d.loss_percent - 1.0).abs() < 1e-9);
        assert!(
            (d.window_s - 2.0).abs() < 1e-9,
            "earliest start to latest end"
        );
        assert!((d.upstream_pps - 500.0).abs() < 1e-9);
        assert!((d.downstream_pps - 495.0).abs() < 1e-9);
        assert!((d.upstream_bps - 500.0 * 92.0 * 8.0).abs() < 1e-6);
        let rtt = d.rtt_ms.unwrap();
        assert!(rtt.p50 <= rtt.p90 && rtt.p90 <= rtt.p99 && rtt.p99 <= rtt.p99_9);
        assert!(
            rtt.p99_9 <= rtt.max && (rtt.max - 1.0).abs() < 0.01,
            "{rtt:?}"
        );
        assert_eq!(r.settings.reflector.as_deref(), Some("100.64.0.1:7"));
        let text = r.to_string();
        assert!(
            text.contains("up        1000 sent, 500.0 packets/s, 368.0 kbit/s"),
            "{text}"
        );
        assert!(
            text.contains("loss      10 (1.000%), 1 duplicates"),
            "{text}"
        );
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
        // Without data asked for, `data` is null.
        let r = Report::build(
            &options(),
            1,
            &tally,
            Duration::from_secs(1),
            Duration::ZERO,
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert!(json["data"].is_null());
        assert_eq!(json["settings"]["data_pps"], 0.0);
    }

    #[test]
    fn churn_and_flap_tallies_merge_into_their_report_sections() {
        let t0 = Instant::now();
        let mut a = Tally::default();
        let mut b = Tally::default();
        for (tally, offset) in [(&mut a, 0u64), (&mut b, 1)] {
            let c = &mut tally.churn;
            c.start = Some(t0 + Duration::from_millis(offset));
            c.end = Some(t0 + Duration::from_secs(2));
            c.cycles = 100;
            c.dialled = 100;
            c.teardowns = 100;
            for i in 0..99u64 {
                c.up(t0, t0 + Duration::from_micros(1000 + i + offset));
            }
            c.unfinished = 1;
            let f = &mut tally.flap;
            f.flaps = 2;
            f.tunnels_vanished = 2;
            f.redialled = 10;
            f.up(t0, t0 + Duration::from_millis(3));
        }
        b.churn.failed.insert("cdn_admin".into(), 1);
        b.flap.tunnels_failed.insert("setup_timeout".into(), 1);
        a.merge(&b);
        assert_eq!(a.flap.flaps, 2, "every worker flaps at the same times");
        let c = ChurnReport::build(&a.churn);
        assert_eq!((c.cycles, c.dialled, c.setups), (200, 200, 198));
        assert_eq!((c.teardowns, c.failed, c.unfinished), (200, 1, 2));
        assert_eq!(c.failed_by_reason.get("cdn_admin"), Some(&1));
        assert!(
            (c.window_s - 2.0).abs() < 1e-9,
            "earliest start to latest end"
        );
        assert!((c.cycles_per_s - 100.0).abs() < 1e-9);
        let l = c.setup_latency_ms.clone().unwrap();
        assert!((l.p50 - 1.05).abs() < 0.01 && l.max < 1.2, "{l:?}");
        let f = FlapReport::build(&a.flap);
        assert_eq!(
            (f.tunnels_vanished, f.redialled, f.reestablished),
            (4, 20, 2)
        );
        assert_eq!(f.tunnels_failed_by_reason.get("setup_timeout"), Some(&1));

        let mut o = options();
        o.scenario = Some(crate::options::Scenario::Churn);
        o.duration = Some(2.0);
        o.churn_rate = Some(100.0);
        let r = Report::build(&o, 2, &a, Duration::from_secs(3), Duration::ZERO);
        assert_eq!(r.scenario, "churn");
        assert_eq!(r.churn.as_ref(), Some(&c));
        assert_eq!(r.flap, None, "flap only under --scenario flap");
        assert_eq!(r.settings.duration_s, Some(2.0));
        assert_eq!(r.settings.hold_s, 2.0);
        assert_eq!(r.settings.churn_rate_per_s, Some(100.0));
        let text = r.to_string();
        assert!(
            text.contains("churn       200 cycles in 2.000 s (100.0/s): 200 torn down"),
            "{text}"
        );
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn an_empty_run_reports_no_latency_and_zero_rate() {
        let r = Report::build(
            &options(),
            1,
            &Tally::default(),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        assert_eq!(r.setup_rate_per_s, 0.0);
        assert_eq!(r.dial_rate_per_s, 0.0);
        assert_eq!(r.setup_latency_ms, None);
        assert!(r.setup_latency_histogram.is_empty());
        assert_eq!(r.sessions.not_attempted, 100);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["schema"], SCHEMA);
        assert!(json["setup_latency_ms"].is_null());
        assert_eq!(json["settings"]["rate_per_s"], 1000.0);
    }
}
