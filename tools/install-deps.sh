#!/usr/bin/env bash
# install-deps.sh - install the Debian packages Allot needs to build, test and benchmark.
# Idempotent and quiet when everything is present; uses apt-get only (run as root or via sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev liblmdb-dev libmsgpack-dev libjansson-dev libedit-dev libxxhash-dev
  libcriterion-dev libmicrohttpd-dev libinih-dev libraft-dev lmdb-utils clang libclang-rt-14-dev
  # the delivery promise's time zones (location calendars): the system tz database
  tzdata
  # allot-relay (NATS JetStream) and its test's server
  libnats-dev nats-server
  # tests of the packaging: systemd-analyze, promtool, dpkg-shlibdeps, pgrep
  systemd prometheus dpkg-dev procps
  # tests of the HTTP front door: the console in a headless browser, Python's driver for it
  chromium chromium-driver python3 python3-selenium
)
if [ "${ALLOT_BENCH_DEPS:-0}" = 1 ]; then
  packages+=(libhiredis-dev redis-server wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The OpenAPI validator of tests/http (npm, pinned by tests/http/package-lock.json).
http_tests="$(dirname "$0")/../tests/http"
if [ ! -d "$http_tests/node_modules/@seriousme/openapi-schema-validator" ]; then
  command -v npm >/dev/null || missing+=(npm)
fi

install_npm_tools() {
  [ -d "$http_tests/node_modules/@seriousme/openapi-schema-validator" ] && return 0
  echo "install-deps: installing the OpenAPI validator into tests/http/node_modules" >&2
  (cd "$http_tests" && npm ci --no-audit --no-fund --silent)
}

if [ ${#missing[@]} -eq 0 ]; then
  install_npm_tools
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_npm_tools
