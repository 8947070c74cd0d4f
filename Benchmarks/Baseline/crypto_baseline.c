// The C baseline of scripts/bench-crypto.sh and scripts/bench-instructions.sh: libcrypto, libssl
// and libgcrypt called directly, the fastest way their public APIs allow for the same work as
// securechat's wrappers (cipher context and key set up once, a new nonce per message; private
// keys held by the library, one scalar multiplication per DH), timed the same way as
// `securechat bench` (the median of three slices per case).
//
// Usage: crypto_baseline SECONDS SIZE...           one line per case: KEY VALUE
//        crypto_baseline --only KEY SECONDS SIZE... times only case KEY (paired runs, bench-crypto.sh)
//        crypto_baseline --count N KEY SIZE...     runs only case KEY, N times (for callgrind)
//        crypto_baseline --allocations SIZE...     heap allocations per operation: allocations KEY N
// Keys, the same as `securechat bench --json` where both have them:
//   seal|open BACKEND CIPHER SIZE                  MB/s
//   x25519-keygen|x25519-dh BACKEND                operations/s (the peer's point imported per DH)
//   ik-floor BACKEND                               2 key generations + 6 DH + an IK's hashing, /s
//   tls13-handshake openssl                        TLS 1.3, X25519, server-authenticated (Ed25519)
//   tls13-mutual openssl                           the same with a client certificate verified too
#define OPENSSL_SUPPRESS_DEPRECATED  /* SHA256_Init: the allocation-free hash */
#include <gcrypt.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/sha.h>
#include <stdarg.h>
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

// Heap allocations, counted for --allocations: this executable's malloc serves the libraries too.
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static long allocations;
void *malloc(size_t size) { allocations++; return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { allocations++; return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { allocations++; return __libc_realloc(pointer, size); }

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

// What main asked for: time every case, count one case's runs, or count allocations.
static enum { TIME, COUNT, ALLOCATIONS } mode = TIME;
static double seconds;
static long count;
static const char *only;

// One case, formatted key: timed and printed (scaled, e.g. to MB/s), run `count` times, or its
// allocations per operation printed after a warm-up.
static void report(step_fn step, void *state, double scale, const char *format, ...) {
    char key[96];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(key, sizeof key, format, arguments);
    va_end(arguments);
    switch (mode) {
    case TIME:
        if (only && strcmp(key, only) != 0) return;
        printf("%s %.1f\n", key, rate(step, state, seconds) * scale);
        break;
    case COUNT:
        if (strcmp(key, only) != 0) return;
        for (long i = 0; i < count; i++) step(state);
        printf("%s ran %ld times\n", key, count);
        break;
    case ALLOCATIONS: {
        for (int i = 0; i < 10; i++) step(state);
        long before = allocations;
        for (int i = 0; i < 100; i++) step(state);
        printf("allocations %s %.1f\n", key, (double)(allocations - before) / 100);
        break;
    }
    }
    fflush(stdout);
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

static void aead_cases(size_t size) {
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
        report(openssl_seal, &a, size / 1e6, "seal openssl %s %zu", cipher, size);
        a.counter = 0;
        openssl_seal(&a);  // message 0 into `out`, then opened from `in`
        memcpy(a.in, a.out, size + 16);
        report(openssl_open, &a, size / 1e6, "open openssl %s %zu", cipher, size);
        EVP_CIPHER_CTX_free(a.seal_ctx);
        EVP_CIPHER_CTX_free(a.open_ctx);
        EVP_CIPHER_free(algorithm);

        memset(a.in, 0, size + 16);
        CHECK(gcry_cipher_open(&a.gcrypt, aes ? GCRY_CIPHER_AES256 : GCRY_CIPHER_CHACHA20,
                               aes ? GCRY_CIPHER_MODE_GCM : GCRY_CIPHER_MODE_POLY1305, 0) == 0);
        CHECK(gcry_cipher_setkey(a.gcrypt, key, 32) == 0);
        a.counter = 0;
        report(gcrypt_seal, &a, size / 1e6, "seal gcrypt %s %zu", cipher, size);
        a.counter = 0;
        gcrypt_seal(&a);
        memcpy(a.in, a.out, size + 16);
        report(gcrypt_open, &a, size / 1e6, "open gcrypt %s %zu", cipher, size);
        gcry_cipher_close(a.gcrypt);
        free(a.in);
        free(a.out);
    }
}

// X25519 as the wrappers do it, with private keys held by the library: OpenSSL keeps an EVP_PKEY
// per private key (made once, so one scalar multiplication per DH) and imports the peer's point,
// which arrives on the wire (once per DH here; once per key in the IK floor, as the handshake
// imports the other side's ephemeral key once for its two DH); key generation is EVP_PKEY_generate and reading the
// public key out. libgcrypt: gcry_ecc_mul_point on the raw scalar, the base point for a new key.
struct x25519 {
    EVP_PKEY *key;
    uint8_t scalar[32], point[32], out[32];
};
static const uint8_t basepoint[32] = {9};

static EVP_PKEY *openssl_import(const uint8_t point[32]) {
    EVP_PKEY *remote = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, point, 32);
    CHECK(remote);
    return remote;
}

static void openssl_derive_with(EVP_PKEY *local, EVP_PKEY *remote, uint8_t out[32]) {
    size_t length = 32;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, local, NULL);
    CHECK(ctx);
    CHECK(EVP_PKEY_derive_init(ctx) == 1);
    CHECK(EVP_PKEY_derive_set_peer_ex(ctx, remote, 0) == 1);
    CHECK(EVP_PKEY_derive(ctx, out, &length) == 1);
    EVP_PKEY_CTX_free(ctx);
}

static void openssl_derive(EVP_PKEY *local, const uint8_t point[32], uint8_t out[32]) {
    EVP_PKEY *remote = openssl_import(point);
    openssl_derive_with(local, remote, out);
    EVP_PKEY_free(remote);
}

static EVP_PKEY *openssl_generate(uint8_t public_key[32]) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
    EVP_PKEY *key = NULL;
    size_t length = 32;
    CHECK(ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_generate(ctx, &key) == 1);
    CHECK(EVP_PKEY_get_raw_public_key(key, public_key, &length) == 1);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static void openssl_keygen(void *p) {
    struct x25519 *x = p;
    EVP_PKEY_free(openssl_generate(x->out));
}

static void openssl_dh(void *p) {
    struct x25519 *x = p;
    openssl_derive(x->key, x->point, x->out);
}

static void gcrypt_keygen(void *p) {
    struct x25519 *x = p;
    gcry_randomize(x->out, 32, GCRY_STRONG_RANDOM);
    CHECK(gcry_ecc_mul_point(GCRY_ECC_CURVE25519, x->out, x->out, basepoint) == 0);
}

static void gcrypt_dh(void *p) {
    struct x25519 *x = p;
    CHECK(gcry_ecc_mul_point(GCRY_ECC_CURVE25519, x->out, x->scalar, x->point) == 0);
}

// The hashing of one IK handshake, both sides: 7 MixHash each (prologue, pre-message key, e, s,
// payload, e, payload) and 5 HKDFs each (4 MixKey and Split) of 3 HMAC-SHA256; the AEAD work on
// the few handshake bytes is left out, so the floor is a little low, never high.
static void openssl_sha256(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length, uint8_t out[32]) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, a, a_length);
    SHA256_Update(&context, b, b_length);
    SHA256_Final(out, &context);
}

static void gcrypt_sha256(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length, uint8_t out[32]) {
    gcry_buffer_t buffers[2] = {{.len = a_length, .data = (void *)a}, {.len = b_length, .data = (void *)b}};
    CHECK(gcry_md_hash_buffers(GCRY_MD_SHA256, 0, out, buffers, 2) == 0);
}

typedef void (*sha256_fn)(const uint8_t *, size_t, const uint8_t *, size_t, uint8_t[32]);

static void hmac_sha256(sha256_fn sha256, const uint8_t key[32], const uint8_t *message, size_t length, uint8_t out[32]) {
    uint8_t pad[64] = {0}, inner[32];
    memcpy(pad, key, 32);
    for (int i = 0; i < 64; i++) pad[i] ^= 0x36;
    sha256(pad, 64, message, length, inner);
    for (int i = 0; i < 64; i++) pad[i] ^= 0x36 ^ 0x5c;
    sha256(pad, 64, inner, 32, out);
}

static void ik_hashing(sha256_fn sha256, uint8_t state[64]) {
    for (int side = 0; side < 2; side++) {
        for (int i = 0; i < 7; i++) sha256(state, 32, state + 32, 32, state);
        for (int i = 0; i < 5 * 3; i++) hmac_sha256(sha256, state, state + 32, 33, state + 32);
    }
}

// An IK handshake's floor: each side generates an ephemeral key, and of the 8 DH the static-static
// one is kept (computed once per pair of keys), leaving 6.
struct ik_floor { EVP_PKEY *static_key; uint8_t scalar[32], point[32], out[32], state[64]; };

static void openssl_ik_floor(void *p) {
    struct ik_floor *f = p;
    // Per side: the other's ephemeral key imported once for its two DH, its static key once.
    for (int side = 0; side < 2; side++) {
        EVP_PKEY *ephemeral = openssl_generate(f->out);
        EVP_PKEY *their_ephemeral = openssl_import(f->point), *their_static = openssl_import(f->point);
        openssl_derive_with(ephemeral, their_ephemeral, f->out);  // ee
        openssl_derive_with(ephemeral, their_static, f->out);  // es or se: ours ephemeral, their static
        openssl_derive_with(f->static_key, their_ephemeral, f->out);  // se or es: our static, their ephemeral
        EVP_PKEY_free(their_static);
        EVP_PKEY_free(their_ephemeral);
        EVP_PKEY_free(ephemeral);
    }
    ik_hashing(openssl_sha256, f->state);
}

static void gcrypt_ik_floor(void *p) {
    struct ik_floor *f = p;
    for (int side = 0; side < 2; side++) {
        uint8_t ephemeral[32];
        gcry_randomize(ephemeral, 32, GCRY_STRONG_RANDOM);
        CHECK(gcry_ecc_mul_point(GCRY_ECC_CURVE25519, f->out, ephemeral, basepoint) == 0);
        for (int dh = 0; dh < 2; dh++) CHECK(gcry_ecc_mul_point(GCRY_ECC_CURVE25519, f->out, ephemeral, f->point) == 0);
        CHECK(gcry_ecc_mul_point(GCRY_ECC_CURVE25519, f->out, f->scalar, f->point) == 0);
    }
    ik_hashing(gcrypt_sha256, f->state);
}

static void x25519_cases(void) {
    struct x25519 x;
    uint8_t ignored[32];
    x.key = openssl_generate(ignored);
    EVP_PKEY_free(openssl_generate(x.point));
    gcry_randomize(x.scalar, 32, GCRY_STRONG_RANDOM);
    report(openssl_keygen, &x, 1, "x25519-keygen openssl");
    report(openssl_dh, &x, 1, "x25519-dh openssl");
    report(gcrypt_keygen, &x, 1, "x25519-keygen gcrypt");
    report(gcrypt_dh, &x, 1, "x25519-dh gcrypt");

    struct ik_floor f = {.static_key = x.key};
    memcpy(f.point, x.point, 32);
    memcpy(f.scalar, x.scalar, 32);
    memset(f.state, 7, sizeof f.state);
    report(openssl_ik_floor, &f, 1, "ik-floor openssl");
    report(gcrypt_ik_floor, &f, 1, "ik-floor gcrypt");
    EVP_PKEY_free(x.key);
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

// A self-signed Ed25519 certificate for `name`, with its key.
static X509 *certificate(const char *name, EVP_PKEY **key) {
    X509 *cert = X509_new();
    CHECK((*key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) && cert);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    CHECK(X509_set_pubkey(cert, *key));
    CHECK(X509_sign(cert, *key, NULL));
    return cert;
}

// Server-authenticated only (what a browser does), then mutual: the client shows a certificate
// the server verifies too, which is what IK gives (both sides proven).
static void tls_cases(void) {
    EVP_PKEY *server_key, *client_key;
    X509 *server_cert = certificate("server", &server_key), *client_cert = certificate("client", &client_key);
    for (int mutual = 0; mutual < 2; mutual++) {
        struct tls t;
        CHECK(t.client = SSL_CTX_new(TLS_client_method()));
        CHECK(t.server = SSL_CTX_new(TLS_server_method()));
        SSL_CTX *both[2] = {t.client, t.server};
        for (int i = 0; i < 2; i++) {
            CHECK(SSL_CTX_set_min_proto_version(both[i], TLS1_3_VERSION));
            CHECK(SSL_CTX_set1_groups_list(both[i], "X25519"));
            SSL_CTX_set_options(both[i], SSL_OP_NO_TICKET);
        }
        CHECK(SSL_CTX_use_certificate(t.server, server_cert) == 1);
        CHECK(SSL_CTX_use_PrivateKey(t.server, server_key) == 1);
        CHECK(X509_STORE_add_cert(SSL_CTX_get_cert_store(t.client), server_cert) == 1);
        SSL_CTX_set_verify(t.client, SSL_VERIFY_PEER, NULL);
        if (mutual) {
            CHECK(SSL_CTX_use_certificate(t.client, client_cert) == 1);
            CHECK(SSL_CTX_use_PrivateKey(t.client, client_key) == 1);
            CHECK(X509_STORE_add_cert(SSL_CTX_get_cert_store(t.server), client_cert) == 1);
            SSL_CTX_set_verify(t.server, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
        report(tls_handshake, &t, 1, mutual ? "tls13-mutual openssl" : "tls13-handshake openssl");
        SSL_CTX_free(t.client);
        SSL_CTX_free(t.server);
    }
    X509_free(server_cert);
    X509_free(client_cert);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(client_key);
}

int main(int argc, char **argv) {
    int first = 2;
    if (argc >= 4 && strcmp(argv[1], "--count") == 0) {
        mode = COUNT;
        count = atol(argv[2]);
        only = argv[3];
        first = 4;
    } else if (argc >= 5 && strcmp(argv[1], "--only") == 0) {
        only = argv[2];
        seconds = atof(argv[3]);
        first = 4;
    } else if (argc >= 2 && strcmp(argv[1], "--allocations") == 0) {
        mode = ALLOCATIONS;
    } else if (argc >= 3) {
        seconds = atof(argv[1]);
    } else {
        fprintf(stderr, "usage: crypto_baseline SECONDS SIZE... | --only KEY SECONDS SIZE... | --count N KEY SIZE... | --allocations SIZE...\n");
        return 2;
    }
    CHECK(gcry_check_version(NULL));
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    for (int i = first; i < argc; i++) aead_cases((size_t)atol(argv[i]));
    x25519_cases();
    tls_cases();
    return 0;
}
