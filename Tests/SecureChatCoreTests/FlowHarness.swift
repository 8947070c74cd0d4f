import SecureChatCore
import SecureChatCrypto

/// An in-memory rendezvous: ServerSessions whose store, directory and call requests are carried
/// out on dictionaries, so client and server state machines can be pumped into each other with
/// no sockets.
final class Rendezvous<Backend: CryptoBackend> {
    struct Online { var address: IPAddress; var port: Int; var key: X25519PublicKey; var connection: Int }

    let identity: X25519KeyPair
    var accounts: [UserID: (passcode: String, key: X25519PublicKey)] = [:]
    var online: [UserID: Online] = [:]
    var sessions: [Int: ServerSession<Backend>] = [:]
    var addresses: [Int: IPAddress] = [:]
    var outbox: [Int: [UInt8]] = [:]
    var closed: [Int: ServerCloseReason] = [:]
    var now = Instant(nanoseconds: 1_000_000_000)

    init() throws { identity = try Backend.generateX25519KeyPair() }

    func accept(_ connection: Int, address: String) {
        sessions[connection] = ServerSession(configuration: .init(), localStatic: identity, acceptedAt: now)
        addresses[connection] = IPAddress(address)!
    }

    func receive(_ connection: Int, _ bytes: [UInt8]) {
        guard let actions = sessions[connection]?.receive(bytes, now: now) else { return }
        run(connection, actions)
    }

    func run(_ connection: Int, _ actions: [ServerSession<Backend>.Action]) {
        for action in actions {
            switch action {
            case let .send(bytes):
                outbox[connection, default: []] += bytes
            case let .close(reason):
                closed[connection] = reason
            case .relay:
                closed[connection] = .protocolError("no relay in this harness")
            case let .verifySignIn(request):
                let granted = accounts[request.userID].map { constantTimeEquals(Array($0.passcode.utf8), Array(request.passcode.utf8)) } ?? false
                var previous: X25519PublicKey?
                if granted {
                    if let stored = accounts[request.userID], stored.key != request.identityKey {
                        previous = stored.key
                        accounts[request.userID]?.key = request.identityKey
                    }
                    if let earlier = online[request.userID], earlier.connection != connection {
                        run(earlier.connection, sessions[earlier.connection]!.replacedByNewSignIn())
                    }
                    online[request.userID] = Online(address: addresses[connection]!, port: request.port, key: request.identityKey,
                                                    connection: connection)
                    broadcast(.init(userID: request.userID, status: .online), except: connection)
                }
                run(connection, sessions[connection]!.signInAnswered(granted ? .granted(previousKey: previous) : .wrongPasscode))
            case let .createAccount(user, passcode, key):
                let exists = accounts[user] != nil
                if !exists { accounts[user] = (passcode, key) }
                run(connection, sessions[connection]!.signUpAnswered(exists ? .exists : .created, reason: exists ? "taken" : ""))
            case let .changePasscode(user, passcode, newPasscode):
                let matches = accounts[user]?.passcode == passcode
                if matches { accounts[user]?.passcode = newPasscode }
                run(connection, sessions[connection]!.passwordAnswered(matches ? .granted(previousKey: nil) : .wrongPasscode))
            case let .lookup(user):
                run(connection, sessions[connection]!.lookupAnswered(.init(.init(found: found(user)))))
            case .list:
                run(connection, sessions[connection]!.listAnswered(online.keys.sorted()))
            case let .call(caller, callee):
                guard let entry = online[callee], let own = online[caller] else {
                    run(connection, sessions[connection]!.callAnswered(.init(status: .notFound)))
                    continue
                }
                run(entry.connection, sessions[entry.connection]!.callOffered(
                    .init(caller: caller, encryptionKey: Base64.encode(own.key.bytes), candidates: candidates(own), relay: "")))
                run(connection, sessions[connection]!.callAnswered(.init(status: .success, reason: RelayBook.Refusal.disabled.rawValue, found: .init(
                    callee: callee, encryptionKey: Base64.encode(entry.key.bytes), candidates: candidates(entry), relay: ""))))
            case let .signedOut(user):
                if online[user]?.connection == connection {
                    online[user] = nil
                    broadcast(.init(userID: user, status: .offline), except: connection)
                }
            }
        }
    }

    private func candidates(_ entry: Online) -> [Endpoint] { [Endpoint(address: entry.address, port: entry.port)] }

    private func found(_ user: UserID) -> ControlMessage.LookupReply.Found? {
        online[user].map {
            .init(answer: user, address: $0.address.description, encryptionKey: Base64.encode($0.key.bytes), port: $0.port,
                  candidates: candidates($0))
        }
    }

    func broadcast(_ presence: ControlMessage.Presence, except connection: Int) {
        for other in sessions.keys.sorted() where other != connection {
            run(other, sessions[other]!.presenceChanged(presence))
        }
    }
}

/// A peer: its ClientSession, what it showed, and its peer-to-peer connection.
final class TestPeer<Backend: CryptoBackend> {
    let user: UserID
    let identity: X25519KeyPair
    let connection: Int
    let address: String
    var client: ClientSession<Backend>
    var shown: [ClientSession<Backend>.Action] = []
    var peerEvents: [PeerConnection<Backend>.Action] = []
    var call: PeerConnection<Backend>?
    /// CALLOFFERs received, by caller: what the server said about them.
    var offers: [UserID: CallPlan] = [:]
    var toServer: [UInt8] = []

    init(_ name: String, connection: Int, address: String = "127.0.0.1", passcode: String, signUp: Bool,
         server: Rendezvous<Backend>, identity: X25519KeyPair? = nil, cipher: CipherKind = .chaChaPoly) throws {
        user = UserID(name)!
        self.identity = try identity ?? Backend.generateX25519KeyPair()
        self.connection = connection
        self.address = address
        let (client, hello) = try ClientSession<Backend>.connect(userID: user, passcode: passcode, port: 7000 + connection,
                                                                   signUpFirst: signUp, cipher: cipher, identity: self.identity,
                                                                   serverKey: server.identity.publicKey, pinnedKeys: [:])
        self.client = client
        toServer = hello
        server.accept(connection, address: address)
    }

    func absorb(_ actions: [ClientSession<Backend>.Action]) {
        for action in actions {
            if case let .send(bytes) = action { toServer += bytes } else { shown.append(action) }
        }
    }

    var phase: ClientSession<Backend>.Phase { client.phase }
}

/// Pumps bytes between peers and the rendezvous until nothing moves, wiring calls the way the
/// peer program does (with one direct connection per call: the race is `CallSetup`'s, tested
/// on its own): `startCall` connects, `checkCaller` checks against the CALLOFFER or a lookup,
/// `connected`/`close` update the client.
final class World<Backend: CryptoBackend> {
    let server: Rendezvous<Backend>
    var peers: [TestPeer<Backend>] = []
    /// Bytes in flight between the two ends of each call, keyed by the receiving peer's connection.
    var wire: [Int: [UInt8]] = [:]
    /// Overrides the source address a callee sees (to test the address check).
    var sourceAddressOverride: String?
    /// Overrides the identity a caller uses for the call (to test the key check).
    var callIdentityOverride: X25519KeyPair?
    /// Callees in this set are busy.
    var busy: Set<UserID> = []

    init() throws { server = try Rendezvous() }

    var now: Instant { server.now }

    @discardableResult
    func add(_ name: String, passcode: String = String(repeating: "a", count: 64), signUp: Bool = true, address: String = "127.0.0.1",
             identity: X25519KeyPair? = nil) throws -> TestPeer<Backend> {
        let peer = try TestPeer<Backend>(name, connection: peers.count + 1, address: address, passcode: passcode, signUp: signUp,
                                         server: server, identity: identity)
        peers.append(peer)
        pump()
        return peer
    }

    func peer(_ user: UserID) -> TestPeer<Backend> { peers.last { $0.user == user }! }  // the newest sign-in

    func pump() {
        var moved = true
        while moved {
            moved = false
            for peer in peers {
                if !peer.toServer.isEmpty {
                    let bytes = peer.toServer
                    peer.toServer = []
                    server.receive(peer.connection, bytes)
                    moved = true
                }
                if let bytes = server.outbox.removeValue(forKey: peer.connection) {
                    handle(peer, peer.client.receive(bytes))
                    moved = true
                }
                if var call = peer.call, let bytes = wire.removeValue(forKey: peer.connection) {
                    let actions = call.receive(bytes, now: now)
                    peer.call = call
                    handleCall(peer, actions)
                    moved = true
                }
            }
        }
    }

    func handle(_ peer: TestPeer<Backend>, _ actions: [ClientSession<Backend>.Action]) {
        peer.absorb(actions)
        for action in actions {
            switch action {
            case let .startCall(plan):
                let callee = self.peer(plan.peer)
                let (call, bytes) = try! PeerConnection<Backend>.call(from: peer.user, identity: callIdentityOverride ?? peer.identity,
                                                                      to: plan.peer, calleeKey: plan.key, cipher: .aesGCM, now: now)
                peer.call = call
                let source = IPAddress(sourceAddressOverride ?? peer.address)!
                callee.call = PeerConnection(answeringWith: callee.identity, allowed: CipherKind.allCases, origin: .accepted(from: source),
                                             now: now)
                wire[callee.connection, default: []] += bytes
            case let .callOffered(plan):
                peer.offers[plan.peer] = plan
            case let .incomingLookup(_, reply):
                guard let caller = peer.call?.peer else { continue }
                answer(peer, CallerRecord(lookup: reply, for: caller))
            default:
                break
            }
        }
    }

    /// The callee's checks and answer, as the peer program makes them.
    func answer(_ peer: TestPeer<Backend>, _ record: CallerRecord?) {
        guard var call = peer.call, let caller = call.peer else { return }
        let refusal = call.check(record, pinnedKey: peer.client.pinnedKeys[caller], busy: busy.contains(peer.user) || peer.client.isBusy)
        let actions = call.answer(refusal: refusal, now: now)
        peer.call = call
        handleCall(peer, actions)
    }

    func handleCall(_ peer: TestPeer<Backend>, _ actions: [PeerConnection<Backend>.Action]) {
        for action in actions {
            peer.peerEvents.append(action)
            switch action {
            case let .send(bytes):
                guard let other = otherEnd(of: peer) else { continue }
                wire[other.connection, default: []] += bytes
            case let .checkCaller(user, _):
                if let offer = peer.offers.removeValue(forKey: user) {
                    answer(peer, CallerRecord(user: user, key: offer.key, addresses: Set(offer.candidates.map(\.address))))
                } else {
                    handle(peer, peer.client.checkIncoming(from: user, token: 0))
                }
            case let .connected(user):
                handle(peer, peer.client.chatConnected(with: user))
            case .close:
                peer.call = nil
                if case let .requestingChat(user) = peer.phase { handle(peer, peer.client.callFailed(to: user)) }
                if case let .chatting(user) = peer.phase { handle(peer, peer.client.chatEnded(with: user)) }
            case .received:
                break
            }
        }
    }

    /// The peer at the other end of `peer`'s call.
    func otherEnd(of peer: TestPeer<Backend>) -> TestPeer<Backend>? {
        if let user = peer.call?.peer { return self.peer(user) }
        return peers.first { $0 !== peer && $0.call != nil }
    }

    func say(_ peer: TestPeer<Backend>, _ line: String) {
        guard var call = peer.call else { return }
        let actions = call.sendText(line, now: now)
        peer.call = call
        handleCall(peer, actions)
        pump()
    }

    func hangUp(_ peer: TestPeer<Backend>) {
        guard var call = peer.call else { return }
        let actions = call.hangUp(now: now)
        peer.call = call
        handleCall(peer, actions)
        pump()
    }

    func requestChat(_ peer: TestPeer<Backend>, _ user: String) {
        handle(peer, peer.client.requestChat(with: UserID(user)!))
        pump()
    }

    /// Refusals the calls ended with, as each side saw them.
    func closeReasons(_ peer: TestPeer<Backend>) -> [PeerCloseReason] {
        peer.peerEvents.compactMap { if case let .close(reason) = $0 { reason } else { nil } }
    }
}
