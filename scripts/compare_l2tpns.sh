#!/usr/bin/env bash
# Our daemon vs l2tpns + FreeRADIUS, driven by the same release loadgen on
# this machine (docs/benchmarks.md, "Our daemon vs l2tpns"). As root.
#
#   scripts/compare_l2tpns.sh [RUNS]        # default 2 runs of each case
#
# Cases (SCENARIOS, default "storm ramp"): a storm (every session dialled
# at once) and a ramp at RAMP_RATE, TUNNELS x PER_TUNNEL sessions (default
# 10 x 1000), each against (LNSS, default "ours l2tpns")
#  - ours: `lns run` on its embedded defaults (or LNS_CONFIG, e.g.
#    scripts/lns-100k.toml for 100,000 sessions) in a private network and mount
#    namespace (its management socket on a private /run/lns), loadgen beside
#    it on 127.0.0.1; users user{n}@loadgen.example / loadgen (the demo
#    users), PAP/CHAP as the daemon asks;
#  - l2tpns: loadgen's example `against_l2tpns` (the test harness
#    tests/support/l2tpns.rs: l2tpns and FreeRADIUS in one namespace, the
#    LAC in another, tunnel secret, CHAP through RADIUS, a /16 pool,
#    debug 1, net.core.rmem_default raised while l2tpns opens its socket).
# Sessions are held HOLD seconds (so the LNS's RSS is read at its peak),
# then CDN + StopCCN. Each run's JSON report (with the LNS's CPU and RSS,
# `target`) goes to OUT; a summary line per run is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-2}
TUNNELS=${TUNNELS:-10}
PER_TUNNEL=${PER_TUNNEL:-1000}
RAMP_RATE=${RAMP_RATE:-2000}
HOLD=${HOLD:-2}
TIMEOUT=${TIMEOUT:-90}
OUT=${OUT:-target/compare-l2tpns}
SCENARIOS=${SCENARIOS:-storm ramp}
LNSS=${LNSS:-ours l2tpns}
LNS_CONFIG=${LNS_CONFIG:-}
[ -z "$LNS_CONFIG" ] || LNS_CONFIG=$(realpath "$LNS_CONFIG")

[ "$(id -u)" = 0 ] || { echo "compare_l2tpns: needs root" >&2; exit 2; }
cargo build --release -q -p lns -p loadgen --example against_l2tpns
LNS=$PWD/target/release/lns
LOADGEN=$PWD/target/release/loadgen
AGAINST_L2TPNS=$PWD/target/release/examples/against_l2tpns
mkdir -p "$OUT"

common=(--tunnels "$TUNNELS" --sessions-per-tunnel "$PER_TUNNEL" --hold "$HOLD"
        --timeout "$TIMEOUT" --quiet)
scenario_args() {
  case $1 in
    storm) echo --scenario storm ;;
    ramp) echo --scenario ramp --rate "$RAMP_RATE" ;;
  esac
}

run_ours() { # scenario json
  unshare -nm --propagation private sh -c '
    set -e
    ip link set lo up
    mkdir -p /run/lns && mount -t tmpfs lns-run /run/lns
    if [ -n "$3" ]; then "$1" run --config "$3" >"$2.lns.log" 2>&1 & pid=$!
    else "$1" run >"$2.lns.log" 2>&1 & pid=$!; fi
    sleep 2
    shift 3
    status=0
    "$@" --lns 127.0.0.1:1701 --lns-pid "$pid" || status=$?
    kill -INT "$pid"; wait "$pid" || true
    exit "$status"' sh "$LNS" "$2" "$LNS_CONFIG" "$LOADGEN" run "${common[@]}" \
      $(scenario_args "$1") --json "$2"
}

run_l2tpns() { # scenario json
  "$AGAINST_L2TPNS" "${common[@]}" $(scenario_args "$1") --json "$2"
}

for run in $(seq 1 "$RUNS"); do
  for scenario in $SCENARIOS; do
    for lns in $LNSS; do
      json=$OUT/$lns-$scenario-$run.json
      echo "== $lns $scenario run $run -> $json ($(cut -d' ' -f1-3 /proc/loadavg))"
      "run_$lns" "$scenario" "$json" || echo "   (exit status $?: not every session came up)"
    done
  done
done

echo
echo "lns scenario run: established/planned failed rate/s p50_ms p99_ms lns_cpu_s rss_before->max_KiB B/session"
for json in "$OUT"/*.json; do
  python3 - "$json" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
s, l, t = r["sessions"], r["setup_latency_ms"] or {}, r.get("target") or {}
name = os.path.basename(sys.argv[1])[:-5]
print(f'{name}: {s["established"]}/{s["planned"]} {s["failed"]} '
      f'{r["setup_rate_per_s"]:.0f} {l.get("p50", 0):.1f} {l.get("p99", 0):.1f} '
      f'{t.get("cpu_user_s", 0) + t.get("cpu_system_s", 0):.2f} '
      f'{t.get("rss_before_kib")}->{t.get("rss_max_kib")} '
      f'{(t.get("rss_per_session_b") or 0):.0f} {dict(s["failed_by_reason"]) or ""}')
PY
done
