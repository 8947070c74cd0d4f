import CGcrypt
import SecureChatCrypto

/// An X25519 private key for libgcrypt: the scalar, in memory of its own that is wiped when the
/// last reference goes (libgcrypt's `gcry_ecc_mul_point` takes the scalar as bytes).
public final class GcryptPrivateKey: @unchecked Sendable {
    // @unchecked: written once, when made; read-only afterwards.
    let scalar: UnsafeMutableRawBufferPointer

    init() { scalar = .allocate(byteCount: 32, alignment: 16) }

    deinit {
        secureWipe(scalar)
        scalar.deallocate()
    }
}

/// A peer's X25519 public key for libgcrypt: its 32 bytes (public: nothing to wipe).
public final class GcryptPeerKey: Sendable {
    /// The 32 bytes as four words in memory order.
    fileprivate let point: (UInt64, UInt64, UInt64, UInt64)

    fileprivate init(_ bytes: UnsafeRawBufferPointer) {
        var point: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &point) { $0.copyMemory(from: bytes) }
        self.point = point
    }

    private init(point: (UInt64, UInt64, UInt64, UInt64)) { self.point = point }

    /// The u-coordinate of the Curve25519 base point: 9, little-endian.
    fileprivate static let basePoint = GcryptPeerKey(point: (UInt64(9).littleEndian, 0, 0, 0))
}

extension GcryptBackend {
    public typealias PrivateKey = GcryptPrivateKey
    public typealias PeerKey = GcryptPeerKey

    public static func importPeerKey(_ point: UnsafeRawBufferPointer) throws -> GcryptPeerKey {
        try requireLength(point.count, 32, "X25519 point")
        return GcryptPeerKey(point)
    }

    public static func importPrivateKey(_ scalar: UnsafeRawBufferPointer,
                                        publicKey: UnsafeMutableRawBufferPointer) throws -> GcryptPrivateKey {
        try requireLength(scalar.count, 32, "X25519 private key")
        let key = GcryptPrivateKey()
        key.scalar.copyMemory(from: scalar)
        try x25519(key, peer: .basePoint, into: publicKey)
        return key
    }

    /// libgcrypt has no fixed-base X25519: a new key is a random scalar times the base point.
    public static func generatePrivateKey(scalar: UnsafeMutableRawBufferPointer?,
                                          publicKey: UnsafeMutableRawBufferPointer) throws -> GcryptPrivateKey {
        let key = GcryptPrivateKey()
        try randomBytes(into: key.scalar)
        try x25519(key, peer: .basePoint, into: publicKey)
        if let scalar {
            try requireLength(scalar.count, 32, "X25519 private key")
            scalar.copyMemory(from: UnsafeRawBufferPointer(key.scalar))
        }
        return key
    }

    /// gcry_ecc_mul_point decodes the scalar and u-coordinate as RFC 7748 says (clamping, top bit
    /// masked); it avoids the S-expression path, which is 5–30 times slower.
    public static func x25519(_ key: GcryptPrivateKey, peer: GcryptPeerKey,
                              into output: UnsafeMutableRawBufferPointer) throws {
        GcryptLibrary.ensureInitialized()
        try requireLength(output.count, 32, "X25519 output")
        try withUnsafeBytes(of: peer.point) { (point) in
            try check(gcry_ecc_mul_point(Int32(GCRY_ECC_CURVE25519.rawValue),
                                         output.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                         key.scalar.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                         point.baseAddress!.assumingMemoryBound(to: UInt8.self)), "gcry_ecc_mul_point")
        }
    }
}
