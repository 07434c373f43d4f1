#!/usr/bin/env bash
# fuzz-run.sh SECONDS TARGET... - run each libFuzzer target from build/fuzz for SECONDS, starting
# from the checked-in seeds (tests/fuzz/corpus/<name>) and the corpus grown by earlier runs
# (build/fuzz/corpus/<name>). Fails when a target finds a crash, leak or timeout.
set -euo pipefail
seconds=$1
shift
cd "$(dirname "$0")/.."
status=0
for target in "$@"; do
  name=${target#fuzz_}
  [ "$name" = wal_record ] && name=wal
  grown=build/fuzz/corpus/$name
  mkdir -p "$grown"
  seeds=tests/fuzz/corpus/$name
  echo "fuzz: $target for ${seconds}s"
  if ! (cd build/fuzz && "./$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 "../../$grown" "../../$seeds" > "fuzz-$name.log" 2>&1); then
    echo "fuzz: $target FAILED; see build/fuzz/fuzz-$name.log" >&2
    tail -40 "build/fuzz/fuzz-$name.log" >&2
    status=1
  else
    grep -E "^stat::number_of_executed_units|^Done" "build/fuzz/fuzz-$name.log" | tail -1
  fi
done
exit $status
