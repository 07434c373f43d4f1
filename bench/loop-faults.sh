#!/usr/bin/env bash
# loop-faults.sh - minor page faults of allotd's loop thread (and of the whole process) per
# request over a closed-loop run: a count machine noise does not move. Two binaries (A: before,
# B: after) alternate, A, B, A, B..., each run on a fresh server and data dir.
#
# usage: bench/loop-faults.sh A_ALLOTD B_ALLOTD
# env:   PAIRS=3 DURATION=20 WARM=10 (an unmeasured run first, seconds; 0: none) SKUS=1000
#        FSYNC=always SCENARIO=reserve BENCH=build/release/bench/allot-bench
# The server runs on CPU 0, the bench's one thread on CPU 1 (taskset). Faults are read from
# /proc/PID/task/PID/stat (the loop thread) and /proc/PID/stat (every thread), field 10, before
# and after the measured run. The checkpoint log lines of each run are printed after its row.
set -euo pipefail
[ $# -eq 2 ] || { sed -n 2,11p "$0" >&2; exit 64; }
here=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$here/build/release/bench/allot-bench}
PAIRS=${PAIRS:-3} DURATION=${DURATION:-20} WARM=${WARM:-10} SKUS=${SKUS:-1000}
FSYNC=${FSYNC:-always} SCENARIO=${SCENARIO:-reserve}
work=$(mktemp -d /tmp/allot-faults-XXXXXX)
cp "$1" "$work/allotd-A"
cp "$2" "$work/allotd-B"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
minflt() { awk '{print $10}' "$1"; } # the command name, allotd-A or -B, has no blank
run() { # PORT SECONDS [more allot-bench options]
  local p=$1 s=$2
  shift 2
  taskset -c 1 "$BENCH" --target allot://127.0.0.1:"$p" --skus "$SKUS" --threads 1 \
    --duration "$s" --warmup 0 --quiet --scenario "$SCENARIO" "$@" >/dev/null
}
echo "# loop-faults.sh SKUS=$SKUS FSYNC=$FSYNC SCENARIO=$SCENARIO DURATION=$DURATION WARM=$WARM" \
  "PAIRS=$PAIRS, $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-4s %4s %10s %12s %12s %10s %10s %10s\n" side run requests loop_faults proc_faults \
  loop/rq proc/rq srv_us/rq
for i in $(seq "$PAIRS"); do
  for s in A B; do
    p=$(free_port)
    mkdir -p "$work/data-$s-$i"
    taskset -c 0 "$work/allotd-$s" --listen 127.0.0.1:"$p" --data-dir "$work/data-$s-$i" \
      --fsync "$FSYNC" --log-level info >"$work/$s-$i.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
      (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break
      sleep 0.05
    done
    "$BENCH" load --target allot://127.0.0.1:"$p" --skus "$SKUS" --locations 10 --quiet \
      >/dev/null 2>&1
    [ "$WARM" -gt 0 ] && run "$p" "$WARM"
    loop0=$(minflt /proc/$pid/task/$pid/stat) proc0=$(minflt /proc/$pid/stat)
    run "$p" "$DURATION" --server-pid "$pid" --json "$work/$s-$i.json"
    loop1=$(minflt /proc/$pid/task/$pid/stat) proc1=$(minflt /proc/$pid/stat)
    python3 - "$work/$s-$i.json" "$s" "$i" $((loop1 - loop0)) $((proc1 - proc0)) <<'PY'
import json, sys
path, side, run = sys.argv[1:4]
loop, proc = int(sys.argv[4]), int(sys.argv[5])
r = json.load(open(path))
n = sum(o["count"] for o in r["ops"].values())
print("%-4s %4s %10d %12d %12d %10.4f %10.4f %10.3f"
      % (side, run, n, loop, proc, loop / n, proc / n, 1e6 * r["server_cpu_s"] / n))
PY
    grep "event=checkpoint " "$work/$s-$i.log" | sed "s/^/#   $s-$i /" || true
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
  done
done
