//! One snapshot of the daemon's counters, taken on request: the control
//! thread copies its own (`Control::snapshot`), each shard copies its plain
//! counters (`ShardCommand::Report`), and the asking thread — management
//! or metrics — waits for them, so no hot path ever sums or shares
//! anything. `lns show stats` prints a snapshot as text ([`Snapshot::to_text`])
//! and `/metrics` turns the same snapshot into Prometheus families
//! (`crate::metrics::families`).

use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;

use super::control::ControlCounters;
use super::manage::{Command, Query, Reply, ShardHandles};
use super::shard::{ShardCommand, ShardReport};
use super::wake::Wake;
use crate::dataplane::DropReason;
use crate::proto::aaa::AuthStats;
use crate::proto::l2tp::reliable::ChannelStats;
use crate::proto::l2tp::{EndpointStats, TunnelState};
use crate::proto::node::Ipv6Stats;
use crate::wire::l2tp::MessageType;

/// How long the asker waits for the control thread.
pub const CONTROL_WAIT: Duration = Duration::from_secs(5);
/// How long it waits for the shards, all together.
pub const SHARD_WAIT: Duration = Duration::from_secs(1);

/// An address or prefix pool's use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// The pool's configured name.
    pub name: String,
    /// Addresses (IPv4) or /64s (IPv6) held by sessions.
    pub in_use: u64,
    /// How many it has.
    pub size: u64,
    /// Allocations that found it empty.
    pub exhausted: u64,
    /// IPv6 pools: the prefix the /64s are cut from.
    pub network: Option<(Ipv6Addr, u8)>,
}

/// The control thread's part of a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlSnapshot {
    /// Tunnels per state ([`TunnelState::index`]).
    pub tunnels: [u64; TunnelState::COUNT],
    /// L2TP calls in any state.
    pub l2tp_sessions: u64,
    /// Sessions whose PPP reached the network phase (renegotiating ones
    /// included).
    pub online: u64,
    /// The control thread's own counters.
    pub counters: ControlCounters,
    /// The L2TP endpoint's counters.
    pub l2tp: EndpointStats,
    /// Reliable delivery, closed tunnels included.
    pub channel: ChannelStats,
    /// AAA verdicts.
    pub auth: AuthStats,
    /// IPv4 address pools.
    pub pools: Vec<PoolUse>,
    /// IPv6 prefix pools.
    pub prefix_pools: Vec<PoolUse>,
    /// Router Advertisements and Solicitations.
    pub ipv6: Ipv6Stats,
    /// Datagrams waiting in the shards' urgent queue to the control thread.
    pub urgent_queue: u64,
    /// Datagrams waiting in the setup queue.
    pub setup_queue: u64,
}

/// Message types `show stats` lists received counts of.
const RECEIVED_LINES: [(&str, MessageType); 7] = [
    ("sccrq", MessageType::Sccrq),
    ("scccn", MessageType::Scccn),
    ("stopccn", MessageType::StopCcn),
    ("hello", MessageType::Hello),
    ("icrq", MessageType::Icrq),
    ("iccn", MessageType::Iccn),
    ("cdn", MessageType::Cdn),
];

impl ControlSnapshot {
    /// Tunnels in any state.
    pub fn tunnel_count(&self) -> u64 {
        self.tunnels.iter().sum()
    }

    /// `name value` lines, as `lns show stats` has always printed them.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.counters;
        let s = &self.l2tp;
        let lines = [
            ("tunnels", self.tunnel_count()),
            ("sessions_l2tp", self.l2tp_sessions),
            ("sessions_online", self.online),
            ("sessions_renegotiating", c.renegotiating),
            ("sessions_up_total", c.sessions_up),
            ("sessions_down_total", c.sessions_down),
            ("sessions_renegotiated_total", c.renegotiations),
            (
                "session_setup_failures_total",
                c.setup_failures.iter().sum(),
            ),
            ("control_datagrams_urgent", c.urgent_in),
            ("control_datagrams_setup", c.setup_in),
            ("control_datagrams_sent", c.sent),
            ("control_send_errors", c.send_errors),
            ("control_queue_urgent", self.urgent_queue),
            ("control_queue_setup", self.setup_queue),
            ("l2tp_retransmissions", self.channel.retransmitted),
            ("l2tp_window_stalls", self.channel.window_stalls),
            ("l2tp_tunnels_established_total", s.tunnels_established),
            ("l2tp_tunnels_closed_total", s.tunnels_closed),
            ("l2tp_tunnel_timeouts", s.tunnel_timeouts),
            ("l2tp_calls_established_total", s.sessions_established),
            ("l2tp_calls_closed_total", s.sessions_closed),
            ("l2tp_calls_refused_total", s.sessions_refused),
            ("l2tp_malformed_messages", s.malformed_messages),
            ("l2tp_fsm_errors", s.fsm_errors),
            ("l2tp_auth_failures", s.auth_failures),
        ];
        for (name, value) in lines {
            let _ = writeln!(out, "{name} {value}");
        }
        for (name, message_type) in RECEIVED_LINES {
            let _ = writeln!(out, "l2tp_received_{name} {}", s.received(message_type));
        }
        for (method, name) in AuthStats::METHODS.iter().enumerate() {
            let accepted = self.auth.accepted[method];
            let rejected = self.auth.rejected_total(method);
            let _ = writeln!(out, "auth_{name}_accepted {accepted}");
            let _ = writeln!(out, "auth_{name}_rejected {rejected}");
        }
        for pool in &self.pools {
            let _ = writeln!(
                out,
                "pool {} in_use {} size {}",
                pool.name, pool.in_use, pool.size
            );
        }
        let v6 = &self.ipv6;
        let lines = [
            ("ipv6_ra_sent", v6.ra_sent),
            ("ipv6_rs_received", v6.rs_received),
            ("ipv6_rs_invalid", v6.rs_invalid),
            ("ipv6_rs_ignored", v6.rs_ignored),
            ("ipv6_rs_deferred", v6.rs_deferred),
            ("ipv6_nd_ignored", v6.nd_ignored),
            ("ipv6_prefixes_exhausted", v6.prefixes_exhausted),
        ];
        for (name, value) in lines {
            let _ = writeln!(out, "{name} {value}");
        }
        for pool in &self.prefix_pools {
            let (network, len) = pool.network.unwrap_or((Ipv6Addr::UNSPECIFIED, 0));
            let _ = writeln!(
                out,
                "prefix_pool {} {network}/{len} in_use {} size {}",
                pool.name, pool.in_use, pool.size
            );
        }
        out
    }
}

/// Everything one request gathered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The control thread's part; none when it did not answer in time.
    pub control: Option<ControlSnapshot>,
    /// Shards the daemon runs.
    pub shards: usize,
    /// The reports of the shards that answered, by shard index.
    pub reports: Vec<ShardReport>,
    /// Each shard's command queue depth when the request was made.
    pub command_queues: Vec<u64>,
}

impl Snapshot {
    /// Every thread answered: the daemon is alive.
    pub fn healthy(&self) -> bool {
        self.control.is_some() && self.reports.len() == self.shards
    }

    /// `lns show stats`: the control thread's lines, then the shards'.
    pub fn to_text(&self) -> String {
        let mut out = match &self.control {
            Some(control) => control.to_text(),
            None => "error: no answer from the control thread\n".to_string(),
        };
        out.push_str(&shard_text(&self.reports, self.shards));
        out
    }
}

/// Ask the control thread (through the management query queue) and every
/// shard for their counters, and wait for them: at most [`CONTROL_WAIT`]
/// for the control thread and [`SHARD_WAIT`] for the shards; whoever is
/// late is left out. Called by the management and metrics threads only.
pub fn collect(
    queries: &crossbeam_channel::Sender<Query>,
    wake: &Wake,
    shards: &ShardHandles,
) -> Snapshot {
    let command_queues = shards.iter().map(|(tx, _)| tx.len() as u64).collect();
    let (tx, rx) = bounded(1);
    let asked = queries
        .try_send(Query {
            command: Command::ShowStats,
            reply: tx,
        })
        .is_ok();
    if asked {
        wake.wake();
    }
    let reports = gather(shards);
    let control = if asked {
        match rx.recv_timeout(CONTROL_WAIT) {
            Ok(Reply::Stats(snapshot)) => Some(*snapshot),
            Ok(Reply::Text(_)) | Err(_) => None,
        }
    } else {
        None
    };
    Snapshot {
        control,
        shards: shards.len(),
        reports,
        command_queues,
    }
}

/// Ask every shard for its counters; a shard that does not answer within
/// [`SHARD_WAIT`] (a full command queue, a stall) is left out.
fn gather(shards: &ShardHandles) -> Vec<ShardReport> {
    let (tx, rx) = bounded(shards.len().max(1));
    for (commands, wake) in shards {
        if commands.try_send(ShardCommand::Report(tx.clone())).is_ok() {
            wake.wake();
        }
    }
    drop(tx);
    let deadline = Instant::now() + SHARD_WAIT;
    let mut reports = Vec::with_capacity(shards.len());
    while reports.len() < shards.len() {
        match rx.recv_deadline(deadline) {
            Ok(report) => reports.push(report),
            Err(_) => break,
        }
    }
    reports.sort_by_key(|r| r.shard);
    reports
}

/// The data plane's IP packets and bytes from subscribers (decap's, plus
/// those that overtook their session's install through the control
/// thread).
pub fn packets_in(r: &ShardReport) -> (u64, u64) {
    (
        r.dataplane.packets_in + r.io.late_packets_in,
        r.dataplane.bytes_in + r.io.late_bytes_in,
    )
}

/// The shards' counters as `name value` lines: totals over the shards
/// that answered, then a few per shard (`shard<N>_...`).
pub fn shard_text(reports: &[ShardReport], shards: usize) -> String {
    let mut out = String::new();
    let sum = |f: &dyn Fn(&ShardReport) -> u64| reports.iter().map(f).sum::<u64>();
    let _ = writeln!(out, "shards {shards}");
    let _ = writeln!(out, "shards_reporting {}", reports.len());
    let totals: [(&str, u64); 17] = [
        ("dataplane_packets_in", sum(&|r| packets_in(r).0)),
        ("dataplane_bytes_in", sum(&|r| packets_in(r).1)),
        ("dataplane_packets_out", sum(&|r| r.dataplane.packets_out)),
        ("dataplane_bytes_out", sum(&|r| r.dataplane.bytes_out)),
        ("dataplane_echo_replies", sum(&|r| r.dataplane.echo_replies)),
        ("dataplane_ppp_to_control", sum(&|r| r.dataplane.to_control)),
        ("dataplane_l2tp_to_control", sum(&|r| r.dataplane.control)),
        ("dataplane_forwarded", sum(&|r| r.dataplane.forwarded)),
        ("dataplane_mss_clamped", sum(&|r| r.dataplane.mss_clamped)),
        ("dataplane_dropped", sum(&|r| r.dataplane.dropped_total())),
        ("shard_datagrams_in", sum(&|r| r.io.datagrams_in)),
        ("shard_datagrams_out", sum(&|r| r.io.datagrams_out)),
        ("shard_submits", sum(&|r| r.io.submits)),
        ("shard_submitted", sum(&|r| r.io.submitted)),
        (
            "shard_control_queue_full",
            sum(&|r| r.io.control_queue_full),
        ),
        ("shard_setup_queue_full", sum(&|r| r.io.setup_queue_full)),
        ("shard_tun_write_errors", sum(&|r| r.io.tun_write_errors)),
    ];
    for (name, value) in totals {
        let _ = writeln!(out, "{name} {value}");
    }
    for reason in DropReason::ALL {
        let n = sum(&|r| r.dataplane.dropped(reason));
        let _ = writeln!(out, "dataplane_dropped_{} {n}", reason.name());
    }
    for r in reports {
        let i = r.shard;
        let _ = writeln!(out, "shard{i}_sessions {}", r.sessions);
        let _ = writeln!(out, "shard{i}_packets_in {}", packets_in(r).0);
        let _ = writeln!(out, "shard{i}_packets_out {}", r.dataplane.packets_out);
        let _ = writeln!(out, "shard{i}_dropped {}", r.dataplane.dropped_total());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(shard: u16, packets_in: u64, dropped_no_route: u64) -> ShardReport {
        use crate::dataplane::Counters;
        let mut dataplane = Counters {
            packets_in,
            bytes_in: packets_in * 100,
            ..Counters::default()
        };
        let at = DropReason::ALL
            .iter()
            .position(|r| *r == DropReason::NoRoute);
        dataplane.drops[at.unwrap_or(0)] = dropped_no_route;
        ShardReport {
            shard,
            io: Default::default(),
            dataplane,
            sessions: 3,
        }
    }

    #[test]
    fn shard_reports_are_summed_and_listed() {
        let mut late = report(1, 7, 2);
        late.io.late_packets_in = 1;
        late.io.late_bytes_in = 50;
        let text = shard_text(&[report(0, 5, 1), late], 3);
        for line in [
            "shards 3",
            "shards_reporting 2",
            "dataplane_packets_in 13",
            "dataplane_bytes_in 1250",
            "dataplane_dropped 3",
            "dataplane_dropped_no_route 3",
            "dataplane_dropped_spoofed_source 0",
            "shard1_packets_in 8",
            "shard0_sessions 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn the_control_lines_keep_their_names() {
        let mut control = ControlSnapshot::default();
        control.tunnels[TunnelState::Established.index()] = 2;
        control.tunnels[TunnelState::Closed.index()] = 1;
        control.online = 5;
        control.pools.push(PoolUse {
            name: "p".into(),
            in_use: 5,
            size: 254,
            ..PoolUse::default()
        });
        let snapshot = Snapshot {
            control: Some(control),
            shards: 1,
            reports: vec![report(0, 1, 0)],
            command_queues: vec![0],
        };
        assert!(snapshot.healthy());
        let text = snapshot.to_text();
        for line in [
            "tunnels 3",
            "sessions_online 5",
            "l2tp_received_icrq 0",
            "pool p in_use 5 size 254",
            "auth_chap_accepted 0",
            "shards 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        let silent = Snapshot {
            control: None,
            ..snapshot
        };
        assert!(!silent.healthy());
        assert!(silent.to_text().starts_with("error: no answer"));
    }
}
