#!/bin/bash
# http-vs-rpc.sh - avail.get of one SKU over HTTP/JSON (POST /v1/avail.get, wrk) against the same
# request over MessagePack-RPC (allot-bench browse), one allotd, same run, alternating; and the
# RPC port with --http idle against a server started without it. Prints requests/s and the
# server's CPU per request for each, and the ratios. Needs wrk (ALLOT_BENCH_DEPS=1
# tools/install-deps.sh) and a Release build.
# Settings: SKUS (100000), DURATION seconds per run (5), CONNECTIONS (50), ROUNDS (3), THREADS
# of each client (2).
set -euo pipefail
BIN=${ALLOTD:-build/release/allotd}
B=${ALLOT_BENCH:-build/release/bench/allot-bench}
SKUS=${SKUS:-100000}; DURATION=${DURATION:-5}; CONNECTIONS=${CONNECTIONS:-50}
ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-2}
RPC_PORT=${RPC_PORT:-17611}; HTTP_PORT=${HTTP_PORT:-17612}
DIR=$(mktemp -d /tmp/allot-http-bench-XXXXXX)
LUA="$(dirname "$0")/http-avail.lua"
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT

start() { # start [extra args]: a fresh server with the catalogue loaded
  rm -rf "$DIR/data"
  "$BIN" --listen 127.0.0.1:$RPC_PORT --data-dir "$DIR/data" --fsync none "$@" 2>/dev/null &
  PID=$!
  sleep 0.5
  "$B" load --target allot://127.0.0.1:$RPC_PORT --skus "$SKUS" --locations 10 >/dev/null 2>&1
}
stop() { kill $PID; wait $PID 2>/dev/null || true; PID=; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$PID/stat; }

rpc() { # requests/s and server CPU µs per request of avail.get over MessagePack-RPC
  local before after out
  before=$(cpu_ticks)
  out=$("$B" --target allot://127.0.0.1:$RPC_PORT --scenario browse --skus "$SKUS" \
    --duration "$DURATION" --warmup 0 --connections "$CONNECTIONS" --pipeline 1 \
    --threads "$THREADS" 2>&1 | awk '$1 == "avail.get" {print $2, $3}')
  after=$(cpu_ticks)
  set -- $out
  echo "$2 $(awk -v t=$((after - before)) -v n="$1" 'BEGIN {printf "%.1f", t * 1e6 / 100 / n}')"
}

http() { # the same over HTTP/JSON
  local before after out
  before=$(cpu_ticks)
  out=$(SKUS=$SKUS wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$LUA" \
    http://127.0.0.1:$HTTP_PORT/v1/avail.get | awk '/requests in/ {print $1} /Requests\/sec/ {print $2}')
  after=$(cpu_ticks)
  set -- $out
  echo "$2 $(awk -v t=$((after - before)) -v n="$1" 'BEGIN {printf "%.1f", t * 1e6 / 100 / n}')"
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo "avail.get of 1 SKU, $CONNECTIONS connections, no pipelining, $THREADS client threads," \
  "${DURATION}s x $ROUNDS rounds, $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg)"
start --http 127.0.0.1:$HTTP_PORT
: >"$DIR/rpc" ; : >"$DIR/http"; : >"$DIR/rpc_idle"
for round in $(seq "$ROUNDS"); do # before any HTTP connection: --http idle
  r=$(rpc)
  echo "round $round  rpc with --http idle: $r"
  echo "$r" >>"$DIR/rpc_idle"
done
for round in $(seq "$ROUNDS"); do
  r=$(rpc); h=$(http)
  echo "round $round  rpc: $r  http: $h   (requests/s, server CPU us/request)"
  echo "$r" >>"$DIR/rpc"; echo "$h" >>"$DIR/http"
done
stop
start
: >"$DIR/rpc_alone"
for round in $(seq "$ROUNDS"); do
  r=$(rpc)
  echo "round $round  rpc without --http: $r"
  echo "$r" >>"$DIR/rpc_alone"
done
stop
rpc_rate=$(cut -d' ' -f1 "$DIR/rpc" | median); http_rate=$(cut -d' ' -f1 "$DIR/http" | median)
rpc_cpu=$(cut -d' ' -f2 "$DIR/rpc" | median); http_cpu=$(cut -d' ' -f2 "$DIR/http" | median)
idle_rate=$(cut -d' ' -f1 "$DIR/rpc_idle" | median); idle_cpu=$(cut -d' ' -f2 "$DIR/rpc_idle" | median)
alone_rate=$(cut -d' ' -f1 "$DIR/rpc_alone" | median)
alone_cpu=$(cut -d' ' -f2 "$DIR/rpc_alone" | median)
awk -v rr="$rpc_rate" -v hr="$http_rate" -v rc="$rpc_cpu" -v hc="$http_cpu" -v ar="$alone_rate" \
  -v ac="$alone_cpu" -v ir="$idle_rate" -v ic="$idle_cpu" 'BEGIN {
  printf "median  rpc %d/s %.1f us  http %d/s %.1f us\n", rr, rc, hr, hc
  printf "median  rpc with --http idle %d/s %.1f us  rpc without --http %d/s %.1f us\n", ir, ic, ar, ac
  printf "http/rpc throughput %.2f, server CPU per request http/rpc %.2f\n", hr / rr, hc / rc
  printf "rpc with --http idle / without: throughput %.2f, CPU per request %.2f\n", ir / ar, ic / ac }'
