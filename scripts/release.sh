#!/bin/sh
# Makes the release tarball: hearth-<version>-linux-x86_64.tar.gz and its
# .sha256, in --out (default: dist/). The tarball holds one directory,
# hearth-<version>-linux-x86_64/, with bin/hearth, libexec/hearth/ (the shim,
# the stepbox and the init), lib/ (libhearth and every shared library it needs beyond the C
# and C++ runtimes every Debian and Ubuntu system has), include/hearth/,
# share/doc/hearth/ (the docs, LICENSE, and the copyright file of each bundled
# library). Nothing in it names a path of the build machine: hearth finds its
# libraries through $ORIGIN and its helpers beside itself (docs/install.md).
#
#   scripts/release.sh                    a release build in build-release/, then the tarball
#   scripts/release.sh --build DIR        the tarball from an existing build directory
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=""
out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: scripts/release.sh [--build DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ -z "$build" ]; then
  build="$root/build-release"
  # HEARTH_DOCS_URL (the release workflow sets it) is where error messages link
  # to: this version's docs/ on the web.
  [ -f "$build/build.ninja" ] || meson setup "$build" "$root" --buildtype=release -Dtests=disabled \
    -Ddocs_url="${HEARTH_DOCS_URL:-}"
  ninja -C "$build"
fi
build=$(cd "$build" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
meson install -C "$build" --no-rebuild --strip --destdir "$stage/destdir" >/dev/null
prefix=$(meson introspect --buildoptions "$build" |
  python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
installed="$stage/destdir$prefix"
version=$("$installed/bin/hearth" --version | awk '{print $2}')
name="hearth-$version-linux-x86_64"
tree="$stage/$name"
mkdir -p "$tree/bin" "$tree/lib" "$tree/libexec/hearth" "$tree/include" "$tree/share/doc/hearth/licenses"

cp "$installed/bin/hearth" "$tree/bin/"
cp "$installed"/libexec/hearth/hearth-shim "$installed"/libexec/hearth/hearth-stepbox "$installed"/libexec/hearth/hearth-init \
  "$tree/libexec/hearth/"
cp -a $(find "$installed" -name 'libhearth.so*') "$tree/lib/"
cp -a "$installed/include/hearth" "$tree/include/"

# Every shared library hearth loads, except the C and C++ runtimes: those it
# needs at start (ldd), and those it opens when a command first needs them
# (libcurl, libgit2, ICU, libcrypto: util/lazy_library.h), which the binary
# names in its section hearth_lazy_libs, with what each of them needs.
system='linux-vdso|/libc\.so|/libm\.so|/libpthread\.so|/libdl\.so|/librt\.so|/ld-linux|/libresolv\.so|/libstdc\+\+\.so|/libgcc_s\.so'
lazy=$(readelf -p hearth_lazy_libs "$tree/bin/hearth" | sed -n 's/^ *\[ *[0-9a-f]*\] *//p')
lazy_paths=$(for soname in $lazy; do
  path=$(/sbin/ldconfig -p | awk -v s="$soname" '$1 == s && /x86-64/ {print $NF; exit}')
  [ -n "$path" ] || { echo "release.sh: $soname (opened on first use) is not installed" >&2; exit 1; }
  echo "$path"
done)
{ ldd "$tree/bin/hearth"; for lib in $lazy_paths; do echo " $lib => $lib (0)"; ldd "$lib"; done; } |
  awk '/=> \// {print $3}' | grep -Ev "$system" | while read -r lib; do
  base=$(basename "$lib")
  soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  base=${soname:-$base}
  [ -e "$tree/lib/$base" ] && continue
  cp -L "$lib" "$tree/lib/$base"
  # Its licence, from the Debian package that ships it.
  pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null ||
        dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null || true)
  pkg=$(echo "$pkg" | head -n 1 | cut -d: -f1)
  if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then
    cp "/usr/share/doc/$pkg/copyright" "$tree/share/doc/hearth/licenses/$pkg.copyright"
  fi
done

cp "$root/LICENSE" "$tree/"
cp "$root/LICENSE" "$root/README.md" "$root/CHANGELOG.md" "$tree/share/doc/hearth/"
cp -r "$installed/share/doc/hearth/docs" "$tree/share/doc/hearth/docs"

tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz" "$name"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
