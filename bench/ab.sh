#!/usr/bin/env bash
# ab.sh - two allotd binaries (A: before, B: after) under the same allot-bench run, alternating
# A, B, A, B... on the same machine in one session; one line per run and the B/A ratios.
#
# usage: bench/ab.sh A_ALLOTD B_ALLOTD [allot-bench run options, e.g. --scenario reserve]
# env:   PAIRS=3 DURATION=5 WARMUP=1 SKUS=1000 LOCATIONS=10 FSYNC=always
#        BENCH=build/release/bench/allot-bench  PIN=1 (servers on CPU 0, the bench's one thread
#        on CPU 1)  LOAD=1 (LOAD=0: no catalogue, for --scenario ping against
#        build/release/bench/allot-echo-epoll, the bare epoll floor, as A)
#        SERVER_OPTS="" (more allotd options for both sides, e.g. "--checkpoint-dirty-max 100000"
#        to make checkpoints run in short runs; with ALLOT=build/release/allot, the CLI, the
#        checkpoints each side ran are printed at the end)
# Both servers start once (temp data dirs, free ports), are loaded with the same catalogue, and
# are stopped on exit; only one is under load at a time. The server and client CPU columns come
# from /proc (allot-bench --server-pid); "limit" says which side was saturated.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,15p "$0" >&2; exit 64; }
A=$1 B=$2
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$here/build/release/bench/allot-bench}
PAIRS=${PAIRS:-3} DURATION=${DURATION:-5} WARMUP=${WARMUP:-1}
SKUS=${SKUS:-1000} LOCATIONS=${LOCATIONS:-10} FSYNC=${FSYNC:-always} PIN=${PIN:-1} LOAD=${LOAD:-1}
server_cpu=() bench_cpu=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) bench_cpu=(taskset -c 1)
fi
work=$(mktemp -d /tmp/allot-ab-XXXXXX)
declare -A pid port
cleanup() {
  for s in "${!pid[@]}"; do kill "${pid[$s]}" 2>/dev/null || true; done
  for s in "${!pid[@]}"; do wait "${pid[$s]}" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # SIDE BINARY
  local p
  p=$(free_port)
  mkdir -p "$work/$1"
  "${server_cpu[@]}" "$2" --listen 127.0.0.1:"$p" --data-dir "$work/$1" --fsync "$FSYNC" \
    --log-level warn ${SERVER_OPTS:-} >"$work/$1.log" 2>&1 &
  pid[$1]=$!
  port[$1]=$p
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break
    sleep 0.05
  done
  [ "$LOAD" = 1 ] || return 0
  "$BENCH" load --target allot://127.0.0.1:"$p" --skus "$SKUS" --locations "$LOCATIONS" \
    --quiet >/dev/null 2>&1
}
# run copies: a rebuild during the runs replaces build/release/allotd on disk, and perf cannot
# read a binary that is gone (docs/benchmarks.md, "Profiling allotd")
cp "$A" "$work/allotd-A"
cp "$B" "$work/allotd-B"
start A "$work/allotd-A"
start B "$work/allotd-B"
echo "# ab.sh $* (SKUS=$SKUS FSYNC=$FSYNC DURATION=$DURATION PAIRS=$PAIRS, $(date -u +%FT%TZ))"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$PAIRS"); do
  for s in A B; do
    "${bench_cpu[@]}" "$BENCH" --target allot://127.0.0.1:"${port[$s]}" --skus "$SKUS" \
      --threads 1 --duration "$DURATION" --warmup "$WARMUP" --server-pid "${pid[$s]}" --quiet \
      --json "$work/$s-$i.json" "$@" >/dev/null
  done
done
python3 - "$work" "$PAIRS" <<'EOF'
import json, sys
work, pairs = sys.argv[1], int(sys.argv[2])
rows = {"A": [], "B": []}
print("%-4s %4s %12s %9s %9s %9s %12s %12s %7s %7s" % ("side", "run", "per s", "p50 ms", "p99 ms",
      "p99.9 ms", "server us/rq", "client us/rq", "srv %", "cli %"))
for i in range(1, pairs + 1):
    for s in "AB":
        r = json.load(open("%s/%s-%d.json" % (work, s, i)))
        op = r["ops"][r["primary_op"]]
        total = sum(o["count"] for o in r["ops"].values())
        el = r["elapsed_s"]
        srv, cli = r["server_cpu_s"], r.get("client_cpu_s", -1)
        row = (r["throughput_per_s"], op["p50_us"] / 1e3, op["p99_us"] / 1e3, op["p999_us"] / 1e3,
               1e6 * srv / total, 1e6 * cli / total, 100 * srv / el, 100 * cli / el)
        rows[s].append(row)
        print("%-4s %4d %12.0f %9.2f %9.2f %9.2f %12.3f %12.3f %7.0f %7.0f" % ((s, i) + row))
for name, k in (("throughput", 0), ("server us/request", 4), ("client us/request", 5)):
    ratios = sorted(b[k] / a[k] for a, b in zip(rows["A"], rows["B"]) if a[k] > 0)
    print("B/A %-18s pairs: %s  median %.3f" % (name, " ".join("%.3f" % x for x in ratios),
          ratios[len(ratios) // 2]))
EOF
if [ -n "${SERVER_OPTS:-}" ] && [ "$LOAD" = 1 ] && [ -x "${ALLOT:=$here/build/release/allot}" ]; then
  for s in A B; do
    "$ALLOT" -p "${port[$s]}" -r server.stats | python3 -c 'import json, sys
c = json.load(sys.stdin)["checkpoint"]
print("# %s: %d checkpoints, the last at LSN %d" % (sys.argv[1], c["count"], c["lsn"]))' "$s"
  done
fi
