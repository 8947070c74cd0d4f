import SecureChatCrypto

/// Noise HandshakeState (§5.3) for any pattern in `HandshakePattern`'s table, writing into and
/// reading from caller-owned buffers. A failed read leaves it failed for good.
public struct HandshakeState<Backend: CryptoBackend> {
    public enum Role: Sendable { case initiator, responder }

    public let role: Role
    public let noiseProtocol: NoiseProtocol
    private var symmetric: SymmetricState<Backend>
    private let localStatic: X25519KeyPair?
    private var localEphemeral: X25519KeyPair?
    /// The other side's static key: given before (IK, NK, KK…) or learnt during the handshake.
    public private(set) var remoteStatic: X25519PublicKey?
    /// The other side's ephemeral key, imported once into the backend's form: two DH use it.
    private var remoteEphemeral: Backend.PeerKey?
    /// The remote static key in the backend's form, imported (or taken from the local pair's
    /// cache, with the `ss` secret) once per handshake for all its DH.
    private var remoteStaticPeer: Backend.StaticPeer?
    private var messageIndex = 0
    private var failed = false

    public static var maximumMessage: Int { 65535 }

    /// `ephemeral`: a key made ahead or a test vector's (or handed over later, `useEphemeral`);
    /// without one, a fresh key is generated when the `e` token needs it.
    public init(protocol noiseProtocol: NoiseProtocol, role: Role, prologue: [UInt8],
                localStatic: X25519KeyPair? = nil, remoteStatic: X25519PublicKey? = nil,
                ephemeral: X25519KeyPair? = nil) throws {
        self.role = role
        self.noiseProtocol = noiseProtocol
        self.localStatic = localStatic
        self.remoteStatic = remoteStatic
        localEphemeral = ephemeral
        symmetric = try SymmetricState(protocolName: noiseProtocol.name, kind: noiseProtocol.cipher)
        try prologue.withUnsafeBytes { (bytes) in try symmetric.mixHash(bytes) }
        try mixPreMessage(noiseProtocol.pattern.initiatorPreMessage, isLocal: role == .initiator)
        try mixPreMessage(noiseProtocol.pattern.responderPreMessage, isLocal: role == .responder)
    }

    /// A pre-message's static key into the handshake hash (IK: the responder's).
    private mutating func mixPreMessage(_ tokens: [HandshakePattern.Token], isLocal: Bool) throws {
        guard tokens.contains(.s) else { return }
        let key = isLocal ? localStatic?.publicKey : remoteStatic
        guard let key else { throw NoiseError.missingKey(isLocal ? "local static key" : "remote static key") }
        try key.bytes.withUnsafeBytes { (bytes) in try symmetric.mixHash(bytes) }
    }

    /// Hands over the key this handshake's `e` token will send, made ahead of time so that its
    /// scalar multiplication is off the critical path (while waiting for the other side). Only
    /// before the token: an ephemeral key serves exactly one handshake.
    public mutating func useEphemeral(_ key: X25519KeyPair) throws {
        try checkUsable()
        guard localEphemeral == nil else { throw NoiseError.ephemeralAlreadyChosen }
        localEphemeral = key
    }

    public var isComplete: Bool { messageIndex == noiseProtocol.pattern.messages.count }

    /// Whether the next message is ours to write.
    public var isMyTurn: Bool { !isComplete && (messageIndex % 2 == 0) == (role == .initiator) }

    public var handshakeHash: [UInt8] { symmetric.handshakeHash }

    /// Bytes the next message will take with a payload of `payloadCount` bytes.
    public func nextMessageCount(payloadCount: Int) -> Int {
        var count = 0
        var keyed = symmetric.cipherState.hasKey
        for token in noiseProtocol.pattern.messages[messageIndex] {
            switch token {
            case .e: count += X25519PublicKey.byteCount
            case .s: count += X25519PublicKey.byteCount + (keyed ? AEADSize.tag : 0)
            case .ee, .es, .se, .ss: keyed = true
            }
        }
        return count + payloadCount + (keyed ? AEADSize.tag : 0)
    }

    /// WriteMessage(payload, message_buffer): returns the bytes written into `output`.
    public mutating func writeMessage(payload: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        try checkUsable()
        guard isMyTurn else { throw NoiseError.notMyTurn }
        let needed = nextMessageCount(payloadCount: payload.count)
        guard needed <= Self.maximumMessage, needed <= output.count else { throw NoiseError.messageTooLong }
        var written = 0
        do {
            for token in noiseProtocol.pattern.messages[messageIndex] {
                switch token {
                case .e:
                    let ephemeral = try localEphemeral ?? mapCrypto { try Backend.generateEphemeralX25519KeyPair() }
                    localEphemeral = ephemeral
                    written += try append(ephemeral.publicKey.bytes, to: output, at: written)
                    try ephemeral.publicKey.bytes.withUnsafeBytes { (bytes) in try symmetric.mixHash(bytes) }
                case .s:
                    guard let localStatic else { throw NoiseError.missingKey("local static key") }
                    written += try localStatic.publicKey.bytes.withUnsafeBytes { (bytes) in
                        try symmetric.encryptAndHash(bytes, into: UnsafeMutableRawBufferPointer(rebasing: output[written...]))
                    }
                case .ee, .es, .se, .ss:
                    try mixDiffieHellman(token)
                }
            }
            written += try symmetric.encryptAndHash(payload, into: UnsafeMutableRawBufferPointer(rebasing: output[written...]))
        } catch {
            failed = true
            throw error
        }
        messageIndex += 1
        return written
    }

    /// ReadMessage(message, payload_buffer): returns the payload length written into `payload`.
    public mutating func readMessage(_ message: UnsafeRawBufferPointer, payloadInto payload: UnsafeMutableRawBufferPointer) throws -> Int {
        try checkUsable()
        guard !isComplete else { throw NoiseError.handshakeAlreadyComplete }
        guard !isMyTurn else { throw NoiseError.notMyTurn }
        guard message.count <= Self.maximumMessage else { throw NoiseError.messageTooLong }
        var offset = 0
        do {
            for token in noiseProtocol.pattern.messages[messageIndex] {
                switch token {
                case .e:
                    let bytes = try take(X25519PublicKey.byteCount, from: message, at: &offset)
                    remoteEphemeral = try mapCrypto { try Backend.importPeerKey(bytes) }
                    try symmetric.mixHash(bytes)
                case .s:
                    let length = X25519PublicKey.byteCount + (symmetric.cipherState.hasKey ? AEADSize.tag : 0)
                    let sealed = try take(length, from: message, at: &offset)
                    var key = [UInt8](repeating: 0, count: X25519PublicKey.byteCount)
                    _ = try key.withUnsafeMutableBytes { (out) in try symmetric.decryptAndHash(sealed, into: out) }
                    remoteStatic = try mapCrypto { try X25519PublicKey(bytes: key) }
                case .ee, .es, .se, .ss:
                    try mixDiffieHellman(token)
                }
            }
            let count = try symmetric.decryptAndHash(UnsafeRawBufferPointer(rebasing: message[offset...]), into: payload)
            messageIndex += 1
            return count
        } catch {
            failed = true
            throw error
        }
    }

    /// Split() once the handshake is complete. `rekeyInterval` is securechat's rule (10);
    /// nil gives plain Noise, as the test vectors expect.
    public mutating func split(rekeyInterval: UInt64?) throws -> NoiseTransport<Backend> {
        try checkUsable()
        guard isComplete else { throw NoiseError.handshakeNotComplete }
        let (initiatorToResponder, responderToInitiator) = try symmetric.split()
        let oneWay = noiseProtocol.pattern.isOneWay
        let (sending, receiving) = role == .initiator
            ? (initiatorToResponder, oneWay ? nil : responderToInitiator)
            : (oneWay ? nil : responderToInitiator, initiatorToResponder)
        return NoiseTransport(sending: sending, receiving: receiving, rekeyInterval: rekeyInterval,
                              handshakeHash: symmetric.handshakeHash, remoteStatic: remoteStatic)
    }

    private func checkUsable() throws {
        if failed { throw NoiseError.decryptionFailed }
    }

    /// MixKey(DH(…)) for a DH token, from this side's point of view (§5.3).
    private mutating func mixDiffieHellman(_ token: HandshakePattern.Token) throws {
        let initiator = role == .initiator
        // Our ephemeral with their static key (`es` sent, `se` answered): computed while we
        // waited, if it was computed for the key they proved.
        if token == (initiator ? .es : .se), let remoteStatic, let secret = localEphemeral?.secretComputedAhead(with: remoteStatic) {
            return try secret.withUnsafeBytes { (bytes) in try symmetric.mixKey(bytes) }
        }
        let local: X25519KeyPair?, remote: Backend.PeerKey?
        switch token {
        case .ss:
            let peer = try staticPeer()
            // Kept by the local pair: the same for every handshake between the two static keys.
            if let secret = peer?.staticStatic { return try secret.withUnsafeBytes { (bytes) in try symmetric.mixKey(bytes) } }
            (local, remote) = (localStatic, peer?.key)
        case .ee: (local, remote) = (localEphemeral, remoteEphemeral)
        case .es: (local, remote) = initiator ? (localEphemeral, try staticPeer()?.key) : (localStatic, remoteEphemeral)
        case .se: (local, remote) = initiator ? (localStatic, remoteEphemeral) : (localEphemeral, try staticPeer()?.key)
        case .e, .s: preconditionFailure("not a DH token")
        }
        guard let local else { throw NoiseError.missingKey("local key for \(token)") }
        guard let remote else { throw NoiseError.missingKey("remote key for \(token)") }
        try withSecretScratch(byteCount: X25519PublicKey.byteCount) { (shared) in
            try mapCrypto { try Backend.x25519SharedSecret(local, peer: remote, into: shared) }
            try symmetric.mixKey(UnsafeRawBufferPointer(shared))
        }
    }

    /// The remote static key in the backend's form (nil while it is not known), made on first use.
    private mutating func staticPeer() throws -> Backend.StaticPeer? {
        if let remoteStaticPeer { return remoteStaticPeer }
        guard let remoteStatic else { return nil }
        let peer = try mapCrypto { try Backend.staticPeer(localStatic, remoteStatic) }
        remoteStaticPeer = peer
        return peer
    }

    private func append(_ bytes: [UInt8], to output: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        guard output.count - offset >= bytes.count else { throw NoiseError.messageTooLong }
        UnsafeMutableRawBufferPointer(rebasing: output[offset..<(offset + bytes.count)]).copyBytes(from: bytes)
        return bytes.count
    }

    private func take(_ count: Int, from message: UnsafeRawBufferPointer, at offset: inout Int) throws -> UnsafeRawBufferPointer {
        guard message.count - offset >= count else { throw NoiseError.messageTooShort }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: message[offset..<(offset + count)])
    }
}

extension HandshakeState {
    /// Allocating conveniences for the control path and tests.
    public mutating func writeMessage(payload: [UInt8]) throws -> [UInt8] {
        guard isMyTurn else { throw NoiseError.notMyTurn }
        var message = [UInt8](repeating: 0, count: nextMessageCount(payloadCount: payload.count))
        let count = try message.withUnsafeMutableBytes { (out) in
            try payload.withUnsafeBytes { (bytes) in try writeMessage(payload: bytes, into: out) }
        }
        message.removeLast(message.count - count)  // in place: no second array
        return message
    }

    public mutating func readMessage(_ message: [UInt8]) throws -> [UInt8] {
        var payload = [UInt8](repeating: 0, count: message.count)
        let count = try payload.withUnsafeMutableBytes { (out) in
            try message.withUnsafeBytes { (bytes) in try readMessage(bytes, payloadInto: out) }
        }
        payload.removeLast(payload.count - count)
        return payload
    }
}
