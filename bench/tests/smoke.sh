#!/usr/bin/env bash
# smoke.sh ALLOTD ALLOT_BENCH [ALLOT_ECHO_EPOLL [ALLOT_PING_EPOLL]] - every allot-bench scenario
# for a few seconds against a real allotd (fresh data dir, free port), ping against the bare epoll
# server, and the minimal client's ping and avail.get; checks exit statuses and that work was
# done, never timings.
set -euo pipefail
allotd=$1 bench=$2 echo_server=${3:-} ping_client=${4:-}
dir=$(mktemp -d /tmp/allot-bench-smoke-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# A random port nobody listens on (allotd failing to bind is retried below). Below the
# ephemeral range (32768 and up by default): ports there may still be held by the client side
# of earlier tests' connections in TIME_WAIT, which makes bind fail with "address in use".
free_port() {
  local p
  for _ in $(seq 50); do
    p=$(( 10000 + RANDOM % 22000 ))
    (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo 0
}

for attempt in $(seq 10); do
  port=$(free_port)
  "$allotd" --listen 127.0.0.1:"$port" --data-dir "$dir/data" >"$dir/allotd.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && break
  wait "$pid" || true; pid=
done
[ -n "$pid" ] || { echo "allotd did not start"; cat "$dir/allotd.log"; exit 1; }

common=(--target allot://127.0.0.1:"$port" --skus 2000 --locations 5 --connections 4
        --pipeline 8 --threads 2 --duration 1 --warmup 0.2 --server-pid "$pid")
run() {
  echo "== allot-bench $*"
  "$bench" "$@" "${common[@]}"
}
run load
run --scenario browse --json "$dir/browse.json"
run --scenario browse --skus-per-request 20 --detail
run --scenario checkout --release-ratio 0.5
# open loop with a timeline: every measured request in one window of its intended start
run --scenario reserve --rate 500 --timeline-ms 100 --json "$dir/timeline.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); t=r["timeline"]; w=t["windows"]; sys.exit(0 if t["window_ms"] == 100 and len(w) == 11 and sum(x[0] for x in w) == r["ops"]["reserve"]["count"] > 0 and t["start_unix_ms"] > 0 else 1)' "$dir/timeline.json" ||
  { echo "timeline missing or wrong"; exit 1; }
run --scenario flashsale --units 300
run --scenario mixed --mix browse=90,checkout=10 --svg "$dir/mixed.svg"
run --scenario checkout --requests 200
# ping: the protocol's floor; the report puts the bench's own CPU beside the server's and names
# the side that limited the run
run --scenario ping --json "$dir/ping.json" | tee "$dir/ping.txt"
grep -q '^client CPU .* us per request' "$dir/ping.txt"
grep -q '^limited by: ' "$dir/ping.txt"
grep -q '"client_cpu_s"' "$dir/ping.json"
grep -q '"limited_by": "' "$dir/ping.json"
# --promise: the listing with promise: true; a server that refuses the key is reported (exit
# status 5, the server's answer on stderr), never benchmarked
status=0
"$bench" --scenario browse --skus-per-request 20 --promise "${common[@]}" \
  --json "$dir/promise.json" >"$dir/promise.txt" 2>&1 || status=$?
case $status in
0) grep -q '"promise": true' "$dir/promise.json" ;;
5) grep -q 'does not accept promise: true on avail.get' "$dir/promise.txt" ;;
*) echo "--promise: exit status $status"; cat "$dir/promise.txt"; exit 1 ;;
esac
"$bench" plot --svg "$dir/both.svg" "$dir/browse.json" "$dir/mixed.svg.json"
grep -q '"throughput_per_s"' "$dir/browse.json"
grep -q '<polyline' "$dir/both.svg"
# a wrong catalogue is reported, not benchmarked
if "$bench" --scenario browse "${common[@]}" --skus 999999 >/dev/null 2>&1; then
  echo "expected a missing-catalogue error"; exit 1
fi
kill -0 "$pid" || { echo "allotd died"; cat "$dir/allotd.log"; exit 1; }
# the ping floor (bench/ab.sh side A): it takes allotd's options and answers every ping
if [ -n "$echo_server" ]; then
  echo "== allot-bench --scenario ping against allot-echo-epoll"
  echo_port=$(free_port)
  "$echo_server" --listen 127.0.0.1:"$echo_port" --data-dir "$dir/unused" --fsync none &
  echo_pid=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$echo_port") 2>/dev/null && break
    sleep 0.1
  done
  "$bench" --target allot://127.0.0.1:"$echo_port" --scenario ping --connections 4 --pipeline 8 \
    --threads 1 --duration 1 --warmup 0.2 --json "$dir/echo.json" >"$dir/echo.txt"
  kill "$echo_pid"; wait "$echo_pid" 2>/dev/null || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); o=r["ops"]["ping"]; sys.exit(0 if o["count"] > 0 and not o.get("codes") else 1)' "$dir/echo.json" ||
    { echo "allot-echo-epoll: no clean pings"; cat "$dir/echo.txt"; exit 1; }
fi
# the floor of a load client: every reply framed and counted, none an error, its CPU reported
if [ -n "$ping_client" ]; then
  for method in ping avail.get; do
    echo "== allot-ping-epoll --method $method"
    "$ping_client" --target 127.0.0.1:"$port" --method "$method" --sku S00001999 \
      --connections 4 --pipeline 8 --duration 1 --warmup 0.2 --server-pid "$pid" \
      --json "$dir/min-$method.json" | tee "$dir/min-$method.txt"
    grep -q '^client CPU .* us per request' "$dir/min-$method.txt"
    grep -q '^server CPU .* us per request' "$dir/min-$method.txt"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["requests"] > 0 and r["errors"] == 0 and r["client_cpu_s"] >= 0 else 1)' "$dir/min-$method.json" ||
      { echo "allot-ping-epoll $method: no clean replies"; exit 1; }
  done
  if "$ping_client" --target 127.0.0.1:"$port" --method reserve >/dev/null 2>&1; then
    echo "allot-ping-epoll: expected exit status 64 for an unknown method"; exit 1
  fi
fi
echo "bench smoke: ok"
