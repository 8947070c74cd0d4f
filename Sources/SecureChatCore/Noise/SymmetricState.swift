import SecureChatCrypto

/// Noise SymmetricState (§5.2): the chaining key, the handshake hash and a CipherState.
struct SymmetricState<Backend: CryptoBackend> {
    var cipherState: CipherState<Backend.AEAD>
    /// The chaining key: secret, wiped when released.
    private var chainingKey = SecretBytes(count: DigestSize.sha256)
    private(set) var handshakeHash = [UInt8](repeating: 0, count: DigestSize.sha256)

    /// InitializeSymmetric(protocol_name).
    init(protocolName: String, kind: CipherKind) throws {
        cipherState = CipherState(kind: kind)
        let name = Array(protocolName.utf8)
        if name.count <= DigestSize.sha256 {
            handshakeHash = name + [UInt8](repeating: 0, count: DigestSize.sha256 - name.count)
        } else {
            handshakeHash = try mapCrypto { try Backend.sha256(name) }
        }
        chainingKey = SecretBytes(handshakeHash)
    }

    /// MixHash(data): h = HASH(h || data).
    mutating func mixHash(_ data: UnsafeRawBufferPointer) throws {
        try mapCrypto {
            try handshakeHash.withUnsafeMutableBytes { hash in try Backend.sha256(UnsafeRawBufferPointer(hash), data, into: hash) }
        }
    }

    /// MixKey(input_key_material): ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k).
    mutating func mixKey(_ inputKeyMaterial: UnsafeRawBufferPointer) throws {
        let (newChainingKey, temporaryKey) = try deriveTwo(inputKeyMaterial)
        chainingKey = newChainingKey
        try temporaryKey.withUnsafeBytes { (key) in try cipherState.initializeKey(key) }
    }

    /// EncryptAndHash into `output`; returns the bytes written.
    mutating func encryptAndHash(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = cipherState.sealedCount(plaintext.count)
        guard output.count >= count else { throw NoiseError.messageTooLong }
        let ciphertext = UnsafeMutableRawBufferPointer(rebasing: output[..<count])
        let hash = handshakeHash
        try hash.withUnsafeBytes { (ad) in
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
        let hash = handshakeHash
        try hash.withUnsafeBytes { (ad) in
            try cipherState.decrypt(associatedData: ad, ciphertext: ciphertext,
                                    into: UnsafeMutableRawBufferPointer(rebasing: output[..<count]))
        }
        try mixHash(ciphertext)
        return count
    }

    /// Split(): the two transport CipherStates, initiator→responder first.
    func split() throws -> (CipherState<Backend.AEAD>, CipherState<Backend.AEAD>) {
        let (first, second) = try deriveTwo(UnsafeRawBufferPointer(start: nil, count: 0))
        var initiatorToResponder = CipherState<Backend.AEAD>(kind: cipherState.kind)
        var responderToInitiator = CipherState<Backend.AEAD>(kind: cipherState.kind)
        try first.withUnsafeBytes { (key) in try initiatorToResponder.initializeKey(key) }
        try second.withUnsafeBytes { (key) in try responderToInitiator.initializeKey(key) }
        return (initiatorToResponder, responderToInitiator)
    }

    /// HKDF(ck, ikm, 2) as two secrets.
    private func deriveTwo(_ inputKeyMaterial: UnsafeRawBufferPointer) throws -> (SecretBytes, SecretBytes) {
        let output = SecretBytes(count: 2 * DigestSize.sha256)
        try mapCrypto {
            try chainingKey.withUnsafeBytes { salt in
                try output.withUnsafeMutableBytes { out in
                    try Backend.hkdf(salt: salt, inputKeyMaterial: inputKeyMaterial,
                                     info: UnsafeRawBufferPointer(start: nil, count: 0), into: out)
                }
            }
        }
        return output.withUnsafeBytes { bytes in
            (SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[..<DigestSize.sha256])),
             SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[DigestSize.sha256...])))
        }
    }
}
