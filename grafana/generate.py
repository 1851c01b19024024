#!/usr/bin/env python3
"""Writes the Grafana dashboards in grafana/dashboards/ from the panel lists
below, so the four files share one layout and one set of variables.

    python3 grafana/generate.py [OUTPUT_DIR]

Edit the lists here, run it, commit both (tests/deploy_files.rs fails when
the committed JSON differs from what this script writes). Every expression is queried
against a real Prometheus by loadgen/tests/prometheus_server.rs; metric
names are those of docs/metrics.md.
"""

import json
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent / "dashboards"

# Label selectors every query carries: the instance and, for per-shard
# families, the shard chosen in the dashboard's variables.
I = 'instance=~"$instance"'
S = 'instance=~"$instance", shard=~"$shard"'
RI = "$__rate_interval"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def variables(with_shard):
    """The template variables: datasource, instance and (per shard) shard."""
    out = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        },
        {
            "name": "instance",
            "label": "LNS",
            "type": "query",
            "datasource": DATASOURCE,
            "query": {
                "query": "label_values(lns_build_info, instance)",
                "refId": "instance",
            },
            "definition": "label_values(lns_build_info, instance)",
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {},
            "sort": 1,
        },
    ]
    if with_shard:
        out.append(
            {
                "name": "shard",
                "label": "Shard",
                "type": "query",
                "datasource": DATASOURCE,
                "query": {
                    "query": 'label_values(lns_shard_up{instance=~"$instance"}, shard)',
                    "refId": "shard",
                },
                "definition": 'label_values(lns_shard_up{instance=~"$instance"}, shard)',
                "refresh": 2,
                "includeAll": True,
                "multi": True,
                "allValue": ".*",
                "current": {},
                "sort": 3,
            }
        )
    return out


def target(expr, legend="", fmt=None, ref="A"):
    t = {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
    }
    if fmt:
        t["format"] = fmt
    return t


def panel(kind, title, targets, unit="short", w=12, h=8, desc="", **extra):
    refs = "ABCDEFGH"
    p = {
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DATASOURCE,
        "targets": [
            target(*t, ref=refs[i]) if isinstance(t, tuple) else target(t, ref=refs[i])
            for i, t in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "gridPos": {"w": w, "h": h},
    }
    if kind == "timeseries":
        p["options"] = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value", "graphMode": "area"}
    p.update(extra)
    return p


def ts(title, targets, unit="short", **kw):
    return panel("timeseries", title, targets, unit, **kw)


def stat(title, expr, unit="short", **kw):
    return panel("stat", title, [expr], unit, w=4, h=4, **kw)


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def layout(panels):
    """Place panels left to right, wrapping at Grafana's 24 columns."""
    x = y = line = 0
    for pid, p in enumerate(panels, start=1):
        p["id"] = pid
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > 24:
            x, y, line = 0, y + line, 0
        p["gridPos"].update({"x": x, "y": y})
        x += w
        line = max(line, h)
        if p["type"] == "row":
            x, y, line = 0, y + h, 0
    return panels


def dashboard(uid, title, desc, panels, with_shard):
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["lns"],
        "timezone": "",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": variables(with_shard)},
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["lns"], "asDropdown": True, "title": "lns", "includeVars": True}
        ],
        "panels": layout(panels),
    }


def quantiles(family, selector, by="le"):
    return [
        (f"histogram_quantile({q}, sum by ({by}) (rate({family}{{{selector}}}[{RI}])))", f"p{int(q * 100)}")
        for q in (0.5, 0.9, 0.99)
    ]


overview = dashboard(
    "lns-overview",
    "lns / Overview",
    "Is the LNS up, how many subscribers are online, are they getting on, and is traffic flowing.",
    [
        row("Health"),
        stat("Endpoints up", f'sum(up{{job="lns", {I}}})', desc="Scrape targets of job lns answering."),
        stat("Control thread", f"min(lns_control_thread_responding{{{I}}})", desc="1: answering in time."),
        stat("Shards up", f"sum(lns_shard_up{{{I}}})", desc="Shards that answered the last scrape."),
        stat("Sessions online", f'sum(lns_sessions{{{I}, state="online"}})'),
        stat("Tunnels established", f'sum(lns_tunnels{{{I}, state="established"}})'),
        stat(
            "Setup failure ratio",
            f'sum(rate(lns_session_setups_total{{{I}, result="failure"}}[{RI}]))'
            f" / clamp_min(sum(rate(lns_session_setups_total{{{I}}}[{RI}])), 1e-9)",
            "percentunit",
            desc="Failed over all session setups (0 when there were none).",
        ),
        row("Sessions"),
        ts("Sessions by state", [(f"sum by (state) (lns_sessions{{{I}}})", "{{state}}")]),
        ts("Tunnels by state", [(f"sum by (state) (lns_tunnels{{{I}}})", "{{state}}")]),
        ts(
            "Session setups by result",
            [(f"sum by (result) (rate(lns_session_setups_total{{{I}}}[{RI}]))", "{{result}}")],
            "ops",
        ),
        ts(
            "Setup latency (ICRQ to network phase)",
            quantiles("lns_session_setup_duration_seconds_bucket", I),
            "s",
        ),
        row("Traffic"),
        ts(
            "Data plane throughput",
            [(f"8 * sum by (direction) (rate(lns_dataplane_bytes_total{{{I}}}[{RI}]))", "{{direction}}")],
            "bps",
            desc="Subscriber IP bytes (without PPP/L2TP/UDP/outer IP). in: from subscribers.",
        ),
        ts(
            "Data plane drops by reason",
            [(f"sum by (reason) (rate(lns_dataplane_drops_total{{{I}}}[{RI}]))", "{{reason}}")],
            "pps",
        ),
        row("Process"),
        ts(
            "CPU",
            [(f'rate(process_cpu_seconds_total{{job="lns", {I}}}[{RI}])', "{{instance}}")],
            "percentunit",
            desc="Cores used (1 = one core busy).",
        ),
        ts(
            "Memory",
            [(f'process_resident_memory_bytes{{job="lns", {I}}}', "RSS {{instance}}")],
            "bytes",
        ),
        panel(
            "table",
            "Build",
            [(f"lns_build_info{{{I}}}", "{{instance}} {{version}}", "table")],
            w=24,
            h=4,
            desc="Version of each running daemon.",
        ),
    ],
    with_shard=False,
)

control = dashboard(
    "lns-control-plane",
    "lns / Control plane",
    "L2TP control connections and calls, PPP negotiation, and the control thread's queues.",
    [
        row("L2TP messages"),
        ts(
            "Control messages received",
            [(f'sum by (type) (rate(lns_l2tp_control_messages_total{{{I}, direction="in"}}[{RI}]))', "{{type}}")],
            "ops",
        ),
        ts(
            "Control messages sent",
            [(f'sum by (type) (rate(lns_l2tp_control_messages_total{{{I}, direction="out"}}[{RI}]))', "{{type}}")],
            "ops",
        ),
        ts(
            "Reliable delivery",
            [
                (f"sum(rate(lns_l2tp_retransmissions_total{{{I}}}[{RI}]))", "retransmissions"),
                (f"sum(rate(lns_l2tp_window_stalls_total{{{I}}}[{RI}]))", "window stalls"),
                (f"sum by (direction) (rate(lns_l2tp_zlb_acks_total{{{I}}}[{RI}]))", "ZLB {{direction}}"),
            ],
            "ops",
        ),
        ts(
            "Timeouts",
            [
                (f"sum(increase(lns_l2tp_tunnel_timeouts_total{{{I}}}[{RI}]))", "tunnels (HELLO/retransmission)"),
                (f"sum(increase(lns_l2tp_setup_timeouts_total{{{I}}}[{RI}]))", "setups"),
            ],
        ),
        row("Tunnels and calls"),
        ts(
            "Tunnels",
            [
                (f"sum(rate(lns_l2tp_tunnels_established_total{{{I}}}[{RI}]))", "established"),
                (f"sum(rate(lns_l2tp_tunnels_closed_total{{{I}}}[{RI}]))", "closed"),
                (f"sum(rate(lns_l2tp_tunnels_refused_total{{{I}}}[{RI}]))", "refused"),
                (f"sum(rate(lns_l2tp_tunnel_auth_failures_total{{{I}}}[{RI}]))", "auth failures"),
            ],
            "ops",
        ),
        ts(
            "Calls",
            [
                (f"sum(rate(lns_l2tp_calls_established_total{{{I}}}[{RI}]))", "established"),
                (f"sum(rate(lns_l2tp_calls_closed_total{{{I}}}[{RI}]))", "closed"),
                (f"sum(rate(lns_l2tp_calls_refused_total{{{I}}}[{RI}]))", "refused"),
                (f"sum by (kind) (rate(lns_l2tp_rate_limited_total{{{I}}}[{RI}]))", "rate limited {{kind}}"),
            ],
            "ops",
        ),
        ts(
            "Datagrams no tunnel took",
            [(f"sum by (reason) (rate(lns_l2tp_dropped_total{{{I}}}[{RI}]))", "{{reason}}")],
            "ops",
        ),
        ts(
            "Control message errors",
            [(f"sum by (kind) (rate(lns_l2tp_control_errors_total{{{I}}}[{RI}]))", "{{kind}}")],
            "ops",
        ),
        row("Session setup"),
        ts(
            "Setup failures by reason",
            [(f'sum by (reason) (rate(lns_session_setups_total{{{I}, result="failure"}}[{RI}]))', "{{reason}}")],
            "ops",
        ),
        ts(
            "PPP failures",
            [(f"sum by (protocol, reason) (rate(lns_ppp_failures_total{{{I}}}[{RI}]))", "{{protocol}} {{reason}}")],
            "ops",
        ),
        ts(
            "Setup latency percentiles",
            quantiles("lns_session_setup_duration_seconds_bucket", I),
            "s",
        ),
        panel(
            "heatmap",
            "Setup latency distribution",
            [(f"sum by (le) (increase(lns_session_setup_duration_seconds_bucket{{{I}}}[$__interval]))", "{{le}}", "heatmap")],
            "s",
            options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1},
        ),
        ts(
            "Sessions going down and renegotiating",
            [
                (f"sum(rate(lns_sessions_down_total{{{I}}}[{RI}]))", "down"),
                (f"sum(rate(lns_session_renegotiations_total{{{I}}}[{RI}]))", "renegotiations"),
            ],
            "ops",
        ),
        row("Control thread"),
        ts(
            "Queues to the control thread: depth vs capacity",
            [
                (f"sum by (queue) (lns_control_queue_depth{{{I}}})", "{{queue}} depth"),
                (f"sum by (queue) (lns_control_queue_capacity{{{I}}})", "{{queue}} capacity"),
            ],
            desc="A full queue sheds (the LAC retransmits): see queue-full sheds.",
        ),
        ts(
            "Queue fill",
            [(f"max by (queue) (lns_control_queue_depth{{{I}}} / lns_control_queue_capacity{{{I}}})", "{{queue}}")],
            "percentunit",
        ),
        ts(
            "Control thread datagrams",
            [
                (f"sum by (queue) (rate(lns_control_datagrams_total{{{I}}}[{RI}]))", "in {{queue}}"),
                (f"sum(rate(lns_control_datagrams_sent_total{{{I}}}[{RI}]))", "sent"),
                (f"sum(rate(lns_control_send_errors_total{{{I}}}[{RI}]))", "send errors"),
            ],
            "ops",
        ),
        ts(
            "Queue-full sheds",
            [(f"sum by (queue) (rate(lns_shard_control_queue_full_total{{{I}}}[{RI}]))", "{{queue}}")],
            "ops",
            desc="Datagrams shards dropped because the queue to the control thread was full.",
        ),
    ],
    with_shard=False,
)

dataplane = dashboard(
    "lns-data-plane",
    "lns / Data plane",
    "Per-shard packets, bytes, drops, io_uring batching and shard queues.",
    [
        row("Throughput"),
        ts(
            "Packets per shard",
            [(f"sum by (shard, direction) (rate(lns_dataplane_packets_total{{{S}}}[{RI}]))", "shard {{shard}} {{direction}}")],
            "pps",
        ),
        ts(
            "Throughput per shard",
            [(f"8 * sum by (shard, direction) (rate(lns_dataplane_bytes_total{{{S}}}[{RI}]))", "shard {{shard}} {{direction}}")],
            "bps",
        ),
        ts(
            "UDP datagrams per shard",
            [(f"sum by (shard, direction) (rate(lns_shard_datagrams_total{{{S}}}[{RI}]))", "shard {{shard}} {{direction}}")],
            "pps",
        ),
        ts(
            "Drops per shard and reason",
            [(f"sum by (shard, reason) (rate(lns_dataplane_drops_total{{{S}}}[{RI}]))", "shard {{shard}} {{reason}}")],
            "pps",
        ),
        row("Shard work"),
        ts(
            "Passed to the control thread",
            [(f"sum by (shard, kind) (rate(lns_dataplane_to_control_total{{{S}}}[{RI}]))", "shard {{shard}} {{kind}}")],
            "pps",
        ),
        ts(
            "Shard events",
            [
                (f"sum by (shard) (rate(lns_dataplane_echo_replies_total{{{S}}}[{RI}]))", "echo replies {{shard}}"),
                (f"sum by (shard) (rate(lns_dataplane_forwarded_total{{{S}}}[{RI}]))", "forwarded {{shard}}"),
                (f"sum by (shard) (rate(lns_dataplane_mss_clamped_total{{{S}}}[{RI}]))", "MSS clamped {{shard}}"),
                (f"sum by (shard) (rate(lns_dataplane_address_conflicts_total{{{S}}}[{RI}]))", "address conflicts {{shard}}"),
                (f"sum by (shard) (rate(lns_shard_tun_write_errors_total{{{S}}}[{RI}]))", "TUN write errors {{shard}}"),
            ],
            "ops",
        ),
        ts(
            "Sessions in each shard's table",
            [(f"sum by (shard) (lns_shard_sessions{{{S}}})", "shard {{shard}}")],
        ),
        ts("Shard answering", [(f"min by (shard) (lns_shard_up{{{S}}})", "shard {{shard}}")]),
        row("io_uring batching"),
        ts(
            "Mean batch size",
            [
                (
                    f"sum by (shard, op) (rate(lns_shard_batch_size_sum{{{S}}}[{RI}]))"
                    f" / sum by (shard, op) (rate(lns_shard_batch_size_count{{{S}}}[{RI}]))",
                    "shard {{shard}} {{op}}",
                )
            ],
            desc="Datagrams per receive batch; entries per submission. Larger is cheaper per packet.",
        ),
        ts(
            "Batch size p99",
            [(f"histogram_quantile(0.99, sum by (op, le) (rate(lns_shard_batch_size_bucket{{{S}}}[{RI}])))", "{{op}}")],
        ),
        ts(
            "Submissions to the kernel",
            [
                (f"sum by (shard) (rate(lns_shard_submits_total{{{S}}}[{RI}]))", "submits {{shard}}"),
                (f"sum by (shard) (rate(lns_shard_submitted_entries_total{{{S}}}[{RI}]))", "entries {{shard}}"),
            ],
            "ops",
        ),
        row("Shard queues"),
        ts(
            "Command queue depth vs capacity",
            [
                (f"max by (shard) (lns_shard_command_queue_depth{{{S}}})", "shard {{shard}}"),
                (f"max(lns_shard_command_queue_capacity{{{I}}})", "capacity"),
            ],
            desc="Installs, removals and forwarded packets waiting for each shard.",
        ),
        ts(
            "Queue-full sheds per shard",
            [(f"sum by (shard, queue) (rate(lns_shard_control_queue_full_total{{{S}}}[{RI}]))", "shard {{shard}} {{queue}}")],
            "pps",
        ),
    ],
    with_shard=True,
)

aaa = dashboard(
    "lns-aaa-pools",
    "lns / AAA and pools",
    "Authentication verdicts and rejections, IPv4 pools and IPv6 prefix pools, Router Advertisements.",
    [
        row("Authentication"),
        ts(
            "Authentication results",
            [(f"sum by (method, result) (rate(lns_auth_results_total{{{I}}}[{RI}]))", "{{method}} {{result}}")],
            "ops",
        ),
        ts(
            "Rejections by reason",
            [(f"sum by (method, reason) (rate(lns_auth_rejects_total{{{I}}}[{RI}]))", "{{method}} {{reason}}")],
            "ops",
        ),
        ts(
            "Reject ratio",
            [
                (
                    f'sum(rate(lns_auth_results_total{{{I}, result="reject"}}[{RI}]))'
                    f" / clamp_min(sum(rate(lns_auth_results_total{{{I}}}[{RI}])), 1e-9)",
                    "rejected",
                )
            ],
            "percentunit",
        ),
        ts(
            "PPP authentication failures",
            [(f'sum by (reason) (rate(lns_ppp_failures_total{{{I}, protocol="auth"}}[{RI}]))', "{{reason}}")],
            "ops",
        ),
        row("IPv4 pools"),
        panel(
            "bargauge",
            "Pool use",
            [(f"sum by (pool) (lns_pool_addresses_in_use{{{I}}}) / sum by (pool) (lns_pool_addresses{{{I}}})", "{{pool}}")],
            "percentunit",
            options={"displayMode": "gradient", "orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
            fieldConfig={
                "defaults": {
                    "unit": "percentunit",
                    "min": 0,
                    "max": 1,
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [
                            {"color": "green", "value": None},
                            {"color": "orange", "value": 0.8},
                            {"color": "red", "value": 0.9},
                        ],
                    },
                },
                "overrides": [],
            },
        ),
        ts(
            "Addresses in use",
            [
                (f"sum by (pool) (lns_pool_addresses_in_use{{{I}}})", "{{pool}} in use"),
                (f"sum by (pool) (lns_pool_addresses{{{I}}})", "{{pool}} size"),
            ],
        ),
        ts(
            "Pool exhausted",
            [(f"sum by (pool) (increase(lns_pool_exhausted_total{{{I}}}[{RI}]))", "{{pool}}")],
            desc="Allocations that found the pool empty.",
        ),
        row("IPv6 prefix pools"),
        ts(
            "Prefix pool use",
            [
                (
                    f"sum by (pool) (lns_prefix_pool_prefixes_in_use{{{I}}})"
                    f" / sum by (pool) (lns_prefix_pool_prefixes{{{I}}})",
                    "{{pool}}",
                )
            ],
            "percentunit",
        ),
        ts(
            "Prefix pool exhausted",
            [(f"sum by (pool) (increase(lns_prefix_pool_exhausted_total{{{I}}}[{RI}]))", "{{pool}}")],
        ),
        ts(
            "Router Advertisements and Solicitations",
            [(f"sum by (event) (rate(lns_ipv6_nd_events_total{{{I}}}[{RI}]))", "{{event}}")],
            "ops",
        ),
    ],
    with_shard=False,
)


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.mkdir(exist_ok=True)
    for name, board in [
        ("overview", overview),
        ("control-plane", control),
        ("data-plane", dataplane),
        ("aaa-pools", aaa),
    ]:
        path = out / f"lns-{name}.json"
        path.write_text(json.dumps(board, indent=2) + "\n")
        print(path)


if __name__ == "__main__":
    main()
