#!/usr/bin/env bash
# ab-client.sh - what the load client costs: allot-bench binaries (B, B2...) against the minimal
# epoll client allot-ping-epoll (A) on the same server in the same session, alternating A, B...,
# for ping and 1-SKU avail.get on allotd and ping on allot-echo-epoll (which takes the server's
# cost out); one line per run and, per allot-bench, the client-CPU-per-request ratios to A.
# The workloads "reserve" (closed loop), "open" (reserve in open loop at RATE/s) and "openecho"
# (ping in open loop at RATE/s on allot-echo-epoll, the client's cost without a busy server) have
# no minimal client: there the allot-bench binaries alternate among themselves and the ratios are
# to the first one named (give the baseline first, e.g. A=/tmp/A/allot-bench B=build/...).
#
# usage: bench/ab-client.sh [NAME=ALLOT_BENCH]...   (default: bench=build/release/bench/allot-bench)
# env:   PAIRS=5 DURATION=3 WARMUP=1 SKUS=1000 LOCATIONS=10 CONNECTIONS=50 PIPELINE=16
#        BUILD=build/release (allotd, bench/allot-ping-epoll, bench/allot-echo-epoll)
#        ALLOTD=$BUILD/allotd  FSYNC=none  RATE=95000 (open)  OPEN_OPTS="" (more options for
#        the open-loop runs of every binary, e.g. --send-window-us 0 where all know it)
#        WORKLOADS="ping avail echo" (also: reserve open openecho)
#        PIN=1 (servers on CPU 0, the client's one thread on CPU 1)
# allotd runs with --fsync $FSYNC; avail.get asks for S00000000 from both clients. "limit" names
# the side busy 85% of its thread or more (BENCH_SATURATED_PERCENT), "-" when neither was: the
# run then says little about either side. Open-loop rows add the latency (p50, p99), how late the
# client sent (sent-late p50, p99) and the times every slot was busy.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$here/build/release}
PAIRS=${PAIRS:-5} DURATION=${DURATION:-3} WARMUP=${WARMUP:-1}
SKUS=${SKUS:-1000} LOCATIONS=${LOCATIONS:-10} CONNECTIONS=${CONNECTIONS:-50}
PIPELINE=${PIPELINE:-16} WORKLOADS=${WORKLOADS:-"ping avail echo"} PIN=${PIN:-1}
ALLOTD=${ALLOTD:-$BUILD/allotd} FSYNC=${FSYNC:-none} RATE=${RATE:-95000} OPEN_OPTS=${OPEN_OPTS:-}
[ $# -gt 0 ] || set -- bench="$BUILD/bench/allot-bench"
case ${1:-} in -h | --help) sed -n 2,21p "$0"; exit 0 ;; esac
server_cpu=() client_cpu=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) client_cpu=(taskset -c 1)
fi
work=$(mktemp -d /tmp/allot-ab-client-XXXXXX)
declare -A pid port
cleanup() {
  for s in "${!pid[@]}"; do kill "${pid[$s]}" 2>/dev/null || true; done
  for s in "${!pid[@]}"; do wait "${pid[$s]}" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # NAME BINARY
  local p
  p=$(free_port)
  mkdir -p "$work/data-$1"
  "${server_cpu[@]}" "$2" --listen 127.0.0.1:"$p" --data-dir "$work/data-$1" --fsync "$FSYNC" \
    --log-level warn >"$work/data-$1.log" 2>&1 &
  pid[$1]=$!
  port[$1]=$p
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "ab-client.sh: $2 did not start" >&2
  exit 1
}
# copies: a rebuild during the runs must not replace what runs (docs/benchmarks.md)
cp "$ALLOTD" "$work/allotd"
cp "$BUILD/bench/allot-echo-epoll" "$work/allot-echo-epoll"
cp "$BUILD/bench/allot-ping-epoll" "$work/allot-ping-epoll"
names=()
for arg in "$@"; do
  names+=("${arg%%=*}")
  cp "${arg#*=}" "$work/bench-${arg%%=*}"
done
start allotd "$work/allotd"
start echo "$work/allot-echo-epoll"
"$work/bench-${names[0]}" load --target allot://127.0.0.1:"${port[allotd]}" --skus "$SKUS" \
  --locations "$LOCATIONS" --quiet >/dev/null
echo "# ab-client.sh $* (SKUS=$SKUS DURATION=$DURATION PAIRS=$PAIRS ${CONNECTIONS}x$PIPELINE" \
  "FSYNC=$FSYNC, $(date -u +%FT%TZ))"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
common=(--connections "$CONNECTIONS" --pipeline "$PIPELINE" --duration "$DURATION"
        --warmup "$WARMUP")
read -ra open_opts <<<"$OPEN_OPTS"
for w in $WORKLOADS; do
  min=1 extra=()
  case $w in
  ping) server=allotd method=ping scenario=(--scenario ping) ;;
  # --skus 1: allot-bench asks for S00000000 every time, as allot-ping-epoll does, so that the
  # server's work (and with it the batches each read brings) is the same for both clients
  avail) server=allotd method=avail.get scenario=(--scenario browse --skus 1) ;;
  echo) server=echo method=ping scenario=(--scenario ping) ;;
  reserve) server=allotd min=0 scenario=(--scenario reserve) ;;
  open)
    server=allotd min=0 scenario=(--scenario reserve --rate "$RATE") extra=("${open_opts[@]}") ;;
  openecho)
    server=echo min=0 scenario=(--scenario ping --rate "$RATE") extra=("${open_opts[@]}") ;;
  *) echo "ab-client.sh: unknown workload $w" >&2; exit 64 ;;
  esac
  for i in $(seq "$PAIRS"); do
    if [ "$min" = 1 ]; then
      "${client_cpu[@]}" "$work/allot-ping-epoll" --target 127.0.0.1:"${port[$server]}" \
        --method "$method" --server-pid "${pid[$server]}" --json "$work/$w-min-$i.json" \
        "${common[@]}" >/dev/null
    fi
    for n in "${names[@]}"; do
      # an open loop the server cannot keep up with exits 2 (requests still in flight)
      "${client_cpu[@]}" "$work/bench-$n" --target allot://127.0.0.1:"${port[$server]}" \
        --threads 1 --server-pid "${pid[$server]}" --quiet --json "$work/$w-$n-$i.json" \
        --skus "$SKUS" "${common[@]}" "${scenario[@]}" "${extra[@]}" >/dev/null || [ $? = 2 ]
    done
  done
done
python3 - "$work" "$PAIRS" "$WORKLOADS" "${names[@]}" <<'EOF'
import json, os, sys
work, pairs, workloads, names = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
SATURATED = 85
def row(path):
    r = json.load(open(path))
    if "ops" in r:  # allot-bench
        total = sum(o["count"] for o in r["ops"].values())
    else:
        total = r["requests"]
    el, srv, cli = r["elapsed_s"], r["server_cpu_s"], r["client_cpu_s"]
    srv_pct, cli_pct = 100 * srv / el, 100 * cli / el
    limit = "-"
    if max(srv_pct, cli_pct) >= SATURATED:
        limit = "server" if srv_pct >= cli_pct else "client"
    total = max(total, 1)
    return (total / el, 1e6 * srv / total, 1e6 * cli / total, srv_pct, cli_pct, limit)
def open_row(path):
    r = json.load(open(path))
    op, late = r["ops"][r["primary_op"]], r["send_late_us"]
    return "%9.2f %9.2f %10.1f %10.1f %6d" % (op["p50_us"] / 1e3, op["p99_us"] / 1e3, late["p50"],
                                             late["p99"], r["slot_waits"])
print("%-7s %-8s %4s %12s %12s %12s %6s %6s %7s   (open: p50 ms, p99 ms, late p50 us, "
      "late p99 us, slot waits)" % ("load", "client", "run", "per s", "server us/rq",
                                    "client us/rq", "srv %", "cli %", "limit"))
rows = {}
for w in workloads:
    clients = (["min"] if w not in ("reserve", "open", "openecho") else []) + names
    for i in range(1, pairs + 1):
        for n in clients:
            path = "%s/%s-%s-%d.json" % (work, w, n, i)
            if not os.path.exists(path):
                print("%-7s %-8s %4d  (no result)" % (w, n, i))
                continue
            r = row(path)
            rows.setdefault((w, n), []).append(r)
            print("%-7s %-8s %4d %12.0f %12.3f %12.3f %6.0f %6.0f %7s" % ((w, n, i) + r) +
                  ("   " + open_row(path) if w.startswith("open") else ""))
for w in workloads:
    base = "min" if w not in ("reserve", "open", "openecho") else names[0]
    for n in names:
        if n == base:
            continue
        for label, k in (("client us/request", 2), ("throughput", 0)):
            ratios = sorted(b[k] / a[k] for a, b in zip(rows.get((w, base), []),
                                                         rows.get((w, n), [])) if a[k] > 0)
            if ratios:
                print("%-7s %s/%s %-18s pairs: %s  median %.3f" % (w, n, base, label,
                      " ".join("%.3f" % x for x in ratios), ratios[len(ratios) // 2]))
EOF
