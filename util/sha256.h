// SHA-256 for content addresses (workflow snapshots), from libcrypto, under
// names of Hearth's own. Where libcrypto's static archive was there when
// Hearth was built, its SHA-256 code is linked in (util/extract-sha256.sh):
// a run, `validate` or `resume` then hashes without opening libcrypto.so,
// which costs 1.5-2 ms of a cold start (docs/performance.md). Elsewhere these
// forward to the lazily opened library (util/lazy/crypto.cpp). The
// low-level SHA-256 is deprecated in OpenSSL 3 in favour of EVP, whose first
// digest sets up a provider (reading openssl.cnf, about 0.9 ms); no provider
// choice matters for a content address.
#pragma once

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <openssl/sha.h>

#include <cstddef>

extern "C" {
int hearth_sha256_init(SHA256_CTX* c);
int hearth_sha256_update(SHA256_CTX* c, const void* data, size_t len);
int hearth_sha256_final(unsigned char* md, SHA256_CTX* c);
}
