import SecureChatCore
import SecureChatCrypto

/// An in-memory rendezvous: ServerSessions whose store and directory requests are carried out on
/// dictionaries, so client and server state machines can be pumped into each other with no sockets.
final class Rendezvous<Backend: CryptoBackend> {
    let identity: X25519KeyPair
    var accounts: [UserID: (passcode: String, key: X25519PublicKey)] = [:]
    var online: [UserID: (address: String, port: Int, key: X25519PublicKey, connection: Int)] = [:]
    var sessions: [Int: ServerSession<Backend>] = [:]
    var addresses: [Int: String] = [:]
    var outbox: [Int: [UInt8]] = [:]
    var closed: [Int: String] = [:]

    init() throws { identity = try Backend.generateX25519KeyPair() }

    func accept(_ connection: Int, address: String) {
        sessions[connection] = ServerSession(configuration: .init(), localStatic: identity, acceptedAt: Instant(nanoseconds: 0))
        addresses[connection] = address
    }

    func receive(_ connection: Int, _ bytes: [UInt8]) {
        guard let actions = sessions[connection]?.receive(bytes, now: Instant(nanoseconds: 1)) else { return }
        run(connection, actions)
    }

    func run(_ connection: Int, _ actions: [ServerSession<Backend>.Action]) {
        for action in actions {
            switch action {
            case let .send(bytes):
                outbox[connection, default: []] += bytes
            case let .close(reason):
                closed[connection] = reason
            case let .verifySignIn(user, passcode, port, key):
                let granted = accounts[user].map { constantTimeEquals(Array($0.passcode.utf8), Array(passcode.utf8)) } ?? false
                if granted {
                    if let previous = online[user], previous.connection != connection {
                        run(previous.connection, sessions[previous.connection]!.replacedByNewSignIn())
                    }
                    online[user] = (addresses[connection]!, port, key, connection)
                    broadcast(.init(userID: user, status: .online), except: connection)
                }
                run(connection, sessions[connection]!.signInAnswered(granted: granted))
            case let .createAccount(user, passcode, key):
                let exists = accounts[user] != nil
                if !exists { accounts[user] = (passcode, key) }
                run(connection, sessions[connection]!.signUpAnswered(exists ? .exists : .created, reason: exists ? "taken" : ""))
            case let .lookup(user):
                let reply = online[user].map {
                    ControlMessage.LookupReply(found: .init(answer: user, address: $0.address, encryptionKey: Base64.encode($0.key.bytes), port: $0.port))
                } ?? .notFound
                run(connection, sessions[connection]!.lookupAnswered(reply))
            case .list:
                run(connection, sessions[connection]!.listAnswered(online.keys.sorted()))
            case let .signedOut(user):
                if online[user]?.connection == connection {
                    online[user] = nil
                    broadcast(.init(userID: user, status: .offline), except: connection)
                }
            }
        }
    }
}

extension Rendezvous {
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
/// peer program does: `dial` starts a call, `lookUp` asks the server, `connected`/`hungUp` update the client.
final class World<Backend: CryptoBackend> {
    let server: Rendezvous<Backend>
    var peers: [TestPeer<Backend>] = []
    /// Bytes in flight between the two ends of each call, keyed by the receiving peer's connection.
    var wire: [Int: [UInt8]] = [:]
    /// Overrides the source address a callee sees (to test the address check).
    var sourceAddressOverride: String?
    /// Overrides the identity a caller uses for the call (to test the key check).
    var callIdentityOverride: X25519KeyPair?

    init() throws { server = try Rendezvous() }

    @discardableResult
    func add(_ name: String, passcode: String = String(repeating: "a", count: 64), signUp: Bool = true, address: String = "127.0.0.1") throws -> TestPeer<Backend> {
        let peer = try TestPeer<Backend>(name, connection: peers.count + 1, address: address, passcode: passcode, signUp: signUp, server: server)
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
                    let actions = call.receive(bytes)
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
            case let .dial(user, _, _, key):
                let callee = self.peer(user)
                let (call, bytes) = try! PeerConnection<Backend>.call(from: peer.user, identity: callIdentityOverride ?? peer.identity,
                                                                      to: user, calleeKey: key, cipher: .aesGCM)
                peer.call = call
                callee.call = PeerConnection(answeringWith: callee.identity, allowed: CipherKind.allCases,
                                             sourceAddress: sourceAddressOverride ?? peer.address)
                wire[callee.connection, default: []] += bytes
            case let .incomingLookup(user, reply):
                guard var call = peer.call else { continue }
                let actions = call.lookupAnswered(reply, pinnedKey: peer.client.pinnedKeys[user], busy: peer.client.isBusy)
                peer.call = call
                handleCall(peer, actions)
            default:
                break
            }
        }
    }

    func handleCall(_ peer: TestPeer<Backend>, _ actions: [PeerConnection<Backend>.Action]) {
        for action in actions {
            peer.peerEvents.append(action)
            switch action {
            case let .send(bytes):
                guard let other = otherEnd(of: peer) else { continue }
                wire[other.connection, default: []] += bytes
            case let .lookUp(user):
                handle(peer, peer.client.checkIncoming(from: user))
            case let .connected(user):
                handle(peer, peer.client.chatConnected(with: user))
            case let .refused(reason):
                if case let .requestingChat(user) = peer.phase { handle(peer, peer.client.callFailed(to: user, reason: reason)) }
            case .hungUp:
                if case let .chatting(user) = peer.phase { handle(peer, peer.client.chatEnded(with: user)) }
            case .close:
                peer.call = nil
                if case let .requestingChat(user) = peer.phase { handle(peer, peer.client.callFailed(to: user, reason: "closed")) }
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
        let actions = call.sendText(line)
        peer.call = call
        handleCall(peer, actions)
        pump()
    }

    func hangUp(_ peer: TestPeer<Backend>) {
        guard var call = peer.call else { return }
        let actions = call.hangUp()
        peer.call = call
        handleCall(peer, actions)
        if case let .chatting(user) = peer.phase { peer.absorb(peer.client.chatEnded(with: user)) }
        pump()
    }

    func requestChat(_ peer: TestPeer<Backend>, _ user: String) {
        handle(peer, peer.client.requestChat(with: UserID(user)!))
        pump()
    }
}
