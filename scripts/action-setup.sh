#!/bin/bash
# The steps of the GitHub Action (action.yml) that are more than one line,
# here so that they can be tested outside a runner (tests/release/action_setup_test.sh).
#
#   action-setup.sh install     choose the release tarball or a source build;
#                               for the tarball: download, verify, unpack
#   action-setup.sh build       source build into $RUNNER_TEMP/hearth-bin (after install chose it)
#   action-setup.sh apparmor BIN
#                               where AppArmor restricts user namespaces, load a profile
#                               granting `userns` to BIN; then check the sandbox starts
#   action-setup.sh profile BIN print that profile (for checking it with apparmor_parser)
#
# The tarball is used when the action's checkout holds .github/release-sha256,
# which the release workflow commits on the release's tag (and moves the major
# tag to): it names the tarball's URL and its SHA-256. A checksum fetched from
# the release itself would prove nothing; this one is fixed by the ref the user
# pins. Any other ref (a branch, a commit of main, `uses: ./`) builds from source.
#
# Environment: GITHUB_ACTION_PATH (the action's checkout), RUNNER_TEMP,
# GITHUB_OUTPUT; HEARTH_ACTION_REPOSITORY and HEARTH_ACTION_REF (the action's
# github.action_repository and github.action_ref: for the docs URL);
# INPUT_APPARMOR_PROFILE (true/false). For tests only:
# HEARTH_RELEASE_URL replaces the recorded URL (the checksum still applies),
# HEARTH_USERNS_SYSCTL and HEARTH_APPARMOR_PARSER replace the sysctl file and
# the parser command, HEARTH_APPARMOR_DIR the profile directory.
set -euo pipefail

action=${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set: this runs as a step of the Hearth action}
temp=${RUNNER_TEMP:?RUNNER_TEMP is not set: this runs as a step of the Hearth action}
output=${GITHUB_OUTPUT:-/dev/null}

# Where a user reads what to do: the docs page of the action's own ref on GitHub.
docs_url() {
  local repo=${HEARTH_ACTION_REPOSITORY:-${GITHUB_ACTION_REPOSITORY:-}} ref=${HEARTH_ACTION_REF:-${GITHUB_ACTION_REF:-}}
  if [ -z "$repo" ]; then repo=${GITHUB_REPOSITORY:-OWNER/hearth}; ref=${GITHUB_SHA:-main}; fi
  echo "https://github.com/$repo/blob/${ref:-main}/docs/github-actions.md#$1"
}

# A workflow command's message: % and line breaks escaped as the runner reads them.
annotate() {
  local kind=$1 title=$2 message=$3
  message=${message//'%'/'%25'}
  message=${message//$'\r'/'%0D'}
  message=${message//$'\n'/'%0A'}
  echo "::$kind title=$title::$message"
}

fail() {
  annotate error "Hearth setup" "$1"
  exit 1
}

# The recorded release: sets url and sha256 from .github/release-sha256, or
# returns 1 when this ref has none. A file that is there but malformed is an error.
read_release() {
  local file="$action/.github/release-sha256" key value
  [ -f "$file" ] || return 1
  url="" sha256=""
  while read -r key value; do
    case "$key" in
      ''|'#'*) ;;
      url) url=$value ;;
      sha256) sha256=$value ;;
      *) fail "$file: unknown key '$key' (expected url and sha256)" ;;
    esac
  done < "$file"
  [[ "$url" =~ ^https://[^[:space:]]+/hearth-[0-9][0-9A-Za-z.+-]*-linux-x86_64\.tar\.gz$ ]] ||
    fail "$file: url must be an https:// address of a hearth-<version>-linux-x86_64.tar.gz, not '$url'"
  [[ "$sha256" =~ ^[0-9a-f]{64}$ ]] || fail "$file: sha256 must be 64 lowercase hex digits, not '$sha256'"
}

# The runtime needs of the tarball: bash and git. Runners have both; a bare
# container job may not.
ensure_runtime() {
  command -v git >/dev/null && return 0
  command -v apt-get >/dev/null || fail "git is missing and this is not an apt system: install git before the Hearth step"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "Installing git (Hearth's checkout workspaces use it)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends git ca-certificates
}

cmd_install() {
  local url sha256
  if ! read_release; then
    echo "This ref of the action has no release tarball (.github/release-sha256): building Hearth from source"
    echo "mode=source" >> "$output"
    echo "bin=$temp/hearth-bin/hearth" >> "$output"
    echo "cache-key=$(source_key)" >> "$output"
    return 0
  fi
  local name=${url##*/} dir="$temp/hearth-release"
  local version=${name#hearth-}
  version=${version%-linux-x86_64.tar.gz}
  [ "$(uname -m)" = x86_64 ] || fail "Hearth's release tarball is for x86_64; this runner is $(uname -m)"
  rm -rf "$dir"
  mkdir -p "$dir"
  local from=${HEARTH_RELEASE_URL:-$url}
  echo "Downloading Hearth $version: $from"
  curl -fsSL --retry 3 --retry-delay 2 -o "$dir/$name" "$from" || fail "cannot download $from"
  local got
  got=$(sha256sum "$dir/$name" | cut -d' ' -f1)
  if [ "$got" != "$sha256" ]; then
    rm -f "$dir/$name"
    fail "$name: SHA-256 is $got, but this ref of the action expects $sha256 (.github/release-sha256); refusing to run it"
  fi
  echo "SHA-256 $got matches the one this ref of the action records"
  tar -xzf "$dir/$name" -C "$dir" --no-same-owner
  local bin="$dir/hearth-$version-linux-x86_64/bin/hearth"
  [ -x "$bin" ] || fail "$name does not hold hearth-$version-linux-x86_64/bin/hearth"
  ensure_runtime
  "$bin" --version
  echo "mode=tarball" >> "$output"
  echo "bin=$bin" >> "$output"
}

# The cache key of a source build: the runner image (a binary built on one
# Ubuntu release must not be restored onto the next) and the sources.
source_key() {
  local hash
  hash=$(cd "$action" && find . -path './build*' -prune -o -path './.git' -prune -o -type f \( -name '*.cpp' \
    -o -name '*.h' -o -name 'meson.build' -o -name 'meson_options.txt' -o -name '*.wrap' -o -name 'install-deps.sh' \) \
    -print | LC_ALL=C sort | xargs -r -d '\n' sha256sum | sha256sum | cut -c1-40)
  echo "hearth-bin-${RUNNER_OS:-Linux}-${RUNNER_ARCH:-X64}-${ImageOS:-noimage}-${ImageVersion:-noversion}-$hash"
}

cmd_build() {
  sh "$action/scripts/install-deps.sh"
  local build="$temp/hearth-build" bin="$temp/hearth-bin"
  [ -d "$build" ] || meson setup "$build" "$action" --buildtype=release -Dtests=disabled
  ninja -C "$build" cli/hearth commands/hearth-shim sandbox/hearth-stepbox sandbox/hearth-init
  mkdir -p "$bin"
  # The shim, the stepbox and the init are found beside hearth (which links the engine
  # statically: no libhearth.so to copy).
  for p in cli/hearth commands/hearth-shim sandbox/hearth-stepbox sandbox/hearth-init; do
    cp "$build/$p" "$bin/"
  done
}

# The profile: Hearth's binary may create user namespaces, and is otherwise
# as unconfined as it was (the way Ubuntu's own profiles for sandboxing tools
# read). Nothing else on the runner gains anything.
profile_text() {
  local bin=$1
  cat <<EOF
# Written by the Hearth action: lets this hearth binary create user namespaces
# for its sandbox on a host with kernel.apparmor_restrict_unprivileged_userns=1.
abi <abi/4.0>,
include <tunables/global>

profile hearth-action "$bin" flags=(unconfined) {
  userns,
}
EOF
}

cmd_apparmor() {
  local bin=${1:?usage: action-setup.sh apparmor BIN}
  local sysctl=${HEARTH_USERNS_SYSCTL:-/proc/sys/kernel/apparmor_restrict_unprivileged_userns}
  local url
  url=$(docs_url apparmor-and-user-namespaces)
  if [ "$(cat "$sysctl" 2>/dev/null || echo 0)" = 1 ]; then
    case "${INPUT_APPARMOR_PROFILE:-true}" in
      true|True|TRUE) load_profile "$bin" ;;
      false|False|FALSE)
        echo "AppArmor restricts user namespaces here and the apparmor-profile input is false: no profile loaded" ;;
      *) fail "input apparmor-profile: expected true or false, not '${INPUT_APPARMOR_PROFILE}'" ;;
    esac
  fi
  local problem
  if problem=$("$bin" sandbox run -- true 2>&1); then
    echo "The namespace sandbox works on this runner"
  else
    annotate warning "Hearth sandbox" "The namespace sandbox cannot start on this runner, so workflows that do not choose [sandbox] kind = \"local\" will be refused. What to do: $url (hearth said: $problem)"
  fi
}

load_profile() {
  local bin=$1 dir=${HEARTH_APPARMOR_DIR:-/etc/apparmor.d} parser=${HEARTH_APPARMOR_PARSER:-apparmor_parser}
  local url
  url=$(docs_url apparmor-and-user-namespaces)
  bin=$(realpath -e "$bin") || fail "$1: no such file: the Hearth binary to write an AppArmor profile for"
  # The path goes into the profile between quotes: nothing in it may end the
  # quotes or be read as an AppArmor glob.
  [[ "$bin" =~ ^/[A-Za-z0-9._/+-]+$ ]] ||
    fail "cannot write an AppArmor profile for '$bin': its path holds characters AppArmor would read as a pattern. Unpack the action elsewhere or set apparmor-profile: false; see $url"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  local profile="$temp/hearth-action.apparmor"
  profile_text "$bin" > "$profile"
  echo "AppArmor restricts unprivileged user namespaces on this runner (kernel.apparmor_restrict_unprivileged_userns=1)."
  echo "Loading the AppArmor profile hearth-action, which grants userns to $bin only (apparmor-profile: false turns this off):"
  cat "$profile"
  if ! $sudo install -m 0644 "$profile" "$dir/hearth-action" || ! $sudo $parser -r "$dir/hearth-action"; then
    annotate error "Hearth sandbox" "Could not load an AppArmor profile for Hearth (needs root or passwordless sudo and AppArmor 4). Workflows that do not choose [sandbox] kind = \"local\" will be refused. What to do: $url"
    return 0
  fi
  echo "Loaded."
}

case "${1:-}" in
  install) cmd_install ;;
  build) cmd_build ;;
  apparmor) shift; cmd_apparmor "$@" ;;
  profile) profile_text "${2:?usage: action-setup.sh profile BIN}" ;;
  *) echo "usage: action-setup.sh install | build | apparmor BIN | profile BIN" >&2; exit 2 ;;
esac
