#ifndef SECURECHAT_GCRYPT_H
#define SECURECHAT_GCRYPT_H
#include <gcrypt.h>

/// Initialises libgcrypt once (thread-safe): checks the version, disables secure memory (we wipe
/// secrets ourselves) and finishes initialisation. Returns 0 on success, -1 if the library is
/// older than `minimum_version`.
int securechat_gcrypt_initialize(const char *minimum_version);

/// gcry_cipher_final is a macro over gcry_cipher_ctl; Swift cannot import it.
gcry_error_t securechat_gcrypt_cipher_final(gcry_cipher_hd_t handle);
#endif
