#!/usr/bin/env bash
# hold-memory.sh ALLOTD... - what a live hold costs: allotd's RSS growth over HOLDS one-line
# reserves (unique short ids, the default TTL, so all stay live), a checkpoint of them included.
#
# usage: bench/hold-memory.sh build/release/allotd [/tmp/old/allotd ...]
# env:   HOLDS=1000000 SKUS=1000 FSYNC=none BENCH=build/release/bench/allot-bench
#        ALLOT=build/release/allot (the CLI, for server.checkpoint and server.info)
#        LOGLEVEL=warn SERVER_LOG=(a temporary file; name one to keep the server's log, e.g. with
#        LOGLEVEL=info for its checkpoint lines)
# Prints, per binary: RSS before, after the reserves, after a checkpoint, and bytes per hold;
# what the RSS after the checkpoint is made of (anonymous memory, mapped files); and the peak RSS
# of the run (VmHWM: the reserves with the checkpoints they triggered, and the final one).
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,11p "$0" >&2; exit 64; }
here=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$here/build/release/bench/allot-bench}
ALLOT=${ALLOT:-$here/build/release/allot}
HOLDS=${HOLDS:-1000000} SKUS=${SKUS:-1000} FSYNC=${FSYNC:-none}
work=$(mktemp -d /tmp/allot-holdmem-XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
rss_kb() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' /proc/"$1"/status; }
# the parts of VmRSS: anonymous memory (the heap) and mapped files (the LMDB maps, events.lmdb)
rss_parts() {
  awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {printf "anon %d MB, file %d MB", a/1024, f/1024}' \
    /proc/"$1"/status
}

for bin in "$@"; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rm -rf "$work/data"
  "$bin" --listen 127.0.0.1:"$port" --data-dir "$work/data" --fsync "$FSYNC" \
    --log-level "${LOGLEVEL:-warn}" >"${SERVER_LOG:-$work/allotd.log}" 2>&1 &
  pid=$!
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
  "$BENCH" load --target allot://127.0.0.1:"$port" --skus "$SKUS" --quiet >/dev/null 2>&1
  "$ALLOT" -p "$port" -t 600000 server.checkpoint >/dev/null
  before=$(rss_kb "$pid")
  "$BENCH" --target allot://127.0.0.1:"$port" --skus "$SKUS" --scenario reserve \
    --requests "$HOLDS" --duration 600 --quiet >/dev/null 2>&1
  after=$(rss_kb "$pid")
  "$ALLOT" -p "$port" -t 600000 server.checkpoint >/dev/null
  checkpointed=$(rss_kb "$pid") parts=$(rss_parts "$pid") hwm=$(hwm_kb "$pid")
  live=$("$ALLOT" -p "$port" -r server.info | python3 -c 'import json,sys; print(json.load(sys.stdin)["reservations"])')
  python3 - "$bin" "$before" "$after" "$checkpointed" "$live" "$parts" "$hwm" <<'EOF'
import sys
bin, before, after, cp, live, parts, hwm = (sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6],
                                            int(sys.argv[7]))
peak = max(after, cp)
print("%s: %d live holds; RSS %d MB -> %d MB after the reserves -> %d MB after a checkpoint: "
      "%.0f bytes per hold (%.0f before the checkpoint); after it: %s" % (bin, live,
      before // 1024, after // 1024, cp // 1024, (peak - before) * 1024 / live,
      (after - before) * 1024 / live, parts))
print("%s: after the final checkpoint %.0f bytes per live hold; peak RSS (VmHWM) %d MB, "
      "%.0f bytes per hold" % (bin, (cp - before) * 1024 / live, hwm // 1024,
      (hwm - before) * 1024 / live))
EOF
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
