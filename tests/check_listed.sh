#!/bin/sh
# Fails when a *_test.cpp under tests/ is not listed in tests/meson.build.
dir=$1
status=0
for f in $(cd "$dir" && find . -name '*_test.cpp' | sed 's|^\./||' | sort); do
  if ! grep -q "'$f'" "$dir/meson.build"; then
    echo "tests/$f is not listed in tests/meson.build"
    status=1
  fi
done
exit $status
