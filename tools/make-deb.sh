#!/usr/bin/env bash
# make-deb.sh BUILD_DIR OUT_DIR - build the Debian package allot_VERSION_ARCH.deb into OUT_DIR
# from a built tree (`make deb` uses build/release): `cmake --install` with prefix /usr into a
# staging root, debug info stripped, the maintainer scripts of tools/debian, Depends computed by
# dpkg-shlibdeps, then dpkg-deb. Prints the path of the package.
set -euo pipefail
build=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
source_dir=$(cd "$(dirname "$0")/.." && pwd)
root="$out/deb-root"
rm -rf "$root"
DESTDIR="$root" cmake --install "$build" --prefix /usr >/dev/null
programs=(allotd allot allot-wal)
[ -e "$root/usr/bin/allot-relay" ] && programs+=(allot-relay) # built where libnats-dev is
for program in "${programs[@]}"; do
  strip --strip-debug "$root/usr/bin/$program"
done

version=$("$root/usr/bin/allotd" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
# dpkg-shlibdeps reads debian/control of the directory it runs in: give it a minimal one.
shlibs_dir=$(mktemp -d)
trap 'rm -rf "$shlibs_dir"' EXIT
mkdir -p "$shlibs_dir/debian"
printf 'Source: allot\n\nPackage: allot\nArchitecture: any\n' >"$shlibs_dir/debian/control"
depends=$(cd "$shlibs_dir" && dpkg-shlibdeps -O "${programs[@]/#/$root/usr/bin/}" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "make-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size_kb=$(du -sk "$root" | awk '{print $1}')

mkdir -p "$root/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" \
  -e "s/@SIZE_KB@/$size_kb/" "$source_dir/tools/debian/control.in" >"$root/DEBIAN/control"
cp "$source_dir/LICENSE" "$root/usr/share/doc/allot/copyright"
echo /etc/allot/allotd.conf >"$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do
  install -m 0755 "$source_dir/tools/debian/$script" "$root/DEBIAN/$script"
done
package="$out/allot_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$package" >/dev/null
rm -rf "$root"
echo "$package"
