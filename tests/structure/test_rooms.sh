#!/usr/bin/env bash
# test_rooms.sh BUILD_DIR SOURCE_DIR - the rooms of docs/architecture.md hold in the build: each
# check names what it found where a room reaches past what it may call.
set -euo pipefail
build_dir=$1
source_dir=$2
command -v nm >/dev/null || { echo "SKIP: nm is not installed (binutils)"; exit 77; }
failed=0
fail() {
  echo "FAIL: $*" >&2
  failed=1
}

# allot-wal reads: it links the read side of persist/ (allot_persist_read) and nothing that
# writes (the WAL writer, the checkpoint writer) or runs a loop (libuv).
wal_tool="$build_dir/allot-wal"
[ -x "$wal_tool" ] || { echo "FAIL: $wal_tool was not built" >&2; exit 1; }
writers=$(nm "$wal_tool" | grep -E ' (wal_open|wal_append|wal_writer_main|checkpoint_writer_start|checkpoint_store_write|uv_[a-z_]+)$' || true)
[ -z "$writers" ] || fail "allot-wal links writing code:"$'\n'"$writers"

exit $failed
