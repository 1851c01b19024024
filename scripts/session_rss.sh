#!/usr/bin/env bash
# Daemon RSS per established session (docs/benchmarks.md, "Memory per
# session"). As root; builds nothing: run `cargo build --release --bins`
# first (or point BIN at a directory holding `lns` and `loadgen`).
#
#   scripts/session_rss.sh [RUNS]     # default 3 runs of 10 x 1000 and 100 x 1000
#
# Each run: a private network namespace, the release daemon on 127.0.0.1
# (2 shards on this machine, a /14 pool, admission rates off, room for
# 200,000 half-open calls), loadgen storming TUNNELS x 1000 sessions
# (users user{n}@loadgen.example / loadgen, the embedded demo users) and
# holding them. Once `lns show stats` reports every session online the
# script waits 3 s (the storm's queues are given back once a second) and
# reads VmRSS: (settled - idle) / sessions is the figure printed. loadgen's
# own report (peak RSS, sampled every 100 ms) is kept next to it in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-3}
BIN=${BIN:-target/release}
OUT=${OUT:-target/session-rss}
mkdir -p "$OUT"
BIN=$(realpath "$BIN")
OUT=$(realpath "$OUT")

cat > "$OUT/lns.toml" <<EOF
[l2tp]
listen = ["127.0.0.1:1701"]
max_half_open_sessions = 200000
[[pool]]
name = "big"
ranges = ["100.64.0.2-100.67.255.254"]
ipv6_prefix = "fd01::/40"
[runtime]
new_tunnels_per_second = "off"
new_sessions_per_second = "off"
[management]
socket = "$OUT/lns.sock"
EOF

one() {
    local tunnels=$1 tag=$2 sessions=$(($1 * 1000))
    unshare -n bash -s <<EOF
set -eu
ip link set lo up
"$BIN/lns" run --config "$OUT/lns.toml" > "$OUT/$tag.lns.log" 2>&1 &
pid=\$!
sleep 1.5
idle=\$(awk '/VmRSS/ {print \$2}' /proc/\$pid/status)
"$BIN/loadgen" run --lns 127.0.0.1:1701 --tunnels $tunnels --sessions-per-tunnel 1000 \
    --rate unlimited --scenario storm --hold 15 --timeout 60 --lns-pid \$pid \
    > "$OUT/$tag.loadgen.txt" 2>&1 &
lg=\$!
until [ "\$("$BIN/lns" show stats --socket "$OUT/lns.sock" 2>/dev/null |
        awk '\$1 == "sessions_online" {print \$2}')" = "$sessions" ]; do
    kill -0 \$lg 2>/dev/null || { echo "$tag: loadgen ended early"; exit 1; }
    sleep 0.2
done
sleep 3
rss=\$(awk '/VmRSS/ {print \$2}' /proc/\$pid/status)
wait \$lg || true
echo "$tag: $sessions sessions, RSS \$idle KiB idle, \$rss KiB settled," \
    "\$(( (rss - idle) * 1024 / $sessions )) B per session;" \
    "\$(grep -o '[0-9]* failed' "$OUT/$tag.loadgen.txt" | head -1)"
kill -TERM \$pid
wait \$pid || true
EOF
}

for run in $(seq 1 "$RUNS"); do
    one 10 "10k-$run"
    one 100 "100k-$run"
done
