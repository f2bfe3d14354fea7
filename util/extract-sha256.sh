#!/bin/sh
# Takes libcrypto's SHA-256 out of its static archive, for util/meson.build:
#   extract-sha256.sh LD OBJCOPY libcrypto.a OUTPUT.o
# `ld -r` pulls in only the archive members that SHA256_Init, SHA256_Update
# and SHA256_Final need (the SHA-256 code and the CPU probe it reads, about
# 28 KB), allocating their common symbols (-d). objcopy then renames the
# three to hearth_sha256_* and makes every other symbol local, so none of
# them meets the libcrypto.so that other commands open. No constructor comes
# along, so libcrypto's CPU probe never runs and the code hashes with its
# plain instructions (not SHA-NI or AVX): microseconds for a workflow's few
# kilobytes.
set -eu
ld=$1 objcopy=$2 archive=$3 out=$4
"$ld" -r -d -o "$out.tmp" -u SHA256_Init -u SHA256_Update -u SHA256_Final "$archive"
"$objcopy" \
  --redefine-sym SHA256_Init=hearth_sha256_init \
  --redefine-sym SHA256_Update=hearth_sha256_update \
  --redefine-sym SHA256_Final=hearth_sha256_final \
  --keep-global-symbol=hearth_sha256_init \
  --keep-global-symbol=hearth_sha256_update \
  --keep-global-symbol=hearth_sha256_final \
  "$out.tmp" "$out"
rm -f "$out.tmp"
