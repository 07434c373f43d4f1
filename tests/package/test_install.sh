#!/usr/bin/env bash
# test_install.sh BUILD_DIR SOURCE_DIR - `make install` (cmake --install with PREFIX and DESTDIR)
# puts every file where it belongs with the paths of the prefix, the default config passes
# --check-config, and `systemd-analyze verify` finds nothing to say about the unit.
set -euo pipefail
build=$1
source_dir=$2
stage=$(mktemp -d /tmp/allot-install-XXXXXX)
trap 'rm -rf "$stage"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# PREFIX=/usr: config in /etc, unit in /usr/lib/systemd/system
DESTDIR="$stage/usr-root" cmake --install "$build" --prefix /usr >/dev/null
root="$stage/usr-root"
for f in usr/bin/allotd usr/bin/allot usr/bin/allot-wal; do
  [ -x "$root/$f" ] || fail "$f is not installed as a program"
done
for f in usr/lib/systemd/system/allotd.service etc/allot/allotd.conf \
  usr/share/doc/allot/README.md usr/share/doc/allot/LICENSE usr/share/doc/allot/operations.md \
  usr/share/doc/allot/cli.md usr/share/doc/allot/grafana-dashboard.json \
  usr/share/doc/allot/prometheus-alerts.yml; do
  [ -f "$root/$f" ] || fail "$f is not installed"
done
unit="$root/usr/lib/systemd/system/allotd.service"
! grep -n '@ALLOT_' "$unit" "$root/etc/allot/allotd.conf" || fail "a placeholder was left"
grep -q '^ExecStart=/usr/bin/allotd --config /etc/allot/allotd.conf ' "$unit" ||
  fail "ExecStart does not run /usr/bin/allotd with /etc/allot/allotd.conf"
"$root/usr/bin/allotd" --config "$root/etc/allot/allotd.conf" --data-dir "$stage/data" \
  --check-config >/dev/null || fail "the default config does not pass --check-config"

# a config already there is kept on a second install
echo "# edited" >>"$root/etc/allot/allotd.conf"
DESTDIR="$root" cmake --install "$build" --prefix /usr >/dev/null
grep -q '^# edited$' "$root/etc/allot/allotd.conf" || fail "an existing config was overwritten"

# PREFIX=/usr/local: everything under the prefix
DESTDIR="$stage/local-root" cmake --install "$build" --prefix /usr/local >/dev/null
local_unit="$stage/local-root/usr/local/lib/systemd/system/allotd.service"
[ -f "$local_unit" ] || fail "no unit under /usr/local/lib/systemd/system"
grep -q '^ExecStart=/usr/local/bin/allotd --config /usr/local/etc/allot/allotd.conf ' \
  "$local_unit" || fail "the /usr/local unit does not name /usr/local paths"
[ -f "$stage/local-root/usr/local/etc/allot/allotd.conf" ] || fail "no config in PREFIX/etc"

# systemd-analyze verify, inside the staged root (with the system's targets the unit names)
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (tools/install-deps.sh installs systemd)"
  exit 77
fi
cp -a /usr/lib/systemd/system/*.target "$root/usr/lib/systemd/system/" 2>/dev/null || true
verify_out=$(systemd-analyze verify --root="$root" /usr/lib/systemd/system/allotd.service 2>&1) ||
  fail "systemd-analyze verify: $verify_out"
[ -z "$verify_out" ] || fail "systemd-analyze verify has something to say: $verify_out"
echo "install layout and unit: ok"
