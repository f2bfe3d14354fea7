#!/bin/bash
# Checks the AppArmor profile the action loads (scripts/action-setup.sh
# profile) with AppArmor 4's parser, which knows the `userns` rule (Debian 12's
# 3.0 does not). The parser runs in a Debian 13 root, parsing only (-Q: no
# kernel, -K: no cache), so no AppArmor kernel is needed. A profile with an
# unknown rule must be refused by the same parser, or the check proves nothing.
#   scripts/check-apparmor-profile.sh ROOT
# ROOT: a Debian 13 root with the apparmor package, made (as root) by
#   mmdebstrap --variant=essential --include=apparmor trixie ROOT
set -euo pipefail
root=${1:?usage: check-apparmor-profile.sh ROOT (a Debian 13 root with apparmor)}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$root/usr/sbin/apparmor_parser" ] || [ -x "$root/sbin/apparmor_parser" ] ||
  { echo "$root has no apparmor_parser: make it with mmdebstrap --variant=essential --include=apparmor trixie $root" >&2; exit 2; }
chroot "$root" apparmor_parser --version | head -n 1
GITHUB_ACTION_PATH="$here/.." RUNNER_TEMP=/tmp bash "$here/action-setup.sh" profile \
  /runner/temp/hearth-release/hearth-1.2.3-linux-x86_64/bin/hearth > "$root/tmp/hearth-action"
chroot "$root" apparmor_parser -Q -K /tmp/hearth-action
echo "the action's profile parses"
sed 's/  userns,/  userns_everything,/' "$root/tmp/hearth-action" > "$root/tmp/hearth-action-bad"
if chroot "$root" apparmor_parser -Q -K /tmp/hearth-action-bad 2>/dev/null; then
  echo "FAIL: the parser also accepts a profile with an unknown rule; this check proves nothing" >&2
  exit 1
fi
echo "a profile with an unknown rule is refused by the same parser"
