/// One implementation of every primitive securechat uses, over one C library.
///
/// Backends are chosen once at start (config or flag) and the code above them is generic over
/// this protocol, so the per-message path is specialised, never a dynamic call per message.
/// Only the primitives each library must provide are requirements; everything built from them
/// (HKDF, key pairs, the Noise nonce and rekey) lives once, in extensions shared by all backends.
public protocol CryptoBackend: Sendable {
    associatedtype AEAD: Cipher

    /// "openssl" or "gcrypt": the name used in config files and on the command line.
    static var name: String { get }
    /// The C library and its version, for `securechat version`.
    static var libraryDescription: String { get }

    /// An X25519 private key in the library's own form, made once and used for every DH with
    /// it (OpenSSL: an `EVP_PKEY`, whose import computes the public key): so a DH is one scalar
    /// multiplication, not an import and a multiplication. Freed and wiped with its last reference.
    associatedtype PrivateKey: AnyObject & Sendable

    /// Imports a 32-byte private key; writes its public key (32 bytes) into `publicKey`.
    static func importPrivateKey(_ scalar: UnsafeRawBufferPointer,
                                 publicKey: UnsafeMutableRawBufferPointer) throws -> PrivateKey

    /// A new private key from the library's key generator (the fixed-base method where it has
    /// one); writes the public key and, unless `scalar` is nil (an ephemeral key), the raw
    /// scalar for a key file, 32 bytes each.
    static func generatePrivateKey(scalar: UnsafeMutableRawBufferPointer?,
                                   publicKey: UnsafeMutableRawBufferPointer) throws -> PrivateKey

    /// A peer's X25519 public key in the library's own form, imported once for every DH with it
    /// (OpenSSL: an `EVP_PKEY`, 10 allocations to make; libgcrypt: the 32 bytes). Noise uses a
    /// remote ephemeral key twice per handshake, and a remote static key is kept with its
    /// static-static secret for every handshake with it. A class, like `PrivateKey`: the generic state
    /// machines that hold one then have a fixed layout (a value type of unknown size made their
    /// generic copy and assign code 0.4 MB larger).
    associatedtype PeerKey: AnyObject & Sendable

    /// Imports a 32-byte public key (any 32 bytes: X25519 takes them all, low-order ones are
    /// caught by the all-zero check on the result).
    static func importPeerKey(_ point: UnsafeRawBufferPointer) throws -> PeerKey

    /// X25519 (RFC 7748) of `key` and `peer` into `output` (32 bytes): one scalar
    /// multiplication. Not checked for all zeros; `x25519SharedSecret` does that.
    static func x25519(_ key: PrivateKey, peer: PeerKey, into output: UnsafeMutableRawBufferPointer) throws

    /// SHA-256 of `first` followed by `second` into `output` (32 bytes), without copying them
    /// together and without a heap allocation (MixHash and HMAC run on it). `output` may be
    /// the memory of either input.
    static func sha256(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                       into output: UnsafeMutableRawBufferPointer) throws

    /// scrypt (RFC 7914) into `output`.
    static func scrypt(password: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer,
                       parameters: ScryptParameters, into output: UnsafeMutableRawBufferPointer) throws

    /// Fills `output` from the library's cryptographically secure generator.
    static func randomBytes(into output: UnsafeMutableRawBufferPointer) throws
}

/// scrypt cost parameters: N (a power of two above 1), r and p.
public struct ScryptParameters: Hashable, Sendable {
    public var n: UInt64
    public var r: UInt32
    public var p: UInt32

    public init(n: UInt64, r: UInt32, p: UInt32) {
        self.n = n
        self.r = r
        self.p = p
    }

    /// Memory scrypt needs, in bytes (128·r·N for V plus 128·r·p for B).
    public var memoryBytes: UInt64 { 128 * UInt64(r) * (n + UInt64(p)) }

    public func validate() throws {
        guard n > 1, n & (n - 1) == 0 else { throw CryptoError.unsupportedParameters("scrypt N must be a power of two above 1") }
        guard r > 0, p > 0 else { throw CryptoError.unsupportedParameters("scrypt r and p must be positive") }
    }
}

public enum DigestSize {
    public static let sha256 = 32
}

// MARK: - Conveniences shared by every backend

extension CryptoBackend {
    /// SHA-256 of `message` into `output` (32 bytes).
    public static func sha256(_ message: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try sha256(message, UnsafeRawBufferPointer(start: nil, count: 0), into: output)
    }

    public static func sha256(_ message: UnsafeRawBufferPointer) throws -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: DigestSize.sha256)
        try digest.withUnsafeMutableBytes { (out) in try sha256(message, into: out) }
        return digest
    }

    public static func sha256<Bytes: Collection<UInt8>>(_ message: Bytes) throws -> [UInt8] {
        try Array(message).withUnsafeBytes { (bytes) in try sha256(bytes) }
    }

    public static func randomBytes(count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { (out) in try randomBytes(into: out) }
        return bytes
    }

    public static func makeCipher(_ kind: CipherKind, key: SecretBytes) throws -> AEAD {
        try key.withUnsafeBytes { (keyBytes) in try AEAD(kind: kind, key: keyBytes) }
    }
}
