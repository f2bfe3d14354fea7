#!/bin/sh
# Runs the example workflows as the quickstart shows them: examples/hello,
# then the two agent workflows offline (the model's side is a recorded
# session, a cassette; tools, sandbox and checks run for real).
#   scripts/run-examples.sh HEARTH            in examples/ itself (their state stays to explore)
#   scripts/run-examples.sh HEARTH --copy     on copies in a temporary directory (the test suite)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
hearth=$1
ex="$root/examples"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ "${2:-}" = --copy ]; then
  cp -r "$ex/hello" "$ex/triage" "$scratch/"
  ex=$scratch
fi
"$hearth" --version
"$hearth" --repo "$ex/hello" run release-notes --input version=1.2.0 --input audience=developers
"$hearth" --repo "$ex/hello" runs --limit 3

"$hearth" --repo "$ex/triage" run triage --payload @"$ex/triage/issue.json" \
  --model replay:"$ex/triage/cassette.jsonl"
# The fixer works in a checkout: give it a scratch git repository of its own.
demo="$scratch/fix-tests"
mkdir "$demo"
cp -r "$root/examples/fix-tests/." "$demo"
git -C "$demo" init -q
git -C "$demo" add -A
git -C "$demo" -c user.name=quickstart -c user.email=quickstart@localhost commit -qm "fix-tests example"
"$hearth" --repo "$demo" run fix-tests --model replay:"$root/examples/fix-tests/cassette.jsonl"
"$hearth" --repo "$demo" show "$("$hearth" --repo "$demo" runs --json --limit 1 | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -1)" \
  --transcript --step fix
