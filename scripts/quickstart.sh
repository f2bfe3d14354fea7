#!/bin/sh
# From a fresh Debian machine to a finished example run: install the
# dependencies, build, and run examples/hello's release-notes workflow.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -d build ] || meson setup build
ninja -C build
./build/cli/hearth --repo examples/hello run release-notes --input version=1.2.0 --input audience=developers
./build/cli/hearth --repo examples/hello runs --limit 3

# Two agent workflows, offline: the model's side is a recorded session
# (a cassette), everything else (tools, sandbox, checks) runs for real.
./build/cli/hearth --repo examples/triage run triage --payload @examples/triage/issue.json \
  --model replay:examples/triage/cassette.jsonl
# The fixer works in a checkout: give it a scratch git repository of its own.
demo=$(mktemp -d)
cp -r examples/fix-tests/. "$demo"
git -C "$demo" init -q
git -C "$demo" add -A
git -C "$demo" -c user.name=quickstart -c user.email=quickstart@localhost commit -qm "fix-tests example"
./build/cli/hearth --repo "$demo" run fix-tests --model replay:examples/fix-tests/cassette.jsonl
./build/cli/hearth --repo "$demo" show "$(./build/cli/hearth --repo "$demo" runs --json --limit 1 | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -1)" --transcript --step fix
rm -rf "$demo"
