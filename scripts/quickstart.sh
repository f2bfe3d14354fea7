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
