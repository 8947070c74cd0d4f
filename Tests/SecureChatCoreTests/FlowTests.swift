import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import Testing

/// Every flow of PROTOCOL.md §4–5 with the real state machines pumped into each other, no sockets,
/// on both backends.
@Suite("Flows")
struct FlowTests {
    @Test("sign-up, sign-in granted and refused", arguments: BackendName.allCases)
    func signUpAndSignIn(backend: BackendName) throws { try runSignUpAndSignIn(backend.implementation) }

    @Test("lookup found, not found, before sign-in, for another user", arguments: BackendName.allCases)
    func lookups(backend: BackendName) throws { try runLookups(backend.implementation) }

    @Test("call accepted, 35 lines each way across rekeys, hang-up from either side, call again", arguments: BackendName.allCases)
    func chat(backend: BackendName) throws { try runChat(backend.implementation) }

    @Test("the callee refuses for each reason", arguments: BackendName.allCases, CallRefusal.allCases)
    func refusals(backend: BackendName, refusal: CallRefusal) throws {
        try runRefusals(backend.implementation, refusal.rawValue)
    }

    @Test("a changed key for the callee is refused before dialling", arguments: BackendName.allCases)
    func callerPinning(backend: BackendName) throws { try runCallerPinning(backend.implementation) }
}

private func runSignUpAndSignIn<B: CryptoBackend>(_: B.Type) throws {
    let world = try World<B>()
    let ali = try world.add("ali")
    #expect(ali.shown == [.signedUp, .signedIn])
    #expect(ali.phase == .loggedIn)
    #expect(world.server.online[ali.user]?.key == ali.identity.publicKey, "the server bound the handshake key")

    let again = try world.add("ali", signUp: true)
    #expect(again.shown == [.signUpRefused(status: .exists, reason: "taken")])

    let wrong = try world.add("ali", passcode: String(repeating: "b", count: 64), signUp: false)
    #expect(wrong.shown == [.signInRefused(reason: "wrong user ID or passcode")])
    #expect(wrong.phase == .idle)

    let unknown = try world.add("nobody", signUp: false)
    #expect(unknown.shown == [.signInRefused(reason: "wrong user ID or passcode")], "unknown users get the same refusal")

    let second = try world.add("ali", signUp: false)
    #expect(second.shown == [.signedIn])
    #expect(world.server.closed[ali.connection] == "replaced by a new sign-in")
    #expect(world.server.online[ali.user]?.connection == second.connection)

    // LOGOUTREQ: the server forgets ali, closes, and tells the others.
    let bianca = try world.add("bianca")
    second.absorb(second.client.signOut())
    world.pump()
    #expect(second.phase == .idle)
    #expect(world.server.closed[second.connection] == "signed out")
    #expect(world.server.online[ali.user] == nil)
    #expect(bianca.shown.last == .presence(.init(userID: ali.user, status: .offline)))
}

private func runLookups<B: CryptoBackend>(_: B.Type) throws {
    let world = try World<B>()
    let ali = try world.add("ali")
    try world.add("bianca")
    world.requestChat(ali, "carol")
    #expect(ali.shown.last == .notOnline(UserID("carol")!))
    #expect(ali.phase == .loggedIn)

    // Found: the lookup gives bianca's address, port and key, and ali dials.
    world.requestChat(ali, "bianca")
    guard case let .dial(user, address, port, key)? = ali.shown.first(where: { if case .dial = $0 { true } else { false } }) else {
        Issue.record("no dial after a successful lookup")
        return
    }
    #expect(user == UserID("bianca")! && address == "127.0.0.1" && port == 7002 && key == world.peer(UserID("bianca")!).identity.publicKey)

    // Before sign-in, and for another user: NOTFOUND, on a raw channel speaking the wire format.
    var (channel, hello) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: try B.generateX25519KeyPair(),
                                                          remoteStatic: world.server.identity.publicKey, payload: [])
    world.server.accept(99, address: "127.0.0.1")
    world.server.receive(99, hello)
    _ = channel.receive(world.server.outbox.removeValue(forKey: 99)!)
    func ask(_ message: ControlMessage) throws -> ControlMessage? {
        world.server.receive(99, try channel.seal(message.encoded()))
        guard let bytes = world.server.outbox.removeValue(forKey: 99), case let .deliver(reply)? = channel.receive(bytes).first else { return nil }
        return try ControlMessage.decode(reply)
    }
    #expect(try ask(.lookupRequest(.init(userID: UserID("ali")!, lookup: UserID("bianca")!))) == .lookupReply(.notFound))
    #expect(try ask(.signUpRequest(.init(userID: UserID("dora")!, passcode: String(repeating: "c", count: 64))))
            == .signUpReply(.init(status: .created, reason: "")))
    #expect(try ask(.authRequest(.init(userID: UserID("dora")!, passcode: String(repeating: "c", count: 64), port: 0)))
            == .authReply(.init(userID: UserID("dora")!, status: .granted)))
    #expect(try ask(.lookupRequest(.init(userID: UserID("ali")!, lookup: UserID("bianca")!))) == .lookupReply(.notFound),
            "asking as another user")
    guard case let .lookupReply(reply)? = try ask(.lookupRequest(.init(userID: UserID("dora")!, lookup: UserID("bianca")!))) else {
        Issue.record("no lookup reply")
        return
    }
    #expect(reply.found?.answer == UserID("bianca")!)
    #expect(try ask(.listRequest(userID: UserID("dora")!)) == .listReply(users: [UserID("ali")!, UserID("bianca")!, UserID("dora")!]))
}

private func runChat<B: CryptoBackend>(_: B.Type) throws {
    let world = try World<B>()
    let ali = try world.add("ali"), bianca = try world.add("bianca")
    for round in 0..<2 {
        world.requestChat(ali, "bianca")
        #expect(ali.phase == .chatting(bianca.user), "round \(round)")
        #expect(bianca.phase == .chatting(ali.user), "round \(round)")
        #expect(bianca.shown.contains(.chatStarted(ali.user)) && ali.shown.contains(.chatStarted(bianca.user)))
        if round == 0 {
            #expect(ali.shown.contains(.presence(.init(userID: bianca.user, status: .online))), "PRESENCE reached ali")
        }
        for line in 0..<35 {
            world.say(ali, "ali line \(line) ✓")
            world.say(bianca, "bianca line \(line)")
        }
        let heardByBianca = bianca.peerEvents.compactMap { if case let .received(text) = $0 { text } else { nil } }
        let heardByAli = ali.peerEvents.compactMap { if case let .received(text) = $0 { text } else { nil } }
        #expect(heardByBianca == (0..<35).map { "ali line \($0) ✓" })
        #expect(heardByAli == (0..<35).map { "bianca line \($0)" })
        // Round 0: ali hangs up; round 1: bianca does. Both see Hang up and are back to LoggedIn.
        world.hangUp(round == 0 ? ali : bianca)
        #expect(ali.shown.last == .hangUp(bianca.user), "round \(round)")
        #expect(bianca.shown.last == .hangUp(ali.user), "round \(round)")
        #expect(ali.phase == .loggedIn && bianca.phase == .loggedIn)
        ali.peerEvents = []
        bianca.peerEvents = []
    }
}

/// A caller and a callee pumped into each other; the callee's lookup is answered with `reply`.
private func runRefusals<B: CryptoBackend>(_: B.Type, _ reason: String) throws {
    let ali = try B.generateX25519KeyPair(), bianca = try B.generateX25519KeyPair(), other = try B.generateX25519KeyPair()
    let aliID = UserID("ali")!
    var (caller, bytes) = try PeerConnection<B>.call(from: aliID, identity: ali, to: UserID("bianca")!, calleeKey: bianca.publicKey, cipher: .chaChaPoly)
    var callee = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, sourceAddress: "10.0.0.5")
    #expect(callee.receive(bytes) == [.lookUp(aliID)])
    var found = ControlMessage.LookupReply.Found(answer: aliID, address: "10.0.0.5", encryptionKey: Base64.encode(ali.publicKey.bytes), port: 7001)
    var pinned: X25519PublicKey?, busy = false
    var reply = ControlMessage.LookupReply(found: found)
    switch reason {
    case CallRefusal.notSignedIn.rawValue: reply = .notFound
    case CallRefusal.addressMismatch.rawValue: found.address = "10.0.0.6"; reply = .init(found: found)
    case CallRefusal.keyMismatch.rawValue: found.encryptionKey = Base64.encode(other.publicKey.bytes); reply = .init(found: found)
    case CallRefusal.pinnedKeyChanged.rawValue: pinned = other.publicKey
    case CallRefusal.busy.rawValue: busy = true
    default: break  // declined: every check passes and the user says no
    }
    let refusal = callee.check(reply, pinnedKey: pinned, busy: busy)
    #expect(refusal?.rawValue == (reason == CallRefusal.declined.rawValue ? nil : reason))
    let answer = refusal == nil ? callee.answer(refusal: .declined) : callee.lookupAnswered(reply, pinnedKey: pinned, busy: busy)
    #expect(answer.contains(.refused(reason: reason)))
    guard case let .send(message2)? = answer.first else { Issue.record("no CONNECTREPLY sent"); return }
    #expect(caller.receive(message2) == [.refused(reason: reason), .close(reason: "refused")])
    #expect(!caller.isChatting && !callee.isChatting)
    // And the same call with everything right is accepted.
    (caller, bytes) = try PeerConnection<B>.call(from: aliID, identity: ali, to: UserID("bianca")!, calleeKey: bianca.publicKey, cipher: .aesGCM)
    callee = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, sourceAddress: "10.0.0.5")
    _ = callee.receive(bytes)
    let accepted = callee.lookupAnswered(.init(found: .init(answer: aliID, address: "10.0.0.5", encryptionKey: Base64.encode(ali.publicKey.bytes), port: 7001)),
                                         pinnedKey: ali.publicKey, busy: false)
    #expect(accepted.last == .connected(aliID))
    guard case let .send(message2Accepted)? = accepted.first else { return }
    #expect(caller.receive(message2Accepted) == [.connected(UserID("bianca")!)])
}

private func runCallerPinning<B: CryptoBackend>(_: B.Type) throws {
    let world = try World<B>()
    let ali = try world.add("ali")
    try world.add("bianca")
    world.requestChat(ali, "bianca")
    #expect(ali.shown.contains { if case .pinned = $0 { true } else { false } }, "first key seen is pinned")
    world.hangUp(ali)
    // Bianca comes back with a new key (a new device): ali's next call is refused, naming both keys.
    let newBianca = try world.add("bianca", signUp: false)
    world.requestChat(ali, "bianca")
    #expect(ali.shown.last == .pinnedKeyChanged(user: newBianca.user, pinned: world.peers[1].identity.publicKey, offered: newBianca.identity.publicKey))
    #expect(ali.phase == .loggedIn)
    ali.client.trust(newBianca.user)
    world.requestChat(ali, "bianca")
    #expect(ali.phase == .chatting(newBianca.user), "after /trust the new key is accepted")
}
