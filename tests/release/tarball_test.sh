#!/bin/sh
# The release tarball, as a user gets it: made by scripts/release.sh from this
# build, unpacked into an empty directory, and run from there with nothing of
# the build around (no HEARTH_* variables, no build tree beside it):
# `hearth --version`, the triage example (skill steps in the sandbox, the
# model replayed from its cassette) and a sandboxed step calling a granted
# command (the shim and the stepbox from libexec/hearth); where the sandbox
# cannot start, the refusal points into the tarball's docs. Every shared
# library it loads is in the tarball or a C/C++ runtime, and its run path
# and strings name no directory of the build machine.
#   tarball_test.sh BUILD_DIR SOURCE_DIR        makes the tarball from BUILD_DIR first
#   tarball_test.sh --tarball FILE SOURCE_DIR   a tarball made elsewhere (scripts/check-distro.sh)
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

given=""
if [ "$1" = --tarball ]; then given=$2; src=$3; else build=$1; src=$2; fi
mkdir "$work/dist"
if [ -n "$given" ]; then
  cp "$given" "$work/dist/"
  (cd "$work/dist" && sha256sum "$(basename "$given")" > "$(basename "$given").sha256")
else
  sh "$src/scripts/release.sh" --build "$build" --out "$work/dist" >/dev/null
fi
tarball=$(ls "$work"/dist/hearth-*-linux-x86_64.tar.gz)
(cd "$work/dist" && sha256sum -c --quiet "$(basename "$tarball").sha256") || fail "the .sha256 does not match"
mkdir "$work/unpacked"
tar -C "$work/unpacked" -xzf "$tarball"
top=$(ls -d "$work"/unpacked/hearth-*)
for f in bin/hearth libexec/hearth/hearth-shim libexec/hearth/hearth-stepbox libexec/hearth/hearth-init LICENSE share/doc/hearth/README.md; do
  [ -e "$top/$f" ] || fail "the tarball has no $f"
done

# Run it with a clean environment, from a directory of its own.
run() { env -i PATH=/usr/bin:/bin HOME="$work" LANG=C.UTF-8 "$top/bin/hearth" "$@"; }

# Libraries: each resolves inside the tarball, or is a runtime every system has.
runtimes='linux-vdso|/libc\.so|/libm\.so|/libpthread\.so|/libdl\.so|/librt\.so|/ld-linux|/libresolv\.so|/libstdc\+\+\.so|/libgcc_s\.so'
libs=$(env -i PATH=/usr/bin:/bin ldd "$top/bin/hearth")
echo "$libs" | grep -q "not found" && fail "a library is missing: $libs"
outside=$(echo "$libs" | awk '/=> \// {print $3}' | grep -Ev "$runtimes" | grep -v "^$top/" || true)
[ -z "$outside" ] || fail "libraries loaded from outside the tarball: $outside"

# The libraries hearth opens on first use (util/lazy_library.h; ldd does not
# list them) are in the tarball too, with every library they need.
lazy=$(readelf -p hearth_lazy_libs "$top/bin/hearth" | sed -n 's/^ *\[ *[0-9a-f]*\] *//p')
[ -n "$lazy" ] || fail "bin/hearth names no library it opens on first use (section hearth_lazy_libs)"
for soname in $lazy; do
  [ -f "$top/lib/$soname" ] || fail "$soname, opened on first use, is not in the tarball's lib/"
  deps=$(env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$top/lib" ldd "$top/lib/$soname")
  echo "$deps" | grep -q "not found" && fail "$soname needs a library that is missing: $deps"
  outside=$(echo "$deps" | awk '/=> \// {print $3}' | grep -Ev "$runtimes" | grep -v "^$top/" || true)
  [ -z "$outside" ] || fail "$soname needs libraries from outside the tarball: $outside"
done

# No path of the build machine: run paths are $ORIGIN-relative, no helper path is baked in.
if readelf -d "$top/bin/hearth" | grep -E 'R(UN)?PATH' | grep -v '\$ORIGIN' >/dev/null; then
  fail "an absolute run path: $(readelf -d "$top/bin/hearth" | grep -E 'R(UN)?PATH')"
fi
if strings -a "$top/bin/hearth" "$top"/lib/libhearth.so* | grep -E '^/.*/(hearth-shim|hearth-stepbox|hearth-init)$' | grep -v '^/run/'; then
  fail "a helper's absolute path is baked in"
fi

run --version | grep -q '^hearth [0-9]' || fail "hearth --version: $(run --version 2>&1)"

# What the dynamic loader opened for a run (at start and on first use), from
# the LD_DEBUG files in $work with the prefix $1: each a path, resolved.
opened_by() {
  cat "$work/$1".* | sed -n 's/.*calling init: //p' | while read -r lib; do readlink -f "$lib"; done | sort -u
}

# The triage example, offline; what the dynamic loader opened on the way
# comes from the tarball or the runtimes.
cp -r "$src/examples/triage" "$work/triage"
(cd "$work/triage" && env -i PATH=/usr/bin:/bin HOME="$work" LANG=C.UTF-8 LD_DEBUG=files LD_DEBUG_OUTPUT="$work/ld" \
  "$top/bin/hearth" run triage --payload @issue.json --model replay:cassette.jsonl) > "$work/triage.log" 2>&1 ||
  fail "the triage example failed: $(cat "$work/triage.log")"
opened=$(opened_by ld)
outside=$(echo "$opened" | grep -Ev "$runtimes" | grep -v "^$top/" || true)
[ -z "$outside" ] || fail "the triage run opened libraries from outside the tarball: $outside"
grep -q "succeeded" "$work/triage.log" || fail "the triage example did not succeed: $(cat "$work/triage.log")"

# A sandboxed step calling a granted command.
mkdir -p "$work/repo/.hearth/workflows"
cat > "$work/repo/.hearth/workflows/granted.toml" <<'TOML'
[commands.greet]
exec = "/bin/echo"
allow = ["hello *"]

[[steps]]
id = "inside"
commands = ["greet"]
run = '''
test -d /workspace
greet hello from-the-sandbox
'''
TOML
(cd "$work/repo" && git init -q . && env -i PATH=/usr/bin:/bin HOME="$work" LANG=C.UTF-8 LD_DEBUG=files \
  LD_DEBUG_OUTPUT="$work/ld-granted" "$top/bin/hearth" run granted) > "$work/granted.log" 2>&1 ||
  fail "the sandboxed step failed: $(cat "$work/granted.log")"
grep -q "hello from-the-sandbox" "$work/granted.log" || fail "the granted command did not answer: $(cat "$work/granted.log")"
# The broker digests the command's output (libcrypto, opened on first use):
# from the tarball's lib/.
opened=$(opened_by ld-granted)
echo "$opened" | grep -q "^$top/lib/libcrypto" || fail "the granted run opened no libcrypto of the tarball: $opened"
outside=$(echo "$opened" | grep -Ev "$runtimes" | grep -v "^$top/" || true)
[ -z "$outside" ] || fail "the granted run opened libraries from outside the tarball: $outside"

# Where the sandbox cannot start (simulated: a user namespace whose
# user.max_user_namespaces is 0), the refusal points to the page in the
# tarball's own docs, not to a repository the user may not have.
if (cd "$work/repo" && env -i PATH=/usr/bin:/bin HOME="$work" LANG=C.UTF-8 unshare -U -r -- sh -c \
  'echo 0 > /proc/sys/user/max_user_namespaces || exit 97; exec "$@"' sh "$top/bin/hearth" run granted) > "$work/refused.log" 2>&1; then
  fail "a run without user namespaces was not refused: $(cat "$work/refused.log")"
fi
grep -q "cannot start on this host" "$work/refused.log" || fail "no refusal: $(cat "$work/refused.log")"
page=$(grep -o "$top/share/doc/hearth/docs/sandbox.md" "$work/refused.log" | head -n 1)
[ -n "$page" ] && [ -f "$page" ] || fail "the refusal does not point to the tarball's docs: $(cat "$work/refused.log")"
echo "ok: $(basename "$tarball")"
