/// An X25519 public key (32 bytes). Public: safe to show, log and compare normally.
public struct X25519PublicKey: Hashable, Sendable {
    public static let byteCount = 32
    public let bytes: [UInt8]

    public init<Bytes: Collection<UInt8>>(bytes: Bytes) throws {
        try requireLength(bytes.count, Self.byteCount, "X25519 public key")
        self.bytes = Array(bytes)
    }
}

/// An X25519 key pair. The private half is `SecretBytes`, wiped when released.
public struct X25519KeyPair: Sendable {
    public let privateKey: SecretBytes
    public let publicKey: X25519PublicKey
}

/// The u-coordinate of the Curve25519 base point.
private let basePoint: [UInt8] = [9] + [UInt8](repeating: 0, count: 31)

extension CryptoBackend {
    /// A new key pair from the backend's CSPRNG.
    public static func generateX25519KeyPair() throws -> X25519KeyPair {
        let privateKey = SecretBytes(count: X25519PublicKey.byteCount)
        try privateKey.withUnsafeMutableBytes { (out) in try randomBytes(into: out) }
        return try x25519KeyPair(privateKey: privateKey)
    }

    /// The key pair for an existing private key (32 bytes, clamped by X25519 itself).
    public static func x25519KeyPair(privateKey: SecretBytes) throws -> X25519KeyPair {
        try requireLength(privateKey.count, X25519PublicKey.byteCount, "X25519 private key")
        var publicBytes = [UInt8](repeating: 0, count: X25519PublicKey.byteCount)
        try privateKey.withUnsafeBytes { (scalar) in
            try basePoint.withUnsafeBytes { (point) in
                try publicBytes.withUnsafeMutableBytes { (out) in
                    try x25519(scalar: scalar, point: point, into: out)
                }
            }
        }
        return X25519KeyPair(privateKey: privateKey, publicKey: try X25519PublicKey(bytes: publicBytes))
    }

    /// Diffie-Hellman: the shared secret, refused when it is all zeros (a low-order public key).
    public static func x25519SharedSecret(privateKey: SecretBytes, publicKey: X25519PublicKey) throws -> SecretBytes {
        let shared = SecretBytes(count: X25519PublicKey.byteCount)
        try shared.withUnsafeMutableBytes { (out) in
            try x25519SharedSecret(privateKey: privateKey, publicKey: publicKey, into: out)
        }
        return shared
    }

    /// Diffie-Hellman into a caller-owned 32-byte buffer; refuses an all-zero result.
    public static func x25519SharedSecret(privateKey: SecretBytes, publicKey: X25519PublicKey,
                                          into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(privateKey.count, X25519PublicKey.byteCount, "X25519 private key")
        try privateKey.withUnsafeBytes { (scalar) in
            try publicKey.bytes.withUnsafeBytes { (point) in
                try x25519(scalar: scalar, point: point, into: output)
            }
        }
        if constantTimeIsZero(UnsafeRawBufferPointer(output)) { throw CryptoError.zeroSharedSecret }
    }
}
