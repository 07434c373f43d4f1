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

# The server takes the one MessagePack framer (client/frame.c) and, for the HTTP front door,
# JSON <-> MessagePack (client/json_msgpack.c) from the client library, and nothing else of it.
client_in_server=$(nm "$build_dir/allotd" | grep -E ' [TtU] allot_client_' || true)
[ -z "$client_in_server" ] || fail "allotd links the client library:"$'\n'"$client_in_server"
server_symbols=$(nm "$build_dir/allotd")
grep -qE ' T frame_scan$' <<<"$server_symbols" || fail "allotd lacks the framer (frame_scan)"

# bench/ calls the client library only (and core's limits and latency histogram, libc-only
# headers): no server internals, no core state, no persist. Its own headers are included by name.
bench_includes=$(grep -rnE '^#include "' "$source_dir/bench" --include='*.[ch]' |
  grep -vE '#include "([a-z_]+\.h|bench/[a-z_/]+\.h|client/[a-z_]+\.h|core/limits\.h|core/histogram\.h)"' ||
  true)
[ -z "$bench_includes" ] || fail "bench/ includes past the client library:"$'\n'"$bench_includes"
for bench_program in "$build_dir/bench/allot-bench" "$build_dir/bench/recovery/allot-recovery-bench"; do
  [ -x "$bench_program" ] || continue
  internals=$(nm "$bench_program" | grep -E ' [TtU] (wal_|checkpoint_|recovery_|allot_state_|server_)' || true)
  [ -z "$internals" ] || fail "$bench_program links server internals:"$'\n'"$internals"
done

# Outside core/, core is reached through its contracts (core/*.h) only, never a room's files.
room_includes=$(grep -rnE '^#include "core/[a-z_]+/' "$source_dir/net" "$source_dir/persist" \
  "$source_dir/client" "$source_dir/tools" "$source_dir/bench" --include='*.[ch]' || true)
[ -z "$room_includes" ] || fail "core's rooms included from outside core/:"$'\n'"$room_includes"

# The consensus engine stays behind one module (persist/consensus.h): only consensus.c includes
# libraft's headers, so the engine could be swapped.
raft_includes=$(grep -rlE '^#include <raft(/uv)?\.h>' "$source_dir/core" "$source_dir/net" \
  "$source_dir/persist" "$source_dir/client" "$source_dir/tools" "$source_dir/bench" \
  --include='*.[ch]' | grep -v '/persist/consensus\.c$' || true)
[ -z "$raft_includes" ] || fail "libraft included outside persist/consensus.c:"$'\n'"$raft_includes"

exit $failed
