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
ninja -C build cli/hearth commands/hearth-shim sandbox/hearth-stepbox sandbox/hearth-init
sh scripts/run-examples.sh ./build/cli/hearth

echo "quickstart: the examples ran. Building the tests and the rest (about 12 more minutes on 2 cores)..."
ninja -C build
echo "quickstart: done. Run the test suite with: meson test -C build"
