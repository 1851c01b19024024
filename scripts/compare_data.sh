#!/usr/bin/env bash
# Data through our daemon vs through l2tpns, driven by the same release
# loadgen on this machine (docs/benchmarks.md, "Data: our daemon vs
# l2tpns"). As root.
#
#   scripts/compare_data.sh [RUNS]        # default 3 runs of each case
#
# For each payload size (SIZES, default "64 1400") and each LNS, TUNNELS x
# PER_TUNNEL sessions (default 4 x 50) come up, then each sends PPS probes a
# second (default 100: 20,000 packets/s each way) for HOLD seconds to a
# reflector on the LNS's network side, which sends them back down the same
# session:
#  - ours: `lns run` on its embedded defaults in a private network and
#    mount namespace, the reflector on its TUN gateway 100.64.0.1, loadgen
#    on 127.0.0.1;
#  - l2tpns: loadgen's example `against_l2tpns` (l2tpns + FreeRADIUS in one
#    namespace, the LAC in another across a veth pair, debug 1), the
#    reflector on an address of l2tpns's namespace behind its tun0.
# Per run: packets forwarded each way per second, loss, RTT p99, the LNS's
# CPU (all its threads, the whole run: setup of the few sessions is a
# small part) and packets forwarded (up + down) per LNS CPU-second — the
# per-core figure. The reflector and loadgen share the same 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-3}
TUNNELS=${TUNNELS:-4}
PER_TUNNEL=${PER_TUNNEL:-50}
PPS=${PPS:-100}
HOLD=${HOLD:-10}
SIZES=${SIZES:-64 1400}
OUT=${OUT:-target/compare-data}
LNSS=${LNSS:-ours l2tpns}

[ "$(id -u)" = 0 ] || { echo "compare_data: needs root" >&2; exit 2; }
[ -n "${LNS_BIN:-}" ] || cargo build --release -q -p lns -p loadgen --example against_l2tpns
LNS=${LNS_BIN:-$PWD/target/release/lns}
LOADGEN=$PWD/target/release/loadgen
AGAINST_L2TPNS=$PWD/target/release/examples/against_l2tpns
mkdir -p "$OUT"

common=(--tunnels "$TUNNELS" --sessions-per-tunnel "$PER_TUNNEL" --scenario storm
        --hold "$HOLD" --data-pps "$PPS" --timeout 60 --quiet)

run_ours() { # size json
  unshare -nm --propagation private sh -c '
    set -e
    ip link set lo up
    mkdir -p /run/lns && mount -t tmpfs lns-run /run/lns
    "$1" run >"$2.lns.log" 2>&1 & pid=$!
    sleep 2
    "$3" reflect --listen 100.64.0.1:7 --workers 1 >/dev/null 2>&1 & reflect=$!
    sleep 0.5
    loadgen=$3
    shift 3
    status=0
    "$loadgen" run "$@" --lns 127.0.0.1:1701 --reflector 100.64.0.1:7 \
      --lns-pid "$pid" || status=$?
    kill "$reflect"; wait "$reflect" || true
    kill -INT "$pid"; wait "$pid" || true
    exit "$status"' sh "$LNS" "$2" "$LOADGEN" "${common[@]}" --data-size "$1" --json "$2"
}

run_l2tpns() { # size json
  "$AGAINST_L2TPNS" "${common[@]}" --data-size "$1" --json "$2"
}

for run in $(seq 1 "$RUNS"); do
  for size in $SIZES; do
    for lns in $LNSS; do
      json=$OUT/$lns-$size-$run.json
      echo "== $lns ${size} B run $run -> $json ($(cut -d' ' -f1-3 /proc/loadavg))"
      "run_$lns" "$size" "$json" >/dev/null || echo "   (exit status $?)"
    done
  done
done

echo
echo "lns-size-run: up_pps down_pps loss% rtt_p99_ms lns_cpu_s lns_cpu% pkts_per_lns_cpu_s"
for json in "$OUT"/*.json; do
  python3 - "$json" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
d, t = r.get("data") or {}, r.get("target") or {}
name = os.path.basename(sys.argv[1])[:-5]
cpu = t.get("cpu_user_s", 0) + t.get("cpu_system_s", 0)
moved = d.get("sent", 0) + d.get("received", 0)
rtt = (d.get("rtt_ms") or {}).get("p99", 0)
print(f'{name}: {d.get("upstream_pps", 0):.0f} {d.get("downstream_pps", 0):.0f} '
      f'{d.get("loss_percent", 0):.3f} {rtt:.1f} {cpu:.2f} '
      f'{t.get("cpu_percent_of_one_core", 0):.0f} {moved / cpu if cpu else 0:.0f}')
PY
done
