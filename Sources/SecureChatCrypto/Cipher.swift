/// The two AEADs Noise defines, by their Noise names.
public enum CipherKind: String, CaseIterable, Sendable {
    case chaChaPoly = "ChaChaPoly"
    case aesGCM = "AESGCM"

    /// The name used on the command line and in config files.
    public var configName: String {
        switch self {
        case .chaChaPoly: return "chachapoly"
        case .aesGCM: return "aesgcm"
        }
    }

    public init?(configName: String) {
        guard let kind = CipherKind.allCases.first(where: { $0.configName == configName }) else { return nil }
        self = kind
    }
}

/// Sizes shared by both AEADs.
public enum AEADSize {
    public static let key = 32
    public static let nonce = 12
    public static let tag = 16
}

/// An AEAD with a 32-byte key (AES-256-GCM or ChaCha20-Poly1305), implemented by a backend.
///
/// A conforming type owns its C context and is set up once per key: after `init`, `seal` and
/// `open` make no heap allocation. It is a class because it owns that context; it wipes the key
/// when released. Buffers are the caller's: `seal` writes ciphertext followed by the 16-byte tag,
/// `open` writes the plaintext. Input and output may be the same memory (in place, at the same
/// address); otherwise they must not overlap.
public protocol Cipher: AnyObject {
    init(kind: CipherKind, key: UnsafeRawBufferPointer) throws

    var kind: CipherKind { get }

    /// Replaces the key, keeping the context.
    func setKey(_ key: UnsafeRawBufferPointer) throws

    /// Seals `plaintext` under a raw 12-byte nonce into `output` (`plaintext.count + 16` bytes).
    func seal(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
              plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws

    /// Opens `ciphertext` (with its trailing tag) under a raw 12-byte nonce into `output`
    /// (`ciphertext.count - 16` bytes). On failure `output` holds zeros, never unverified plaintext.
    func open(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
              ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
}

extension Cipher {
    /// Seals with the Noise nonce for `counter` (Noise §5.1, ChaChaPoly little-endian,
    /// AESGCM big-endian, both after 4 zero bytes). Always inlined: otherwise the optimiser
    /// merges it with `open(counter:)` into one function that calls through a pointer, a
    /// second call per message.
    @inlinable @inline(__always)
    public func seal(counter: UInt64, associatedData: UnsafeRawBufferPointer,
                     plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        var nonce = NoiseNonce(counter: counter, kind: kind)
        try withUnsafeBytes(of: &nonce.words) { (nonceBytes) in
            try seal(nonce: nonceBytes, associatedData: associatedData, plaintext: plaintext, into: output)
        }
    }

    @inlinable @inline(__always)
    public func open(counter: UInt64, associatedData: UnsafeRawBufferPointer,
                     ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        var nonce = NoiseNonce(counter: counter, kind: kind)
        try withUnsafeBytes(of: &nonce.words) { (nonceBytes) in
            try open(nonce: nonceBytes, associatedData: associatedData, ciphertext: ciphertext, into: output)
        }
    }

    /// Noise `REKEY()` (§4.2): the new key is the first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zeros).
    /// Uses stack memory only, and wipes it.
    public func rekey() throws {
        try withSecretScratch(byteCount: 2 * AEADSize.key + AEADSize.tag) { (scratch) in
            let zeros = UnsafeMutableRawBufferPointer(rebasing: scratch[..<AEADSize.key])
            zeros.initializeMemory(as: UInt8.self, repeating: 0)
            let sealed = UnsafeMutableRawBufferPointer(rebasing: scratch[AEADSize.key...])
            try seal(counter: .max, associatedData: UnsafeRawBufferPointer(start: nil, count: 0),
                     plaintext: UnsafeRawBufferPointer(zeros), into: sealed)
            try setKey(UnsafeRawBufferPointer(rebasing: sealed[..<AEADSize.key]))
        }
    }
}

/// For a backend's `open`: the tag at the end of `ciphertext` (at least 16 bytes), read where it
/// is, or copied out first when the plaintext about to be written into `output` would overwrite
/// it (an output shifted forward into the tag); in place at the same address it never does.
@inlinable
public func withTag<R>(of ciphertext: UnsafeRawBufferPointer, openingInto output: UnsafeMutableRawBufferPointer,
                       _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
    let bodyCount = ciphertext.count - AEADSize.tag
    let tag = ciphertext.baseAddress! + bodyCount
    if let out = output.baseAddress.map(UnsafeRawPointer.init), out < tag + AEADSize.tag, out + bodyCount > tag {
        return try withCopiedTag(tag, body)
    }
    return try body(tag)
}

/// The rare case apart, so that the usual one keeps no tag buffer on the stack.
@usableFromInline @inline(never)
func withCopiedTag<R>(_ tag: UnsafeRawPointer, _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
    var copy: (UInt64, UInt64) = (0, 0)
    withUnsafeMutableBytes(of: &copy) { $0.copyMemory(from: UnsafeRawBufferPointer(start: tag, count: AEADSize.tag)) }
    return try withUnsafeBytes(of: &copy) { try body($0.baseAddress!) }
}

/// The 12-byte nonce for a 64-bit Noise counter, as three words laid out in memory.
@usableFromInline
struct NoiseNonce {
    @usableFromInline var words: (UInt32, UInt32, UInt32)

    @inlinable
    init(counter: UInt64, kind: CipherKind) {
        let low = UInt32(truncatingIfNeeded: counter), high = UInt32(truncatingIfNeeded: counter >> 32)
        switch kind {
        case .chaChaPoly: words = (0, low.littleEndian, high.littleEndian)
        case .aesGCM: words = (0, high.bigEndian, low.bigEndian)
        }
    }
}

extension Cipher {
    /// Allocating conveniences for tests, self-tests and one-off uses; the message path uses the
    /// buffer-based methods above.
    public func sealed(nonce: [UInt8], associatedData: [UInt8], plaintext: [UInt8]) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: plaintext.count + AEADSize.tag)
        try nonce.withUnsafeBytes { n in
            try associatedData.withUnsafeBytes { a in
                try plaintext.withUnsafeBytes { p in
                    try output.withUnsafeMutableBytes { try seal(nonce: n, associatedData: a, plaintext: p, into: $0) }
                }
            }
        }
        return output
    }

    public func opened(nonce: [UInt8], associatedData: [UInt8], ciphertext: [UInt8]) throws -> [UInt8] {
        guard ciphertext.count >= AEADSize.tag else { throw CryptoError.authenticationFailed }
        var output = [UInt8](repeating: 0, count: ciphertext.count - AEADSize.tag)
        try nonce.withUnsafeBytes { n in
            try associatedData.withUnsafeBytes { a in
                try ciphertext.withUnsafeBytes { c in
                    try output.withUnsafeMutableBytes { try open(nonce: n, associatedData: a, ciphertext: c, into: $0) }
                }
            }
        }
        return output
    }
}
