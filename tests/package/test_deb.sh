#!/usr/bin/env bash
# test_deb.sh BUILD_DIR SOURCE_DIR - build the Debian package (`make deb`), install it, check the
# allot user and the files, start the service and ping it, stop it, purge the package. Needs
# root and dpkg; where systemd runs, through systemctl, elsewhere (a container) allotd is started
# by hand as the allot user, as the unit would (its ExecStartPre check first). Exit 77 (skipped)
# where it cannot run, and never touches an allot package or /var/lib/allot it did not create.
set -euo pipefail
build=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "installing a package needs root"
command -v dpkg-deb >/dev/null && command -v dpkg-shlibdeps >/dev/null ||
  skip "dpkg-deb and dpkg-shlibdeps are needed (tools/install-deps.sh installs dpkg-dev)"
package_status() { dpkg-query -W -f='${Status}' allot 2>/dev/null || true; }
case "$(package_status)" in
*"ok installed"*) skip "a package named allot is installed already; not touching it" ;;
esac
[ ! -e /var/lib/allot ] || skip "/var/lib/allot exists already; not touching it"
user_existed=0
getent passwd allot >/dev/null && user_existed=1

work=$(mktemp -d /tmp/allot-deb-XXXXXX)
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill -9 "$server_pid" 2>/dev/null || true
  case "$(package_status)" in
  *installed*) dpkg --purge allot >/dev/null 2>&1 || true ;;
  esac
  rm -rf /var/lib/allot "$work"
  if [ "$user_existed" = 0 ] && getent passwd allot >/dev/null; then
    userdel allot 2>/dev/null || true
    groupdel allot 2>/dev/null || true
  fi
}
trap cleanup EXIT

package=$("$source_dir/tools/make-deb.sh" "$build" "$work")
[ -f "$package" ] || fail "make-deb built nothing"
info=$(dpkg-deb -I "$package")
[[ "$info" == *$'\n'" Depends: "*libuv1* ]] || fail "Depends does not name libuv1: $info"

dpkg -i "$package" >"$work/install.log" 2>&1 || fail "dpkg -i: $(cat "$work/install.log")"
getent passwd allot >/dev/null || fail "no allot user after install"
[ "$(getent passwd allot | cut -d: -f7)" = /usr/sbin/nologin ] || fail "allot has a login shell"
[ "$(stat -c %U:%a /var/lib/allot)" = allot:750 ] || fail "/var/lib/allot is not allot's, 0750"
for f in /usr/bin/allotd /usr/bin/allot /usr/bin/allot-wal /usr/lib/systemd/system/allotd.service \
  /etc/allot/allotd.conf /usr/share/doc/allot/copyright; do
  [ -e "$f" ] || fail "$f is not installed"
done

# any free port: allotd binds port 0 and logs the one it got ("listening", addr)
sed -i "s/^listen = .*/listen = 127.0.0.1:0/" /etc/allot/allotd.conf
port=""
port_from_log() { # the log's listening line -> $port
  port=$(sed -n 's/.*"event":"listening","addr":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' | tail -n 1)
}

ping_within() { # seconds, log command: the installed CLI gets pong from the service
  for _ in $(seq 1 $(($1 * 10))); do
    [ -n "$port" ] || port_from_log < <($2)
    [ -n "$port" ] && [ "$(/usr/bin/allot -p "$port" ping 2>/dev/null)" = pong ] && return 0
    sleep 0.1
  done
  return 1
}

if [ -d /run/systemd/system ]; then
  systemctl restart allotd.service || fail "systemctl restart: $(journalctl -u allotd -n 20)"
  ping_within 10 "journalctl -u allotd -o cat -n 50" ||
    fail "the service does not answer ping: $(journalctl -u allotd -n 20)"
  [ "$(systemctl show -p User --value allotd.service)" = allot ] || fail "not run as allot"
  systemctl stop allotd.service
else
  # no systemd: what the unit does, by hand, as the allot user
  args=(--config /etc/allot/allotd.conf --data-dir /var/lib/allot --log-format json)
  runuser -u allot -- /usr/bin/allotd "${args[@]}" --check-config >/dev/null ||
    fail "the unit's ExecStartPre check fails as allot"
  runuser -u allot -- /usr/bin/allotd "${args[@]}" 2>"$work/allotd.log" &
  server_pid=$!
  ping_within 10 "cat $work/allotd.log" || fail "allotd does not answer ping: $(cat "$work/allotd.log")"
  pid=$(pgrep -x -u allot allotd || true)
  [ -n "$pid" ] || fail "no process named allotd runs as allot"
  kill -TERM "$pid"
  wait "$server_pid" || fail "allotd did not stop cleanly on SIGTERM: $(cat "$work/allotd.log")"
  server_pid=""
  [ -f /var/lib/allot/state.lmdb ] || fail "no state.lmdb in /var/lib/allot"
  [ "$(stat -c %U /var/lib/allot/state.lmdb)" = allot ] || fail "state.lmdb is not allot's"
fi

dpkg -r allot >/dev/null 2>&1 || fail "dpkg -r"
[ ! -e /usr/bin/allotd ] || fail "/usr/bin/allotd left after remove"
[ -e /etc/allot/allotd.conf ] || fail "remove (not purge) must keep the config"
dpkg --purge allot >/dev/null 2>&1 || fail "dpkg --purge"
[ ! -e /etc/allot/allotd.conf ] || fail "/etc/allot/allotd.conf left after purge"
echo "package built, installed, served ping as allot, removed and purged: ok"
