#!/bin/bash
# ab-browse20.sh BIN PORT LABEL - server CPU per 20-SKU avail.get for one allotd binary (A/B runs).
# Run two binaries alternately on the same machine and compare the "SKU lookups per server CPU
# second" lines; SKUS=N sets the catalogue size (default 1000000).
BIN=$1; PORT=$2; LABEL=$3
rm -rf /tmp/ab-$PORT; $BIN --listen 127.0.0.1:$PORT --data-dir /tmp/ab-$PORT --fsync none 2>/dev/null &
PID=$!; sleep 0.5
B=${ALLOT_BENCH:-build/release/bench/allot-bench}
$B load --target allot://127.0.0.1:$PORT --skus ${SKUS:-1000000} --locations 10 >/dev/null 2>&1
for r in 1 2; do
$B --target allot://127.0.0.1:$PORT --scenario browse --skus ${SKUS:-1000000} --skus-per-request 20 --duration 5 --connections 50 --pipeline 16 --threads 1 --server-pid $PID 2>&1 | grep -E "server CPU" | sed "s/^/$LABEL /"
done
kill $PID; wait $PID 2>/dev/null; rm -rf /tmp/ab-$PORT
