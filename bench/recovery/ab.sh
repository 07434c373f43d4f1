#!/bin/sh
# ab.sh - compare allotd binaries on one recovery data set in alternating runs: the machine's
# speed drifts by up to 1.5x within minutes, so only runs taken in turn are comparable.
#   bench/recovery/ab.sh BENCH DIR ROUNDS ALLOTD_A ALLOTD_B [...]
#   e.g. bench/recovery/ab.sh build/recovery/bench/recovery/allot-recovery-bench \
#            /tmp/allot-rb-10m 5 /tmp/allotd-before build/recovery/allotd
# Prints "binary ready_s lmdb_ms replay_ms" per run, then the means per binary.
BENCH=$1; DIR=$2; ROUNDS=$3; shift 3
OUT="${TMPDIR:-/tmp}/rb-ab"
mkdir -p "$OUT"
for round in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        "$BENCH" recover --dir "$DIR" --allotd "$bin" --runs 1 --tmp "$OUT" 2>&1 |
            sed -n 's/.*ready_s=\([0-9.]*\).*lmdb_load_ms=\([0-9]*\) wal_replay_ms=\([0-9]*\).*/\1 \2 \3/p' |
            sed "s|^|$bin |"
    done
done | awk '{ print; s[$1] += $2; l[$1] += $3; r[$1] += $4; n[$1]++ }
            END { for (b in s) printf "mean %s ready_s=%.3f lmdb_ms=%.0f replay_ms=%.0f runs=%d\n",
                                     b, s[b] / n[b], l[b] / n[b], r[b] / n[b], n[b] }'
