//! Prometheus exposition of a [`Snapshot`](crate::io::stats::Snapshot).
//!
//! Nothing here counts: the shards and the control thread keep plain
//! integers, a scrape copies them (`io::stats::collect`), and
//! [`families`] turns the copy into metric families that the `prometheus`
//! crate's text encoder writes. Counters are therefore exact, whatever the
//! load, and the packet path pays nothing for being observed.
//!
//! Conventions: every name starts with `lns_` (the standard `process_*`
//! families excepted), counters end in `_total`, durations are in
//! seconds, sizes in bytes, and every label takes a bounded set of values
//! — a shard index, a reason, a message type, a pool name from the
//! configuration — never a tunnel or a session. The list, with meanings,
//! is `docs/metrics.md`.

pub mod http;
pub mod process;

use std::time::Duration;

use prometheus::proto::{Bucket, Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::dataplane::DropReason;
use crate::io::control::{PppFailure, SetupFailure};
use crate::io::shard::{BatchSizes, ShardReport};
use crate::io::stats::{packets_in, ControlSnapshot, PoolUse, Snapshot};
use crate::proto::aaa::{AuthStats, RejectReason};
use crate::proto::l2tp::{Dropped, TunnelState};
use process::ProcessStats;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A latency histogram kept as plain integers by the thread that observes
/// it (the control thread, for session setup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket: `counts[i]` those at most `BOUNDS[i]` and
    /// above the bound before; the last, those above every bound.
    pub counts: [u64; Histogram::BOUNDS.len() + 1],
    /// Sum of the observations in nanoseconds (integers keep it exact).
    pub sum_nanos: u64,
}

impl Histogram {
    /// Upper bounds in seconds: a LAN setup takes milliseconds, a storm
    /// seconds, and anything past a minute is a failure in all but name.
    pub const BOUNDS: [f64; 13] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];

    /// Count one observation.
    pub fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        let at = Self::BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(Self::BOUNDS.len());
        self.counts[at] += 1;
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Label name and value pairs of one sample.
type Labels<'a> = &'a [(&'a str, &'a str)];

fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(name.to_string());
    mf.set_help(help.to_string());
    mf.set_field_type(kind);
    mf
}

fn metric(labels: Labels<'_>) -> Metric {
    let pairs = labels
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_string());
            pair.set_value((*value).to_string());
            pair
        })
        .collect();
    let mut m = Metric::default();
    m.set_label(pairs);
    m
}

/// Families under construction, in the order they will be written (also
/// loadgen's, for its own endpoint).
#[derive(Debug, Default)]
pub struct Families {
    families: Vec<MetricFamily>,
}

impl Families {
    /// The families built, those without a sample left out (the text
    /// format has no empty family).
    pub fn finish(self) -> Vec<MetricFamily> {
        self.families
            .into_iter()
            .filter(|f| !f.get_metric().is_empty())
            .collect()
    }

    fn add(&mut self, name: &str, help: &str, kind: MetricType) -> &mut MetricFamily {
        self.families.push(family(name, help, kind));
        let last = self.families.len() - 1;
        &mut self.families[last]
    }

    /// A counter family whose samples are `(labels, value)`.
    pub fn counters<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, u64)>,
    ) {
        let mf = self.add(name, help, MetricType::COUNTER);
        for (labels, value) in samples {
            let mut m = metric(&labels);
            let mut c = Counter::default();
            c.set_value(value as f64);
            m.set_counter(c);
            mf.mut_metric().push(m);
        }
    }

    /// One unlabelled counter of a fractional quantity (seconds).
    pub fn counter_f64(&mut self, name: &str, help: &str, value: f64) {
        let mf = self.add(name, help, MetricType::COUNTER);
        let mut m = metric(&[]);
        let mut c = Counter::default();
        c.set_value(value);
        m.set_counter(c);
        mf.mut_metric().push(m);
    }

    /// One unlabelled counter.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.counters(name, help, [(vec![], value)]);
    }

    /// A gauge family.
    pub fn gauges<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        let mf = self.add(name, help, MetricType::GAUGE);
        for (labels, value) in samples {
            let mut m = metric(&labels);
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
            mf.mut_metric().push(m);
        }
    }

    /// One unlabelled gauge.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.gauges(name, help, [(vec![], value)]);
    }

    /// A histogram family; each sample is its labels, the bucket bounds,
    /// the per-bucket (not cumulative) counts with the overflow last, and
    /// the sum.
    pub fn histograms<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, Vec<f64>, Vec<u64>, f64)>,
    ) {
        let mf = self.add(name, help, MetricType::HISTOGRAM);
        for (labels, bounds, counts, sum) in samples {
            let mut m = metric(&labels);
            let mut h = prometheus::proto::Histogram::default();
            let mut cumulative = 0;
            let mut buckets = Vec::with_capacity(bounds.len());
            for (bound, count) in bounds.iter().zip(&counts) {
                cumulative += count;
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(cumulative);
                buckets.push(b);
            }
            h.set_bucket(buckets);
            h.set_sample_count(counts.iter().sum());
            h.set_sample_sum(sum);
            m.set_histogram(h);
            mf.mut_metric().push(m);
        }
    }
}

/// L2TP message type labels by Message Type value (RFC 2661 §3.2); the
/// reserved values 5 and 13 and anything unknown share `unknown`.
pub const MESSAGE_TYPES: [&str; 17] = [
    "unknown", "sccrq", "sccrp", "scccn", "stopccn", "unknown", "hello", "ocrq", "ocrp", "occn",
    "icrq", "icrp", "iccn", "unknown", "cdn", "wen", "sli",
];

/// Every metric family of `snapshot` (and of the process, when read).
pub fn families(snapshot: &Snapshot, process: Option<&ProcessStats>) -> Vec<MetricFamily> {
    let mut out = Families::default();
    out.gauges(
        "lns_build_info",
        "Build of the running daemon (always 1).",
        [(vec![("version", env!("CARGO_PKG_VERSION"))], 1.0)],
    );
    out.gauge(
        "lns_control_thread_responding",
        "1 when the control thread answered this scrape in time, else 0 (its families are then absent).",
        f64::from(u8::from(snapshot.control.is_some())),
    );
    out.gauge(
        "lns_shards",
        "Shard threads the daemon runs.",
        snapshot.shards as f64,
    );
    if let Some(control) = &snapshot.control {
        control_families(&mut out, control);
    }
    shard_families(&mut out, snapshot);
    if let Some(p) = process {
        process_families(&mut out, p);
    }
    out.finish()
}

/// The text exposition of `families`.
pub fn encode(families: &[MetricFamily]) -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(families, &mut buf) {
        // Only an empty or nameless family fails, and `families` makes
        // none; say so in the body rather than serve half a page.
        return format!("# encoding failed: {e}\n");
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn control_families(out: &mut Families, c: &ControlSnapshot) {
    let k = &c.counters;
    let s = &c.l2tp;
    out.gauges(
        "lns_tunnels",
        "L2TP tunnels by control-connection state.",
        TunnelState::NAMES
            .iter()
            .zip(c.tunnels)
            .map(|(state, n)| (vec![("state", *state)], n as f64)),
    );
    let online = c.online.saturating_sub(k.renegotiating);
    let negotiating = c.l2tp_sessions.saturating_sub(c.online);
    out.gauges(
        "lns_sessions",
        "Sessions by state: negotiating (L2TP call up or coming up, PPP not yet in the network phase), online, renegotiating (PPP restarted LCP; off the data plane).",
        [
            (vec![("state", "negotiating")], negotiating as f64),
            (vec![("state", "online")], online as f64),
            (vec![("state", "renegotiating")], k.renegotiating as f64),
        ],
    );
    let mut setups = vec![(vec![("result", "success")], k.sessions_up)];
    setups.extend(
        SetupFailure::NAMES
            .iter()
            .zip(k.setup_failures)
            .map(|(reason, n)| (vec![("result", "failure"), ("reason", *reason)], n)),
    );
    setups.push((
        vec![("result", "failure"), ("reason", "refused")],
        s.sessions_refused,
    ));
    out.counters(
        "lns_session_setups_total",
        "Session setups by result: success when PPP reached the network phase; failure with the reason (PPP's verdict, else how the L2TP call ended, or refused at ICRQ).",
        setups,
    );
    let h = &k.setup_latency;
    out.histograms(
        "lns_session_setup_duration_seconds",
        "Time from a call's ICRQ to its PPP reaching the network phase.",
        [(
            vec![],
            Histogram::BOUNDS.to_vec(),
            h.counts.to_vec(),
            h.sum_nanos as f64 / 1e9,
        )],
    );
    out.counter(
        "lns_sessions_down_total",
        "Sessions that went down after coming online.",
        k.sessions_down,
    );
    out.counter(
        "lns_session_renegotiations_total",
        "Online sessions whose PPP renegotiated LCP.",
        k.renegotiations,
    );
    out.counters(
        "lns_ppp_failures_total",
        "PPP endings that were failures, by protocol (lcp, auth, ncp, ipcp) and reason.",
        PppFailure::LABELS
            .iter()
            .zip(k.ppp_failures)
            .map(|((protocol, reason), n)| (vec![("protocol", *protocol), ("reason", *reason)], n)),
    );
    let mut results = Vec::new();
    let mut rejects = Vec::new();
    for (m, method) in AuthStats::METHODS.iter().enumerate() {
        results.push((
            vec![("method", *method), ("result", "accept")],
            c.auth.accepted[m],
        ));
        results.push((
            vec![("method", *method), ("result", "reject")],
            c.auth.rejected_total(m),
        ));
        for (r, reason) in RejectReason::NAMES.iter().enumerate() {
            rejects.push((
                vec![("method", *method), ("reason", *reason)],
                c.auth.rejected[m][r],
            ));
        }
    }
    out.counters(
        "lns_auth_results_total",
        "Authentication verdicts of the AAA backend by method (pap, chap, mschapv2) and result.",
        results,
    );
    out.counters(
        "lns_auth_rejects_total",
        "Authentication rejections by method and reason.",
        rejects,
    );

    let mut messages = Vec::new();
    for (direction, counts) in [("in", &s.messages_in), ("out", &s.messages_out)] {
        let mut by_type = [0u64; MESSAGE_TYPES.len()];
        for (i, n) in counts.iter().enumerate() {
            let label = MESSAGE_TYPES.get(i).copied().unwrap_or("unknown");
            let at = MESSAGE_TYPES.iter().position(|t| *t == label).unwrap_or(0);
            by_type[at] += n;
        }
        for (i, name) in MESSAGE_TYPES.iter().enumerate() {
            // `unknown` repeats in the table; emit it once, at index 0.
            if *name == "unknown" && i != 0 {
                continue;
            }
            messages.push((vec![("direction", direction), ("type", *name)], by_type[i]));
        }
    }
    out.counters(
        "lns_l2tp_control_messages_total",
        "L2TP control messages by direction (in: received and dispatched; out: queued for sending, retransmissions excluded) and Message Type.",
        messages,
    );
    out.counters(
        "lns_l2tp_zlb_acks_total",
        "L2TP ZLB acknowledgements by direction.",
        [
            (vec![("direction", "in")], s.zlb_in),
            (vec![("direction", "out")], c.channel.zlb_sent),
        ],
    );
    out.counter(
        "lns_l2tp_retransmissions_total",
        "L2TP control messages sent again (timer or repeated acks).",
        c.channel.retransmitted,
    );
    out.counter(
        "lns_l2tp_window_stalls_total",
        "Times a tunnel had new control messages waiting for a full send window.",
        c.channel.window_stalls,
    );
    out.counter(
        "lns_l2tp_tunnel_timeouts_total",
        "Tunnels torn down because the peer stopped acknowledging (HELLO or any other message ran out of retransmissions).",
        s.tunnel_timeouts,
    );
    out.counter(
        "lns_l2tp_setup_timeouts_total",
        "Tunnels and calls cleared because their setup took too long.",
        s.setup_timeouts,
    );
    let tunnel_events: [(&str, &str, u64); 4] = [
        (
            "lns_l2tp_tunnels_established_total",
            "Tunnels that completed setup.",
            s.tunnels_established,
        ),
        (
            "lns_l2tp_tunnels_closed_total",
            "Tunnels that went down, for any reason.",
            s.tunnels_closed,
        ),
        (
            "lns_l2tp_tunnels_refused_total",
            "SCCRQs refused with a StopCCN (limits, version, authentication, rate).",
            s.tunnels_refused,
        ),
        (
            "lns_l2tp_tunnel_auth_failures_total",
            "Tunnel authentication failures (Challenge Response wrong or missing).",
            s.auth_failures,
        ),
    ];
    for (name, help, value) in tunnel_events {
        out.counter(name, help, value);
    }
    let call_events: [(&str, &str, u64); 3] = [
        (
            "lns_l2tp_calls_established_total",
            "L2TP calls that completed setup (ICCN).",
            s.sessions_established,
        ),
        (
            "lns_l2tp_calls_closed_total",
            "L2TP calls that ended, for any reason.",
            s.sessions_closed,
        ),
        (
            "lns_l2tp_calls_refused_total",
            "Call requests refused with a CDN (limits, rate, tunnel not up).",
            s.sessions_refused,
        ),
    ];
    for (name, help, value) in call_events {
        out.counter(name, help, value);
    }
    out.counters(
        "lns_l2tp_rate_limited_total",
        "Tunnel and call requests refused by the admission rate limit.",
        [
            (vec![("kind", "tunnel")], s.tunnels_rate_limited),
            (vec![("kind", "call")], s.sessions_rate_limited),
        ],
    );
    out.counters(
        "lns_l2tp_dropped_total",
        "Control-thread datagrams no tunnel took, by reason.",
        Dropped::ALL
            .iter()
            .map(|d| (vec![("reason", d.name())], s.dropped(*d))),
    );
    out.counters(
        "lns_l2tp_control_errors_total",
        "Control messages that were malformed or out of place, by kind.",
        [
            ("malformed", s.malformed_messages),
            ("unknown_mandatory_avp", s.unknown_mandatory_avps),
            ("fsm_error", s.fsm_errors),
            ("duplicate", s.duplicates),
            ("out_of_order", s.out_of_order),
            ("out_of_window", s.out_of_window),
            ("unknown_session", s.unknown_session),
            ("ignored_while_stopping", s.ignored_while_stopping),
            ("emit_failure", s.emit_failures),
        ]
        .map(|(kind, n)| (vec![("kind", kind)], n)),
    );

    out.counters(
        "lns_control_datagrams_total",
        "Datagrams the control thread took from the shards, by queue.",
        [
            (vec![("queue", "urgent")], k.urgent_in),
            (vec![("queue", "setup")], k.setup_in),
        ],
    );
    out.counter(
        "lns_control_datagrams_sent_total",
        "Datagrams the control thread sent (directly or through a shard).",
        k.sent,
    );
    out.counter(
        "lns_control_send_errors_total",
        "Control-thread sends the kernel or a full shard queue refused.",
        k.send_errors,
    );
    out.gauges(
        "lns_control_queue_depth",
        "Datagrams waiting in the queues from the shards to the control thread.",
        [
            (vec![("queue", "urgent")], c.urgent_queue as f64),
            (vec![("queue", "setup")], c.setup_queue as f64),
        ],
    );
    out.gauges(
        "lns_control_queue_capacity",
        "Capacity of the queues from the shards to the control thread.",
        [
            (
                vec![("queue", "urgent")],
                crate::io::daemon::CONTROL_QUEUE as f64,
            ),
            (
                vec![("queue", "setup")],
                crate::io::daemon::SETUP_QUEUE as f64,
            ),
        ],
    );

    pool_families(
        out,
        &c.pools,
        [
            "lns_pool_addresses",
            "lns_pool_addresses_in_use",
            "lns_pool_exhausted_total",
        ],
        [
            "IPv4 addresses in each pool.",
            "IPv4 addresses of each pool held by sessions.",
            "Address requests that found the pool empty.",
        ],
    );
    pool_families(
        out,
        &c.prefix_pools,
        [
            "lns_prefix_pool_prefixes",
            "lns_prefix_pool_prefixes_in_use",
            "lns_prefix_pool_exhausted_total",
        ],
        [
            "IPv6 /64 prefixes in each prefix pool.",
            "IPv6 /64 prefixes of each prefix pool held by sessions.",
            "Prefix requests that found the prefix pool empty.",
        ],
    );
    let v6 = &c.ipv6;
    out.counters(
        "lns_ipv6_nd_events_total",
        "IPv6 Neighbor Discovery on sessions: Router Advertisements sent, Router Solicitations received, invalid, ignored (no IPv6 on the session) or deferred (rate limit), other ND ignored, /64 pools found empty.",
        [
            ("ra_sent", v6.ra_sent),
            ("rs_received", v6.rs_received),
            ("rs_invalid", v6.rs_invalid),
            ("rs_ignored", v6.rs_ignored),
            ("rs_deferred", v6.rs_deferred),
            ("nd_ignored", v6.nd_ignored),
            ("prefixes_exhausted", v6.prefixes_exhausted),
        ]
        .map(|(event, n)| (vec![("event", event)], n)),
    );
}

/// Size and use (gauges) and exhaustion (a counter) of each pool, under
/// the three `names` with their `helps`.
fn pool_families(out: &mut Families, pools: &[PoolUse], names: [&str; 3], helps: [&str; 3]) {
    let gauge = |f: fn(&PoolUse) -> u64| {
        pools
            .iter()
            .map(move |p| (vec![("pool", p.name.as_str())], f(p) as f64))
    };
    out.gauges(names[0], helps[0], gauge(|p| p.size));
    out.gauges(names[1], helps[1], gauge(|p| p.in_use));
    out.counters(
        names[2],
        helps[2],
        pools
            .iter()
            .map(|p| (vec![("pool", p.name.as_str())], p.exhausted)),
    );
}

/// A per-shard counter family: name, help, and the field it reads.
type ShardCounter = (&'static str, &'static str, fn(&ShardReport) -> u64);

fn shard_families(out: &mut Families, snapshot: &Snapshot) {
    let names: Vec<String> = (0..snapshot.shards).map(|i| i.to_string()).collect();
    let name = |i: u16| -> &str { names.get(usize::from(i)).map_or("?", String::as_str) };
    let reports = &snapshot.reports;
    out.gauges(
        "lns_shard_up",
        "1 when the shard answered this scrape in time, else 0.",
        names.iter().enumerate().map(|(i, n)| {
            let up = reports.iter().any(|r| usize::from(r.shard) == i);
            (vec![("shard", n.as_str())], f64::from(u8::from(up)))
        }),
    );
    out.gauges(
        "lns_shard_command_queue_depth",
        "Commands waiting in each shard's queue from the control thread and the other shards.",
        names
            .iter()
            .zip(&snapshot.command_queues)
            .map(|(n, depth)| (vec![("shard", n.as_str())], *depth as f64)),
    );
    out.gauge(
        "lns_shard_command_queue_capacity",
        "Capacity of each shard's command queue.",
        crate::io::daemon::COMMAND_QUEUE as f64,
    );
    out.gauges(
        "lns_shard_sessions",
        "Sessions in each shard's data-plane table (every shard holds every online session).",
        reports
            .iter()
            .map(|r| (vec![("shard", name(r.shard))], r.sessions as f64)),
    );
    let per_shard = |f: fn(&ShardReport) -> u64| {
        reports
            .iter()
            .map(move |r| (vec![("shard", name(r.shard))], f(r)))
            .collect::<Vec<_>>()
    };
    let mut packets = Vec::new();
    let mut bytes = Vec::new();
    for r in reports {
        let (p_in, b_in) = packets_in(r);
        let shard = name(r.shard);
        packets.push((vec![("shard", shard), ("direction", "in")], p_in));
        packets.push((
            vec![("shard", shard), ("direction", "out")],
            r.dataplane.packets_out,
        ));
        bytes.push((vec![("shard", shard), ("direction", "in")], b_in));
        bytes.push((
            vec![("shard", shard), ("direction", "out")],
            r.dataplane.bytes_out,
        ));
    }
    out.counters(
        "lns_dataplane_packets_total",
        "Subscriber IP packets carried, by shard and direction (in: from subscribers to TUN; out: from TUN to subscribers).",
        packets,
    );
    out.counters(
        "lns_dataplane_bytes_total",
        "IP bytes of those packets (the IP packet, without PPP, L2TP or UDP headers).",
        bytes,
    );
    out.counters(
        "lns_dataplane_drops_total",
        "Packets the data plane dropped, by shard and reason.",
        reports.iter().flat_map(|r| {
            DropReason::ALL.iter().map(move |reason| {
                (
                    vec![("shard", name(r.shard)), ("reason", reason.name())],
                    r.dataplane.dropped(*reason),
                )
            })
        }),
    );
    out.counters(
        "lns_dataplane_echo_replies_total",
        "LCP Echo-Requests answered on the shard.",
        per_shard(|r| r.dataplane.echo_replies),
    );
    out.counters(
        "lns_dataplane_to_control_total",
        "Datagrams the data plane passed to the control thread, by kind (ppp: PPP control frames; l2tp: L2TP control messages).",
        reports.iter().flat_map(|r| {
            [
                (
                    vec![("shard", name(r.shard)), ("kind", "ppp")],
                    r.dataplane.to_control,
                ),
                (
                    vec![("shard", name(r.shard)), ("kind", "l2tp")],
                    r.dataplane.control,
                ),
            ]
        }),
    );
    let simple: [ShardCounter; 6] = [
        (
            "lns_dataplane_forwarded_total",
            "Egress packets handed to the shard that numbers a sequenced session.",
            |r| r.dataplane.forwarded,
        ),
        (
            "lns_dataplane_mss_clamped_total",
            "TCP SYNs whose MSS option was lowered.",
            |r| r.dataplane.mss_clamped,
        ),
        (
            "lns_dataplane_address_conflicts_total",
            "Session installs that took an address another session still held.",
            |r| r.dataplane.address_conflicts,
        ),
        (
            "lns_shard_tun_write_errors_total",
            "TUN writes that failed (queue full).",
            |r| r.io.tun_write_errors,
        ),
        (
            "lns_shard_submits_total",
            "Submissions to the kernel: io_uring_enter calls of the ring loop, sendmmsg batches of the portable loop.",
            |r| r.io.submits,
        ),
        (
            "lns_shard_submitted_entries_total",
            "What those submissions carried: ring entries, or datagrams.",
            |r| r.io.submitted,
        ),
    ];
    for (family, help, f) in simple {
        out.counters(family, help, per_shard(f));
    }
    out.counters(
        "lns_shard_datagrams_total",
        "UDP datagrams received and sent on the shard's sockets.",
        reports.iter().flat_map(|r| {
            [
                (
                    vec![("shard", name(r.shard)), ("direction", "in")],
                    r.io.datagrams_in,
                ),
                (
                    vec![("shard", name(r.shard)), ("direction", "out")],
                    r.io.datagrams_out,
                ),
            ]
        }),
    );
    out.counters(
        "lns_shard_control_queue_full_total",
        "Datagrams for the control thread shed because its queue was full, by queue.",
        reports.iter().flat_map(|r| {
            let setup = r.io.setup_queue_full;
            let urgent = r.io.control_queue_full.saturating_sub(setup);
            [
                (vec![("shard", name(r.shard)), ("queue", "urgent")], urgent),
                (vec![("shard", name(r.shard)), ("queue", "setup")], setup),
            ]
        }),
    );
    let bounds: Vec<f64> = BatchSizes::BOUNDS.iter().map(|b| *b as f64).collect();
    out.histograms(
        "lns_shard_batch_size",
        "Batch sizes per shard: datagrams per receive (op=receive), entries per submission (op=submit).",
        reports.iter().flat_map(|r| {
            [("receive", r.io.recv_sizes), ("submit", r.io.submit_sizes)].map(|(op, sizes)| {
                (
                    vec![("shard", name(r.shard)), ("op", op)],
                    bounds.clone(),
                    sizes.buckets.to_vec(),
                    sizes.sum as f64,
                )
            })
        }),
    );
}

/// The standard `process_*` families.
pub fn process_families(out: &mut Families, p: &ProcessStats) {
    out.counter_f64(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds,
    );
    out.gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        p.resident_bytes as f64,
    );
    out.gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        p.virtual_bytes as f64,
    );
    out.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        p.start_time_seconds,
    );
    out.gauge("process_threads", "Number of OS threads.", p.threads as f64);
    if let Some(fds) = p.open_fds {
        out.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            fds as f64,
        );
    }
    if let Some(max) = p.max_fds {
        out.gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max as f64,
        );
    }
}

#[cfg(test)]
mod tests;
