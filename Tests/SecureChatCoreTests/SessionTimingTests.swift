import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import SecureChatOpenSSL
import Testing

typealias B = OpenSSLBackend

/// A server session past the handshake, and the client channel that talks to it.
private func signedInSession(_ configuration: ServerSessionConfiguration = .init(), extensions: [String] = [],
                             now: Instant) throws -> (ServerSession<B>, SecureChannel<B>) {
    let identity = try B.generateX25519KeyPair()
    var session = ServerSession<B>(configuration: configuration, localStatic: identity, acceptedAt: now)
    var (client, hello) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: try B.generateX25519KeyPair(),
                                                         remoteStatic: identity.publicKey, payload: [])
    guard case let .send(reply)? = session.receive(hello, now: now).first else { throw SessionError.noHandshake }
    _ = client.receive(reply)
    let digest = String(repeating: "d", count: 64)
    _ = session.receive(try client.seal(ControlMessage.authRequest(.init(userID: UserID("ali")!, passcode: digest, port: 1,
                                                                          extensions: extensions)).encoded()), now: now)
    guard case let .send(granted)? = session.signInAnswered(.granted(previousKey: nil)).first else { throw SessionError.noHandshake }
    _ = client.receive(granted)
    return (session, client)
}

private enum SessionError: Error { case noHandshake }

private func messages(_ actions: [ServerSession<B>.Action], _ client: inout SecureChannel<B>) throws -> [ControlMessage] {
    try actions.flatMap { action -> [ControlMessage] in
        guard case let .send(bytes) = action else { return [] }
        return try client.receive(bytes).compactMap { if case let .deliver(plaintext) = $0 { try ControlMessage.decode(plaintext) } else { nil } }
    }
}

@Suite("Server session: probes, pages, bursts, first frames")
struct ServerSessionTests {
    let t0 = Instant(nanoseconds: 1_000_000_000)

    @Test("a peer that answers keep-alives and then falls silent is closed within probe interval + timeout")
    func probes() throws {
        let configuration = ServerSessionConfiguration(probeInterval: .seconds(20), probeTimeout: .seconds(40))
        var (session, client) = try signedInSession(configuration, extensions: ["keepalive"], now: t0)
        #expect(session.nextDeadline == t0.advanced(by: .seconds(20)))
        #expect(try messages(session.tick(now: t0.advanced(by: .seconds(20))), &client) == [.keepAlive], "the probe")
        // Answered: the clock starts again.
        _ = session.receive(try client.seal(ControlMessage.keepAlive.encoded()), now: t0.advanced(by: .seconds(21)))
        #expect(session.nextDeadline == t0.advanced(by: .seconds(41)))
        _ = session.tick(now: t0.advanced(by: .seconds(41)))
        #expect(session.tick(now: t0.advanced(by: .seconds(80))) == [])
        #expect(session.tick(now: t0.advanced(by: .seconds(81))) == [.signedOut(UserID("ali")!), .close(.stoppedAnswering)])
    }

    @Test("a client that never said it answers keep-alives keeps the 30-minute idle rule")
    func thirdPartyClients() throws {
        var (session, client) = try signedInSession(now: t0)
        #expect(try messages(session.tick(now: t0.advanced(by: .seconds(20))), &client) == [.keepAlive])
        #expect(session.tick(now: t0.advanced(by: .seconds(120))) == [])
        #expect(session.tick(now: t0.advanced(by: .seconds(1800))).last == .close(.idle))
    }

    @Test("17 requests in one read are fine: only requests that really wait count as in flight")
    func burst() throws {
        var (session, client) = try signedInSession(now: t0)
        var burst = [UInt8]()
        for _ in 0..<17 { burst += try client.seal(ControlMessage.keepAlive.encoded()) }
        burst += try client.seal(ControlMessage.listRequest(userID: UserID("ali")!).encoded())
        for _ in 0..<16 { burst += try client.seal(ControlMessage.lookupRequest(.init(userID: UserID("ali")!, lookup: UserID("ali")!)).encoded()) }
        #expect(session.receive(burst, now: t0) == [.list], "16 waiting behind one: within the limit")
        var overflow = [UInt8]()
        overflow += try client.seal(ControlMessage.keepAlive.encoded())
        #expect(session.receive(overflow, now: t0).last == .close(.protocolError("too many requests in flight")))
    }

    @Test("a long list is sent in pages, each within the 4096-byte limit: 5,000 users with long IDs")
    func listPages() throws {
        var (session, client) = try signedInSession(now: t0)
        let users = (0..<5000).map { UserID("user-with-a-long-id-\(String(1_000_000 + $0))")! }
        _ = session.receive(try client.seal(ControlMessage.listRequest(userID: UserID("ali")!).encoded()), now: t0)
        let actions = session.listAnswered(users)
        var received = [UserID]()
        var pages = 0
        for case let .send(frame) in actions {
            #expect(frame.count <= 2 + ControlMessage.maximumSize + 16)
            guard case let .deliver(plaintext)? = client.receive(frame).first, case let .listReply(page) = try ControlMessage.decode(plaintext) else {
                Issue.record("not a LISTREPLY")
                return
            }
            received += page.users
            pages += 1
            #expect(page.more == (received.count < users.count))
        }
        #expect(received == users && pages > 30)
    }

    @Test("a first frame longer than a HELLO can be is refused from its header; RELAY hands the connection over")
    func firstFrames() throws {
        let identity = try B.generateX25519KeyPair()
        var session = ServerSession<B>(configuration: .init(), localStatic: identity, acceptedAt: t0)
        #expect(session.receive([0x40, 0x00], now: t0) == [.close(.firstFrameTooLong(16384))], "closed after two bytes")
        var relay = ServerSession<B>(configuration: .init(), localStatic: identity, acceptedAt: t0)
        let frame = try Framing.frame(ControlMessage.relay(token: "dG9rZW4=").encoded())
        #expect(relay.receive(frame + [1, 2, 3], now: t0) == [.relay(token: "dG9rZW4=", pending: [1, 2, 3])])
        #expect(relay.isClosed)
    }

    @Test("a client's wrong server key gets a plaintext refusal it can explain")
    func wrongKeyRefusal() throws {
        var session = ServerSession<B>(configuration: .init(), localStatic: try B.generateX25519KeyPair(), acceptedAt: t0)
        var (client, hello) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: try B.generateX25519KeyPair(),
                                                             remoteStatic: try B.generateX25519KeyPair().publicKey, payload: [])
        let actions = session.receive(hello, now: t0)
        #expect(actions.last == .close(.handshakeFailed(.handshake(.decryptionFailed))))
        guard case let .send(refusal)? = actions.first else { Issue.record("no refusal"); return }
        #expect(client.receive(refusal) == [.fail(.refused(.wrongKey))])
        #expect(ServerCloseReason.handshakeFailed(.handshake(.decryptionFailed)).description
                == "handshake failed: the client may have a wrong server key")
    }
}

@Suite("Peer connection: confirmation, keep-alives, silence")
struct PeerConnectionTimingTests {
    let t0 = Instant(nanoseconds: 1_000_000_000)

    func accepted() throws -> (caller: PeerConnection<B>, callee: PeerConnection<B>, confirmation: [UInt8]) {
        let ali = try B.generateX25519KeyPair(), bianca = try B.generateX25519KeyPair()
        var (caller, bytes) = try PeerConnection<B>.call(from: UserID("ali")!, identity: ali, to: UserID("bianca")!,
                                                         calleeKey: bianca.publicKey, cipher: .chaChaPoly, now: t0)
        var callee = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, origin: .dialled, now: t0)
        _ = callee.receive(bytes, now: t0)
        guard case let .send(message2)? = callee.answer(refusal: nil, now: t0).first,
              case let .send(confirmation)? = caller.receive(message2, now: t0).last else { throw SessionError.noHandshake }
        return (caller, callee, confirmation)
    }

    @Test("a callee that never gets the caller's first record drops the call at the deadline, never showing it")
    func confirmationDeadline() throws {
        var (_, callee, _) = try accepted()
        #expect(callee.holdsCall && !callee.isChatting)
        #expect(callee.nextDeadline == t0.advanced(by: .seconds(10)))
        #expect(callee.tick(now: t0.advanced(by: .seconds(10))) == [.close(.notConfirmed)])
    }

    @Test("a chat sends KEEPALIVE after 10 s of its own silence and ends after 35 s of the other's")
    func keepAlivesAndSilence() throws {
        var (caller, callee, confirmation) = try accepted()
        #expect(callee.receive(confirmation, now: t0) == [.connected(UserID("ali")!)])
        #expect(caller.nextDeadline == t0.advanced(by: .seconds(10)))
        guard case let .send(keepAlive)? = caller.tick(now: t0.advanced(by: .seconds(10))).first else {
            Issue.record("no keep-alive")
            return
        }
        #expect(callee.receive(keepAlive, now: t0.advanced(by: .seconds(10))) == [], "a keep-alive shows nothing")
        // The callee heard at 10 s: it gives up at 45 s, not before.
        _ = callee.tick(now: t0.advanced(by: .seconds(20)))
        #expect(callee.tick(now: t0.advanced(by: .seconds(44))).allSatisfy { if case .send = $0 { true } else { false } })
        #expect(callee.tick(now: t0.advanced(by: .seconds(45))) == [.close(.silent(seconds: 35))])
    }
}
