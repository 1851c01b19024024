#!/usr/bin/env bash
# loadgen's own CPU on its two I/O paths (docs/benchmarks.md, "loadgen
# I/O"). As root, after `cargo build --release -p lns -p loadgen`.
#
#   scripts/bench_loadgen_io.sh [RUNS]      # default 3 runs of each case
#
# Each run: a fresh private network namespace with the release `lns run`
# on its embedded defaults (2 shards, 127.0.0.1:1701, gateway 100.64.0.1)
# and `loadgen reflect` on the gateway; then loadgen (2 workers) with
# `--io uring` or `--io fallback`, TUNNELS x PER_TUNNEL sessions dialled
# at once (storm). Cases:
#  - storm: hold 0, CDN + StopCCN at once;
#  - idle:  hold HOLD s, no data (the baseline of `data`);
#  - data:  hold HOLD s, PPS probes/s of 64 B per session to the reflector.
# The paths alternate run by run so the machine's noise hits both alike.
# One line per run: case, path, loadgen's CPU (user + system of its
# workers), established, probes sent and received; JSON reports in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-3}
TUNNELS=${TUNNELS:-10}
PER_TUNNEL=${PER_TUNNEL:-1000}
HOLD=${HOLD:-10}
PPS=${PPS:-2}
OUT=${OUT:-target/bench-loadgen-io}
BIN=target/release
mkdir -p "$OUT"

one() { # case path run
  local case=$1 path=$2 run=$3 extra=()
  case $case in
    storm) ;;
    idle) extra=(--hold "$HOLD") ;;
    data) extra=(--hold "$HOLD" --data-pps "$PPS" --data-size 64 --reflector 100.64.0.1:7) ;;
  esac
  local json=$OUT/$case-$path-$run.json
  unshare -n sh -c "ip link set lo up
    $BIN/lns run >/dev/null 2>&1 & lns=\$!; sleep 1
    $BIN/loadgen reflect --listen 100.64.0.1:7 >/dev/null 2>&1 & reflect=\$!; sleep 0.5
    $BIN/loadgen run --lns 127.0.0.1:1701 --tunnels $TUNNELS \
      --sessions-per-tunnel $PER_TUNNEL --scenario storm --workers 2 --timeout 90 \
      --io $path ${extra[*]} --quiet --json - > $json || true
    grep Udp: /proc/net/snmp | tail -1 > $OUT/$case-$path-$run.drops
    grep lns0: /proc/net/dev >> $OUT/$case-$path-$run.drops
    kill \$reflect; wait \$reflect 2>/dev/null; kill \$lns; wait \$lns 2>/dev/null || true"
  python3 - "$json" "$case" "$path" "$OUT/$case-$path-$run.drops" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
d = r.get("data") or {}
# Where datagrams were dropped in the namespace: UDP receive and send
# buffer errors, and lns0's TX drops (the daemon's TUN queue).
snmp, dev = (open(sys.argv[4]).read().splitlines() + ["", ""])[:2]
udp = snmp.split()[1:]
rcvbuf, sndbuf = (udp[4], udp[5]) if len(udp) > 5 else ("?", "?")
tx_drop = dev.split(":")[1].split()[11] if ":" in dev else "?"
print(f"{sys.argv[2]:5} {sys.argv[3]:8} cpu {r['cpu']['user_s'] + r['cpu']['system_s']:.3f} s "
      f"(user {r['cpu']['user_s']:.3f}, sys {r['cpu']['system_s']:.3f}) "
      f"up {r['sessions']['established']} sent {d.get('sent', 0)} received {d.get('received', 0)} "
      f"io {r['io']['path']} drops rcvbuf {rcvbuf} sndbuf {sndbuf} lns0-tx {tx_drop}")
EOF
}

for case in storm idle data; do
  for run in $(seq 1 "$RUNS"); do
    # Alternate which path goes first.
    if (( run % 2 )); then order="uring fallback"; else order="fallback uring"; fi
    for path in $order; do
      one "$case" "$path" "$run"
    done
  done
done
