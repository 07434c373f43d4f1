#!/usr/bin/env bash
# checkpoint-cpu.sh ALLOTD... - what one dirty object costs the checkpoint thread: its CPU time
# over the objects it wrote while HOLDS one-line reserves ran (automatic checkpoints as
# configured by default) and a final server.checkpoint wrote the rest.
#
# usage: bench/checkpoint-cpu.sh build/release/allotd [/tmp/old/allotd ...]
# env:   HOLDS=1000000 SKUS=1000 FSYNC=none ROUNDS=1 SERVER_OPTS="" (more allotd options, e.g.
#        "--checkpoint-dirty-max 100000" for a checkpoint every 100k objects)
#        BENCH=build/release/bench/allot-bench ALLOT=build/release/allot
# Per binary and round (binaries alternate within a round): the checkpoint thread's CPU (user +
# system, from /proc; it is the thread running CHECKPOINT_WRITER_NICE levels below the loop),
# the objects it wrote (puts + deletes of the `event=checkpoint` log lines), us per object, the
# checkpoints, the final LMDB file size, the loop thread's CPU per reserve (serializing the
# batches is part of it) and its page faults per reserve (fresh pages it touched; a huge page
# counts once).
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,12p "$0" >&2; exit 64; }
here=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$here/build/release/bench/allot-bench}
ALLOT=${ALLOT:-$here/build/release/allot}
HOLDS=${HOLDS:-1000000} SKUS=${SKUS:-1000} FSYNC=${FSYNC:-none} ROUNDS=${ROUNDS:-1}
work=$(mktemp -d /tmp/allot-cpcpu-XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
# user + system ticks of one thread (fields 14 and 15 of its stat; the name may hold spaces)
thread_ticks() { sed 's/^.*) //' /proc/"$1"/task/"$2"/stat | awk '{print $12 + $13}'; }
thread_faults() { sed 's/^.*) //' /proc/"$1"/task/"$2"/stat | awk '{print $8}'; }
thread_nice() { sed 's/^.*) //' /proc/"$1"/task/"$2"/stat | awk '{print $17}'; }
# the checkpoint writer: the one thread whose nice value is above the loop's
writer_tid() {
  local base t
  base=$(thread_nice "$1" "$1")
  for t in /proc/"$1"/task/*; do
    t=${t##*/}
    [ "$(thread_nice "$1" "$t")" -gt "$base" ] && { echo "$t"; return; }
  done
  echo "no checkpoint thread found" >&2; exit 1
}

echo "# checkpoint-cpu.sh HOLDS=$HOLDS SKUS=$SKUS FSYNC=$FSYNC $(date -u +%FT%TZ)" \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    cp "$bin" "$work/allotd"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -rf "$work/data"
    "$work/allotd" --listen 127.0.0.1:"$port" --data-dir "$work/data" --fsync "$FSYNC" \
      --log-level info ${SERVER_OPTS:-} >"$work/allotd.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
    "$BENCH" load --target allot://127.0.0.1:"$port" --skus "$SKUS" --quiet >/dev/null 2>&1
    "$ALLOT" -p "$port" -t 600000 server.checkpoint >/dev/null
    tid=$(writer_tid "$pid")
    w0=$(thread_ticks "$pid" "$tid") l0=$(thread_ticks "$pid" "$pid") f0=$(thread_faults "$pid" "$pid")
    skip=$(grep -c 'event=checkpoint ' "$work/allotd.log" || true)
    "$BENCH" --target allot://127.0.0.1:"$port" --skus "$SKUS" --scenario reserve \
      --requests "$HOLDS" --duration 600 --quiet >/dev/null 2>&1
    "$ALLOT" -p "$port" -t 600000 server.checkpoint >/dev/null
    w1=$(thread_ticks "$pid" "$tid") l1=$(thread_ticks "$pid" "$pid") f1=$(thread_faults "$pid" "$pid")
    bytes=$(stat -c %s "$work/data/state.lmdb") used=$(du -k "$work/data/state.lmdb" | cut -f1)
    grep 'event=checkpoint ' "$work/allotd.log" | tail -n +"$((skip + 1))" >"$work/cps.log"
    python3 - "$bin" "$w0" "$w1" "$l0" "$l1" "$HOLDS" "$work/cps.log" "$bytes" "$used" \
      "$(getconf CLK_TCK)" "$f0" "$f1" <<'PY'
import re, sys
bin, w0, w1, l0, l1, holds, log, size, used, hz, f0, f1 = sys.argv[1:]
w = (int(w1) - int(w0)) / int(hz)
loop = (int(l1) - int(l0)) / int(hz)
objects = cps = 0
for line in open(log):
    m = re.search(r"puts=(\d+) deletes=(\d+)", line)
    if m:
        cps += 1
        objects += int(m.group(1)) + int(m.group(2))
print("%s: checkpoint thread %.2f s for %d objects in %d checkpoints: %.2f us per object; "
      "state.lmdb %d MB (%d MB allocated); loop %.2f s: %.2f us per reserve, %.4f page faults "
      "per reserve" % (
      bin, w, objects, cps, w * 1e6 / max(objects, 1), int(size) >> 20, int(used) >> 10,
      loop, loop * 1e6 / int(holds), (int(f1) - int(f0)) / int(holds)))
PY
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
