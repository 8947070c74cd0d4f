#ifndef SECURECHAT_GCRYPT_H
#define SECURECHAT_GCRYPT_H
#include <gcrypt.h>

/// Initialises libgcrypt once (thread-safe): checks the version, disables secure memory (we wipe
/// secrets ourselves) and finishes initialisation. Returns 0 on success, -1 if the library is
/// older than `minimum_version`.
int securechat_gcrypt_initialize(const char *minimum_version);

/// What sealing or opening one message came to.
typedef enum {
    SECURECHAT_GCRYPT_DONE = 0,
    SECURECHAT_GCRYPT_TAG_MISMATCH = 1,  /* open only: the message is not authentic */
    SECURECHAT_GCRYPT_FAILED = 2         /* the library refused a call (a bug, not the input) */
} securechat_gcrypt_outcome;

/// One AEAD message on a handle keyed once: the 12-byte nonce, the associated data (which
/// also ends the AAD phase: gcry_cipher_final, a macro Swift cannot import), then the data.
/// The whole sequence is here, inline, so that a message costs the libgcrypt calls and no
/// wrapper layers around each of them.
static inline securechat_gcrypt_outcome securechat_gcrypt_begin(gcry_cipher_hd_t handle, const void *nonce,
                                          const void *ad, size_t ad_length) {
    if (gcry_cipher_setiv(handle, nonce, 12)) return SECURECHAT_GCRYPT_FAILED;
    if (ad_length && gcry_cipher_authenticate(handle, ad, ad_length)) return SECURECHAT_GCRYPT_FAILED;
    return gcry_cipher_final(handle) ? SECURECHAT_GCRYPT_FAILED : SECURECHAT_GCRYPT_DONE;
}

/// Seals `length` bytes of `in` into `out`, the 16-byte tag after them.
static inline securechat_gcrypt_outcome securechat_gcrypt_seal(gcry_cipher_hd_t handle, const void *nonce, const void *ad, size_t ad_length,
                                         const void *in, size_t length, unsigned char *out) {
    securechat_gcrypt_outcome outcome = securechat_gcrypt_begin(handle, nonce, ad, ad_length);
    if (outcome != SECURECHAT_GCRYPT_DONE) return outcome;
    if (length && gcry_cipher_encrypt(handle, out, length, in, length)) return SECURECHAT_GCRYPT_FAILED;
    return gcry_cipher_gettag(handle, out + length, 16) ? SECURECHAT_GCRYPT_FAILED : SECURECHAT_GCRYPT_DONE;
}

/// Opens `length` bytes of `in` into `out` and checks `tag` (16 bytes) in constant time.
static inline securechat_gcrypt_outcome securechat_gcrypt_open(gcry_cipher_hd_t handle, const void *nonce, const void *ad, size_t ad_length,
                                         const void *in, size_t length, void *out, const void *tag) {
    securechat_gcrypt_outcome outcome = securechat_gcrypt_begin(handle, nonce, ad, ad_length);
    if (outcome != SECURECHAT_GCRYPT_DONE) return outcome;
    if (length && gcry_cipher_decrypt(handle, out, length, in, length)) return SECURECHAT_GCRYPT_FAILED;
    return gcry_cipher_checktag(handle, tag, 16) ? SECURECHAT_GCRYPT_TAG_MISMATCH : SECURECHAT_GCRYPT_DONE;
}
#endif
