#!/bin/sh
# From a fresh Debian machine to a finished example run: install the
# dependencies, build what the examples need, run them, then build the rest.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
# A build directory left half-configured by an interrupted run is set up again.
if [ -f build/build.ninja ]; then
  meson setup --reconfigure build >/dev/null || meson setup --wipe build
else
  rm -rf build
  meson setup build
fi
echo "quickstart: building hearth and its helpers (about 6 minutes on 2 cores)..."
ninja -C build cli/hearth commands/hearth-shim sandbox/hearth-stepbox
./build/cli/hearth --version
./build/cli/hearth --repo examples/hello run release-notes --input version=1.2.0 --input audience=developers
./build/cli/hearth --repo examples/hello runs --limit 3

# Two agent workflows, offline: the model's side is a recorded session
# (a cassette), everything else (tools, sandbox, checks) runs for real.
./build/cli/hearth --repo examples/triage run triage --payload @examples/triage/issue.json \
  --model replay:examples/triage/cassette.jsonl
# The fixer works in a checkout: give it a scratch git repository of its own.
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
cp -r examples/fix-tests/. "$demo"
git -C "$demo" init -q
git -C "$demo" add -A
git -C "$demo" -c user.name=quickstart -c user.email=quickstart@localhost commit -qm "fix-tests example"
./build/cli/hearth --repo "$demo" run fix-tests --model replay:examples/fix-tests/cassette.jsonl
./build/cli/hearth --repo "$demo" show "$(./build/cli/hearth --repo "$demo" runs --json --limit 1 | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -1)" --transcript --step fix

echo "quickstart: the examples ran. Building the tests and the rest (about 12 more minutes on 2 cores)..."
ninja -C build
echo "quickstart: done. Run the test suite with: meson test -C build"
