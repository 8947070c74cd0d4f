import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import Testing

/// Bad input of every kind gives an error, never a crash, and a failed channel stays failed.
@Suite("Robustness")
struct RobustnessTests {
    @Test("tampered, replayed, reordered, truncated and oversized frames are refused for good", arguments: BackendName.allCases)
    func badFrames(backend: BackendName) throws { try runBadFrames(backend.implementation) }

    @Test("a bad HELLO or handshake closes the channel", arguments: BackendName.allCases)
    func badOpenings(backend: BackendName) throws { try runBadOpenings(backend.implementation) }

    @Test("events wrong for the state are errors, not crashes", arguments: BackendName.allCases)
    func wrongEvents(backend: BackendName) throws { try runWrongEvents(backend.implementation) }

    @Test("the server session enforces its deadlines and refuses bad clients", arguments: BackendName.allCases)
    func serverDefences(backend: BackendName) throws { try runServerDefences(backend.implementation) }
}

private func runBadFrames<B: CryptoBackend>(_: B.Type) throws {
    for cipher in CipherKind.allCases {
        // Tampering: a changed bit in the ciphertext's first byte, its middle, or the tag's last bit.
        for bit in [16, 40, 23 * 8 - 1] {
            var (sender, receiver) = try establishedChannels(B.self, cipher)
            let genuine = try sender.seal(Array("hello".utf8))  // 2 + 5 + 16 = 23 bytes
            var frame = genuine
            frame[bit / 8] ^= 1 << (bit % 8)
            #expect(receiver.receive(frame) == [.fail(.decryption)])
            // The genuine frame would open now (same nonce): it must not, the channel has failed.
            #expect(receiver.receive(genuine) == [.fail(.decryption)], "failed stays failed")
            #expect(throws: SecureChannelError.decryption) { _ = try receiver.seal([1]) }
        }
        // The same through the chat record path (openMessage, sealFrame, in caller buffers).
        do {
            var (sender, receiver) = try establishedChannels(B.self, cipher)
            let genuine = try sender.seal(Array("hello".utf8)).dropFirst(Framing.headerSize).map { $0 }
            var message = genuine
            message[0] ^= 1
            var output = [UInt8](repeating: 0, count: 64)
            func open(_ bytes: [UInt8]) throws -> Int {
                try bytes.withUnsafeBytes { (input) in
                    try output.withUnsafeMutableBytes { (out) in try receiver.openMessage(input, into: out) }
                }
            }
            #expect(throws: SecureChannelError.decryption) { _ = try open(message) }
            // The genuine message would open now (same nonce): it must not, the channel has failed.
            #expect(throws: SecureChannelError.decryption, "failed stays failed") { _ = try open(genuine) }
            #expect(throws: SecureChannelError.decryption) {
                _ = try [UInt8]([1]).withUnsafeBytes { (input) in
                    try output.withUnsafeMutableBytes { (out) in try receiver.sealFrame(input, into: out) }
                }
            }
        }
        // Replay and reordering.
        do {
            var (sender, receiver) = try establishedChannels(B.self, cipher)
            let first = try sender.seal([1])
            #expect(receiver.receive(first) == [.deliver([1])])
            #expect(receiver.receive(first) == [.fail(.decryption)], "replay")
            var (sender2, receiver2) = try establishedChannels(B.self, cipher)
            _ = try sender2.seal([1])
            #expect(receiver2.receive(try sender2.seal([2])) == [.fail(.decryption)], "reordered: the second before the first")
        }
        // Truncation: a frame cut short and the stream ending; a frame shorter than a tag.
        do {
            var (sender, receiver) = try establishedChannels(B.self, cipher)
            let frame = try sender.seal(Array("cut".utf8))
            #expect(receiver.receive(frame.dropLast(3)) == [])
            #expect(receiver.endOfStream() == [.fail(.framing(.truncated(expected: frame.count, available: frame.count - 3)))])
            var (_, receiver2) = try establishedChannels(B.self, cipher)
            #expect(receiver2.receive(try Framing.frame([1, 2, 3])) == [.fail(.decryption)])
        }
        // Oversized: a plaintext over 65519 bytes cannot be sealed; a zero-length frame is refused.
        do {
            var (sender, receiver) = try establishedChannels(B.self, cipher)
            #expect(throws: (any Error).self) { _ = try sender.seal([UInt8](repeating: 0, count: 65520)) }
            #expect(receiver.receive(try sender.seal([UInt8](repeating: 7, count: 65519))).first == .deliver([UInt8](repeating: 7, count: 65519)))
            #expect(receiver.receive([0, 0]) == [.fail(.framing(.zeroLength))])
        }
    }
}

private func runBadOpenings<B: CryptoBackend>(_: B.Type) throws {
    let server = try B.generateX25519KeyPair()
    func opening(_ hello: [UInt8]) -> [SecureChannel<B>.Action] {
        var responder = SecureChannel<B>(responderWith: server, allowed: [.chaChaPoly])
        return responder.receive(hello)
    }
    #expect(opening(try Framing.frame(Array("garbage".utf8))).last == .fail(.badHello("the first frame is not a HELLO message")))
    #expect(opening(try Framing.frame(ControlMessage.hello(.init(version: 2, noise: "Noise_IK_25519_ChaChaPoly_SHA256")).encoded())).last
            == .fail(.badHello("version 2 is not supported")))
    let refusal = opening(try Framing.frame(ControlMessage.hello(.init(noise: "Noise_IK_25519_AESGCM_SHA256")).encoded()))
    #expect(refusal.last == .fail(.cipherNotAllowed("Noise_IK_25519_AESGCM_SHA256")), "a cipher the responder does not allow")
    // The responder says why, in plaintext, and the initiator reads it instead of message 2.
    var (initiator, _) = try SecureChannel<B>.initiator(cipher: .aesGCM, localStatic: try B.generateX25519KeyPair(),
                                                        remoteStatic: server.publicKey, payload: [])
    guard case let .send(said)? = refusal.first else { Issue.record("no refusal sent"); return }
    #expect(initiator.receive(said) == [.fail(.refused(.cipherNotAllowed(allowed: [.chaChaPoly])))])
    var (closedOn, _) = try SecureChannel<B>.initiator(cipher: .aesGCM, localStatic: try B.generateX25519KeyPair(),
                                                       remoteStatic: server.publicKey, payload: [])
    #expect(closedOn.endOfStream() == [.fail(.closedDuringHandshake)], "a silent close during the handshake is told apart")
    // A handshake for another server key, and a HELLO changed in flight (the prologue binds it).
    let (_, wrongKey) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: try B.generateX25519KeyPair(),
                                                      remoteStatic: try B.generateX25519KeyPair().publicKey, payload: [])
    #expect(opening(wrongKey).last == .fail(.handshake(.decryptionFailed)))
    var (_, good) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: try B.generateX25519KeyPair(),
                                                  remoteStatic: server.publicKey, payload: [])
    let helloLength = Int(good[0]) << 8 | Int(good[1])
    let hello = Array(good[2..<(2 + helloLength)])
    good.replaceSubrange(0..<(2 + helloLength), with: try Framing.frame(Array(hello.dropLast()) + Array(" }".utf8)))
    #expect(opening(good).last == .fail(.handshake(.decryptionFailed)))
    // Random garbage never crashes.
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<300 {
        var responder = SecureChannel<B>(responderWith: server, allowed: CipherKind.allCases)
        _ = responder.receive((0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        _ = responder.endOfStream()
    }
}

private func runWrongEvents<B: CryptoBackend>(_: B.Type) throws {
    let world = try World<B>()
    let ali = try world.add("ali", signUp: false)  // unknown: refused, stays idle
    #expect(ali.phase == .idle)
    #expect(ali.client.requestChat(with: UserID("bianca")!) == [.rejected("sign in first")])
    #expect(ali.client.list() == [.rejected("sign in first")])
    #expect(ali.client.chatEnded(with: UserID("bianca")!) == [])
    #expect(ali.client.callFailed(to: UserID("bianca")!) == [])
    let bianca = try world.add("bianca")
    #expect(bianca.client.requestChat(with: bianca.user) == [.rejected("you cannot call yourself")])

    // A responder's answer before any handshake, or twice, is an error, not a crash.
    let now = Instant(nanoseconds: 1)
    var idle = PeerConnection<B>(answeringWith: try B.generateX25519KeyPair(), allowed: CipherKind.allCases,
                                 origin: .accepted(from: IPAddress("127.0.0.1")!), now: now)
    #expect(idle.answer(refusal: nil, now: now) == [])
    #expect(idle.sendText("nobody is listening", now: now) == [])
    #expect(idle.check(nil, pinnedKey: nil, busy: false) == .notVerified)
    var channel = SecureChannel<B>(responderWith: try B.generateX25519KeyPair(), allowed: CipherKind.allCases)
    #expect(channel.respond(payload: []) == [.fail(.unexpectedFrame("no handshake to answer"))])
    #expect(channel.receive([0, 1, 2]) == [.fail(.unexpectedFrame("no handshake to answer"))], "failed stays failed")

    // The server refuses messages only it may send, closing that connection and no other.
    var (raw, hello) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: try B.generateX25519KeyPair(),
                                                      remoteStatic: world.server.identity.publicKey, payload: [])
    world.server.accept(50, address: "127.0.0.1")
    world.server.receive(50, hello)
    _ = raw.receive(world.server.outbox.removeValue(forKey: 50)!)
    world.server.receive(50, try raw.seal(ControlMessage.presence(.init(userID: bianca.user, status: .online)).encoded()))
    #expect(world.server.closed[50] == .protocolError("PRESENCE is not a request a client may send"))
    #expect(world.server.closed[bianca.connection] == nil)
    world.handle(bianca, bianca.client.list())
    world.pump()
    #expect(bianca.shown.last == .users([bianca.user]), "bianca's session goes on")
}

private func runServerDefences<B: CryptoBackend>(_: B.Type) throws {
    let identity = try B.generateX25519KeyPair()
    let configuration = ServerSession<B>.Configuration(signInDeadline: .seconds(10), idleTimeout: .seconds(60), probeInterval: .seconds(1000))
    let start = Instant(nanoseconds: 1_000_000_000)

    // Silent client: closed at the deadline, not before.
    var silent = ServerSession<B>(configuration: configuration, localStatic: identity, acceptedAt: start)
    #expect(silent.tick(now: start.advanced(by: .seconds(9))) == [])
    #expect(silent.tick(now: start.advanced(by: .seconds(10))) == [.close(.noSignInBeforeDeadline)])

    // Handshake done but no sign-in: closed at the deadline too.
    var lingering = ServerSession<B>(configuration: configuration, localStatic: identity, acceptedAt: start)
    var (client, hello) = try SecureChannel<B>.initiator(cipher: .aesGCM, localStatic: try B.generateX25519KeyPair(),
                                                         remoteStatic: identity.publicKey, payload: [])
    guard case let .send(message2)? = lingering.receive(hello, now: start).first else { Issue.record("no handshake reply"); return }
    _ = client.receive(message2)
    #expect(lingering.tick(now: start.advanced(by: .seconds(11))) == [.close(.noSignInBeforeDeadline)])

    // Bad JSON, a mistyped field, an oversized message: ERROR then close.
    // A frame over what a control message can be is refused from its header: nothing is buffered for it.
    do {
        var session = ServerSession<B>(configuration: configuration, localStatic: identity, acceptedAt: start)
        var (peer, opening) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: try B.generateX25519KeyPair(),
                                                             remoteStatic: identity.publicKey, payload: [])
        guard case let .send(reply)? = session.receive(opening, now: start).first else { return }
        _ = peer.receive(reply)
        let oversized = try peer.seal([UInt8](repeating: 0x20, count: 5000))
        #expect(session.receive(oversized.prefix(2), now: start) == [.close(.channelFailed(.framing(.payloadTooLarge(5016))))])
    }
    for (payload, reason) in [(Array("{nope".utf8), "invalid JSON at byte 1: expected a key"),
                              (Array(#"{"msgtype":"LOOKUPREQ","userid":1,"lookup":"b"}"#.utf8), "field \"userid\" must be a string")] {
        var session = ServerSession<B>(configuration: configuration, localStatic: identity, acceptedAt: start)
        var (peer, opening) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: try B.generateX25519KeyPair(),
                                                             remoteStatic: identity.publicKey, payload: [])
        guard case let .send(reply)? = session.receive(opening, now: start).first else { continue }
        _ = peer.receive(reply)
        let actions = session.receive(try peer.seal(payload), now: start)
        guard case let .send(errorFrame)? = actions.first, case let .deliver(plaintext)? = peer.receive(errorFrame).first else {
            Issue.record("no ERROR for \(reason)")
            continue
        }
        #expect(try ControlMessage.decode(plaintext) == .error(reason: reason))
        #expect(actions.last == .close(.protocolError(reason)))
        #expect(session.isClosed)
    }

    // A malformed passcode digest is refused without asking the store.
    var session = ServerSession<B>(configuration: configuration, localStatic: identity, acceptedAt: start)
    let aliKey = try B.generateX25519KeyPair()
    var (peer, opening) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: aliKey,
                                                         remoteStatic: identity.publicKey, payload: [])
    guard case let .send(reply)? = session.receive(opening, now: start).first else { return }
    _ = peer.receive(reply)
    let ali = UserID("ali")!
    let malformed = session.receive(try peer.seal(ControlMessage.authRequest(.init(userID: ali, passcode: "0023dc6b", port: 1)).encoded()), now: start)
    guard malformed.count == 1, case let .send(refusal) = malformed[0], case let .deliver(plaintext)? = peer.receive(refusal).first else {
        Issue.record("expected only a reply, got \(malformed)")
        return
    }
    #expect(try ControlMessage.decode(plaintext) == .authReply(.init(userID: ali, status: .refused, reason: "malformed passcode digest")))

    // Signed in: the idle timeout counts from the last message, and KEEPALIVE resets it.
    let digest = String(repeating: "d", count: 64)
    let asked = session.receive(try peer.seal(ControlMessage.authRequest(.init(userID: ali, passcode: digest, port: 1)).encoded()), now: start)
    #expect(asked == [.verifySignIn(.init(userID: ali, passcode: digest, port: 1, addresses: [], identityKey: aliKey.publicKey))])
    _ = session.signInAnswered(.granted(previousKey: nil))
    #expect(session.tick(now: start.advanced(by: .seconds(30))) == [], "signed in: the sign-in deadline no longer applies")
    #expect(session.receive(try peer.seal(ControlMessage.keepAlive.encoded()), now: start.advanced(by: .seconds(50))) == [])
    #expect(session.tick(now: start.advanced(by: .seconds(100))) == [], "KEEPALIVE at 50 s moved the timeout to 110 s")
    #expect(session.tick(now: start.advanced(by: .seconds(110))) == [.signedOut(ali), .close(.idle)])
}
