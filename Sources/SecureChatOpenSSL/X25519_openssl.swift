import COpenSSL
import SecureChatCrypto
import Synchronization

/// One libcrypto key context kept for the next operation of its kind: making one costs libcrypto
/// about six allocations (a key-type name lookup, a method fetch, the context itself). It is
/// taken out for one operation at a time, so no two threads ever share it; a thread that finds
/// it taken makes its own, and of two put back one is freed, so one stays kept at most.
struct KeptContext: ~Copyable, Sendable {
    private let slot = Atomic<UInt>(0)

    /// The kept context, or nil when there is none (or another thread has it).
    func take() -> OpaquePointer? {
        OpaquePointer(bitPattern: slot.exchange(0, ordering: .acquiring))
    }

    /// Keeps `context` for the next operation, or frees it when one is kept already.
    func putBack(_ context: OpaquePointer) {
        guard !slot.compareExchange(expected: 0, desired: UInt(bitPattern: Int(bitPattern: context)),
                                    ordering: .releasing).exchanged else { return }
        EVP_PKEY_CTX_free(context)
    }

    /// Runs `body` with the kept context or one from `make`; keeps it after, unless `body` failed
    /// (then it is freed: a failed operation may leave it half set).
    func with<Result>(make: () throws -> OpaquePointer, _ body: (OpaquePointer) throws -> Result) throws -> Result {
        let context = try take() ?? make()
        do {
            let result = try body(context)
            putBack(context)
            return result
        } catch {
            EVP_PKEY_CTX_free(context)
            throw error
        }
    }

    deinit { take().map(EVP_PKEY_CTX_free) }
}

/// An X25519 private key held as an `EVP_PKEY`, made once: its public key is computed when it is
/// made (libcrypto does that on import), never again per DH.
public final class OpenSSLPrivateKey: @unchecked Sendable {
    // @unchecked: the key is never changed after it is made, and libcrypto lets many threads
    // derive with one key at once (each derive has a context of its own).
    let key: OpaquePointer
    /// A derive context for this key, set up once: an ephemeral key's second DH and a static
    /// key's every DH reuse it.
    let deriveContext = KeptContext()

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
        let generated = try keygenContext.with(make: newKeygenContext) { (context) -> OpaquePointer in
            var generated: OpaquePointer?
            try check(EVP_PKEY_generate(context, &generated), "EVP_PKEY_generate")
            guard let generated else { throw CryptoError.backendFailure(operation: "EVP_PKEY_generate") }
            return generated
        }
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
        try key.deriveContext.with(make: { try newDeriveContext(key) }) { (context) in
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
    }

    /// The key generator's context, kept for the next key generation.
    private static let keygenContext = KeptContext()

    private static func newKeygenContext() throws -> OpaquePointer {
        try newContext(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nil), "EVP_PKEY_CTX_new_id",
                       setUp: EVP_PKEY_keygen_init, "EVP_PKEY_keygen_init")
    }

    private static func newDeriveContext(_ key: OpenSSLPrivateKey) throws -> OpaquePointer {
        try newContext(EVP_PKEY_CTX_new_from_pkey(nil, key.key, nil), "EVP_PKEY_CTX_new_from_pkey",
                       setUp: EVP_PKEY_derive_init, "EVP_PKEY_derive_init")
    }

    /// The key context `made`, set up for its operation by `setUp`; freed if that fails.
    private static func newContext(_ made: OpaquePointer?, _ making: StaticString,
                                   setUp: (OpaquePointer) -> Int32, _ settingUp: StaticString) throws -> OpaquePointer {
        guard let context = made else { throw CryptoError.backendFailure(operation: making) }
        do {
            try check(setUp(context), settingUp)
        } catch {
            EVP_PKEY_CTX_free(context)
            throw error
        }
        return context
    }

    private static func export(_ key: OpenSSLPrivateKey, publicKey: UnsafeMutableRawBufferPointer) throws {
        try requireLength(publicKey.count, 32, "X25519 public key")
        var length = 32
        try check(EVP_PKEY_get_raw_public_key(key.key, publicKey.baseAddress!.assumingMemoryBound(to: UInt8.self), &length),
                  "EVP_PKEY_get_raw_public_key")
        try requireLength(length, 32, "X25519 public key")
    }
}
