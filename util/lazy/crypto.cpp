// libcrypto (OpenSSL 3), opened on the first hash, HMAC or random bytes: the
// largest single library by relocations (about 21,000), not needed by most
// commands. The functions Hearth calls, forwarded; see util/lazy_library.h.
// The low-level SHA-256 (util/sha256.h) is deprecated in OpenSSL 3, still
// exported; declared without the deprecation (before any OpenSSL header).
#define OPENSSL_SUPPRESS_DEPRECATED
#include "util/lazy/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "util/lazy/forward.h"
#include "util/sha256.h"

namespace hearth::lazy {

HEARTH_LAZY_SONAME const char kSoname[] = "libcrypto.so." HEARTH_LAZY_STRING(OPENSSL_SHLIB_VERSION);

LazyLibrary& crypto_library() {
  static LazyLibrary library(kSoname,
                             "hashing and signatures (workflow snapshots, webhooks, redaction)");
  return library;
}

}  // namespace hearth::lazy

using hearth::lazy::crypto_library;

HEARTH_LAZY_FORWARD(crypto_library(), int, CRYPTO_memcmp, (const void* a, const void* b, size_t len), (a, b, len))
HEARTH_LAZY_FORWARD(crypto_library(), int, RAND_bytes, (unsigned char* buf, int num), (buf, num))
HEARTH_LAZY_FORWARD(crypto_library(), const EVP_MD*, EVP_sha256, (void), ())
#ifndef HEARTH_SHA256_STATIC  // else linked from libcrypto.a (util/extract-sha256.sh)
HEARTH_LAZY_FORWARD(crypto_library(), int, SHA256_Init, (SHA256_CTX * c), (c))
HEARTH_LAZY_FORWARD(crypto_library(), int, SHA256_Update, (SHA256_CTX * c, const void* data, size_t len), (c, data, len))
HEARTH_LAZY_FORWARD(crypto_library(), int, SHA256_Final, (unsigned char* md, SHA256_CTX* c), (md, c))
extern "C" int hearth_sha256_init(SHA256_CTX* c) { return SHA256_Init(c); }
extern "C" int hearth_sha256_update(SHA256_CTX* c, const void* data, size_t len) { return SHA256_Update(c, data, len); }
extern "C" int hearth_sha256_final(unsigned char* md, SHA256_CTX* c) { return SHA256_Final(md, c); }
#endif
HEARTH_LAZY_FORWARD(crypto_library(), EVP_MD_CTX*, EVP_MD_CTX_new, (void), ())
HEARTH_LAZY_FORWARD(crypto_library(), void, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
HEARTH_LAZY_FORWARD(crypto_library(), int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD* type, ENGINE* impl),
                    (ctx, type, impl))
HEARTH_LAZY_FORWARD(crypto_library(), int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void* d, size_t n), (ctx, d, n))
HEARTH_LAZY_FORWARD(crypto_library(), int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char* md, unsigned int* s),
                    (ctx, md, s))
HEARTH_LAZY_FORWARD(crypto_library(), int, EVP_Digest,
                    (const void* data, size_t count, unsigned char* md, unsigned int* size, const EVP_MD* type,
                     ENGINE* impl),
                    (data, count, md, size, type, impl))
HEARTH_LAZY_FORWARD(crypto_library(), int, EVP_EncodeBlock, (unsigned char* t, const unsigned char* f, int n), (t, f, n))
HEARTH_LAZY_FORWARD(crypto_library(), EVP_MAC*, EVP_MAC_fetch, (OSSL_LIB_CTX * ctx, const char* algorithm, const char* props),
                    (ctx, algorithm, props))
HEARTH_LAZY_FORWARD(crypto_library(), void, EVP_MAC_free, (EVP_MAC * mac), (mac))
HEARTH_LAZY_FORWARD(crypto_library(), EVP_MAC_CTX*, EVP_MAC_CTX_new, (EVP_MAC * mac), (mac))
HEARTH_LAZY_FORWARD(crypto_library(), void, EVP_MAC_CTX_free, (EVP_MAC_CTX * ctx), (ctx))
HEARTH_LAZY_FORWARD(crypto_library(), int, EVP_MAC_init,
                    (EVP_MAC_CTX * ctx, const unsigned char* key, size_t keylen, const OSSL_PARAM params[]),
                    (ctx, key, keylen, params))
HEARTH_LAZY_FORWARD(crypto_library(), int, EVP_MAC_update, (EVP_MAC_CTX * ctx, const unsigned char* data, size_t n),
                    (ctx, data, n))
HEARTH_LAZY_FORWARD(crypto_library(), int, EVP_MAC_final,
                    (EVP_MAC_CTX * ctx, unsigned char* out, size_t* outl, size_t outsize), (ctx, out, outl, outsize))
HEARTH_LAZY_FORWARD(crypto_library(), unsigned char*, HMAC,
                    (const EVP_MD* md, const void* key, int key_len, const unsigned char* data, size_t data_len,
                     unsigned char* out, unsigned int* out_len),
                    (md, key, key_len, data, data_len, out, out_len))
HEARTH_LAZY_FORWARD(crypto_library(), OSSL_PARAM, OSSL_PARAM_construct_utf8_string,
                    (const char* key, char* buf, size_t bsize), (key, buf, bsize))
HEARTH_LAZY_FORWARD(crypto_library(), OSSL_PARAM, OSSL_PARAM_construct_end, (void), ())
