#!/usr/bin/env bash
# open-loop.sh - one open-loop reserve run against a fresh allotd, the way issue 20's latency
# target is measured: a new data dir, a catalogue, reserves at a fixed rate (latency counted from
# each request's intended start, so a stall counts for every request it delays), then one summary
# line: percentiles, the share of requests over 5 and 20 ms, server CPU a request, and the
# server's own WAL fdatasync and loop-iteration histograms (server.stats).
#
# usage: bench/open-loop.sh ALLOTD RATE DURATION_S TAG [more allotd options]
# env:   BENCH=build/release/bench/allot-bench  ALLOT=build/release/allot (the CLI)
#        FSYNC=always  SKUS=1000  LOCATIONS=10  PIN=1 (allotd, all its threads, on CPU 0, the
#        bench's one thread on CPU 1; PIN=0: neither pinned)  WARMUP=1 (seconds of load before the
#        measured DURATION_S)  SETTLE=0 (seconds between the server's start and the load: on the
#        benchmark VM the disk stalls 30-80 ms about 3.5 s after a start, docs/benchmarks.md)
#        OUT=/tmp/allot-open-loop (TAG.json: the bench's report with a 100 ms timeline,
#        TAG.stats.json: server.stats at the end, TAG.threads: CPU ticks of each allotd thread,
#        TAG.log: the server's log)
# Alternate two binaries run by run (A B A B ...) to compare them: the host's disk and CPU vary
# from minute to minute by more than most changes move the tail.
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,17p "$0" >&2; exit 64; }
ALLOTD=$1 RATE=$2 DURATION=$3 TAG=$4
shift 4
here=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$here/build/release/bench/allot-bench}
ALLOT=${ALLOT:-$here/build/release/allot}
FSYNC=${FSYNC:-always} SKUS=${SKUS:-1000} LOCATIONS=${LOCATIONS:-10} PIN=${PIN:-1}
WARMUP=${WARMUP:-1} SETTLE=${SETTLE:-0}
OUT=${OUT:-/tmp/allot-open-loop}
mkdir -p "$OUT"
server_cpu=() bench_cpu=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) bench_cpu=(taskset -c 1)
fi
dir=$(mktemp -d /tmp/allot-open-loop-data-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${server_cpu[@]}" "$ALLOTD" --listen "127.0.0.1:$port" --data-dir "$dir" --fsync "$FSYNC" \
  --log-level info "$@" > "$OUT/$TAG.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do "$ALLOT" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
sleep "$SETTLE"
"$BENCH" load --target "allot://127.0.0.1:$port" --skus "$SKUS" --locations "$LOCATIONS" >/dev/null
"${bench_cpu[@]}" "$BENCH" --target "allot://127.0.0.1:$port" --skus "$SKUS" --threads 1 \
  --warmup "$WARMUP" --scenario reserve --duration "$DURATION" --rate "$RATE" --server-pid "$pid" \
  --timeline-ms 100 --json "$OUT/$TAG.json" > "$OUT/$TAG.txt" 2>&1
"$ALLOT" -p "$port" -r server.stats > "$OUT/$TAG.stats.json"
for task in /proc/$pid/task/*; do
  echo "$(cat "$task/comm") $(cut -d' ' -f14,15 "$task/stat")"
done > "$OUT/$TAG.threads"
python3 - "$OUT/$TAG" <<'PY'
import json, sys
t = sys.argv[1]
report, stats = json.load(open(t + '.json')), json.load(open(t + '.stats.json'))
lines = open(t + '.txt').read().splitlines()
row = [l for l in lines if l.startswith('reserve')][0].split()
cpu = [l for l in lines if 'server CPU' in l][0].split(':')[1].split()[0]
windows = report['timeline']['windows']
n = sum(w[0] for w in windows) or 1
over5, over20 = sum(w[1] for w in windows), sum(w[2] for w in windows)
fs, loop = stats['wal_fdatasync'], stats['loop_iteration']
print(f"{t.split('/')[-1]:10s} p50 {row[3]:>8s} p90 {row[4]:>8s} p99 {row[5]:>8s} "
      f"p99.9 {row[6]:>8s} >5ms {100 * over5 / n:5.2f}% >20ms {100 * over20 / n:5.2f}% "
      f"server_us {cpu:>5s} fdatasync p50/p99/max {fs['p50_us']}/{fs['p99_us']}/{fs['max_us']} "
      f"loop p99/max {loop['p99_us']}/{loop['max_us']}")
PY
