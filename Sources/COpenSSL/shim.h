#ifndef SECURECHAT_COPENSSL_SHIM_H
#define SECURECHAT_COPENSSL_SHIM_H
/* SHA256_Init and friends are deprecated in OpenSSL 3 but kept: the only allocation-free hash. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <string.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

/* SHA-256 of a then b, the context on the stack and wiped: EVP_Digest allocates a context on
   every call. Writes out only after reading both inputs, so out may alias either. */
static inline int securechat_sha256(const void *a, size_t a_len, const void *b, size_t b_len, unsigned char *out) {
    SHA256_CTX context;
    int ok = SHA256_Init(&context) && SHA256_Update(&context, a, a_len) && SHA256_Update(&context, b, b_len)
          && SHA256_Final(out, &context);
    OPENSSL_cleanse(&context, sizeof context);
    return ok;
}
#endif
