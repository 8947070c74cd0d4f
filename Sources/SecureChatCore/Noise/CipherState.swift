import SecureChatCrypto

/// Noise CipherState (§5.1): a key (held by the backend's cipher) and a 64-bit nonce.
/// Encrypt and decrypt write into caller-owned buffers and allocate nothing.
/// Copies share the backend's key context but not the nonce: only one copy may stay in use,
/// so state machines store back the copy they advanced (a stale copy would reuse a nonce).
public struct CipherState<AEAD: Cipher> {
    private var cipher: AEAD?
    public private(set) var nonce: UInt64 = 0
    let kind: CipherKind

    init(kind: CipherKind) {
        self.kind = kind
    }

    public var hasKey: Bool { cipher != nil }

    /// InitializeKey(k): a new key, nonce back to 0. Reuses the existing context when there is one.
    mutating func initializeKey(_ key: UnsafeRawBufferPointer) throws {
        if let cipher {
            try mapCrypto { try cipher.setKey(key) }
        } else {
            cipher = try mapCrypto { try AEAD(kind: kind, key: key) }
        }
        nonce = 0
    }

    /// Ciphertext size for `plaintextCount` bytes: with a key, 16 more for the tag.
    func sealedCount(_ plaintextCount: Int) -> Int { hasKey ? plaintextCount + AEADSize.tag : plaintextCount }

    /// EncryptWithAd: writes `sealedCount(plaintext.count)` bytes into `output`. Without a key
    /// the plaintext is copied as is (Noise §5.1).
    mutating func encrypt(associatedData: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
                          into output: UnsafeMutableRawBufferPointer) throws {
        guard let cipher else { return Self.passThrough(plaintext, into: output) }
        // 2^64-1 is reserved for rekey (§5.1).
        guard nonce < .max else { throw NoiseError.nonceExhausted }
        try mapCrypto {
            try cipher.seal(counter: nonce, associatedData: associatedData, plaintext: plaintext,
                            into: UnsafeMutableRawBufferPointer(rebasing: output[..<(plaintext.count + AEADSize.tag)]))
        }
        nonce += 1
    }

    /// DecryptWithAd: on failure the nonce does not advance and `output` holds zeros.
    mutating func decrypt(associatedData: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
                          into output: UnsafeMutableRawBufferPointer) throws {
        guard let cipher else { return Self.passThrough(ciphertext, into: output) }
        guard nonce < .max else { throw NoiseError.nonceExhausted }
        guard ciphertext.count >= AEADSize.tag else { throw NoiseError.messageTooShort }
        try mapCrypto {
            try cipher.open(counter: nonce, associatedData: associatedData, ciphertext: ciphertext,
                            into: UnsafeMutableRawBufferPointer(rebasing: output[..<(ciphertext.count - AEADSize.tag)]))
        }
        nonce += 1
    }

    /// Without a key, Noise passes messages through unchanged.
    private static func passThrough(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        if input.count > 0 { output.baseAddress!.copyMemory(from: input.baseAddress!, byteCount: input.count) }
    }

    /// REKEY() (§4.2): a new key from the old one; the nonce goes on.
    mutating func rekey() throws {
        guard let cipher else { throw NoiseError.missingKey("cipher key") }
        try mapCrypto { try cipher.rekey() }
    }
}
