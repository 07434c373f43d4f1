#!/usr/bin/env bash
# ab-promise.sh - the product page's avail.get on two allotd binaries (A: before, B: after),
# alternating A, B, A, B... in one session on the same machine:
#   (a) browse1 and browse20: avail.get of 1 and of 20 SKUs without promise, A against B
#       ("without promise exactly as fast as before": the B/A ratios should be 1 within noise);
#   (b) promise20: the 20-SKU listing with promise: true, on each side whose server accepts the
#       key, its locations given calendars in six time zones and ship three transit bands first
#       (through the allot CLI: CLI=build/release/allot); skipped, with the server's answer, on a
#       side that refuses the key.
# Within a round the order is A, B in odd rounds and B, A in even ones (PAIRS=4 balances it).
# One line per run: SKU lookups per server-CPU second (server CPU from /proc/PID/stat through
# allot-bench --server-pid) and which side limited the run; then the B/A medians.
#
# usage: bench/ab-promise.sh A_ALLOTD B_ALLOTD
# env:   PAIRS=4 DURATION=5 WARMUP=1 SKUS=1000000 LOCATIONS=10 CONNECTIONS=50 PIPELINE=16
#        BENCH=build/release/bench/allot-bench  PIN=1 (servers on CPU 0, the bench's one thread
#        on CPU 1)
set -euo pipefail
[ $# -eq 2 ] || { sed -n 2,15p "$0" >&2; exit 64; }
A=$1 B=$2
here=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$here/build/release/bench/allot-bench}
CLI=${CLI:-$here/build/release/allot}
PAIRS=${PAIRS:-4} DURATION=${DURATION:-5} WARMUP=${WARMUP:-1}
SKUS=${SKUS:-1000000} LOCATIONS=${LOCATIONS:-10} PIN=${PIN:-1}
CONNECTIONS=${CONNECTIONS:-50} PIPELINE=${PIPELINE:-16}
server_cpu=() bench_cpu=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) bench_cpu=(taskset -c 1)
fi
work=$(mktemp -d /tmp/allot-ab-promise-XXXXXX)
declare -A pid port promise
cleanup() {
  for s in "${!pid[@]}"; do kill "${pid[$s]}" 2>/dev/null || true; done
  for s in "${!pid[@]}"; do wait "${pid[$s]}" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # SIDE BINARY: a server with the catalogue loaded (reads only: no fsync needed)
  local p
  p=$(free_port)
  mkdir -p "$work/$1"
  "${server_cpu[@]}" "$2" --listen 127.0.0.1:"$p" --data-dir "$work/$1" --fsync none \
    --log-level warn >"$work/$1.log" 2>&1 &
  pid[$1]=$!
  port[$1]=$p
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break
    sleep 0.05
  done
  "$BENCH" load --target allot://127.0.0.1:"$p" --skus "$SKUS" --locations "$LOCATIONS" \
    --quiet >/dev/null 2>&1
}
calendars() { # SIDE: every location gets a calendar (six zones) and ship gets three bands, so
  # that promise20 works out real promises (a location without them promises nothing)
  "$CLI" -p "${port[$1]}" -r location.list | python3 -c '
import json, sys
zones = ["Europe/Berlin", "Europe/London", "America/New_York", "Asia/Tokyo",
         "Australia/Sydney", "America/Los_Angeles"]
for i, loc in enumerate(json.load(sys.stdin)["locations"]):
    loc.update(timezone=zones[i % 6], cutoff="%02d:30" % (12 + i % 6), processing_days=i % 3,
               holidays=["2026-12-24", "2026-12-25", "2026-12-26", "2027-01-01"])
    print("location.put " + json.dumps(loc))
print("transit.set " + json.dumps({"method": "ship", "bands": [
    {"max_km": 300, "min_days": 1, "max_days": 1}, {"max_km": 1500, "min_days": 1, "max_days": 3},
    {"max_km": 20000, "min_days": 3, "max_days": 8}]}))
' | "$CLI" -p "${port[$1]}" -r >/dev/null
}
run() { # SIDE CASE RUN [options]: one measured run, its JSON in $work/SIDE-CASE-RUN.json
  local side=$1 name=$2 i=$3
  shift 3
  "${bench_cpu[@]}" "$BENCH" --target allot://127.0.0.1:"${port[$side]}" --scenario browse \
    --skus "$SKUS" --connections "$CONNECTIONS" --pipeline "$PIPELINE" --threads 1 \
    --duration "$DURATION" --warmup "$WARMUP" --server-pid "${pid[$side]}" --quiet \
    --label "$side $name" --json "$work/$side-$name-$i.json" "$@" >/dev/null
}
# run copies: a rebuild during the runs replaces the binaries on disk
cp "$A" "$work/allotd-A"
cp "$B" "$work/allotd-B"
start A "$work/allotd-A"
start B "$work/allotd-B"
echo "# ab-promise.sh (SKUS=$SKUS LOCATIONS=$LOCATIONS DURATION=$DURATION PAIRS=$PAIRS" \
  "CONNECTIONS=$CONNECTIONS PIPELINE=$PIPELINE, $(date -u +%FT%TZ))"
echo "# A: $A"
echo "# B: $B"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# (b) needs a server that accepts promise: true on avail.get; allot-bench checks it before a
# run and exits with status 5 (BENCH_EXIT_UNSUPPORTED) when the server refuses the key
for s in A B; do
  status=0
  "$BENCH" --target allot://127.0.0.1:"${port[$s]}" --scenario browse --skus "$SKUS" \
    --skus-per-request 20 --promise --requests 1 --warmup 0 --connections 1 --pipeline 1 \
    --threads 1 --quiet >/dev/null 2>"$work/$s-probe.err" || status=$?
  case $status in
  0) promise[$s]=1 ;;
  5) promise[$s]=0
     echo "# (b) promise20 skipped on $s: $(sed 's/^allot-bench: //' "$work/$s-probe.err")" ;;
  *) echo "ab-promise.sh: the probe of $s failed (status $status):" >&2
     cat "$work/$s-probe.err" >&2
     exit 1 ;;
  esac
done
# A first in odd rounds, B first in even ones: the second of a pair tends to find the machine
# warmer, and the order must not pass for a difference between the binaries. (a) runs on the
# catalogues as loaded, the same on both sides; the calendars and bands for (b) come after it.
for i in $(seq "$PAIRS"); do
  sides="A B"
  if [ $((i % 2)) = 0 ]; then sides="B A"; fi
  for s in $sides; do run "$s" browse1 "$i" --skus-per-request 1; done
  for s in $sides; do run "$s" browse20 "$i" --skus-per-request 20; done
done
for s in A B; do
  if [ "${promise[$s]}" = 1 ]; then calendars "$s"; fi
done
for i in $(seq "$PAIRS"); do
  sides="A B"
  if [ $((i % 2)) = 0 ]; then sides="B A"; fi
  for s in $sides; do
    if [ "${promise[$s]}" = 1 ]; then run "$s" promise20 "$i" --skus-per-request 20 --promise; fi
  done
done
python3 - "$work" "$PAIRS" <<'EOF'
import json, os, sys
work, pairs = sys.argv[1], int(sys.argv[2])
print("%-4s %-10s %3s %10s %8s %9s %13s %12s %6s %6s %-8s" % ("side", "case", "run", "per s",
      "p99 ms", "errors", "M lookups/cpu", "server us/rq", "srv %", "cli %", "limit"))
rows = {}
for name in ("browse1", "browse20", "promise20"):
    for i in range(1, pairs + 1):
        for s in "AB":
            path = "%s/%s-%s-%d.json" % (work, s, name, i)
            if not os.path.exists(path):
                continue
            r = json.load(open(path))
            op = r["ops"][r["primary_op"]]
            el, srv, cli = r["elapsed_s"], r["server_cpu_s"], r.get("client_cpu_s", -1)
            lookups = op["count"] * r["skus_per_request"] / srv / 1e6 if srv > 0 else 0
            row = (op["count"] / el, op["p99_us"] / 1e3, op["errors"], lookups,
                   1e6 * srv / op["count"] if op["count"] else 0, 100 * srv / el,
                   100 * cli / el, r.get("limited_by") or "-")
            rows.setdefault((name, s), []).append(row)
            print("%-4s %-10s %3d %10.0f %8.2f %9d %13.3f %12.3f %6.0f %6.0f %-8s"
                  % ((s, name, i) + row))
def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
for name in ("browse1", "browse20", "promise20"):
    a, b = rows.get((name, "A")), rows.get((name, "B"))
    for s, side in (("A", a), ("B", b)):
        if side:
            print("%-9s %s: median %.3fM SKU lookups per server-CPU second, limited by %s"
                  % (name, s, median([r[3] for r in side]),
                     ",".join(sorted(set(r[7] for r in side)))))
    if a and b:
        for label, k in (("throughput", 0), ("lookups per server-CPU s", 3)):
            ratios = sorted(y[k] / x[k] for x, y in zip(a, b) if x[k] > 0)
            print("%-9s B/A %-25s pairs: %s  median %.3f" % (name, label,
                  " ".join("%.3f" % x for x in ratios), median(ratios)))
EOF
