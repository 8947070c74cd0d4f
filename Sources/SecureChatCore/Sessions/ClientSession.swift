import SecureChatCrypto

/// Why a peer's server connection ended, as the peer tells its user and decides whether trying
/// again can help.
public enum ServerLinkFailure: Equatable, Sendable {
    /// The server closed the connection after the handshake.
    case closed
    /// The server closed during the handshake without a word: most likely the server key we
    /// used is not its key (or it does not allow our cipher).
    case closedDuringHandshake
    /// The server refused the handshake and said why.
    case refused(HandshakeRefusal)
    /// The same user signed in from another connection (another device): do not fight it.
    case replaced
    /// A message that breaks the protocol, or a frame that did not decrypt.
    case broken(String)
}

/// Why a sign-in was refused: a wrong passcode can be typed again; a lock-out cannot be helped
/// by trying again now.
public enum SignInRefusal: Equatable, Sendable {
    case wrongPasscode
    case lockedOut(String)
    /// The server checks too many sign-ins for this user or address right now: try again soon.
    case busy
    /// The server cannot check passcodes now (a scale-out node cut off from its database):
    /// another node, or this one later. The server's words.
    case unavailable(String)
    case other(String)

    init(reason: String?) {
        switch reason {
        case "wrong user ID or passcode"?, nil: self = .wrongPasscode
        case let reason? where reason.hasPrefix("locked out"): self = .lockedOut(reason)
        case let reason? where reason == SignInVerdict.busy.reason: self = .busy
        case let reason? where reason == SignInVerdict.unavailable.reason: self = .unavailable(reason)
        case let reason?: self = .other(reason)
        }
    }
}

/// How to reach the other side of a call: from CALLREPLY or CALLOFFER (§9), or from a §5
/// LOOKUPREPLY. `candidates` are best first; `relayToken` is empty when the server relays nothing.
public struct CallPlan: Equatable, Sendable {
    public let peer: UserID
    public let key: X25519PublicKey
    public let candidates: [Endpoint]
    public let relayToken: String
    /// Why there is no relay token, when the server said.
    public let relayRefusal: String?
    /// The other side's network as the server sees it (§9 servers say).
    public let peerNetwork: ControlMessage.PeerNetwork?
    /// Where to open the relay leg when not at our own server ("HOST:PORT", CALLOFFER's
    /// `relayserver`: a scale-out node pairs the legs of a call on the caller's node).
    public let relayServer: String?

    public init(peer: UserID, key: X25519PublicKey, candidates: [Endpoint], relayToken: String, relayRefusal: String? = nil,
                peerNetwork: ControlMessage.PeerNetwork? = nil, relayServer: String? = nil) {
        self.relayServer = relayServer
        self.peer = peer
        self.key = key
        self.candidates = candidates
        self.relayToken = relayToken
        self.relayRefusal = relayRefusal
        self.peerNetwork = peerNetwork
    }
}

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
        /// Signed in; `previousKey` is the account's key that this device's key replaced.
        case signedIn(previousKey: X25519PublicKey?)
        case signInRefused(SignInRefusal)
        case signedUp
        /// `--signup` found the account existing: signing in to it instead.
        case accountExists
        case signUpRefused(reason: String)
        /// Our call may start: reach `plan.peer` (the key agrees with the pin).
        case startCall(CallPlan)
        case notOnline(UserID)
        /// The server's key for `user` differs from the one pinned: refused.
        case pinnedKeyChanged(user: UserID, pinned: X25519PublicKey, offered: X25519PublicKey)
        /// A first key seen for `user`: the caller stores it.
        case pinned(user: UserID, key: X25519PublicKey)
        /// The server offers a call from `plan.peer` (§9 CALLOFFER).
        case callOffered(CallPlan)
        /// The answer to a lookup made to check an incoming §5 call (`checkIncoming`, `token`).
        case incomingLookup(token: Int, reply: ControlMessage.LookupReply)
        /// The key the server has for `user` (nil: not online), asked by `lookUpKey`.
        case keyLookedUp(user: UserID, key: X25519PublicKey?)
        /// `/trust NAME FINGERPRINT` matched the key offered for `user`: it is pinned now.
        case trusted(UserID)
        /// `/trust` did not match: `offered` is the fingerprint the server offers now (nil: none known).
        case trustRefused(user: UserID, offered: X25519PublicKey?)
        case users([UserID])
        case presence(ControlMessage.Presence)
        case chatStarted(UserID)
        case chatRefused(user: UserID, reason: String)
        /// Shown to the user as `Hang up`.
        case hangUp(UserID)
        case serverError(String)
        /// The server connection is over; close it.
        case fail(ServerLinkFailure)
        /// A command that does not fit the current phase; nothing was sent.
        case rejected(String)
    }

    private enum PendingLookup: Equatable {
        case call(UserID), incoming(token: Int), key(UserID), trust(UserID, fingerprint: String)
    }

    public let userID: UserID
    public private(set) var phase: Phase = .idle
    public private(set) var pinnedKeys: [UserID: X25519PublicKey]
    /// What the server supports (AUTHREPLY `extensions`).
    public private(set) var serverExtensions: Set<String> = []
    /// Where the server sees this peer (AUTHREPLY ext), once signed in.
    public private(set) var ownNetwork: ControlMessage.PeerNetwork?
    private var channel: SecureChannel<Backend>
    private var pendingLookups: [PendingLookup] = []
    /// The last key offered for a user whose pinned key differs: what `/trust` compares against.
    private var offeredKeys: [UserID: X25519PublicKey] = [:]
    /// A long `/list` arriving in pages.
    private var listPages: [UserID] = []
    private var listsPending = 0
    private var failed = false
    private let passcode: String
    private let port: Int
    private let addresses: [Endpoint]
    private let signUpFirst: Bool

    /// Starts the connection: returns the session and the bytes to send (HELLO, message 1).
    /// `passcode` is the wire digest (`PasscodeDigest.wire`), never the passcode itself;
    /// `addresses` are this peer's own candidates (§9.2).
    public static func connect(userID: UserID, passcode: String, port: Int, addresses: [Endpoint] = [], signUpFirst: Bool,
                               cipher: CipherKind, identity: X25519KeyPair, serverKey: X25519PublicKey,
                               pinnedKeys: [UserID: X25519PublicKey]) throws -> (ClientSession, [UInt8]) {
        let (channel, hello) = try SecureChannel<Backend>.initiator(cipher: cipher, localStatic: identity, remoteStatic: serverKey,
                                                                    payload: [], maximumMessage: SecureChannel<Backend>.maximumControlFrame)
        return (ClientSession(userID: userID, passcode: passcode, port: port, addresses: addresses, signUpFirst: signUpFirst,
                              channel: channel, pinnedKeys: pinnedKeys), hello)
    }

    private init(userID: UserID, passcode: String, port: Int, addresses: [Endpoint], signUpFirst: Bool,
                 channel: SecureChannel<Backend>, pinnedKeys: [UserID: X25519PublicKey]) {
        self.userID = userID
        self.passcode = passcode
        self.port = port
        self.addresses = addresses
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

    public var isSignedIn: Bool { phase != .idle }

    /// Whether a request is waiting for the server's answer (a lookup, a list, a call).
    public var awaitsReplies: Bool {
        if case .requestingChat = phase, serverSetsUpCalls { return true }
        return !pendingLookups.isEmpty || listsPending > 0
    }

    /// Whether the server sets up calls (§9.3), so calls start with CALLREQ instead of LOOKUPREQ.
    public var serverSetsUpCalls: Bool { serverExtensions.contains(ControlMessage.ServerExtension.calls.rawValue) }

    // MARK: Server bytes

    public mutating func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> [Action] {
        guard !failed else { return [] }
        var actions = [Action]()
        for channelAction in channel.receive(bytes) {
            switch channelAction {
            case .established:
                actions += send(signUpFirst ? .signUpRequest(.init(userID: userID, passcode: passcode)) : signInRequest)
            case let .deliver(plaintext):
                do {
                    actions += handle(try ControlMessage.decode(plaintext))
                } catch {
                    return actions + fail(.broken("bad message from the server: \(error)"))
                }
            case let .fail(error):
                switch error {
                case .closed: return actions + fail(.closed)
                case .closedDuringHandshake: return actions + fail(.closedDuringHandshake)
                case let .refused(refusal): return actions + fail(.refused(refusal))
                default: return actions + fail(.broken("\(error)"))
                }
            case .send, .handshakeReceived:
                break
            }
            if failed { return actions }
        }
        return actions
    }

    public mutating func serverClosed() -> [Action] {
        guard !failed else { return [] }
        for case let .fail(error) in channel.endOfStream() where error == .closedDuringHandshake {
            return fail(.closedDuringHandshake)
        }
        return fail(.closed)
    }

    private var signInRequest: ControlMessage {
        .authRequest(.init(userID: userID, passcode: passcode, port: port, addresses: addresses,
                           extensions: ControlMessage.ClientExtension.allCases.map(\.rawValue)))
    }

    private mutating func handle(_ message: ControlMessage) -> [Action] {
        switch message {
        case let .signUpReply(reply):
            switch reply.status {
            case .created: return [.signedUp] + send(signInRequest)
            case .exists: return [.accountExists] + send(signInRequest)
            case .refused: return [.signUpRefused(reason: reply.reason)]
            }
        case let .authReply(reply):
            guard phase == .idle else { return fail(.broken("AUTHREPLY while signed in")) }
            guard reply.status == .granted else { return [.signInRefused(SignInRefusal(reason: reply.reason))] }
            phase = .loggedIn
            serverExtensions = Set(reply.extensions)
            ownNetwork = reply.network
            let previous = reply.previousKey.flatMap(Base64.decode).flatMap { try? X25519PublicKey(bytes: $0) }
            return [.signedIn(previousKey: previous)]
        case let .lookupReply(reply):
            guard !pendingLookups.isEmpty else { return fail(.broken("LOOKUPREPLY with no lookup pending")) }
            let found = reply.found.flatMap { found in
                Base64.decode(found.encryptionKey).flatMap { try? X25519PublicKey(bytes: $0) }.map { (found, $0) }
            }
            switch pendingLookups.removeFirst() {
            case let .incoming(token):
                return [.incomingLookup(token: token, reply: reply)]
            case let .call(user):
                guard let (found, key) = found, found.answer == user, let port = found.port, port > 0,
                      let address = IPAddress(found.address) else { return callNotOnline(user) }
                // §5 dials address:port; a §9 server lists more candidates after it.
                var candidates = [Endpoint(address: address, port: port)]
                candidates += found.candidates.filter { $0 != candidates[0] }
                return callFound(CallPlan(peer: user, key: key, candidates: Array(candidates.prefix(Endpoint.maximumCandidates)),
                                          relayToken: ""))
            case let .key(user):
                return [.keyLookedUp(user: user, key: found?.0.answer == user ? found?.1 : nil)]
            case let .trust(user, fingerprint):
                return trustAnswered(user, fingerprint: fingerprint, offered: found?.0.answer == user ? found?.1 : nil)
            }
        case let .callReply(reply):
            guard case let .requestingChat(user) = phase else { return [] }  // the call was abandoned meanwhile
            switch reply.status {
            case .notFound: return callNotOnline(user)
            case .refused:
                phase = .loggedIn
                return [.chatRefused(user: user, reason: reply.reason ?? "refused by the server")]
            case .success:
                guard let found = reply.found, found.callee == user,
                      let key = Base64.decode(found.encryptionKey).flatMap({ try? X25519PublicKey(bytes: $0) }) else {
                    return fail(.broken("CALLREPLY without the callee's key"))
                }
                return callFound(CallPlan(peer: user, key: key, candidates: found.candidates, relayToken: found.relay,
                                          relayRefusal: found.relay.isEmpty ? reply.reason : nil, peerNetwork: found.network))
            }
        case let .callOffer(offer):
            guard phase != .idle, let key = Base64.decode(offer.encryptionKey).flatMap({ try? X25519PublicKey(bytes: $0) }) else {
                return []
            }
            return [.callOffered(CallPlan(peer: offer.caller, key: key, candidates: offer.candidates, relayToken: offer.relay,
                                          peerNetwork: offer.network, relayServer: offer.relayServer))]
        case let .listReply(reply):
            listPages += reply.users
            guard !reply.more else { return [] }
            listsPending = max(0, listsPending - 1)
            defer { listPages = [] }
            return [.users(listPages)]
        case let .presence(presence):
            return [.presence(presence)]
        case let .error(reason):
            if reason == ServerSession<Backend>.replacedReason { return fail(.replaced) }
            return [.serverError(reason)]
        case .keepAlive:
            // The server's probe (or an echo): answer, so it knows this peer is alive.
            return send(.keepAlive)
        case .hello, .authRequest, .lookupRequest, .signUpRequest, .listRequest, .logoutRequest, .connectRequest, .connectReply,
             .passwordRequest, .passwordReply, .callRequest, .relay:
            return fail(.broken("the server sent \(message.messageType), a message only clients send"))
        }
    }

    private mutating func callNotOnline(_ user: UserID) -> [Action] {
        phase = .loggedIn
        return [.notOnline(user)]
    }

    /// The server told us how to reach the callee: check its key against the pin first.
    private mutating func callFound(_ plan: CallPlan) -> [Action] {
        guard phase == .requestingChat(plan.peer) else { return [] }  // the call was abandoned meanwhile
        switch pinCheck(plan.peer, plan.key) {
        case let .changed(pinned):
            phase = .loggedIn
            offeredKeys[plan.peer] = plan.key
            return [.pinnedKeyChanged(user: plan.peer, pinned: pinned, offered: plan.key)]
        case .firstSeen:
            pinnedKeys[plan.peer] = plan.key
            return [.pinned(user: plan.peer, key: plan.key), .startCall(plan)]
        case .agrees:
            return [.startCall(plan)]
        }
    }

    public enum PinVerdict: Equatable { case agrees, firstSeen, changed(pinned: X25519PublicKey) }

    /// Compares `key` with the pinned key for `user` (PROTOCOL.md §6).
    public func pinCheck(_ user: UserID, _ key: X25519PublicKey) -> PinVerdict {
        guard let pinned = pinnedKeys[user] else { return .firstSeen }
        return pinned == key ? .agrees : .changed(pinned: pinned)
    }

    // MARK: User commands

    /// `/chat NAME`: CALLREQ when the server sets up calls (§9), else LOOKUPREQ (§5); `startCall` follows.
    public mutating func requestChat(with user: UserID) -> [Action] {
        guard phase == .loggedIn else { return [.rejected(phase == .idle ? "sign in first" : "already in a call")] }
        guard user != userID else { return [.rejected("you cannot call yourself")] }
        phase = .requestingChat(user)
        if serverSetsUpCalls { return send(.callRequest(.init(userID: userID, callee: user))) }
        pendingLookups.append(.call(user))
        return send(.lookupRequest(.init(userID: userID, lookup: user)))
    }

    /// An incoming CONNECTREQ from `user` that no CALLOFFER announced (a §5 caller): look them
    /// up to check the call (PROTOCOL.md §5.2); the answer comes back with `token`.
    public mutating func checkIncoming(from user: UserID, token: Int) -> [Action] {
        guard phase != .idle else { return [.rejected("not signed in")] }
        pendingLookups.append(.incoming(token: token))
        return send(.lookupRequest(.init(userID: userID, lookup: user)))
    }

    /// Asks the server for the key it has for `user` (`/fingerprint NAME` before any call).
    public mutating func lookUpKey(_ user: UserID) -> [Action] {
        guard phase != .idle else { return [.rejected("sign in first")] }
        pendingLookups.append(.key(user))
        return send(.lookupRequest(.init(userID: userID, lookup: user)))
    }

    public mutating func list() -> [Action] {
        guard phase != .idle else { return [.rejected("sign in first")] }
        listsPending += 1
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

    /// A caller refused because its key is not the pinned one: remembered for `/trust`.
    public mutating func noteOfferedKey(_ user: UserID, key: X25519PublicKey) { offeredKeys[user] = key }

    /// `/trust NAME FINGERPRINT`: pins the key offered for `user` only if its fingerprint is the
    /// one the user compared. The key is the one last offered and refused, else the server's now.
    public mutating func trust(_ user: UserID, fingerprint: String) -> [Action] {
        if let offered = offeredKeys[user], Fingerprint.matches(fingerprint, offered, backend: Backend.self) {
            return trustAnswered(user, fingerprint: fingerprint, offered: offered)
        }
        guard phase != .idle else { return [.trustRefused(user: user, offered: offeredKeys[user])] }
        pendingLookups.append(.trust(user, fingerprint: fingerprint))
        return send(.lookupRequest(.init(userID: userID, lookup: user)))
    }

    private mutating func trustAnswered(_ user: UserID, fingerprint: String, offered: X25519PublicKey?) -> [Action] {
        guard let offered, Fingerprint.matches(fingerprint, offered, backend: Backend.self) else {
            return [.trustRefused(user: user, offered: offered ?? offeredKeys[user])]
        }
        pinnedKeys[user] = offered
        offeredKeys[user] = nil
        return [.pinned(user: user, key: offered), .trusted(user)]
    }

    // MARK: Peer connection events

    /// A peer connection (ours or theirs) is now chatting.
    public mutating func chatConnected(with user: UserID) -> [Action] {
        phase = .chatting(user)
        return [.chatStarted(user)]
    }

    /// Our call was refused, failed or given up before connecting (the peer says why).
    public mutating func callFailed(to user: UserID) -> [Action] {
        if phase == .requestingChat(user) { phase = .loggedIn }
        return []
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
            return fail(.broken("cannot send to the server: \(error)"))
        }
    }

    private mutating func fail(_ failure: ServerLinkFailure) -> [Action] {
        failed = true
        return [.fail(failure)]
    }
}
