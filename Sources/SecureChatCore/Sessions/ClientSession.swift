import SecureChatCrypto

/// A peer's state machine (seed 000, PROTOCOL.md §7): its channel to the server and what the
/// user is doing — `idle` (not signed in), `loggedIn`, `requestingChat`, `chatting`. It also holds
/// the pinned keys of other users (§6) as a value; the caller persists `pinned` actions.
public struct ClientSession<Backend: CryptoBackend> {
    public enum Phase: Equatable, Sendable {
        case idle
        case loggedIn
        case requestingChat(UserID)
        case chatting(UserID)
    }

    public enum Action: Equatable {
        /// Bytes for the server connection.
        case send([UInt8])
        case signedIn
        case signInRefused(reason: String)
        case signedUp
        case signUpRefused(status: ControlMessage.SignUpReply.Status, reason: String)
        /// Our call's lookup succeeded and the key agrees with the pin: connect to the peer.
        case dial(user: UserID, address: String, port: Int, key: X25519PublicKey)
        case notOnline(UserID)
        /// The server's key for `user` differs from the one pinned: refused; `/trust` accepts it.
        case pinnedKeyChanged(user: UserID, pinned: X25519PublicKey, offered: X25519PublicKey)
        /// A first key seen for `user`: the caller stores it.
        case pinned(user: UserID, key: X25519PublicKey)
        /// The answer to a lookup made for an incoming call (`checkIncoming`).
        case incomingLookup(user: UserID, reply: ControlMessage.LookupReply)
        case users([UserID])
        case presence(ControlMessage.Presence)
        case chatStarted(UserID)
        case chatRefused(user: UserID, reason: String)
        /// Shown to the user as `Hang up`.
        case hangUp(UserID)
        case serverError(String)
        /// Close the server connection.
        case fail(String)
        /// A command that does not fit the current phase; nothing was sent.
        case rejected(String)
    }

    private enum PendingLookup: Equatable { case call(UserID), incoming(UserID) }

    public let userID: UserID
    public private(set) var phase: Phase = .idle
    public private(set) var pinnedKeys: [UserID: X25519PublicKey]
    private var channel: SecureChannel<Backend>
    private var pendingLookups: [PendingLookup] = []
    private var failed = false
    private let passcode: String
    private let port: Int
    private let signUpFirst: Bool

    /// Starts the connection: returns the session and the bytes to send (HELLO, message 1).
    /// `passcode` is the wire digest (`PasscodeDigest.wire`), never the passcode itself.
    public static func connect(userID: UserID, passcode: String, port: Int, signUpFirst: Bool, cipher: CipherKind,
                               identity: X25519KeyPair, serverKey: X25519PublicKey,
                               pinnedKeys: [UserID: X25519PublicKey]) throws -> (ClientSession, [UInt8]) {
        let (channel, hello) = try SecureChannel<Backend>.initiator(cipher: cipher, localStatic: identity, remoteStatic: serverKey, payload: [])
        return (ClientSession(userID: userID, passcode: passcode, port: port, signUpFirst: signUpFirst,
                              channel: channel, pinnedKeys: pinnedKeys), hello)
    }

    private init(userID: UserID, passcode: String, port: Int, signUpFirst: Bool, channel: SecureChannel<Backend>,
                 pinnedKeys: [UserID: X25519PublicKey]) {
        self.userID = userID
        self.passcode = passcode
        self.port = port
        self.signUpFirst = signUpFirst
        self.channel = channel
        self.pinnedKeys = pinnedKeys
    }

    /// Whether an incoming call must be refused as busy.
    public var isBusy: Bool {
        switch phase {
        case .requestingChat, .chatting: return true
        case .idle, .loggedIn: return false
        }
    }

    // MARK: Server bytes

    public mutating func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> [Action] {
        guard !failed else { return [] }
        var actions = [Action]()
        for channelAction in channel.receive(bytes) {
            switch channelAction {
            case .established:
                actions += send(signUpFirst ? .signUpRequest(.init(userID: userID, passcode: passcode))
                                            : .authRequest(.init(userID: userID, passcode: passcode, port: port)))
            case let .deliver(plaintext):
                do {
                    actions += handle(try ControlMessage.decode(plaintext))
                } catch {
                    return actions + fail("bad message from the server: \(error)")
                }
            case let .fail(error):
                return actions + fail(error == .closed ? "the server closed the connection" : "server connection: \(error)")
            case .send, .handshakeReceived:
                break
            }
            if failed { return actions }
        }
        return actions
    }

    public mutating func serverClosed() -> [Action] {
        guard !failed else { return [] }
        _ = channel.endOfStream()
        return fail("the server closed the connection")
    }

    private mutating func handle(_ message: ControlMessage) -> [Action] {
        switch message {
        case let .signUpReply(reply):
            guard reply.status == .created else { return [.signUpRefused(status: reply.status, reason: reply.reason)] }
            return [.signedUp] + send(.authRequest(.init(userID: userID, passcode: passcode, port: port)))
        case let .authReply(reply):
            guard phase == .idle else { return fail("AUTHREPLY while signed in") }
            guard reply.status == .granted else { return [.signInRefused(reason: reply.reason ?? "refused")] }
            phase = .loggedIn
            return [.signedIn]
        case let .lookupReply(reply):
            guard !pendingLookups.isEmpty else { return fail("LOOKUPREPLY with no lookup pending") }
            switch pendingLookups.removeFirst() {
            case let .incoming(user):
                return [.incomingLookup(user: user, reply: reply)]
            case let .call(user):
                return callLookedUp(user, reply)
            }
        case let .listReply(users):
            return [.users(users)]
        case let .presence(presence):
            return [.presence(presence)]
        case let .error(reason):
            return [.serverError(reason)]
        case .keepAlive:
            return []
        case .hello, .authRequest, .lookupRequest, .signUpRequest, .listRequest, .logoutRequest, .connectRequest, .connectReply:
            return fail("the server sent \(message.messageType), a message only clients send")
        }
    }

    private mutating func callLookedUp(_ user: UserID, _ reply: ControlMessage.LookupReply) -> [Action] {
        guard phase == .requestingChat(user) else { return [] }  // the call was abandoned meanwhile
        guard let found = reply.found, found.answer == user, let port = found.port, port > 0,
              let keyBytes = Base64.decode(found.encryptionKey), let key = try? X25519PublicKey(bytes: keyBytes) else {
            phase = .loggedIn
            return [.notOnline(user)]
        }
        switch pinCheck(user, key) {
        case let .changed(pinned):
            phase = .loggedIn
            return [.pinnedKeyChanged(user: user, pinned: pinned, offered: key)]
        case .firstSeen:
            pinnedKeys[user] = key
            return [.pinned(user: user, key: key), .dial(user: user, address: found.address, port: port, key: key)]
        case .agrees:
            return [.dial(user: user, address: found.address, port: port, key: key)]
        }
    }

    public enum PinVerdict: Equatable { case agrees, firstSeen, changed(pinned: X25519PublicKey) }

    /// Compares `key` with the pinned key for `user` (PROTOCOL.md §6).
    public func pinCheck(_ user: UserID, _ key: X25519PublicKey) -> PinVerdict {
        guard let pinned = pinnedKeys[user] else { return .firstSeen }
        return pinned == key ? .agrees : .changed(pinned: pinned)
    }

    // MARK: User commands

    /// `/chat NAME`: look the user up; `dial` follows when found.
    public mutating func requestChat(with user: UserID) -> [Action] {
        guard phase == .loggedIn else { return [.rejected(phase == .idle ? "sign in first" : "already in a call")] }
        guard user != userID else { return [.rejected("you cannot call yourself")] }
        phase = .requestingChat(user)
        pendingLookups.append(.call(user))
        return send(.lookupRequest(.init(userID: userID, lookup: user)))
    }

    /// An incoming CONNECTREQ from `user`: look them up to check the call (PROTOCOL.md §5.2).
    public mutating func checkIncoming(from user: UserID) -> [Action] {
        guard phase != .idle else { return [.rejected("not signed in")] }
        pendingLookups.append(.incoming(user))
        return send(.lookupRequest(.init(userID: userID, lookup: user)))
    }

    public mutating func list() -> [Action] {
        guard phase != .idle else { return [.rejected("sign in first")] }
        return send(.listRequest(userID: userID))
    }

    public mutating func keepAlive() -> [Action] { phase == .idle ? [] : send(.keepAlive) }

    public mutating func signOut() -> [Action] {
        guard phase != .idle else { return [] }
        let actions = send(.logoutRequest(userID: userID))
        phase = .idle
        return actions
    }

    /// A caller we accepted whose key was not pinned yet: pin it, as for the users we call (§6),
    /// so that our next call to them checks it too.
    public mutating func pinCaller(_ user: UserID, key: X25519PublicKey) -> [Action] {
        guard pinnedKeys[user] == nil else { return [] }
        pinnedKeys[user] = key
        return [.pinned(user: user, key: key)]
    }

    /// `/trust NAME`: forget the pinned key, so the next key seen is pinned.
    public mutating func trust(_ user: UserID) { pinnedKeys[user] = nil }

    // MARK: Peer connection events

    /// A peer connection (ours or theirs) is now chatting.
    public mutating func chatConnected(with user: UserID) -> [Action] {
        phase = .chatting(user)
        return [.chatStarted(user)]
    }

    /// Our call was refused, or failed before connecting.
    public mutating func callFailed(to user: UserID, reason: String) -> [Action] {
        guard phase == .requestingChat(user) else { return [] }
        phase = .loggedIn
        return [.chatRefused(user: user, reason: reason)]
    }

    /// The chat ended (either side hung up, or the connection went): back to `loggedIn`.
    public mutating func chatEnded(with user: UserID) -> [Action] {
        guard phase == .chatting(user) else { return [] }
        phase = .loggedIn
        return [.hangUp(user)]
    }

    private mutating func send(_ message: ControlMessage) -> [Action] {
        do {
            return [.send(try channel.seal(message.encoded()))]
        } catch {
            return fail("cannot send to the server: \(error)")
        }
    }

    private mutating func fail(_ reason: String) -> [Action] {
        failed = true
        return [.fail(reason)]
    }
}
