use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;
use crate::io::shard::ShardReport;
use crate::io::stats::PoolUse;
use crate::proto::ppp::auth::AuthFailure;
use crate::proto::ppp::link::DownReason;

/// A snapshot with something in every part.
fn snapshot() -> Snapshot {
    let mut control = ControlSnapshot::default();
    control.tunnels[TunnelState::Established.index()] = 3;
    control.l2tp_sessions = 12;
    control.online = 10;
    control.counters.renegotiating = 1;
    control.counters.sessions_up = 10;
    control.counters.setup_failures[SetupFailure::Ppp(DownReason::NoAddress).index()] = 2;
    control.counters.ppp_failures
        [PppFailure::index(DownReason::AuthFailed(AuthFailure::Rejected)).unwrap_or(0)] = 4;
    for ms in [3, 40, 40, 700] {
        control
            .counters
            .setup_latency
            .observe(Duration::from_millis(ms));
    }
    control.l2tp.messages_in[10] = 12; // ICRQ
    control.l2tp.messages_in[5] = 1; // reserved
    control.l2tp.messages_in[0] = 2; // unknown
    control.l2tp.messages_out[11] = 12; // ICRP
    control.auth.accepted[1] = 10;
    control.auth.rejected[1][RejectReason::BadCredential.index()] = 4;
    control.pools.push(PoolUse {
        name: "residential".into(),
        in_use: 10,
        size: 254,
        exhausted: 0,
        network: None,
    });
    control.urgent_queue = 5;
    let report = |shard: u16| {
        let mut r = ShardReport {
            shard,
            io: Default::default(),
            dataplane: Default::default(),
            sessions: 10,
        };
        r.dataplane.packets_in = 100 + u64::from(shard);
        r.dataplane.bytes_in = 9200;
        r.io.late_packets_in = 1;
        r.io.late_bytes_in = 92;
        r.dataplane.packets_out = 50;
        r.io.received(3);
        r.io.received(64);
        r.io.submitted(5);
        r
    };
    Snapshot {
        control: Some(control),
        shards: 2,
        reports: vec![report(0), report(1)],
        command_queues: vec![0, 7],
    }
}

/// `name{labels} value` lines of the exposition, labels as written.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key.to_string(), value.parse::<f64>().unwrap())
        })
        .collect()
}

fn text() -> String {
    encode(&families(&snapshot(), None))
}

#[test]
fn every_family_has_help_and_type_and_follows_the_naming_rules() {
    let text = text();
    let mut typed = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "{name} twice"
            );
            let help = format!("# HELP {name} ");
            assert!(text.contains(&help), "no HELP for {name}");
        }
    }
    assert!(typed.len() > 40, "{typed:?}");
    for (name, kind) in &typed {
        assert!(
            name.starts_with("lns_") || name.starts_with("process_"),
            "{name}"
        );
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}"
        );
        // Counters and only counters end in _total.
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}"
        );
        if kind == "histogram" {
            assert!(
                name.ends_with("_seconds") || name.ends_with("_size"),
                "{name}"
            );
        }
    }
    for (name, kind) in [
        ("lns_tunnels", "gauge"),
        ("lns_sessions", "gauge"),
        ("lns_session_setups_total", "counter"),
        ("lns_session_setup_duration_seconds", "histogram"),
        ("lns_l2tp_control_messages_total", "counter"),
        ("lns_l2tp_retransmissions_total", "counter"),
        ("lns_l2tp_tunnel_timeouts_total", "counter"),
        ("lns_l2tp_window_stalls_total", "counter"),
        ("lns_ppp_failures_total", "counter"),
        ("lns_auth_results_total", "counter"),
        ("lns_dataplane_packets_total", "counter"),
        ("lns_dataplane_bytes_total", "counter"),
        ("lns_dataplane_drops_total", "counter"),
        ("lns_shard_batch_size", "histogram"),
        ("lns_shard_submits_total", "counter"),
        ("lns_control_queue_depth", "gauge"),
        ("lns_shard_command_queue_depth", "gauge"),
        ("lns_pool_addresses_in_use", "gauge"),
        ("lns_pool_addresses", "gauge"),
        ("lns_build_info", "gauge"),
    ] {
        assert_eq!(typed.get(name).map(String::as_str), Some(kind), "{name}");
    }
}

#[test]
fn labels_come_from_bounded_sets_and_never_name_a_session() {
    let text = text();
    let allowed: BTreeSet<&str> = [
        "state",
        "result",
        "reason",
        "protocol",
        "method",
        "direction",
        "type",
        "kind",
        "queue",
        "pool",
        "event",
        "shard",
        "op",
        "le",
        "version",
    ]
    .into();
    for key in samples(&text).keys() {
        let Some((_, labels)) = key.split_once('{') else {
            continue;
        };
        for pair in labels.trim_end_matches('}').split(',') {
            let (name, _) = pair.split_once('=').unwrap();
            assert!(allowed.contains(name), "label {name} in {key}");
        }
    }
}

#[test]
fn values_are_the_snapshots() {
    let s = samples(&text());
    let get = |key: &str| *s.get(key).unwrap_or_else(|| panic!("no {key}"));
    assert_eq!(get("lns_tunnels{state=\"established\"}"), 3.0);
    assert_eq!(get("lns_sessions{state=\"online\"}"), 9.0);
    assert_eq!(get("lns_sessions{state=\"renegotiating\"}"), 1.0);
    assert_eq!(get("lns_sessions{state=\"negotiating\"}"), 2.0);
    assert_eq!(get("lns_session_setups_total{result=\"success\"}"), 10.0);
    assert_eq!(
        get("lns_session_setups_total{result=\"failure\",reason=\"no_address\"}"),
        2.0
    );
    assert_eq!(
        get("lns_ppp_failures_total{protocol=\"auth\",reason=\"rejected\"}"),
        4.0
    );
    // The histogram: 3 ms, 40 ms twice, 700 ms; buckets cumulative.
    assert_eq!(
        get("lns_session_setup_duration_seconds_bucket{le=\"0.005\"}"),
        1.0
    );
    assert_eq!(
        get("lns_session_setup_duration_seconds_bucket{le=\"0.05\"}"),
        3.0
    );
    assert_eq!(
        get("lns_session_setup_duration_seconds_bucket{le=\"0.5\"}"),
        3.0
    );
    assert_eq!(
        get("lns_session_setup_duration_seconds_bucket{le=\"1\"}"),
        4.0
    );
    assert_eq!(
        get("lns_session_setup_duration_seconds_bucket{le=\"+Inf\"}"),
        4.0
    );
    assert_eq!(get("lns_session_setup_duration_seconds_count"), 4.0);
    assert!((get("lns_session_setup_duration_seconds_sum") - 0.783).abs() < 1e-9);
    assert_eq!(
        get("lns_l2tp_control_messages_total{direction=\"in\",type=\"icrq\"}"),
        12.0
    );
    assert_eq!(
        get("lns_l2tp_control_messages_total{direction=\"in\",type=\"unknown\"}"),
        3.0
    );
    assert_eq!(
        get("lns_l2tp_control_messages_total{direction=\"out\",type=\"icrp\"}"),
        12.0
    );
    assert_eq!(
        get("lns_auth_results_total{method=\"chap\",result=\"accept\"}"),
        10.0
    );
    assert_eq!(
        get("lns_auth_results_total{method=\"chap\",result=\"reject\"}"),
        4.0
    );
    assert_eq!(
        get("lns_auth_rejects_total{method=\"chap\",reason=\"bad_credential\"}"),
        4.0
    );
    assert_eq!(get("lns_pool_addresses_in_use{pool=\"residential\"}"), 10.0);
    assert_eq!(get("lns_pool_addresses{pool=\"residential\"}"), 254.0);
    assert_eq!(get("lns_control_queue_depth{queue=\"urgent\"}"), 5.0);
    assert_eq!(get("lns_shard_command_queue_depth{shard=\"1\"}"), 7.0);
    // Late packets (through the control thread) count as ingress.
    assert_eq!(
        get("lns_dataplane_packets_total{shard=\"1\",direction=\"in\"}"),
        102.0
    );
    assert_eq!(
        get("lns_dataplane_bytes_total{shard=\"0\",direction=\"in\"}"),
        9292.0
    );
    assert_eq!(
        get("lns_dataplane_packets_total{shard=\"0\",direction=\"out\"}"),
        50.0
    );
    assert_eq!(
        get("lns_shard_batch_size_bucket{shard=\"0\",op=\"receive\",le=\"4\"}"),
        1.0
    );
    assert_eq!(
        get("lns_shard_batch_size_bucket{shard=\"0\",op=\"receive\",le=\"64\"}"),
        2.0
    );
    assert_eq!(
        get("lns_shard_batch_size_sum{shard=\"0\",op=\"receive\"}"),
        67.0
    );
    assert_eq!(
        get("lns_shard_batch_size_count{shard=\"0\",op=\"submit\"}"),
        1.0
    );
    assert_eq!(get("lns_shard_submits_total{shard=\"1\"}"), 1.0);
    assert_eq!(get("lns_shard_up{shard=\"1\"}"), 1.0);
    assert_eq!(
        get(&format!(
            "lns_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert_eq!(get("lns_control_thread_responding"), 1.0);
}

#[test]
fn a_silent_thread_shows_as_such_and_the_rest_still_renders() {
    let mut s = snapshot();
    s.control = None;
    s.reports.truncate(1);
    let values = samples(&encode(&families(&s, None)));
    assert_eq!(values["lns_control_thread_responding"], 0.0);
    assert_eq!(values["lns_shard_up{shard=\"0\"}"], 1.0);
    assert_eq!(values["lns_shard_up{shard=\"1\"}"], 0.0);
    assert!(!values.keys().any(|k| k.starts_with("lns_sessions")));
    assert!(values.contains_key("lns_dataplane_packets_total{shard=\"0\",direction=\"in\"}"));
}

#[test]
fn process_figures_use_the_standard_names() {
    let p = ProcessStats {
        cpu_seconds: 1.5,
        resident_bytes: 4096,
        virtual_bytes: 8192,
        threads: 5,
        start_time_seconds: 1.7e9,
        open_fds: Some(12),
        max_fds: Some(1024),
    };
    let values = samples(&encode(&families(&snapshot(), Some(&p))));
    assert_eq!(values["process_cpu_seconds_total"], 1.5);
    assert_eq!(values["process_resident_memory_bytes"], 4096.0);
    assert_eq!(values["process_open_fds"], 12.0);
    assert_eq!(values["process_max_fds"], 1024.0);
    assert_eq!(values["process_threads"], 5.0);
}

#[test]
fn the_latency_histogram_puts_bounds_in_their_bucket() {
    let mut h = Histogram::default();
    h.observe(Duration::from_millis(5));
    h.observe(Duration::from_secs(61));
    h.observe(Duration::ZERO);
    assert_eq!(h.counts[0], 2, "the bound itself belongs to its bucket");
    assert_eq!(h.counts[Histogram::BOUNDS.len()], 1);
    assert_eq!(h.count(), 3);
    assert_eq!(h.sum_nanos, 61_005_000_000);
}

#[test]
fn docs_metrics_md_lists_every_family() {
    let doc = include_str!("../../docs/metrics.md");
    let p = ProcessStats {
        open_fds: Some(1),
        max_fds: Some(1),
        ..ProcessStats::default()
    };
    for family in families(&snapshot(), Some(&p)) {
        let name = format!("`{}`", family.name());
        assert!(doc.contains(&name), "{name} is not in docs/metrics.md");
    }
}
