#!/usr/bin/env bash
# compare.sh - allot (--fsync always) against Redis (appendfsync always, and everysec) on loopback:
# the same allot-bench scenarios, connections and pipeline against each; one table at the end.
#
# usage: bench/compare.sh [OUT_DIR]      (default: a temp dir, printed at the end)
# env:   DURATION=10 WARMUP=1 CONNECTIONS=50 PIPELINE=16 SKUS=100000 LOCATIONS=10 UNITS=50000
#        SCENARIOS="browse1 browse20 browse20d reserve checkout flashsale mixed open50" (and ping,
#        and get1: avail.get of 1 SKU against Redis GET of a string key, the catalogue then loaded
#        with --redis-get)
#        TARGETS="allot redis-always redis-everysec"
#        BUILD=build/bench (where allotd, allot and bench/allot-bench are), REDIS_SERVER=redis-server
#        PIN=1: servers on CPU 0, allot-bench (one thread) on CPU 1, so each side gets one core
#        whatever the scheduler does (PIN=0: nobody pinned, the bench uses one thread per CPU)
# When allotd answers UNKNOWN_METHOD to order.create (orders not built yet), the Redis checkout
# and mixed runs use --no-orders too, so both sides do the same reserve + release work.
# Every server gets a temp data dir and a random free port and is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$here/build/bench}
ALLOTD=${ALLOTD:-$BUILD/allotd}
BENCH=${BENCH:-$BUILD/bench/allot-bench}
ALLOT_CLI=${ALLOT_CLI:-$BUILD/allot}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-50} PIPELINE=${PIPELINE:-16}
SKUS=${SKUS:-100000} LOCATIONS=${LOCATIONS:-10} UNITS=${UNITS:-50000}
SCENARIOS=${SCENARIOS:-"browse1 browse20 browse20d reserve checkout flashsale mixed open50"}
TARGETS=${TARGETS:-"allot redis-always redis-everysec"}
PIN=${PIN:-1}
server_cpu=() bench_cpu=() bench_threads=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) bench_cpu=(taskset -c 1) bench_threads=(--threads 1)
fi

for tool in "$ALLOTD" "$BENCH"; do
  [ -x "$tool" ] || { echo "compare.sh: $tool not built (cmake --build $BUILD)" >&2; exit 1; }
done
command -v "$REDIS_SERVER" >/dev/null || { echo "compare.sh: no redis-server (ALLOT_BENCH_DEPS=1 tools/install-deps.sh)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "compare.sh: needs python3 for the table" >&2; exit 1; }

work=$(mktemp -d /tmp/allot-compare-XXXXXX)
out=${1:-$work/results}
mkdir -p "$out"
declare -A pid port
cleanup() {
  for t in "${!pid[@]}"; do kill "${pid[$t]}" 2>/dev/null || true; done
  for t in "${!pid[@]}"; do wait "${pid[$t]}" 2>/dev/null || true; done
  rm -rf "$work/data"
  case $out in "$work"/*) ;; *) rm -rf "$work" ;; esac # results live elsewhere: drop the logs too
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT PID
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

start() { # TARGET
  local t=$1 p dir=$work/data/$1
  mkdir -p "$dir"
  p=$(free_port)
  case $t in
    allot) "${server_cpu[@]}" "$ALLOTD" --listen 127.0.0.1:"$p" --data-dir "$dir" --fsync always \
             --log-level warn >"$work/$t.log" 2>&1 & ;;
    redis-always|redis-everysec)
      "${server_cpu[@]}" "$REDIS_SERVER" --port "$p" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes \
        --appendfsync "${t#redis-}" --daemonize no --protected-mode no \
        >"$work/$t.log" 2>&1 & ;;
  esac
  pid[$t]=$!
  port[$t]=$p
  wait_port "$p" "${pid[$t]}" || { echo "compare.sh: $t did not start:"; cat "$work/$t.log"; exit 1; }
}

url() { case $1 in allot) echo "allot://127.0.0.1:${port[$1]}" ;; *) echo "redis://127.0.0.1:${port[$1]}" ;; esac; }

bench() { # TARGET NAME ARGS...
  local t=$1 name=$2; shift 2
  echo "== $t $name: allot-bench $*" >&2
  "${bench_cpu[@]}" "$BENCH" --target "$(url "$t")" --skus "$SKUS" --locations "$LOCATIONS" \
    "${bench_threads[@]}" --connections "$CONNECTIONS" --pipeline "$PIPELINE" --duration "$DURATION" --warmup "$WARMUP" \
    --server-pid "${pid[$t]}" --label "$t $name" --json "$out/$t-$name.json" "$@" \
    >"$out/$t-$name.txt" 2>&1 || echo "   (exit $?: see $out/$t-$name.txt)" >&2
  tail -n +2 "$out/$t-$name.txt" | sed 's/^/   /' >&2
}

peak() { # JSON -> throughput
  python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["throughput_per_s"]))' "$1"
}

echo "compare.sh: PIN=$PIN ${server_cpu[*]:-} ${bench_cpu[*]:-}; $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
orders=() load_get=()
case " $SCENARIOS " in *" get1 "*) load_get=(--redis-get) ;; esac
for t in $TARGETS; do
  start "$t"
  "$BENCH" load --target "$(url "$t")" --skus "$SKUS" --locations "$LOCATIONS" \
    --connections "$CONNECTIONS" --pipeline "$PIPELINE" "${load_get[@]}" 2>&1 | sed 's/^/   /' >&2
  if [ "$t" = allot ] && [ -x "$ALLOT_CLI" ]; then
    # the load's last checkpoint (1M SKUs dirty it all) is written now, not in a measured run
    "$ALLOT_CLI" -p "${port[$t]}" -t 0 server.checkpoint >/dev/null
  fi
  for s in $SCENARIOS; do
    case $s in
      ping)      bench "$t" "$s" --scenario ping ;;
      browse1)   bench "$t" "$s" --scenario browse ;;
      get1)      bench "$t" "$s" --scenario browse --redis-get ;;
      browse20)  bench "$t" "$s" --scenario browse --skus-per-request 20 ;;
      browse20d) bench "$t" "$s" --scenario browse --skus-per-request 20 --detail ;;
      reserve)   bench "$t" "$s" --scenario reserve ;;
      checkout)  bench "$t" "$s" --scenario checkout "${orders[@]}" ;;
      flashsale) bench "$t" "$s" --scenario flashsale --units "$UNITS" ;;
      mixed)     bench "$t" "$s" --scenario mixed --mix browse=95,checkout=5 "${orders[@]}" ;;
      open50)    # open loop at half the closed-loop reserve peak (runs after "reserve")
        if [ -f "$out/$t-reserve.json" ]; then
          bench "$t" "$s" --scenario reserve --rate $(( $(peak "$out/$t-reserve.json") / 2 ))
        fi ;;
    esac
  done
  kill "${pid[$t]}"; wait "${pid[$t]}" 2>/dev/null || true; unset "pid[$t]"
  if [ "$t" = allot ] && grep -qs '"orders_skipped": true' "$out"/allot-checkout.json; then
    orders=(--no-orders)
    echo "   allotd has no order.* methods yet: other targets run checkout with --no-orders" >&2
  fi
done

python3 - "$out" $TARGETS <<'PY'
import json, os, sys
out, targets = sys.argv[1], sys.argv[2:]
names = ["ping", "get1", "browse1", "browse20", "browse20d", "reserve", "checkout", "flashsale", "mixed", "open50"]
def load(t, s):
    p = os.path.join(out, f"{t}-{s}.json")
    return json.load(open(p)) if os.path.exists(p) else None
def ms(us): return f"{us/1000:.2f}" if us >= 100 else f"{us/1000:.3f}"
print(f"| scenario | target | op | per s | p50 ms | p99 ms | p99.9 ms | server CPU us/op | client CPU us/op | errors | allot/this |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in names:
    base = load("allot", s)
    for t in targets:
        r = load(t, s)
        if r is None: continue
        op = r["primary_op"]; st = r["ops"].get(op, {})
        n = sum(o["count"] for o in r["ops"].values())
        cpu = r.get("server_cpu_s", -1)
        cpu_op = f"{1e6*cpu/n:.2f}" if cpu > 0 and n else "-"
        client = r.get("client_cpu_s", -1)
        client_op = f"{1e6*client/n:.2f}" if client > 0 and n else "-"
        errs = ", ".join(f"{k} {v}" for k, v in st.get("codes", {}).items()) or "0"
        ratio = "-"
        if base and t != "allot" and r["throughput_per_s"] > 0:
            ratio = f"{base['throughput_per_s'] / r['throughput_per_s']:.2f}x"
        if s == "open50":
            ratio = f"rate {r['rate_per_s']:.0f}/s"
        print(f"| {s} | {t} | {op} | {r['throughput_per_s']:.0f} | {ms(st.get('p50_us',0))} | "
              f"{ms(st.get('p99_us',0))} | {ms(st.get('p999_us',0))} | {cpu_op} | {client_op} | {errs} | {ratio} |")
PY
if [ -f "$out/allot-checkout.json" ]; then
  curves=()
  for t in $TARGETS; do [ -f "$out/$t-checkout.json" ] && curves+=("$out/$t-checkout.json"); done
  for t in $TARGETS; do [ -f "$out/$t-open50.json" ] && curves+=("$out/$t-open50.json"); done
  "$BENCH" plot --svg "$out/latency.svg" "${curves[@]}" && echo "plot: $out/latency.svg" >&2
fi
echo "results: $out" >&2
