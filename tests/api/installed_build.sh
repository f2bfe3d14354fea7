#!/bin/sh
# Installs the build into a temporary root and compiles examples/embed
# against it the way an outside program would: pkg-config's flags for
# `hearth`, the installed headers and libhearth.so only. Then runs it.
set -eu
build=$1
source=$2
root=$(mktemp -d /tmp/hearth-install-XXXXXX)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" --no-rebuild --quiet >/dev/null
pc=$(dirname "$(find "$root" -name hearth.pc | head -n 1)")
export PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$root"
flags=$(pkg-config --cflags --libs hearth)
# shellcheck disable=SC2086
${CXX:-c++} -std=c++20 -o "$root/embed" "$source/examples/embed/main.cpp" $flags
libdir=$(dirname "$(find "$root" -name 'libhearth.so.0' | head -n 1)")
LD_LIBRARY_PATH="$libdir" "$root/embed" "$source/examples/embed/hundred.toml"
