import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import Testing

/// Every flow of PROTOCOL.md §4–5 and §9's signalling with the real state machines pumped into
/// each other, no sockets, on both backends.
@Suite("Flows")
struct FlowTests {
    @Test("sign-up, sign-in granted and refused, a new device, logout", arguments: BackendName.allCases)
    func signUpAndSignIn(backend: BackendName) throws { try runSignUpAndSignIn(backend.implementation) }

    @Test("lookup found, not found, before sign-in, for another user", arguments: BackendName.allCases)
    func lookups(backend: BackendName) throws { try runLookups(backend.implementation) }

    @Test("call accepted, 35 lines each way across rekeys, hang-up from either side, call again", arguments: BackendName.allCases)
    func chat(backend: BackendName) throws { try runChat(backend.implementation) }

    @Test("the callee refuses for each reason", arguments: BackendName.allCases, CallRefusal.allCases)
    func refusals(backend: BackendName, refusal: CallRefusal) throws {
        try runRefusals(backend.implementation, refusal)
    }

    @Test("a changed key for the callee is refused before dialling, and /trust takes exactly the compared one",
          arguments: BackendName.allCases)
    func callerPinning(backend: BackendName) throws { try runCallerPinning(backend.implementation) }

    @Test("a passcode change checks the current passcode first", arguments: BackendName.allCases)
    func passcodeChange(backend: BackendName) throws { try runPasscodeChange(backend.implementation) }

    @Test("ephemeral keys made ahead go out in messages 1 and 2, only when written, the call connects, one with its DH to the caller's key computed saves the answer a DH, and a key serves one handshake only",
          arguments: BackendName.allCases)
    func ephemeralsMadeAhead(backend: BackendName) throws { try runEphemeralsMadeAhead(backend.implementation) }

    @Test("a message 1 written ahead connects the call, and its answer time starts when a call takes it",
          arguments: BackendName.allCases)
    func callWrittenAhead(backend: BackendName) throws { try runCallWrittenAhead(backend.implementation) }
}

private func runCallWrittenAhead<B: CryptoBackend>(_: B.Type) throws {
    let ali = try B.generateX25519KeyPair(), bianca = try B.generateX25519KeyPair()
    let aliID = UserID("ali")!, biancaID = UserID("bianca")!
    let prepared = try PeerConnection<B>.prepareCall(from: aliID, identity: ali, to: biancaID, calleeKey: bianca.publicKey,
                                                     cipher: .chaChaPoly)
    #expect(prepared.callee == biancaID && prepared.calleeKey == bianca.publicKey)
    let taken = Instant(nanoseconds: 5_000_000_000)
    var (caller, bytes) = PeerConnection<B>.call(prepared, now: taken)
    #expect(caller.nextDeadline == taken.advanced(by: PeerTimeouts().answer))
    var callee = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, origin: .dialled, now: taken)
    #expect(callee.receive(bytes, now: taken) == [.checkCaller(user: aliID, key: ali.publicKey)])
    guard case let .send(message2)? = callee.answer(refusal: nil, now: taken).first else { Issue.record("no message 2"); return }
    let callerSide = caller.receive(message2, now: taken)
    #expect(callerSide.first == .connected(biancaID))
    guard case let .send(confirmation)? = callerSide.last else { Issue.record("no first record from the caller"); return }
    #expect(callee.receive(confirmation, now: taken) == [.connected(aliID)])
}

private func runEphemeralsMadeAhead<B: CryptoBackend>(_: B.Type) throws {
    let ali = try B.generateX25519KeyPair(), bianca = try B.generateX25519KeyPair()
    let aliAhead = try B.generateEphemeralX25519KeyPair(), biancaAhead = try B.generateEphemeralX25519KeyPair()
    let aliID = UserID("ali")!, now = Instant(nanoseconds: 1)
    var (caller, bytes) = try PeerConnection<B>.call(from: aliID, identity: ali, to: UserID("bianca")!, calleeKey: bianca.publicKey,
                                                     cipher: .chaChaPoly, ephemeral: aliAhead, now: now)
    #expect(bytes.firstRange(of: aliAhead.publicKey.bytes) != nil, "message 1 sends the key made ahead")
    var callee = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, origin: .dialled, now: now)
    // A connection with nothing to answer yet (a quiet dial) leaves the spare key for the next.
    var quiet = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, origin: .dialled, now: now)
    var taken = false
    #expect(quiet.answer(refusal: .notVerified, ephemeral: { taken = true; return biancaAhead }(), now: now) == [])
    #expect(!taken, "the spare key is taken only when message 2 is written")
    #expect(callee.receive(bytes, now: now) == [.checkCaller(user: aliID, key: ali.publicKey)])
    let answer = callee.answer(refusal: nil, ephemeral: biancaAhead, now: now)
    guard case let .send(message2)? = answer.first else { Issue.record("no message 2"); return }
    #expect(message2.firstRange(of: biancaAhead.publicKey.bytes) != nil, "message 2 sends the key made ahead")
    let callerSide = caller.receive(message2, now: now)
    #expect(callerSide.first == .connected(UserID("bianca")!))
    guard case let .send(confirmation)? = callerSide.last else { Issue.record("no first record from the caller"); return }
    #expect(callee.receive(confirmation, now: now) == [.connected(aliID)])

    // A spare with its DH to the caller's key computed ahead, as a callee makes it on CALLOFFER:
    // the answer then does one DH (`ee`) instead of two; one made for another key, two again.
    typealias Counted = CountingBackend<B>
    let (_, again) = try PeerConnection<Counted>.call(from: aliID, identity: ali, to: UserID("bianca")!, calleeKey: bianca.publicKey,
                                                      cipher: .chaChaPoly, now: now)
    let spare = { try B.generateEphemeralX25519KeyPair() }
    for (ephemeral, expected) in [(try spare(), 2), (try B.computingAhead(try spare(), with: ali.publicKey), 1),
                                  (try B.computingAhead(try spare(), with: bianca.publicKey), 2)] {
        var answering = PeerConnection<Counted>(answeringWith: bianca, allowed: CipherKind.allCases, origin: .dialled, now: now)
        #expect(answering.receive(again, now: now) == [.checkCaller(user: aliID, key: ali.publicKey)])
        let (actions, count) = countingDiffieHellman { answering.answer(refusal: nil, ephemeral: ephemeral, now: now) }
        guard case .send? = actions.first else { Issue.record("no message 2"); continue }
        #expect(count == expected)
    }

    // A handshake that has its ephemeral key, given or sent, takes no other.
    let noise = NoiseProtocol.ik(.chaChaPoly)
    var given = try HandshakeState<B>(protocol: noise, role: .initiator, prologue: [], localStatic: ali,
                                      remoteStatic: bianca.publicKey, ephemeral: aliAhead)
    #expect(throws: NoiseError.ephemeralAlreadyChosen) { try given.useEphemeral(biancaAhead) }
    var sent = try HandshakeState<B>(protocol: noise, role: .initiator, prologue: [], localStatic: ali, remoteStatic: bianca.publicKey)
    _ = try sent.writeMessage(payload: [])
    #expect(throws: NoiseError.ephemeralAlreadyChosen) { try sent.useEphemeral(biancaAhead) }
}

private func runSignUpAndSignIn<B: CryptoBackend>(_: B.Type) throws {
    let world = try World<B>()
    let ali = try world.add("ali")
    #expect(ali.shown == [.signedUp, .signedIn(previousKey: nil)])
    #expect(ali.phase == .loggedIn)
    #expect(world.server.online[ali.user]?.key == ali.identity.publicKey, "the server bound the handshake key")
    #expect(ali.client.serverSetsUpCalls, "a §9 server says it sets up calls")

    // --signup for an existing account signs in to it when the passcode is right.
    let again = try world.add("ali", signUp: true)
    #expect(again.shown == [.accountExists, .signedIn(previousKey: ali.identity.publicKey)], "a new key: the old one is named")

    let wrong = try world.add("ali", passcode: String(repeating: "b", count: 64), signUp: false)
    #expect(wrong.shown == [.signInRefused(.wrongPasscode)])
    #expect(wrong.phase == .idle)

    let unknown = try world.add("nobody", signUp: false)
    #expect(unknown.shown == [.signInRefused(.wrongPasscode)], "unknown users get the same refusal")

    let second = try world.add("ali", signUp: false, identity: again.identity)
    #expect(second.shown == [.signedIn(previousKey: nil)])
    #expect(world.server.closed[again.connection] == .replaced)
    #expect(again.shown.last == .fail(.replaced), "the replaced device is told, and does not fight back")
    #expect(world.server.online[ali.user]?.connection == second.connection)

    // LOGOUTREQ: the server forgets ali, closes, and tells the others.
    let bianca = try world.add("bianca")
    second.absorb(second.client.signOut())
    world.pump()
    #expect(second.phase == .idle)
    #expect(world.server.closed[second.connection] == .signedOut)
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

    // Found: CALLREPLY gives bianca's candidates and key, and the call starts.
    world.requestChat(ali, "bianca")
    guard case let .startCall(plan)? = ali.shown.first(where: { if case .startCall = $0 { true } else { false } }) else {
        Issue.record("no call started after CALLREPLY")
        return
    }
    #expect(plan.candidates == [Endpoint("127.0.0.1:7002")!] && plan.key == world.peer(UserID("bianca")!).identity.publicKey)
    #expect(plan.relayToken.isEmpty && plan.relayRefusal == RelayBook.Refusal.disabled.rawValue)

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
    let dora = UserID("dora")!
    #expect(try ask(.lookupRequest(.init(userID: UserID("ali")!, lookup: UserID("bianca")!))) == .lookupReply(.notFound))
    #expect(try ask(.callRequest(.init(userID: dora, callee: UserID("bianca")!))) == .callReply(.init(status: .notFound, reason: "sign in first")))
    #expect(try ask(.signUpRequest(.init(userID: dora, passcode: String(repeating: "c", count: 64))))
            == .signUpReply(.init(status: .created, reason: "")))
    guard case let .authReply(granted)? = try ask(.authRequest(.init(userID: dora, passcode: String(repeating: "c", count: 64), port: 0))) else {
        Issue.record("no AUTHREPLY")
        return
    }
    #expect(granted.status == .granted && granted.extensions.contains("calls") && granted.extensions.contains("listpages"))
    #expect(try ask(.lookupRequest(.init(userID: UserID("ali")!, lookup: UserID("bianca")!))) == .lookupReply(.notFound),
            "asking as another user")
    guard case let .lookupReply(reply)? = try ask(.lookupRequest(.init(userID: dora, lookup: UserID("bianca")!))) else {
        Issue.record("no lookup reply")
        return
    }
    #expect(reply.found?.answer == UserID("bianca")!)
    #expect(try ask(.listRequest(userID: dora)) == .listReply(.init(users: [UserID("ali")!, UserID("bianca")!, dora])))
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
        // Round 0: ali hangs up; round 1: bianca does. Both see Hang up (who) and are back to LoggedIn.
        let hanger = round == 0 ? ali : bianca, other = round == 0 ? bianca : ali
        world.hangUp(hanger)
        #expect(world.closeReasons(hanger).last == .hungUpHere, "round \(round)")
        #expect(world.closeReasons(other).last == .hungUpThere, "round \(round)")
        #expect(ali.shown.last == .hangUp(bianca.user) && bianca.shown.last == .hangUp(ali.user), "round \(round)")
        #expect(ali.phase == .loggedIn && bianca.phase == .loggedIn)
        ali.peerEvents = []
        bianca.peerEvents = []
    }
}

/// A caller and a callee pumped into each other; the callee checks against `record`.
private func runRefusals<B: CryptoBackend>(_: B.Type, _ refusal: CallRefusal) throws {
    let ali = try B.generateX25519KeyPair(), bianca = try B.generateX25519KeyPair(), other = try B.generateX25519KeyPair()
    let aliID = UserID("ali")!, source = IPAddress("10.0.0.5")!, now = Instant(nanoseconds: 1)
    var (caller, bytes) = try PeerConnection<B>.call(from: aliID, identity: ali, to: UserID("bianca")!, calleeKey: bianca.publicKey,
                                                     cipher: .chaChaPoly, now: now)
    var callee = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, origin: .accepted(from: source), now: now)
    #expect(callee.receive(bytes, now: now) == [.checkCaller(user: aliID, key: ali.publicKey)])
    var record: CallerRecord? = CallerRecord(user: aliID, key: ali.publicKey, addresses: [source])
    var pinned: X25519PublicKey?, busy = false
    switch refusal {
    case .notVerified: record = nil
    case .addressMismatch: record = CallerRecord(user: aliID, key: ali.publicKey, addresses: [IPAddress("10.0.0.6")!])
    case .pinnedKeyChanged: pinned = other.publicKey
    case .busy: busy = true
    case .declined: break  // every check passes and the user says no
    }
    #expect(callee.check(record, pinnedKey: pinned, busy: busy) == (refusal == .declined ? nil : refusal))
    let answer = callee.answer(refusal: refusal, now: now)
    #expect(answer.last == .close(.refusedHere(refusal)))
    guard case let .send(message2)? = answer.first else { Issue.record("no CONNECTREPLY sent"); return }
    #expect(caller.receive(message2, now: now) == [.close(.refusedThere(refusal.rawValue))])
    #expect(!caller.isChatting && !callee.isChatting)
    // A record for someone else, or with another key, is the same refusal as none (nothing leaks).
    let (_, againBytes) = try PeerConnection<B>.call(from: aliID, identity: other, to: UserID("bianca")!, calleeKey: bianca.publicKey,
                                                     cipher: .chaChaPoly, now: now)
    var impostor = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, origin: .accepted(from: source), now: now)
    _ = impostor.receive(againBytes, now: now)
    #expect(impostor.check(CallerRecord(user: aliID, key: ali.publicKey, addresses: [IPAddress("10.9.9.9")!]), pinnedKey: nil, busy: true) == .notVerified,
            "the key check comes first: a caller without ali's key learns neither where ali is nor whether bianca is busy")

    // And the same call with everything right is accepted, once the caller's first record confirms it.
    (caller, bytes) = try PeerConnection<B>.call(from: aliID, identity: ali, to: UserID("bianca")!, calleeKey: bianca.publicKey, cipher: .aesGCM, now: now)
    callee = PeerConnection<B>(answeringWith: bianca, allowed: CipherKind.allCases, origin: .dialled, now: now)
    _ = callee.receive(bytes, now: now)
    #expect(callee.check(CallerRecord(user: aliID, key: ali.publicKey, addresses: []), pinnedKey: ali.publicKey, busy: false) == nil,
            "a connection the callee dialled passes the address check")
    let accepted = callee.answer(refusal: nil, now: now)
    #expect(!accepted.contains(.connected(aliID)), "not connected before the caller proves it holds the keys")
    guard case let .send(message2Accepted)? = accepted.first else { return }
    let callerSide = caller.receive(message2Accepted, now: now)
    #expect(callerSide.first == .connected(UserID("bianca")!))
    guard case let .send(confirmation)? = callerSide.last else { Issue.record("no first record from the caller"); return }
    #expect(callee.receive(confirmation, now: now) == [.connected(aliID)])
}

private func runCallerPinning<B: CryptoBackend>(_: B.Type) throws {
    let world = try World<B>()
    let ali = try world.add("ali")
    let oldBianca = try world.add("bianca")
    world.requestChat(ali, "bianca")
    #expect(ali.shown.contains { if case .pinned = $0 { true } else { false } }, "first key seen is pinned")
    world.hangUp(ali)
    // Bianca comes back with a new key (a new device): ali's next call is refused, naming both keys.
    let newBianca = try world.add("bianca", signUp: false)
    world.requestChat(ali, "bianca")
    #expect(ali.shown.last == .pinnedKeyChanged(user: newBianca.user, pinned: oldBianca.identity.publicKey, offered: newBianca.identity.publicKey))
    #expect(ali.phase == .loggedIn)
    // /trust with a fingerprint that is not the offered key's pins nothing.
    world.handle(ali, ali.client.trust(newBianca.user, fingerprint: Fingerprint.of(oldBianca.identity.publicKey, backend: B.self)))
    world.pump()
    #expect(ali.shown.last == .trustRefused(user: newBianca.user, offered: newBianca.identity.publicKey))
    world.handle(ali, ali.client.trust(newBianca.user, fingerprint: Fingerprint.of(newBianca.identity.publicKey, backend: B.self).uppercased()))
    world.pump()
    #expect(ali.shown.last == .trusted(newBianca.user))
    world.requestChat(ali, "bianca")
    #expect(ali.phase == .chatting(newBianca.user), "after /trust the compared key is accepted")
}

private func runPasscodeChange<B: CryptoBackend>(_: B.Type) throws {
    let world = try World<B>()
    let ali = try world.add("ali")
    let old = String(repeating: "a", count: 64), new = String(repeating: "e", count: 64)
    var (channel, hello) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: ali.identity,
                                                          remoteStatic: world.server.identity.publicKey, payload: [])
    world.server.accept(98, address: "127.0.0.1")
    world.server.receive(98, hello)
    _ = channel.receive(world.server.outbox.removeValue(forKey: 98)!)
    func ask(_ message: ControlMessage) throws -> ControlMessage? {
        world.server.receive(98, try channel.seal(message.encoded()))
        guard let bytes = world.server.outbox.removeValue(forKey: 98), case let .deliver(reply)? = channel.receive(bytes).first else { return nil }
        return try ControlMessage.decode(reply)
    }
    #expect(try ask(.passwordRequest(.init(userID: ali.user, passcode: old, newPasscode: new)))
            == .passwordReply(.init(status: .refused, reason: "sign in as ali first")))
    _ = try ask(.authRequest(.init(userID: ali.user, passcode: old, port: 0)))
    #expect(try ask(.passwordRequest(.init(userID: ali.user, passcode: new, newPasscode: new)))
            == .passwordReply(.init(status: .refused, reason: "the current passcode is wrong")))
    #expect(try ask(.passwordRequest(.init(userID: ali.user, passcode: old, newPasscode: new))) == .passwordReply(.init(status: .changed, reason: "")))
    #expect(world.server.accounts[ali.user]?.passcode == new)
}
