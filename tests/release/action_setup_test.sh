#!/bin/bash
# The GitHub Action's setup (scripts/action-setup.sh) outside a runner: a
# fake action checkout, a release tarball served by a file:// URL, the
# runner's output file, a stand-in AppArmor sysctl and parser. Checks that a
# ref with a recorded release gets the tarball and only with the recorded
# SHA-256, that an untagged ref builds from source with a cache key naming
# the runner image, and that the AppArmor profile is written, loaded, logged,
# turned off by the input, and that failures point at a URL.
#   action_setup_test.sh SOURCE_DIR
set -euo pipefail
src=$1
script="$src/scripts/action-setup.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A release tarball whose hearth answers --version and `sandbox run` (its exit
# status from FAKE_SANDBOX_RC).
mkdir -p "$work/pkg/hearth-9.8.7-linux-x86_64/bin"
cat > "$work/pkg/hearth-9.8.7-linux-x86_64/bin/hearth" <<'SH'
#!/bin/sh
case "$1" in
  --version) echo "hearth 9.8.7" ;;
  sandbox) [ "${FAKE_SANDBOX_RC:-0}" = 0 ] || echo "the namespace sandbox cannot run: restricted" >&2; exit "${FAKE_SANDBOX_RC:-0}" ;;
esac
SH
chmod +x "$work/pkg/hearth-9.8.7-linux-x86_64/bin/hearth"
tarball="$work/release/hearth-9.8.7-linux-x86_64.tar.gz"
mkdir -p "$work/release"
tar -C "$work/pkg" -czf "$tarball" hearth-9.8.7-linux-x86_64
good_sha=$(sha256sum "$tarball" | cut -d' ' -f1)

# Runs the script as the action would, in a fresh runner temp; prints stdout+stderr to $work/log.
run() {
  rm -rf "$work/temp" && mkdir -p "$work/temp"
  : > "$work/output"
  env GITHUB_ACTION_PATH="$work/action" RUNNER_TEMP="$work/temp" GITHUB_OUTPUT="$work/output" \
    HEARTH_ACTION_REPOSITORY=octo/hearth HEARTH_ACTION_REF=v1 ImageOS=ubuntu24 ImageVersion=20261201.1 \
    HEARTH_RELEASE_URL="file://$tarball" "$@" > "$work/log" 2>&1
}
output() { sed -n "s/^$1=//p" "$work/output"; }
logged() { grep -qF -- "$1" "$work/log" || fail "the log lacks '$1':
$(cat "$work/log")"; }

# 1. An untagged ref (no recorded release): a source build, keyed on the runner image.
mkdir -p "$work/action/scripts"
echo 'int main() {}' > "$work/action/main.cpp"
run bash "$script" install || fail "install on an untagged ref failed: $(cat "$work/log")"
[ "$(output mode)" = source ] || fail "untagged ref: mode $(output mode)"
[ "$(output bin)" = "$work/temp/hearth-bin/hearth" ] || fail "untagged ref: bin $(output bin)"
case "$(output cache-key)" in
  hearth-bin-*-ubuntu24-20261201.1-*) ;;
  *) fail "the cache key does not name the runner image: $(output cache-key)" ;;
esac
key1=$(output cache-key)
echo 'int main() { return 1; }' > "$work/action/main.cpp"
run bash "$script" install
[ "$(output cache-key)" != "$key1" ] || fail "the cache key ignores the sources"

# 2. A release ref: the tarball, verified against the recorded SHA-256. The
# record is written by the very lines the release workflow runs.
mkdir -p "$work/action/.github" "$work/action/dist"
cp "$tarball" "$work/action/dist/"
record=$(sed -n '/^ *{$/,/^ *} > .github\/release-sha256$/p' "$src/.github/workflows/release.yml")
[ -n "$record" ] || fail "release.yml has no block writing .github/release-sha256"
(cd "$work/action" && GITHUB_REF_NAME=v9.8.7 GITHUB_REPOSITORY=octo/hearth name=hearth-9.8.7-linux-x86_64.tar.gz \
  bash -c "$record") || fail "release.yml's record block failed"
grep -qx "url https://github.com/octo/hearth/releases/download/v9.8.7/hearth-9.8.7-linux-x86_64.tar.gz" \
  "$work/action/.github/release-sha256" || fail "release.yml records another URL: $(cat "$work/action/.github/release-sha256")"
run bash "$script" install || fail "install of the release failed: $(cat "$work/log")"
[ "$(output mode)" = tarball ] || fail "release ref: mode $(output mode)"
bin=$(output bin)
[ "$("$bin" --version)" = "hearth 9.8.7" ] || fail "the unpacked hearth does not run: $bin"
logged "SHA-256 $good_sha matches"
cp -a "$work/temp/hearth-release/hearth-9.8.7-linux-x86_64" "$work/installed"
bin="$work/installed/bin/hearth"

# 3. Other bytes at the release's URL are refused, and nothing is unpacked.
echo "tampered" >> "$work/pkg/hearth-9.8.7-linux-x86_64/bin/hearth"
tar -C "$work/pkg" -czf "$tarball" hearth-9.8.7-linux-x86_64
if run bash "$script" install; then fail "a tarball with another SHA-256 was accepted"; fi
logged "::error title=Hearth setup::hearth-9.8.7-linux-x86_64.tar.gz: SHA-256 is"
logged "expects $good_sha"
[ -z "$(output bin)" ] || fail "a refused tarball still set bin"
[ ! -e "$work/temp/hearth-release/hearth-9.8.7-linux-x86_64" ] || fail "a refused tarball was unpacked"

# 4. A malformed record is an error naming the file, not a silent source build.
printf 'url http://example.com/hearth-9.8.7-linux-x86_64.tar.gz\nsha256 %s\n' "$good_sha" > "$work/action/.github/release-sha256"
if run bash "$script" install; then fail "an http:// release URL was accepted"; fi
logged ".github/release-sha256: url must be an https:// address"
printf 'url https://github.com/octo/hearth/releases/download/v9.8.7/hearth-9.8.7-linux-x86_64.tar.gz\nsha256 %s\n' \
  "${good_sha:0:63}" > "$work/action/.github/release-sha256"
if run bash "$script" install; then fail "a short SHA-256 was accepted"; fi
logged "sha256 must be 64 lowercase hex digits"

# 5. AppArmor restricting user namespaces: the profile is written for this binary, loaded, and logged.
mkdir -p "$work/apparmor.d"
echo 1 > "$work/restrict"
cat > "$work/parser" <<SH
#!/bin/sh
echo "\$*" >> "$work/parser-calls"
SH
chmod +x "$work/parser"
aa() { run HEARTH_USERNS_SYSCTL="$work/restrict" HEARTH_APPARMOR_PARSER="$work/parser" \
  HEARTH_APPARMOR_DIR="$work/apparmor.d" "$@"; }
rm -f "$work/parser-calls"
aa bash "$script" apparmor "$bin" || fail "apparmor failed: $(cat "$work/log")"
profile="$work/apparmor.d/hearth-action"
[ -f "$profile" ] || fail "no profile was installed"
grep -qx '  userns,' "$profile" || fail "the profile does not grant userns: $(cat "$profile")"
grep -qF "profile hearth-action \"$(realpath "$bin")\" flags=(unconfined) {" "$profile" ||
  fail "the profile does not attach to the action's hearth: $(cat "$profile")"
[ "$(grep -c . "$profile")" -le 8 ] || fail "the profile grants more than userns: $(cat "$profile")"
[ "$(cat "$work/parser-calls")" = "-r $profile" ] || fail "the parser was called as: $(cat "$work/parser-calls")"
logged "AppArmor restricts unprivileged user namespaces on this runner"
logged "grants userns to $(realpath "$bin") only"
logged "The namespace sandbox works on this runner"

# 6. The input turns it off; where the sandbox then cannot start, the warning says what to do with a URL.
rm -f "$work/parser-calls" "$profile"
aa INPUT_APPARMOR_PROFILE=false FAKE_SANDBOX_RC=1 bash "$script" apparmor "$bin" || fail "apparmor false failed"
[ ! -e "$work/parser-calls" ] && [ ! -e "$profile" ] || fail "apparmor-profile: false still loaded a profile"
logged "apparmor-profile input is false"
logged "::warning title=Hearth sandbox::The namespace sandbox cannot start on this runner"
logged "What to do: https://github.com/octo/hearth/blob/v1/docs/github-actions.md#apparmor-and-user-namespaces"
if aa INPUT_APPARMOR_PROFILE=maybe bash "$script" apparmor "$bin"; then fail "apparmor-profile: maybe was accepted"; fi

# 7. No restriction: no profile. A parser that fails: an error with the URL, the step goes on to hearth ci.
echo 0 > "$work/restrict"
aa bash "$script" apparmor "$bin"
[ ! -e "$work/parser-calls" ] || fail "a profile was loaded where user namespaces are not restricted"
echo 1 > "$work/restrict"
printf '#!/bin/sh\necho "apparmor_parser: unknown rule userns" >&2\nexit 1\n' > "$work/parser"
aa FAKE_SANDBOX_RC=1 bash "$script" apparmor "$bin" || fail "a failing parser ended the step"
logged "::error title=Hearth sandbox::Could not load an AppArmor profile for Hearth"
logged "https://github.com/octo/hearth/blob/v1/docs/github-actions.md#apparmor-and-user-namespaces"

# 8. A binary whose path AppArmor would read as a pattern gets no profile.
mkdir -p "$work/odd\"dir*"
cp "$bin" "$work/odd\"dir*/hearth"
if aa bash "$script" apparmor "$work/odd\"dir*/hearth"; then fail "a profile path with a quote was accepted"; fi
logged "its path holds characters AppArmor would read as a pattern"
echo "action setup: ok"
