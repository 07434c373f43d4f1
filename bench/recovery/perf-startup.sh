#!/bin/sh
# perf-startup.sh - profile allotd's recovery: start it on DIR, attach perf, kill -9 (by pid)
# as soon as it listens (no shutdown checkpoint: DIR is unchanged).
#   bench/recovery/perf-startup.sh ALLOTD DIR OUT.data [perf record options, e.g. -F 199 --call-graph dwarf,16384]
#   perf report -i OUT.data --no-children --sort symbol --stdio -G
ALLOTD=$1; DIR=$2; OUT=$3; shift 3
PORT=${RB_PORT:-17998}
"$ALLOTD" --data-dir "$DIR" --listen 127.0.0.1:$PORT \
    --checkpoint-interval-s 0 --checkpoint-wal-bytes 0 --checkpoint-dirty-max 0 2>"$OUT.log" &
PID=$!
perf record "$@" -p $PID -o "$OUT" 2>"$OUT.perf.log" &
PERF=$!
until python3 -c "import socket;socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null; do
    kill -0 $PID 2>/dev/null || { echo "allotd exited; see $OUT.log" >&2; break; }
    sleep 0.05
done
kill -9 $PID 2>/dev/null
wait $PID 2>/dev/null
kill -INT $PERF 2>/dev/null
wait $PERF
