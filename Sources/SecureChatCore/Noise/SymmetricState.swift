import SecureChatCrypto

/// Noise SymmetricState (§5.2): the chaining key, the handshake hash and a CipherState.
/// Fixed sizes, as in wireguard-go: the chaining key is one 32-byte secret made at the start and
/// overwritten by every MixKey, and HKDF's outputs live on the stack (`withSecretScratch`), so
/// a handshake's key schedule makes no heap allocation after `init`.
struct SymmetricState<Backend: CryptoBackend> {
    var cipherState: CipherState<Backend.AEAD>
    /// The chaining key: secret, wiped when released; copied before a write if a copy shares it.
    private var chainingKey: SecretBytes
    private(set) var handshakeHash: [UInt8]

    /// InitializeSymmetric(protocol_name).
    init(protocolName: String, kind: CipherKind) throws {
        cipherState = CipherState(kind: kind)
        var hash = [UInt8](repeating: 0, count: DigestSize.sha256)
        var name = protocolName
        try name.withUTF8 { (name) in
            try hash.withUnsafeMutableBytes { (hash) in
                if name.count <= DigestSize.sha256 {
                    hash.copyMemory(from: UnsafeRawBufferPointer(name))
                } else {
                    try mapCrypto { try Backend.sha256(UnsafeRawBufferPointer(name), into: hash) }
                }
            }
        }
        handshakeHash = hash
        chainingKey = hash.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// MixHash(data): h = HASH(h || data).
    mutating func mixHash(_ data: UnsafeRawBufferPointer) throws {
        try mapCrypto {
            try handshakeHash.withUnsafeMutableBytes { hash in try Backend.sha256(UnsafeRawBufferPointer(hash), data, into: hash) }
        }
    }

    /// MixKey(input_key_material): ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k).
    mutating func mixKey(_ inputKeyMaterial: UnsafeRawBufferPointer) throws {
        try withSecretScratch(byteCount: 2 * DigestSize.sha256) { (output) in
            let (newChainingKey, temporaryKey) = try deriveTwo(inputKeyMaterial, into: output)
            if isKnownUniquelyReferenced(&chainingKey) {
                chainingKey.withUnsafeMutableBytes { $0.copyMemory(from: newChainingKey) }
            } else {
                chainingKey = SecretBytes(copying: newChainingKey)
            }
            try cipherState.initializeKey(temporaryKey)
        }
    }

    /// EncryptAndHash into `output`; returns the bytes written.
    mutating func encryptAndHash(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = cipherState.sealedCount(plaintext.count)
        guard output.count >= count else { throw NoiseError.messageTooLong }
        let ciphertext = UnsafeMutableRawBufferPointer(rebasing: output[..<count])
        try handshakeHash.withUnsafeBytes { (ad) in
            try cipherState.encrypt(associatedData: ad, plaintext: plaintext, into: ciphertext)
        }
        try mixHash(UnsafeRawBufferPointer(ciphertext))
        return count
    }

    /// DecryptAndHash into `output`; returns the plaintext length.
    mutating func decryptAndHash(_ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = cipherState.hasKey ? ciphertext.count - AEADSize.tag : ciphertext.count
        guard count >= 0 else { throw NoiseError.messageTooShort }
        guard output.count >= count else { throw NoiseError.messageTooLong }
        try handshakeHash.withUnsafeBytes { (ad) in
            try cipherState.decrypt(associatedData: ad, ciphertext: ciphertext,
                                    into: UnsafeMutableRawBufferPointer(rebasing: output[..<count]))
        }
        try mixHash(ciphertext)
        return count
    }

    /// Split(): the two transport CipherStates, initiator→responder first. The handshake's own
    /// cipher, which encrypts nothing after this, is re-keyed as the first: one cipher context
    /// fewer to make (three allocations with OpenSSL). Split again, it makes both afresh.
    mutating func split() throws -> (CipherState<Backend.AEAD>, CipherState<Backend.AEAD>) {
        var initiatorToResponder = cipherState
        cipherState = CipherState<Backend.AEAD>(kind: cipherState.kind)
        var responderToInitiator = CipherState<Backend.AEAD>(kind: cipherState.kind)
        try withSecretScratch(byteCount: 2 * DigestSize.sha256) { (output) in
            let (first, second) = try deriveTwo(UnsafeRawBufferPointer(start: nil, count: 0), into: output)
            try initiatorToResponder.initializeKey(first)
            try responderToInitiator.initializeKey(second)
        }
        return (initiatorToResponder, responderToInitiator)
    }

    /// HKDF(ck, ikm, 2) into `output` (64 bytes); returns its two halves.
    private func deriveTwo(_ inputKeyMaterial: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
        -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer)
    {
        try mapCrypto {
            try chainingKey.withUnsafeBytes { salt in
                try Backend.hkdf(salt: salt, inputKeyMaterial: inputKeyMaterial,
                                 info: UnsafeRawBufferPointer(start: nil, count: 0), into: output)
            }
        }
        return (UnsafeRawBufferPointer(rebasing: output[..<DigestSize.sha256]),
                UnsafeRawBufferPointer(rebasing: output[DigestSize.sha256...]))
    }
}
