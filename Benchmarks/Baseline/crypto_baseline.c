// The C baseline of scripts/bench-crypto.sh: libcrypto, libssl and libgcrypt called directly, the
// way securechat's wrappers should call them (cipher context and key set up once, a new nonce per
// message), timed the same way as `securechat bench` (the median of three slices per case).
//
// Usage: crypto_baseline SECONDS SIZE...
// Prints one line per result, the same keys as `securechat bench --json`:
//   seal|open BACKEND CIPHER SIZE MB/s
//   x25519-keygen|x25519-dh BACKEND operations/s
//   tls13-handshake openssl handshakes/s   (full TLS 1.3, X25519, Ed25519 certificate, in-process)
#include <gcrypt.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fail(const char *what) {
    fprintf(stderr, "crypto_baseline: %s failed\n", what);
    exit(1);
}
#define CHECK(call) do { if (!(call)) fail(#call); } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// One case: `step` does one operation; returns operations per second, the median of three slices.
typedef void (*step_fn)(void *state);
static double rate(step_fn step, void *state, double seconds) {
    double slices[3];
    for (int slice = 0; slice < 3; slice++) {
        long operations = 0, batch = 1;
        double start = now(), elapsed = 0;
        while (elapsed < seconds / 3) {
            for (long i = 0; i < batch; i++) step(state);
            operations += batch;
            if (batch < 1 << 16) batch *= 2;
            elapsed = now() - start;
        }
        slices[slice] = (double)operations / elapsed;
    }
    double a = slices[0], b = slices[1], c = slices[2];
    return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

// The Noise nonce: 4 zero bytes, then the counter (ChaChaPoly little-endian, AESGCM big-endian).
static void noise_nonce(uint8_t nonce[12], uint64_t counter, int aes) {
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (aes ? 56 - 8 * i : 8 * i));
}

struct aead {
    int aes;
    size_t size;
    uint64_t counter;
    uint8_t *in, *out;
    EVP_CIPHER_CTX *seal_ctx, *open_ctx;
    gcry_cipher_hd_t gcrypt;
};

static void openssl_seal(void *p) {
    struct aead *a = p;
    uint8_t nonce[12];
    int written;
    noise_nonce(nonce, a->counter++, a->aes);
    CHECK(EVP_EncryptInit_ex2(a->seal_ctx, NULL, NULL, nonce, NULL));
    CHECK(EVP_EncryptUpdate(a->seal_ctx, a->out, &written, a->in, (int)a->size));
    CHECK(EVP_EncryptFinal_ex(a->seal_ctx, a->out + a->size, &written));
    CHECK(EVP_CIPHER_CTX_ctrl(a->seal_ctx, EVP_CTRL_AEAD_GET_TAG, 16, a->out + a->size));
}

// Opens the message sealed under nonce 0 (kept in `in`), again and again.
static void openssl_open(void *p) {
    struct aead *a = p;
    uint8_t nonce[12], tag[16];
    int written;
    noise_nonce(nonce, 0, a->aes);
    memcpy(tag, a->in + a->size, 16);
    CHECK(EVP_DecryptInit_ex2(a->open_ctx, NULL, NULL, nonce, NULL));
    CHECK(EVP_DecryptUpdate(a->open_ctx, a->out, &written, a->in, (int)a->size));
    CHECK(EVP_CIPHER_CTX_ctrl(a->open_ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag));
    CHECK(EVP_DecryptFinal_ex(a->open_ctx, a->out + a->size, &written) == 1);
}

static void gcrypt_seal(void *p) {
    struct aead *a = p;
    uint8_t nonce[12];
    noise_nonce(nonce, a->counter++, a->aes);
    CHECK(gcry_cipher_setiv(a->gcrypt, nonce, 12) == 0);
    CHECK(gcry_cipher_final(a->gcrypt) == 0);
    CHECK(gcry_cipher_encrypt(a->gcrypt, a->out, a->size, a->in, a->size) == 0);
    CHECK(gcry_cipher_gettag(a->gcrypt, a->out + a->size, 16) == 0);
}

static void gcrypt_open(void *p) {
    struct aead *a = p;
    uint8_t nonce[12];
    noise_nonce(nonce, 0, a->aes);
    CHECK(gcry_cipher_setiv(a->gcrypt, nonce, 12) == 0);
    CHECK(gcry_cipher_final(a->gcrypt) == 0);
    CHECK(gcry_cipher_decrypt(a->gcrypt, a->out, a->size, a->in, a->size) == 0);
    CHECK(gcry_cipher_checktag(a->gcrypt, a->in + a->size, 16) == 0);
}

static void aead_cases(double seconds, size_t size) {
    static const uint8_t key[32] = {1, 2, 3};
    for (int aes = 1; aes >= 0; aes--) {
        const char *cipher = aes ? "aesgcm" : "chachapoly";
        struct aead a = {.aes = aes, .size = size};
        CHECK(a.in = calloc(size + 16, 1));
        CHECK(a.out = calloc(size + 16, 1));

        EVP_CIPHER *algorithm = EVP_CIPHER_fetch(NULL, aes ? "AES-256-GCM" : "ChaCha20-Poly1305", NULL);
        CHECK(algorithm);
        CHECK(a.seal_ctx = EVP_CIPHER_CTX_new());
        CHECK(a.open_ctx = EVP_CIPHER_CTX_new());
        CHECK(EVP_EncryptInit_ex2(a.seal_ctx, algorithm, key, NULL, NULL));
        CHECK(EVP_DecryptInit_ex2(a.open_ctx, algorithm, key, NULL, NULL));
        printf("seal openssl %s %zu %.1f\n", cipher, size, rate(openssl_seal, &a, seconds) * size / 1e6);
        a.counter = 0;
        openssl_seal(&a);  // message 0 into `out`, then opened from `in`
        memcpy(a.in, a.out, size + 16);
        printf("open openssl %s %zu %.1f\n", cipher, size, rate(openssl_open, &a, seconds) * size / 1e6);
        EVP_CIPHER_CTX_free(a.seal_ctx);
        EVP_CIPHER_CTX_free(a.open_ctx);
        EVP_CIPHER_free(algorithm);

        memset(a.in, 0, size + 16);
        CHECK(gcry_cipher_open(&a.gcrypt, aes ? GCRY_CIPHER_AES256 : GCRY_CIPHER_CHACHA20,
                               aes ? GCRY_CIPHER_MODE_GCM : GCRY_CIPHER_MODE_POLY1305, 0) == 0);
        CHECK(gcry_cipher_setkey(a.gcrypt, key, 32) == 0);
        a.counter = 0;
        printf("seal gcrypt %s %zu %.1f\n", cipher, size, rate(gcrypt_seal, &a, seconds) * size / 1e6);
        a.counter = 0;
        gcrypt_seal(&a);
        memcpy(a.in, a.out, size + 16);
        printf("open gcrypt %s %zu %.1f\n", cipher, size, rate(gcrypt_open, &a, seconds) * size / 1e6);
        gcry_cipher_close(a.gcrypt);
        free(a.in);
        free(a.out);
    }
}

// X25519 the way the wrappers do it, from raw 32-byte keys: OpenSSL through EVP_PKEY made from
// the raw bytes, libgcrypt with gcry_ecc_mul_point. Key generation is a random scalar times the
// base point.
struct x25519 { uint8_t scalar[32], point[32], out[32]; };
static const uint8_t basepoint[32] = {9};

static void openssl_x25519(const uint8_t scalar[32], const uint8_t point[32], uint8_t out[32]) {
    size_t length = 32;
    EVP_PKEY *local = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, scalar, 32);
    EVP_PKEY *remote = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, point, 32);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, local, NULL);
    CHECK(local && remote && ctx);
    CHECK(EVP_PKEY_derive_init(ctx) == 1);
    CHECK(EVP_PKEY_derive_set_peer(ctx, remote) == 1);
    CHECK(EVP_PKEY_derive(ctx, out, &length) == 1);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(remote);
    EVP_PKEY_free(local);
}

static void openssl_keygen(void *p) {
    struct x25519 *x = p;
    CHECK(RAND_bytes(x->scalar, 32) == 1);
    openssl_x25519(x->scalar, basepoint, x->out);
}

static void openssl_dh(void *p) {
    struct x25519 *x = p;
    openssl_x25519(x->scalar, x->point, x->out);
}

static void gcrypt_keygen(void *p) {
    struct x25519 *x = p;
    gcry_randomize(x->scalar, 32, GCRY_STRONG_RANDOM);
    CHECK(gcry_ecc_mul_point(GCRY_ECC_CURVE25519, x->out, x->scalar, basepoint) == 0);
}

static void gcrypt_dh(void *p) {
    struct x25519 *x = p;
    CHECK(gcry_ecc_mul_point(GCRY_ECC_CURVE25519, x->out, x->scalar, x->point) == 0);
}

static void x25519_cases(double seconds) {
    struct x25519 x;
    gcry_randomize(x.scalar, 32, GCRY_STRONG_RANDOM);
    CHECK(gcry_ecc_mul_point(GCRY_ECC_CURVE25519, x.point, x.scalar, basepoint) == 0);
    printf("x25519-keygen openssl %.1f\n", rate(openssl_keygen, &x, seconds));
    printf("x25519-dh openssl %.1f\n", rate(openssl_dh, &x, seconds));
    printf("x25519-keygen gcrypt %.1f\n", rate(gcrypt_keygen, &x, seconds));
    printf("x25519-dh gcrypt %.1f\n", rate(gcrypt_dh, &x, seconds));
}

// A full TLS 1.3 handshake in-process: new client and server SSL objects joined by a BIO pair,
// X25519 key exchange, an Ed25519 certificate the client verifies, no session tickets.
struct tls { SSL_CTX *client, *server; };

static void tls_handshake(void *p) {
    struct tls *t = p;
    SSL *client = SSL_new(t->client), *server = SSL_new(t->server);
    BIO *client_bio, *server_bio;
    CHECK(client && server);
    CHECK(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0));
    SSL_set_bio(client, client_bio, client_bio);
    SSL_set_bio(server, server_bio, server_bio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    int client_done = 0, server_done = 0;
    for (int round = 0; round < 10 && !(client_done && server_done); round++) {
        if (!client_done) client_done = SSL_do_handshake(client) == 1;
        if (!server_done) server_done = SSL_do_handshake(server) == 1;
    }
    CHECK(client_done && server_done);
    SSL_free(client);
    SSL_free(server);
}

static void tls_case(double seconds) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509 *cert = X509_new();
    CHECK(key && cert);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    CHECK(X509_set_pubkey(cert, key));
    CHECK(X509_sign(cert, key, NULL));

    struct tls t;
    CHECK(t.client = SSL_CTX_new(TLS_client_method()));
    CHECK(t.server = SSL_CTX_new(TLS_server_method()));
    SSL_CTX *both[2] = {t.client, t.server};
    for (int i = 0; i < 2; i++) {
        CHECK(SSL_CTX_set_min_proto_version(both[i], TLS1_3_VERSION));
        CHECK(SSL_CTX_set1_groups_list(both[i], "X25519"));
        SSL_CTX_set_options(both[i], SSL_OP_NO_TICKET);
    }
    CHECK(SSL_CTX_use_certificate(t.server, cert) == 1);
    CHECK(SSL_CTX_use_PrivateKey(t.server, key) == 1);
    CHECK(X509_STORE_add_cert(SSL_CTX_get_cert_store(t.client), cert) == 1);
    SSL_CTX_set_verify(t.client, SSL_VERIFY_PEER, NULL);
    printf("tls13-handshake openssl %.1f\n", rate(tls_handshake, &t, seconds));
    SSL_CTX_free(t.client);
    SSL_CTX_free(t.server);
    X509_free(cert);
    EVP_PKEY_free(key);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: crypto_baseline SECONDS SIZE...\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    CHECK(gcry_check_version(NULL));
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    for (int i = 2; i < argc; i++) aead_cases(seconds, (size_t)atol(argv[i]));
    x25519_cases(seconds);
    tls_case(seconds);
    return 0;
}
