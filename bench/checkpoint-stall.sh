#!/usr/bin/env bash
# checkpoint-stall.sh ALLOTD... - the loop while one checkpoint of DIRTY objects runs: allotd's
# loop iteration times (server.stats loop_iteration) and a pinging client's latency.
#
# usage: bench/checkpoint-stall.sh build/release/allotd [/tmp/old/allotd ...]
# env:   DIRTY=1000000 SKUS=1000 PING_RATE=2000 PING_S=40 ROUNDS=1
#        BENCH=build/release/bench/allot-bench ALLOT=build/release/allot
# Per binary and round: DIRTY one-line holds are made with automatic checkpoints off, allotd is
# killed (-9) and started again, so the replay leaves DIRTY objects dirty and loop_iteration holds
# only what follows; then a client pings PING_RATE times a second (open loop, 4 connections)
# while server.checkpoint writes them. Prints the checkpoint's duration, loop_iteration
# (count, p50, p99, p99.9, max) and the pings' p50/p99/max.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,12p "$0" >&2; exit 64; }
here=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$here/build/release/bench/allot-bench}
ALLOT=${ALLOT:-$here/build/release/allot}
DIRTY=${DIRTY:-1000000} SKUS=${SKUS:-1000} PING_RATE=${PING_RATE:-2000} PING_S=${PING_S:-40}
ROUNDS=${ROUNDS:-1}
work=$(mktemp -d /tmp/allot-cpstall-XXXXXX)
pid= pinger=
cleanup() {
  [ -n "$pinger" ] && kill "$pinger" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
options=(--fsync none --log-level warn --checkpoint-interval-s 0 --checkpoint-wal-bytes 0
  --checkpoint-dirty-max 0)
start() { # BINARY PORT
  "$1" --listen 127.0.0.1:"$2" --data-dir "$work/data" "${options[@]}" >>"$work/allotd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1200); do (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null && return; sleep 0.05; done
  echo "allotd did not start" >&2; exit 1
}
echo "# checkpoint-stall.sh DIRTY=$DIRTY SKUS=$SKUS PING_RATE=$PING_RATE $(date -u +%FT%TZ)"
for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    cp "$bin" "$work/allotd"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -rf "$work/data"
    start "$work/allotd" "$port"
    "$BENCH" load --target allot://127.0.0.1:"$port" --skus "$SKUS" --quiet >/dev/null 2>&1
    "$BENCH" --target allot://127.0.0.1:"$port" --skus "$SKUS" --scenario reserve \
      --requests "$DIRTY" --duration 600 --quiet >/dev/null 2>&1
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    start "$work/allotd" "$port" # recovery replays every hold: all of them are dirty
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    "$BENCH" --target allot://127.0.0.1:"$port" --scenario ping --rate "$PING_RATE" \
      --connections 4 --pipeline 1 --threads 1 --duration "$PING_S" --warmup 0 --quiet \
      --json "$work/ping.json" >/dev/null 2>&1 &
    pinger=$!
    sleep 1
    t0=$(date +%s.%N)
    "$ALLOT" -p "$port" -t 600000 server.checkpoint >/dev/null
    t1=$(date +%s.%N)
    "$ALLOT" -p "$port" -r server.stats >"$work/stats.json"
    wait "$pinger"; pinger=
    python3 - "$bin" "$work/stats.json" "$work/ping.json" "$t0" "$t1" "$load" <<'PY'
import json, sys
bin, stats, ping, t0, t1, load = sys.argv[1:]
s = json.load(open(stats))
h = s["loop_iteration"]
p = json.load(open(ping))
op = p["ops"][p["primary_op"]]
print("%s: checkpoint %.1f s (load %s); loop_iteration count %d p50 %.2f ms p99 %.2f ms "
      "p99.9 %.2f ms max %.2f ms; ping p50 %.2f ms p99 %.2f ms max %.2f ms" % (
      bin, float(t1) - float(t0), load, h["count"], h["p50_us"] / 1e3, h["p99_us"] / 1e3,
      h["p999_us"] / 1e3, h["max_us"] / 1e3, op["p50_us"] / 1e3, op["p99_us"] / 1e3,
      op.get("max_us", 0) / 1e3))
PY
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
