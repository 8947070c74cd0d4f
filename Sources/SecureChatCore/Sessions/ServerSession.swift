import SecureChatCrypto

/// What a server session enforces. Not generic, so that the server's own settings can hold it.
public struct ServerSessionConfiguration: Equatable, Sendable {
    public var allowedCiphers: [CipherKind]
    /// Handshake plus sign-in must finish within this long of the TCP accept.
    public var signInDeadline: Duration
    /// A signed-in session with no message for this long is closed.
    public var idleTimeout: Duration
    public var allowSignUp: Bool

    public init(allowedCiphers: [CipherKind] = CipherKind.allCases, signInDeadline: Duration = .seconds(10),
                idleTimeout: Duration = .seconds(30 * 60), allowSignUp: Bool = true) {
        self.allowedCiphers = allowedCiphers
        self.signInDeadline = signInDeadline
        self.idleTimeout = idleTimeout
        self.allowSignUp = allowSignUp
    }
}

/// The server's state machine for one connection (PROTOCOL.md §4): handshake, sign-up and
/// sign-in, lookups, lists, presence, logout, deadlines. Requests that need the account store or
/// the directory go out as actions; their answers come back through the `…Answered` functions.
public struct ServerSession<Backend: CryptoBackend> {
    public typealias Configuration = ServerSessionConfiguration

    public enum Action: Equatable {
        case send([UInt8])
        /// Close this connection; `reason` is for the log line.
        case close(reason: String)
        /// Check the passcode digest against the store (scrypt, constant time) and answer with
        /// `signInAnswered`. On success the server records userid → address, port, identity key.
        case verifySignIn(userID: UserID, passcode: String, port: Int, identityKey: X25519PublicKey)
        /// Create the account, durably, then answer with `signUpAnswered`.
        case createAccount(userID: UserID, passcode: String, identityKey: X25519PublicKey)
        /// Look up a signed-in user; answer with `lookupAnswered`.
        case lookup(UserID)
        /// List the signed-in users; answer with `listAnswered`.
        case list
        /// This session's user is no longer signed in here (logout, close, replaced).
        case signedOut(UserID)
    }

    private struct Handshaking { var channel: SecureChannel<Backend> }
    private struct Ready {
        var channel: SecureChannel<Backend>
        var identityKey: X25519PublicKey
        var signedIn: UserID?
        /// The request sent out as an action and not yet answered; later messages wait in `queued`.
        var awaiting: Awaiting?
        var queued: [ControlMessage] = []
        var lastActivity: Instant
    }
    private enum Awaiting: Equatable { case signIn(UserID), signUp, lookup, list }
    private enum State {
        case handshaking(Handshaking)
        case ready(Ready)
        case closed
    }

    public let configuration: Configuration
    private var state: State
    private let deadline: Instant
    /// How many messages may wait behind an unanswered request before the client is cut off.
    public static var maximumQueued: Int { 16 }

    public init(configuration: Configuration, localStatic: X25519KeyPair, acceptedAt: Instant) {
        self.configuration = configuration
        state = .handshaking(Handshaking(channel: SecureChannel(responderWith: localStatic, allowed: configuration.allowedCiphers)))
        deadline = acceptedAt.advanced(by: configuration.signInDeadline)
    }

    public var signedInUser: UserID? { if case let .ready(ready) = state { ready.signedIn } else { nil } }
    public var isClosed: Bool { if case .closed = state { true } else { false } }

    /// When `tick` next has something to check: the sign-in deadline, or the idle timeout once
    /// signed in; nil when closed. The caller sets one timer for it.
    public var nextDeadline: Instant? {
        switch state {
        case .handshaking: return deadline
        case let .ready(ready):
            return ready.signedIn == nil ? deadline : ready.lastActivity.advanced(by: configuration.idleTimeout)
        case .closed: return nil
        }
    }

    // MARK: Events

    public mutating func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes, now: Instant) -> [Action] {
        switch state {
        case var .handshaking(handshaking):
            var actions = [Action]()
            for channelAction in handshaking.channel.receive(bytes) {
                switch channelAction {
                case let .handshakeReceived(remoteStatic, _):
                    // Handshake payloads are empty on this channel (§4); anything else is ignored.
                    for reply in handshaking.channel.respond(payload: []) {
                        switch reply {
                        case let .send(bytes): actions.append(.send(bytes))
                        case let .fail(error): return actions + close("handshake: \(error)")
                        case .established, .deliver, .handshakeReceived: break
                        }
                    }
                    state = .ready(Ready(channel: handshaking.channel, identityKey: remoteStatic, lastActivity: now))
                case let .fail(error):
                    return actions + close("handshake: \(error)")
                case .send, .established, .deliver:
                    break
                }
            }
            if case .handshaking = state { state = .handshaking(handshaking) }
            return actions
        case var .ready(ready):
            var actions = [Action]()
            for channelAction in ready.channel.receive(bytes) {
                switch channelAction {
                case let .deliver(plaintext):
                    ready.lastActivity = now
                    do {
                        ready.queued.append(try ControlMessage.decode(plaintext))
                    } catch {
                        return actions + refuse(&ready, "\(error)")
                    }
                    guard ready.queued.count <= Self.maximumQueued else {
                        return actions + refuse(&ready, "too many requests in flight")
                    }
                case let .fail(error):
                    state = .ready(ready)
                    return actions + close(error == .closed ? "connection closed" : "\(error)")
                case .send, .established, .handshakeReceived:
                    break
                }
            }
            actions += processQueue(&ready)
            if case .ready = state { state = .ready(ready) }
            return actions
        case .closed:
            return []
        }
    }

    public mutating func endOfStream() -> [Action] {
        switch state {
        case var .handshaking(handshaking):
            _ = handshaking.channel.endOfStream()
            return close("connection closed during the handshake")
        case var .ready(ready):
            let actions = ready.channel.endOfStream()
            if case .fail(.framing)? = actions.first { return close("connection closed inside a frame") }
            return close("connection closed")
        case .closed:
            return []
        }
    }

    /// Deadlines: sign-in within `signInDeadline` of the accept, and the idle timeout.
    public mutating func tick(now: Instant) -> [Action] {
        switch state {
        case .handshaking:
            return now >= deadline ? close("no handshake and sign-in before the deadline") : []
        case let .ready(ready):
            if ready.signedIn == nil, now >= deadline { return close("no sign-in before the deadline") }
            if ready.signedIn != nil, now >= ready.lastActivity.advanced(by: configuration.idleTimeout) {
                return close("idle past the timeout")
            }
            return []
        case .closed:
            return []
        }
    }

    public mutating func signInAnswered(granted: Bool) -> [Action] {
        answer { awaiting, ready in
            guard case let .signIn(userID) = awaiting else { return nil }
            if granted { ready.signedIn = userID }
            return .authReply(.init(userID: userID, status: granted ? .granted : .refused,
                                    reason: granted ? nil : "wrong user ID or passcode"))
        }
    }

    public mutating func signUpAnswered(_ status: ControlMessage.SignUpReply.Status, reason: String) -> [Action] {
        answer { awaiting, _ in awaiting == .signUp ? .signUpReply(.init(status: status, reason: reason)) : nil }
    }

    public mutating func lookupAnswered(_ reply: ControlMessage.LookupReply) -> [Action] {
        answer { awaiting, _ in awaiting == .lookup ? .lookupReply(reply) : nil }
    }

    public mutating func listAnswered(_ users: [UserID]) -> [Action] {
        answer { awaiting, _ in awaiting == .list ? .listReply(users: users) : nil }
    }

    /// Sends the reply to the request in flight (nil: the answer does not match it, ignored),
    /// then goes on with messages that waited behind it.
    private mutating func answer(_ reply: (Awaiting, inout Ready) -> ControlMessage?) -> [Action] {
        guard case var .ready(ready) = state, let awaiting = ready.awaiting, let message = reply(awaiting, &ready) else { return [] }
        ready.awaiting = nil
        var actions = send(message, &ready)
        actions += processQueue(&ready)
        return commit(ready, actions)
    }

    /// Another user signed in or out: tell this client, if it is signed in.
    public mutating func presenceChanged(_ presence: ControlMessage.Presence) -> [Action] {
        guard case var .ready(ready) = state, let user = ready.signedIn, user != presence.userID else { return [] }
        // `send` advances the transport nonce in `ready`: store `ready` only after it.
        let actions = send(.presence(presence), &ready)
        return commit(ready, actions)
    }

    /// The same user signed in on another connection: this one ends (without a sign-out, which
    /// would remove the new session from the directory).
    public mutating func replacedByNewSignIn() -> [Action] {
        guard case var .ready(ready) = state else { return [] }
        ready.signedIn = nil
        state = .ready(ready)
        let notice = send(.error(reason: "signed in from another connection"), &ready)
        return notice + close("replaced by a new sign-in")
    }

    // MARK: Requests

    private mutating func processQueue(_ ready: inout Ready) -> [Action] {
        var actions = [Action]()
        while ready.awaiting == nil, !ready.queued.isEmpty, !isClosed {
            let message = ready.queued.removeFirst()
            actions += handle(message, &ready)
        }
        return actions
    }

    private mutating func handle(_ message: ControlMessage, _ ready: inout Ready) -> [Action] {
        switch message {
        case let .authRequest(request):
            guard PasscodeDigest.isWellFormed(request.passcode) else {
                return send(.authReply(.init(userID: request.userID, status: .refused, reason: "malformed passcode digest")), &ready)
            }
            ready.awaiting = .signIn(request.userID)
            var actions = [Action]()
            if let previous = ready.signedIn {  // signing in again on the same connection
                ready.signedIn = nil
                actions.append(.signedOut(previous))
            }
            return actions + [.verifySignIn(userID: request.userID, passcode: request.passcode, port: request.port ?? 0,
                                            identityKey: ready.identityKey)]
        case let .signUpRequest(request):
            guard configuration.allowSignUp else {
                return send(.signUpReply(.init(status: .refused, reason: "sign-up is closed on this server")), &ready)
            }
            guard PasscodeDigest.isWellFormed(request.passcode) else {
                return send(.signUpReply(.init(status: .refused, reason: "malformed passcode digest")), &ready)
            }
            ready.awaiting = .signUp
            return [.createAccount(userID: request.userID, passcode: request.passcode, identityKey: ready.identityKey)]
        case let .lookupRequest(request):
            // Not signed in, or asking as someone else: NOTFOUND, as the seed says.
            guard let user = ready.signedIn, user == request.userID else { return send(.lookupReply(.notFound), &ready) }
            ready.awaiting = .lookup
            return [.lookup(request.lookup)]
        case let .listRequest(userID):
            guard let user = ready.signedIn, user == userID else { return send(.listReply(users: []), &ready) }
            ready.awaiting = .list
            return [.list]
        case let .logoutRequest(userID):
            guard let user = ready.signedIn, user == userID else {
                return send(.error(reason: "LOGOUTREQ for a user not signed in here"), &ready)
            }
            ready.signedIn = nil
            state = .ready(ready)
            return [.signedOut(user)] + close("signed out")
        case .keepAlive:
            return []
        case .hello, .authReply, .lookupReply, .signUpReply, .listReply, .presence, .error, .connectRequest, .connectReply:
            return refuse(&ready, "\(message.messageType) is not a request a client may send")
        }
    }

    /// A protocol error: ERROR to the client, then close (PROTOCOL.md §4).
    private mutating func refuse(_ ready: inout Ready, _ reason: String) -> [Action] {
        state = .ready(ready)
        return send(.error(reason: reason), &ready) + close("protocol error: \(reason)")
    }

    private func send(_ message: ControlMessage, _ ready: inout Ready) -> [Action] {
        guard let frame = try? ready.channel.seal(message.encoded()) else { return [] }
        return [.send(frame)]
    }

    private mutating func commit(_ ready: Ready, _ actions: [Action]) -> [Action] {
        if case .ready = state { state = .ready(ready) }
        return actions
    }

    private mutating func close(_ reason: String) -> [Action] {
        let signedIn = signedInUser
        state = .closed
        return (signedIn.map { [Action.signedOut($0)] } ?? []) + [.close(reason: reason)]
    }
}
