#!/bin/sh
# Builds the libFuzzer targets with clang and sanitizers and runs each for a
# short while (default 20 s), seeded from the repository's own examples.
# Fails on the first crash, leak, sanitizer report or broken property.
set -eu
seconds=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
if [ ! -d "$build" ]; then
  CXX=clang++ meson setup "$build" "$root" -Dfuzz=enabled -Dtests=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dcpp_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$build" fuzz/fuzz_workflow fuzz/fuzz_expr fuzz/fuzz_frames fuzz/fuzz_policy fuzz/fuzz_redact \
  fuzz/fuzz_webhook fuzz/fuzz_http_request fuzz/fuzz_proxy_path >/dev/null
corpus=$(mktemp -d /tmp/hearth-fuzz-XXXXXX)
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/workflow"
find "$root/examples" -name '*.toml' -exec cp {} "$corpus/workflow/" \;
# Inputs that once found a fault (fuzz/seeds/<target>/): run first, every time.
for seeds in "$root"/fuzz/seeds/*/; do
  t=$(basename "$seeds")
  mkdir -p "$corpus/$t"
  cp "$seeds"* "$corpus/$t/"
done
for t in workflow expr frames policy redact webhook http_request proxy_path; do
  mkdir -p "$corpus/$t"
  echo "fuzz_$t: ${seconds}s"
  UBSAN_OPTIONS="halt_on_error=1:suppressions=$root/fuzz/ubsan.supp" "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -artifact_prefix="$corpus/" "$corpus/$t" 2>"$corpus/$t.log" || {
    tail -n 40 "$corpus/$t.log"
    echo "fuzz_$t found a problem; the input is in the log above" >&2
    exit 1
  }
  grep -E '^Done' "$corpus/$t.log" || true
done
