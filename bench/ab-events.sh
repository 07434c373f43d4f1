#!/bin/bash
# ab-events.sh - what the change stream costs the hot path, A/B/A in one run: reserve throughput
# and server CPU per request without (A) and with (B) SUBSCRIBERS live subscribers and one
# allot-relay publishing every event into a `nats-server -js`; then how many events/s one
# consumer reads (events.read pages of 1000) and the relay's throughput into JetStream over the
# whole backlog. docs/benchmarks.md "The change stream".
# env: BUILD=build/release SUBSCRIBERS=100 TYPES=avail.changed WATCH_SKU= (each subscriber's
#      one SKU; empty: every SKU) DURATION=10 FSYNC=always SKUS=100000 CONNECTIONS=50 PIPELINE=16
#      CATCHUP=1 (0: skip the read and catch-up measurements, which take minutes)
set -euo pipefail
BUILD=${BUILD:-build/release}
SUBSCRIBERS=${SUBSCRIBERS:-100} TYPES=${TYPES:-avail.changed} DURATION=${DURATION:-10}
FSYNC=${FSYNC:-always} SKUS=${SKUS:-100000} CONNECTIONS=${CONNECTIONS:-50} PIPELINE=${PIPELINE:-16}
WATCH_SKU=${WATCH_SKU:-} CATCHUP=${CATCHUP:-1}
B=$BUILD/bench/allot-bench E=$BUILD/bench/allot-events-bench R=$BUILD/allot-relay
for tool in "$BUILD/allotd" "$B" "$E" "$R"; do
  [ -x "$tool" ] || { echo "ab-events.sh: $tool not built" >&2; exit 1; }
done
command -v nats-server >/dev/null || { echo "ab-events.sh: no nats-server" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d /tmp/allot-ab-events-XXXXXX)
port=$(free_port) nats_port=$(free_port)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
"$BUILD/allotd" --listen 127.0.0.1:$port --data-dir "$work/data" --fsync "$FSYNC" 2>"$work/allotd.log" &
server=$!; pids+=($server)
sleep 0.5
nats-server -js -a 127.0.0.1 -p $nats_port -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
"$B" load --target allot://127.0.0.1:$port --skus "$SKUS" --locations 10 >/dev/null
run() { # $1: label
  "$B" --target allot://127.0.0.1:$port --scenario reserve --skus "$SKUS" --duration "$DURATION" \
    --connections "$CONNECTIONS" --pipeline "$PIPELINE" --threads 1 --server-pid $server 2>/dev/null |
    grep -E "^reserve |^server CPU" | sed "s/^/$1: /"
}
run "A (no subscribers)"
"$E" subscribe 127.0.0.1 $port "$SUBSCRIBERS" "$TYPES" $WATCH_SKU >"$work/subs.log" 2>&1 &
subs=$!; pids+=($subs)
"$R" -p $port --nats nats://127.0.0.1:$nats_port --consumer bench-relay >"$work/relay.log" 2>&1 &
relay=$!; pids+=($relay)
sleep 2
run "B ($SUBSCRIBERS subscribers to $TYPES ${WATCH_SKU:-of every SKU} + allot-relay)"
kill $subs $relay; wait $subs $relay 2>/dev/null || true
grep -h "disconnected\|received\|published" "$work/subs.log" "$work/relay.log" | sort | uniq -c | sed 's/^/B: /'
run "A again (no subscribers)"
[ "$CATCHUP" = 1 ] || exit 0
"$E" read 127.0.0.1 $port
nats2_port=$(free_port) # an empty JetStream for the catch-up
nats-server -js -a 127.0.0.1 -p $nats2_port -sd "$work/nats2" >"$work/nats2.log" 2>&1 &
pids+=($!)
sleep 0.5
start=$(date +%s.%N)
"$R" -p $port --nats nats://127.0.0.1:$nats2_port --consumer bench-relay-catchup \
  --exit-when-idle 2>&1 | grep published | sed 's/^allot-relay: //' >"$work/catchup.txt"
end=$(date +%s.%N)
python3 -c "import sys; n=int(open('$work/catchup.txt').read().split()[1]); t=$end-$start; print(f'relay into JetStream (catch-up of the backlog, pages of 1000): {n} events in {t:.2f} s: {n/t:.0f} events/s')"
