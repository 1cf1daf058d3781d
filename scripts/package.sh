#!/usr/bin/env bash
# Builds the Debian package turnstiled_<version>_<arch>.deb from an existing build: it never
# compiles. Usage:
#   scripts/package.sh [BUILD_DIR [OUT_DIR]]
# BUILD_DIR (or $TURNSTILED_BUILD_DIR) defaults to build/release, OUT_DIR (or $TURNSTILED_DEB_DIR)
# to BUILD_DIR. Prints the path of the .deb on its last line.
#
# The files come from `cmake --install BUILD_DIR --prefix STAGE/usr --strip` (the install rules
# at the end of CMakeLists.txt); this script adds what only a .deb has: DEBIAN/control (Depends
# from dpkg-shlibdeps), conffiles, the maintainer scripts in packaging/debian/, md5sums, the
# copyright file and changelog.Debian.gz. Environment:
#   TURNSTILED_DEB_REVISION   Debian revision (default 1): version 0.1.0-1
#   TURNSTILED_MAINTAINER     the Maintainer field
#   SOURCE_DATE_EPOCH         the changelog date (default: the last commit's, else now)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
# BUILD_DIR and OUT_DIR are taken from where the script is called; the default build from the
# repository.
build="${1:-${TURNSTILED_BUILD_DIR:-$src/build/release}}"
build="$(cd "$build" && pwd)"
out="${2:-${TURNSTILED_DEB_DIR:-$build}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$src"
maintainer="${TURNSTILED_MAINTAINER:-turnstiled maintainers <turnstiled-maintainers@example.com>}"

if [ ! -x "$build/turnstiled" ]; then
  echo "package: $build/turnstiled is missing: build it first (scripts/build.sh)" >&2
  exit 1
fi
# A build configured before the latest CMakeLists.txt may lack install rules: configure it
# again (this writes build files; it compiles nothing).
if [ "$src/CMakeLists.txt" -nt "$build/cmake_install.cmake" ] ||
  ! grep -q 'turnstiled.service' "$build/cmake_install.cmake" 2>/dev/null; then
  echo "package: configuring $build again for the current install rules (no compile)" >&2
  cmake -S "$src" -B "$build" >/dev/null
fi

# The version the binary reports ("turnstiled 0.1.0"), else project() in CMakeLists.txt.
upstream="$("$build/turnstiled" version 2>/dev/null |
  awk 'NR == 1 && $1 == "turnstiled" {print $2}')"
if [ -z "$upstream" ]; then
  upstream="$(sed -n 's/^project(turnstiled VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"
fi
if [ -z "$upstream" ]; then
  echo "package: cannot tell the version" >&2
  exit 1
fi
version="$upstream-${TURNSTILED_DEB_REVISION:-1}"
arch="$(dpkg --print-architecture)"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
fi
export SOURCE_DATE_EPOCH

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps expects the debian/<package>/ layout of a source package: give it that.
stage="$work/debian/turnstiled"

cmake --install "$build" --prefix "$stage/usr" --strip >/dev/null

# --strip leaves .comment and .note, which lintian flags.
strip --remove-section=.comment --remove-section=.note "$stage/usr/bin/turnstiled"
install -D -m 0644 packaging/lintian-overrides "$stage/usr/share/lintian/overrides/turnstiled"

doc="$stage/usr/share/doc/turnstiled"
install -m 0644 packaging/copyright "$doc/copyright"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
  echo "turnstiled ($version) unstable; urgency=medium"
  echo
  echo "  * Package of turnstiled $upstream, built from commit $commit."
  echo
  echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.Debian.gz"

# Ownership is set by dpkg-deb --root-owner-group; modes are set here, whatever the umask.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
chmod 0755 "$stage/usr/bin/turnstiled"

# Depends: the shared libraries the binary links, as dpkg-shlibdeps names their packages.
mkdir -p "$stage/DEBIAN"
printf 'Source: turnstiled\n\nPackage: turnstiled\nArchitecture: any\n' >"$work/debian/control"
depends="$(cd "$work" && dpkg-shlibdeps -O debian/turnstiled/usr/bin/turnstiled |
  sed -n 's/^shlibs:Depends=//p')"
if [ -z "$depends" ]; then
  echo "package: dpkg-shlibdeps found no dependencies for $stage/usr/bin/turnstiled" >&2
  exit 1
fi
# libpq is loaded with dlopen when a postgres sink is configured (src/sink/libpq.h), so
# dpkg-shlibdeps cannot see it; the shipped config has one.
depends="$depends, libpq5"

installed_size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat >"$stage/DEBIAN/control" <<EOF
Package: turnstiled
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: net
Priority: optional
Description: streaming aggregation of subway turnstile readings
 turnstiled reads turnstile readings (the MTA feed's cumulative registers) from
 Kafka, applies the counter rules (duplicates, out-of-order readings, counter
 resets), groups them by station into event-time windows with watermarks, and
 writes the rows to a Hive-partitioned file lake, PostgreSQL and Kafka.
 .
 The package ships the daemon, a hardened systemd unit (not enabled on
 install), the production config /etc/turnstiled/turnstiled.yaml, and the
 guides in /usr/share/doc/turnstiled.
EOF
echo /etc/turnstiled/turnstiled.yaml >"$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/debian/$script" "$stage/DEBIAN/$script"
done
(cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
  sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

deb="$out/turnstiled_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
