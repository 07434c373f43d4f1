#!/bin/sh
# run.sh - the whole durability benchmark, as quoted in docs/benchmarks-recovery.md.
#   bench/recovery/run.sh BUILD_DIR [OUT_DIR]
# BUILD_DIR holds allotd and bench/recovery/allot-recovery-bench (a Release build). Data goes to
# $RB_DATA (default /tmp/allot-rb-10m, ~1.2 GB: check `df -h /tmp`) and is deleted at the end.
# Steps can be chosen with RB_STEPS (default: all, in this order).
set -eu
BUILD=${1:?usage: run.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-/tmp/rb-out}
DATA=${RB_DATA:-/tmp/allot-rb-10m}
STEPS=${RB_STEPS:-"machine fsync memlat generate inproc recover checkpoint throughput clean"}
B="$BUILD/bench/recovery/allot-recovery-bench"
A="$BUILD/allotd"
mkdir -p "$OUT"

for step in $STEPS; do
    echo "== $step ($(date -u +%H:%M:%S), load: $(cut -d' ' -f1-3 /proc/loadavg))"
    case $step in
    machine)
        { nproc; grep -m1 'model name' /proc/cpuinfo; free -m; df -h "$(dirname "$DATA")";
          uptime; } | tee "$OUT/machine.txt" ;;
    fsync)
        "$B" fsync-probe --dir "$(dirname "$DATA")" --count 500 | tee "$OUT/fsync.txt" ;;
    memlat)
        "$B" memlat --count 1024 | tee "$OUT/memlat.txt" ;;
    generate)
        rm -rf "$DATA"
        "$B" generate --dir "$DATA" --skus 1000000 --locations 10 --wal-records 5000000 \
            | tee "$OUT/generate.txt" ;;
    inproc)
        "$B" inproc --dir "$DATA" | tee "$OUT/inproc.txt" ;;
    recover)
        # kill -9 after the first pong: no shutdown checkpoint, the directory stays as generated
        { "$B" recover --dir "$DATA" --allotd "$A" --runs 3 --tmp "$OUT";
          "$B" recover --dir "$DATA" --allotd "$A" --runs 2 --cold --tmp "$OUT"; } \
            | tee "$OUT/recover.txt" ;;
    checkpoint)
        # changes the data directory (checkpoints, WAL truncation): run after recover
        "$B" checkpoint --dir "$DATA" --allotd "$A" --dirty 10000,100000,1000000 --rate 4000 \
            --tmp "$OUT" | tee "$OUT/checkpoint.txt" ;;
    throughput)
        "$B" throughput --allotd "$A" --modes always,interval:10,none --seconds 10 \
            --conns 16 --pipeline 16 --skus 1000 --rounds 2 --tmp "$OUT" \
            | tee "$OUT/throughput.txt" ;;
    clean)
        rm -rf "$DATA" "$OUT/allot-rb-throughput" ;;
    *)
        echo "unknown step $step" >&2; exit 2 ;;
    esac
done
