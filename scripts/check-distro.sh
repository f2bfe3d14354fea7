#!/bin/sh
# Builds and tests Hearth from source on another Debian release, and runs a
# release tarball made here on it. The release's root is made with mmdebstrap
# (Debian's package registry only) and entered with bwrap, whose pivot_root
# lets the sandbox's user namespaces work there (a plain chroot would not).
#
#   scripts/check-distro.sh SUITE [TARBALL]        e.g. scripts/check-distro.sh trixie dist/hearth-*.tar.gz
#
# Needs root, mmdebstrap and bwrap. The root is kept in $HEARTH_DISTRO_DIR
# (default /var/cache/hearth-distro)/SUITE and reused; its build in build/ there.
set -eu
suite=${1:?usage: scripts/check-distro.sh SUITE [TARBALL]}
tarball=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${HEARTH_DISTRO_DIR:-/var/cache/hearth-distro}/$suite
step() { echo "check-distro $suite: $* ($(date -u +%H:%M:%S))"; }

if [ ! -f "$root/.made" ]; then
  step "making the root"
  rm -rf "$root"
  mkdir -p "$root"
  mmdebstrap --variant=apt --include=ca-certificates,sudo,passwd "$suite" "$root"
  touch "$root/.made"
fi
mkdir -p "$root/src" "$root/build" "$root/tarball"
[ -z "$tarball" ] || cp "$tarball" "$root/tarball/"

# The host's /proc, bound whole: a user namespace may mount a fresh proc only
# where a complete one is visible (the unprivileged sandbox tests need that).
inside() {
  bwrap --bind "$root" / --dev-bind /dev /dev --bind /proc /proc --bind /sys /sys --perms 01777 --tmpfs /tmp \
    --ro-bind /etc/resolv.conf /etc/resolv.conf --ro-bind "$repo" /src --chdir /src \
    --setenv HOME /root --setenv PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -- "$@"
}

step "installing the build dependencies"
inside sh /src/scripts/install-deps.sh
inside sh -c 'command -v useradd >/dev/null || apt-get install -y -qq passwd >/dev/null
  id hearth-test >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin hearth-test'
inside sh -c 'gcc --version | head -n 1; git --version; dpkg-query -W libgit2-dev libcurl4-openssl-dev libicu-dev libcli11-dev libtomlplusplus-dev'
step "building"
[ -f "$root/build/build.ninja" ] || inside meson setup /build /src --buildtype=debugoptimized
inside ninja -C /build
step "testing"
inside meson test -C /build --print-errorlogs
if [ -n "$tarball" ]; then
  step "running $(basename "$tarball")"
  inside sh /src/tests/release/tarball_test.sh --tarball "/tarball/$(basename "$tarball")" /src
fi
step "passed"
