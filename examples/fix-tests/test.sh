#!/bin/bash
# The project's tests: prints one line per check, exits 1 if any failed.
cd "$(dirname "$0")" || exit 2
. lib/math.sh
failed=0
check() {
  if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected $3, got $2"; failed=1; fi
}
check "add 2 3" "$(add 2 3)" 5
check "mean 2 4 6" "$(mean 2 4 6)" 4
check "mean 5" "$(mean 5)" 5
exit $failed
