#!/bin/sh
# Installs Hearth's build and test dependencies from Debian/Ubuntu packages.
set -eu
# procps and mount are there for the tests (ps, pgrep, mount): a minimal root lacks them.
packages="meson ninja-build pkg-config g++ bash
  libuv1-dev libsqlite3-dev libtomlplusplus-dev nlohmann-json3-dev libgit2-dev
  libboost-test-dev libcli11-dev libcurl4-openssl-dev libseccomp-dev libvalijson-dev
  libyaml-cpp-dev libssl-dev libhttp-parser-dev rapidjson-dev libicu-dev libpcre2-dev libpq-dev
  bubblewrap perl util-linux mount procps strace curl openssl git"
# The PostgreSQL store's tests start a server of their own (initdb, pg_ctl).
packages="$packages postgresql"
# Programs the granted-command tests run for real (tests/commands/real_programs_test.cpp).
# Debian's packages, unless the program is already installed some other way
# (npm from a Node.js tarball or NodeSource has no dpkg entry named npm).
for program in gh npm; do
  command -v "$program" >/dev/null 2>&1 || packages="$packages $program"
done
missing=""
for p in $packages; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
