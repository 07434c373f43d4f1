#!/usr/bin/env bash
# fuzz-run.sh MODE ... - run the libFuzzer targets built in build/fuzz.
#
#   fuzz-run.sh smoke RUNS SEED TARGET...      (make fuzz-smoke, part of make test)
#       The same run on every machine, whatever earlier runs left behind: each target first runs
#       every checked-in seed (tests/fuzz/corpus/<name>) once, as a regression test, then
#       explores RUNS inputs with the fixed libFuzzer seed SEED starting from those seeds only,
#       into a scratch corpus that is thrown away (build/fuzz/corpus is neither read nor
#       written). What else made two such runs differ is off: -reload=0 (no time-driven
#       re-reading of the corpus), -use_cmp=0 (compared values that are addresses, which ASLR
#       moves, would steer the mutations), and the stack-depth feature (not compiled in; see
#       CMakeLists.txt).
#   fuzz-run.sh explore SECONDS TARGET...      (make fuzz)
#       Open-ended: a random seed (printed in the log as "Seed:"), SECONDS per target, from the
#       seeds and the corpus grown by earlier runs (build/fuzz/corpus/<name>, kept).
#
# Fails when a target finds a crash, leak, timeout or undefined behaviour. The input that did it
# is left in build/fuzz/ (crash-*, leak-*, timeout-*): fix the cause and add the input to
# tests/fuzz/corpus/<name> as a regression seed (named for what it caught).
set -euo pipefail
usage() {
  echo "usage: $0 smoke RUNS SEED TARGET... | $0 explore SECONDS TARGET..." >&2
  exit 2
}
[ $# -ge 1 ] || usage
mode=$1
shift
case $mode in
  smoke) [ $# -ge 3 ] || usage; runs=$1; seed=$2; shift 2 ;;
  explore) [ $# -ge 2 ] || usage; seconds=$1; shift ;;
  *) usage ;;
esac
cd "$(dirname "$0")/.."
root=$(pwd)
common=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "-artifact_prefix=$root/build/fuzz/")

corpus_name() {
  local name=${1#fuzz_}
  [ "$name" = wal_record ] && name=wal
  echo "$name"
}

# run WHAT LOG COMMAND...: run one fuzzer command, logging to build/fuzz/LOG; on failure say
# WHAT failed and show the log's tail.
run() {
  local what=$1 log=$root/build/fuzz/$2
  shift 2
  if ! "$@" > "$log" 2>&1; then
    echo "fuzz: $what FAILED; see $log" >&2
    tail -40 "$log" >&2
    return 1
  fi
}

status=0
for target in "$@"; do
  name=$(corpus_name "$target")
  binary=$root/build/fuzz/$target
  seeds=$root/tests/fuzz/corpus/$name
  if [ "$mode" = smoke ]; then
    shopt -s nullglob
    files=("$seeds"/*)
    shopt -u nullglob
    echo "fuzz: $target: ${#files[@]} checked-in seeds once, then $runs runs from them (seed $seed)"
    if [ ${#files[@]} -gt 0 ] &&
      ! run "$target on the checked-in seeds" "fuzz-$name-regression.log" "$binary" \
        "${common[@]}" "${files[@]}"; then
      status=1
      continue
    fi
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/allot-fuzz-$name.XXXXXX")
    if run "$target exploring (seed $seed)" "fuzz-$name.log" "$binary" "${common[@]}" \
      -seed="$seed" -runs="$runs" -reload=0 -use_cmp=0 "$scratch" "$seeds"; then
      grep -E "^#[0-9]+[[:space:]]+DONE" "$root/build/fuzz/fuzz-$name.log" | tail -1
    else
      status=1
    fi
    rm -rf "$scratch"
  else
    grown=$root/build/fuzz/corpus/$name
    mkdir -p "$grown"
    echo "fuzz: $target for ${seconds}s"
    if run "$target" "fuzz-$name.log" "$binary" "${common[@]}" -max_total_time="$seconds" \
      "$grown" "$seeds"; then
      grep -E "^stat::number_of_executed_units|^Done" "$root/build/fuzz/fuzz-$name.log" | tail -1
    else
      status=1
    fi
  fi
done
exit $status
