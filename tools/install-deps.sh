#!/usr/bin/env bash
# install-deps.sh - install the Debian packages Allot needs to build, test and benchmark.
# Idempotent and quiet when everything is present; uses apt-get only (run as root or via sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev liblmdb-dev libmsgpack-dev libjansson-dev libedit-dev libxxhash-dev
  libcriterion-dev libmicrohttpd-dev libinih-dev libraft-dev lmdb-utils clang libclang-rt-14-dev
  # allot-relay (NATS JetStream) and its test's server
  libnats-dev nats-server
  # tests of the packaging: systemd-analyze, promtool, dpkg-shlibdeps, pgrep
  systemd prometheus dpkg-dev procps
)
if [ "${ALLOT_BENCH_DEPS:-0}" = 1 ]; then
  packages+=(libhiredis-dev redis-server)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
