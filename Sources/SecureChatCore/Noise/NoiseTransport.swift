import SecureChatCrypto

/// The transport phase after Split(): one CipherState per direction, sealing into and opening
/// into caller-owned buffers with no heap allocation. With a `rekeyInterval` of 10 (securechat,
/// PROTOCOL.md §3.4) each direction applies REKEY() before message 11, 21, …; the nonce goes on.
/// A failed open leaves it failed for good: the connection must close.
public struct NoiseTransport<Backend: CryptoBackend> {
    private var sending: CipherState<Backend.AEAD>?
    private var receiving: CipherState<Backend.AEAD>?
    public let rekeyInterval: UInt64?
    public let handshakeHash: [UInt8]
    public let remoteStatic: X25519PublicKey?
    private var failed = false

    public static var tagSize: Int { AEADSize.tag }
    /// The largest plaintext of one transport message: 65535 - 16.
    public static var maximumPlaintext: Int { 65535 - AEADSize.tag }

    init(sending: CipherState<Backend.AEAD>?, receiving: CipherState<Backend.AEAD>?, rekeyInterval: UInt64?,
         handshakeHash: [UInt8], remoteStatic: X25519PublicKey?) {
        self.sending = sending
        self.receiving = receiving
        self.rekeyInterval = rekeyInterval
        self.handshakeHash = handshakeHash
        self.remoteStatic = remoteStatic
    }

    /// Seals `plaintext` into `output` (at least `plaintext.count + 16` bytes); returns the length.
    public mutating func seal(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !failed else { throw NoiseError.decryptionFailed }
        guard var state = sending else { throw NoiseError.directionNotAllowed }
        guard plaintext.count <= Self.maximumPlaintext, output.count >= plaintext.count + AEADSize.tag else { throw NoiseError.messageTooLong }
        defer { sending = state }
        try rekeyIfDue(&state)
        try state.encrypt(associatedData: UnsafeRawBufferPointer(start: nil, count: 0), plaintext: plaintext, into: output)
        return plaintext.count + AEADSize.tag
    }

    /// Opens `ciphertext` into `output` (at least `ciphertext.count - 16` bytes); returns the length.
    public mutating func open(_ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !failed else { throw NoiseError.decryptionFailed }
        guard var state = receiving else { throw NoiseError.directionNotAllowed }
        guard ciphertext.count >= AEADSize.tag else {
            failed = true
            throw NoiseError.messageTooShort
        }
        guard output.count >= ciphertext.count - AEADSize.tag else { throw NoiseError.messageTooLong }
        defer { receiving = state }
        do {
            try rekeyIfDue(&state)
            try state.decrypt(associatedData: UnsafeRawBufferPointer(start: nil, count: 0), ciphertext: ciphertext, into: output)
        } catch {
            failed = true
            throw error
        }
        return ciphertext.count - AEADSize.tag
    }

    func rekeyIfDue(_ state: inout CipherState<Backend.AEAD>) throws {
        if let rekeyInterval, state.nonce > 0, state.nonce % rekeyInterval == 0 {
            try state.rekey()
        }
    }
}

extension NoiseTransport {
    /// Allocating conveniences for the control path and tests.
    public mutating func seal(_ plaintext: [UInt8]) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: plaintext.count + AEADSize.tag)
        _ = try output.withUnsafeMutableBytes { (out) in
            try plaintext.withUnsafeBytes { (bytes) in try seal(bytes, into: out) }
        }
        return output
    }

    public mutating func open(_ ciphertext: [UInt8]) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max(ciphertext.count - AEADSize.tag, 0))
        _ = try output.withUnsafeMutableBytes { (out) in
            try ciphertext.withUnsafeBytes { (bytes) in try open(bytes, into: out) }
        }
        return output
    }
}
