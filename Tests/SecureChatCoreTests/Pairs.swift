import SecureChatBench
import SecureChatCore
import SecureChatCrypto

/// Both ends of a completed Noise IK handshake, ready to split into transports.
func transportPair<B: CryptoBackend>(_: B.Type, _ cipher: CipherKind) throws -> (HandshakeState<B>, HandshakeState<B>) {
    let noise = NoiseProtocol.ik(cipher)
    let responderKey = try B.generateX25519KeyPair()
    var initiator = try HandshakeState<B>(protocol: noise, role: .initiator, prologue: [], localStatic: try B.generateX25519KeyPair(),
                                          remoteStatic: responderKey.publicKey)
    var responder = try HandshakeState<B>(protocol: noise, role: .responder, prologue: [], localStatic: responderKey)
    _ = try responder.readMessage(try initiator.writeMessage(payload: []))
    _ = try initiator.readMessage(try responder.writeMessage(payload: []))
    return (initiator, responder)
}

/// An established pair of SecureChannels: (initiator, responder).
func establishedChannels<B: CryptoBackend>(_: B.Type, _ cipher: CipherKind = .chaChaPoly) throws -> (SecureChannel<B>, SecureChannel<B>) {
    try establishedPair(B.self, cipher)
}
