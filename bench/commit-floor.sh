#!/usr/bin/env bash
# commit-floor.sh - the disk's floor under an open-loop run at --fsync always: what a reply that
# waits for its group commit can take on this machine whatever the server does, measured with
# allot-commit-floor (bench/commit_floor.c: back-to-back append + fdatasync, requests at RATE
# laid over the commits' timeline) in two conditions, alternating round by round:
#   idle  the machine otherwise idle;
#   busy  beside an allotd kept as busy as in the open-loop reserve run (ping at RATE: the loop
#         and the network as loaded, but no write to its disk at all), allotd on CPU 0 and its
#         load on CPU 1 as bench/open-loop.sh places them.
# A host that stalls its virtual disk while the guest's CPUs are busy shows it in `busy` (on the
# machine of docs/benchmarks.md: a stall of 10-15 ms every 100 ms, the "most common gaps").
#
# usage: bench/commit-floor.sh [ROUNDS]
# env:   RATE=118000 DURATION=5 BYTES=4096 (a commit's size) DIR=/tmp (where the probe writes:
#        the disk allotd's data dir is on) ALLOTD=build/release/allotd
#        FLOOR=build/release/bench/allot-commit-floor BENCH=build/release/bench/allot-bench
#        ALLOT=build/release/allot
set -euo pipefail
ROUNDS=${1:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-118000} DURATION=${DURATION:-5} BYTES=${BYTES:-4096} DIR=${DIR:-/tmp}
ALLOTD=${ALLOTD:-$here/build/release/allotd}
FLOOR=${FLOOR:-$here/build/release/bench/allot-commit-floor}
BENCH=${BENCH:-$here/build/release/bench/allot-bench}
ALLOT=${ALLOT:-$here/build/release/allot}
server_cpu=() bench_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) bench_cpu=(taskset -c 1)
fi
data=$(mktemp -d "$DIR/allot-commit-floor-XXXXXX")
pid= load=
cleanup() {
  [ -n "$load" ] && kill "$load" 2>/dev/null && wait "$load" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT INT TERM
probe() { "$FLOOR" --dir "$data" --duration "$DURATION" --bytes "$BYTES" --rate "$RATE"; }

busy_probe() { # an allotd answering pings at RATE while the probe runs
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$data/server"
  "${server_cpu[@]}" "$ALLOTD" --listen "127.0.0.1:$port" --data-dir "$data/server" \
    --fsync always --log-level warn >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do "$ALLOT" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  "${bench_cpu[@]}" "$BENCH" --target "allot://127.0.0.1:$port" --threads 1 --warmup 0 \
    --scenario ping --rate "$RATE" --duration $((DURATION + 3)) --quiet >/dev/null 2>&1 &
  load=$!
  sleep 1
  probe
  wait "$load" || true
  load=
  kill "$pid" && wait "$pid" 2>/dev/null || true
  pid=
  rm -rf "$data/server"
}

echo "# commit-floor.sh ROUNDS=$ROUNDS RATE=$RATE DURATION=$DURATION BYTES=$BYTES DIR=$DIR," \
  "$(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  echo "idle $round: $(probe)"
  echo "busy $round: $(busy_probe)"
done
