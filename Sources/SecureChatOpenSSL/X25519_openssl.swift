import COpenSSL
import SecureChatCrypto

/// An X25519 private key held as an `EVP_PKEY`, made once: its public key is computed when it is
/// made (libcrypto does that on import), never again per DH.
public final class OpenSSLPrivateKey: @unchecked Sendable {
    // @unchecked: the key is never changed after it is made, and libcrypto lets many threads
    // derive with one key at once (each derive has a context of its own).
    let key: OpaquePointer

    init(_ key: OpaquePointer) { self.key = key }

    deinit { EVP_PKEY_free(key) }  // frees and cleanses the private key
}

/// A peer's X25519 public key as an `EVP_PKEY`, imported once for every DH with it.
public final class OpenSSLPeerKey: @unchecked Sendable {
    // @unchecked: never changed after it is made; derives only read it.
    let key: OpaquePointer

    init(_ key: OpaquePointer) { self.key = key }

    deinit { EVP_PKEY_free(key) }
}

extension OpenSSLBackend {
    public typealias PrivateKey = OpenSSLPrivateKey
    public typealias PeerKey = OpenSSLPeerKey

    public static func importPeerKey(_ point: UnsafeRawBufferPointer) throws -> OpenSSLPeerKey {
        try requireLength(point.count, 32, "X25519 point")
        guard let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, point.baseAddress!.assumingMemoryBound(to: UInt8.self), 32) else {
            throw CryptoError.backendFailure(operation: "EVP_PKEY_new_raw_public_key")
        }
        return OpenSSLPeerKey(key)
    }

    public static func importPrivateKey(_ scalar: UnsafeRawBufferPointer,
                                        publicKey: UnsafeMutableRawBufferPointer) throws -> OpenSSLPrivateKey {
        try requireLength(scalar.count, 32, "X25519 private key")
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, scalar.baseAddress!.assumingMemoryBound(to: UInt8.self), 32) else {
            throw CryptoError.backendFailure(operation: "EVP_PKEY_new_raw_private_key")
        }
        let privateKey = OpenSSLPrivateKey(key)
        try export(privateKey, publicKey: publicKey)
        return privateKey
    }

    public static func generatePrivateKey(scalar: UnsafeMutableRawBufferPointer?,
                                          publicKey: UnsafeMutableRawBufferPointer) throws -> OpenSSLPrivateKey {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nil) else {
            throw CryptoError.backendFailure(operation: "EVP_PKEY_CTX_new_id")
        }
        defer { EVP_PKEY_CTX_free(context) }
        try check(EVP_PKEY_keygen_init(context), "EVP_PKEY_keygen_init")
        var generated: OpaquePointer?
        try check(EVP_PKEY_generate(context, &generated), "EVP_PKEY_generate")
        guard let generated else { throw CryptoError.backendFailure(operation: "EVP_PKEY_generate") }
        let privateKey = OpenSSLPrivateKey(generated)
        if let scalar {
            // Exporting costs libcrypto a parameter list (5 allocations): only for a key file.
            try requireLength(scalar.count, 32, "X25519 private key")
            var length = 32
            try check(EVP_PKEY_get_raw_private_key(generated, scalar.baseAddress!.assumingMemoryBound(to: UInt8.self), &length),
                      "EVP_PKEY_get_raw_private_key")
            try requireLength(length, 32, "X25519 private key")
        }
        try export(privateKey, publicKey: publicKey)
        return privateKey
    }

    public static func x25519(_ key: OpenSSLPrivateKey, peer: OpenSSLPeerKey,
                              into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(output.count, 32, "X25519 output")
        guard let context = EVP_PKEY_CTX_new_from_pkey(nil, key.key, nil) else {
            throw CryptoError.backendFailure(operation: "EVP_PKEY_CTX_new_from_pkey")
        }
        defer { EVP_PKEY_CTX_free(context) }
        try check(EVP_PKEY_derive_init(context), "EVP_PKEY_derive_init")
        // No validation of the peer key: X25519 takes any 32 bytes, and an all-zero result
        // (a low-order point) is refused below and by `x25519SharedSecret`.
        try check(EVP_PKEY_derive_set_peer_ex(context, peer.key, 0), "EVP_PKEY_derive_set_peer_ex")
        var length = 32
        guard EVP_PKEY_derive(context, output.baseAddress!.assumingMemoryBound(to: UInt8.self), &length) == 1 else {
            // OpenSSL itself refuses an all-zero result (RFC 7748 §6.1); report it as such.
            ERR_clear_error()
            secureWipe(output)
            throw CryptoError.zeroSharedSecret
        }
        try requireLength(length, 32, "X25519 output")
    }

    private static func export(_ key: OpenSSLPrivateKey, publicKey: UnsafeMutableRawBufferPointer) throws {
        try requireLength(publicKey.count, 32, "X25519 public key")
        var length = 32
        try check(EVP_PKEY_get_raw_public_key(key.key, publicKey.baseAddress!.assumingMemoryBound(to: UInt8.self), &length),
                  "EVP_PKEY_get_raw_public_key")
        try requireLength(length, 32, "X25519 public key")
    }
}
