import SecureChatCrypto

/// What a server session enforces. Not generic, so that the server's own settings can hold it.
public struct ServerSessionConfiguration: Equatable, Sendable {
    public var allowedCiphers: [CipherKind]
    /// Handshake plus sign-in must finish within this long of the TCP accept.
    public var signInDeadline: Duration
    /// A signed-in session with no message for this long is closed.
    public var idleTimeout: Duration
    /// After this long without a word from a signed-in client, the server sends KEEPALIVE.
    public var probeInterval: Duration
    /// A client that has answered KEEPALIVE before and stays silent this long after one is gone
    /// (a frozen or vanished peer is shown offline within `probeInterval + probeTimeout`).
    public var probeTimeout: Duration
    public var allowSignUp: Bool
    /// CALLREQ per signed-in connection and minute (§9.3: a rate limit per caller).
    public var callsPerMinute: Int

    public init(allowedCiphers: [CipherKind] = CipherKind.allCases, signInDeadline: Duration = .seconds(10),
                idleTimeout: Duration = .seconds(30 * 60), probeInterval: Duration = .seconds(20),
                probeTimeout: Duration = .seconds(40), allowSignUp: Bool = true, callsPerMinute: Int = 20) {
        self.allowedCiphers = allowedCiphers
        self.signInDeadline = signInDeadline
        self.idleTimeout = idleTimeout
        self.probeInterval = probeInterval
        self.probeTimeout = probeTimeout
        self.allowSignUp = allowSignUp
        self.callsPerMinute = callsPerMinute
    }
}

/// Why the server closed a connection: for its log line, with what the failure probably means.
public enum ServerCloseReason: Equatable, Sendable, CustomStringConvertible {
    case signedOut
    case clientClosed
    case closedInsideFrame
    case closedDuringHandshake
    case handshakeFailed(SecureChannelError)
    case firstFrameTooLong(Int)
    case noSignInBeforeDeadline
    case idle
    case stoppedAnswering
    case replaced
    case protocolError(String)
    case channelFailed(SecureChannelError)

    /// Routine ends (logged quietly) rather than failures worth a warning.
    public var isRoutine: Bool {
        switch self {
        case .signedOut, .clientClosed, .idle, .replaced: return true
        case .closedInsideFrame, .closedDuringHandshake, .handshakeFailed, .firstFrameTooLong, .noSignInBeforeDeadline,
             .stoppedAnswering, .protocolError, .channelFailed:
            return false
        }
    }

    public var description: String {
        switch self {
        case .signedOut: return "signed out"
        case .clientClosed: return "the client closed the connection"
        case .closedInsideFrame: return "the client closed the connection in the middle of a message"
        case .closedDuringHandshake: return "the client closed the connection during the handshake"
        case let .handshakeFailed(error):
            switch error {
            case .handshake: return "handshake failed: the client may have a wrong server key"
            case let .cipherNotAllowed(name): return "handshake refused: the client asked for \(name), which this server does not allow"
            case let .badHello(why): return "not a securechat client (\(why))"
            case let .framing(problem): return "broken framing during the handshake (\(problem))"
            case .decryption, .sealing, .unexpectedFrame, .refused, .closedDuringHandshake, .closed: return "handshake failed: \(error)"
            }
        case let .firstFrameTooLong(length): return "not a securechat client (a first message of \(length) bytes)"
        case .noSignInBeforeDeadline: return "no sign-in before the deadline (a stalled or idle client)"
        case .idle: return "idle past the timeout"
        case .stoppedAnswering: return "the client stopped answering keep-alives (frozen, asleep or gone)"
        case .replaced: return "replaced by a new sign-in of the same user"
        case let .protocolError(reason): return "protocol error: \(reason)"
        case let .channelFailed(error): return error == .decryption
            ? "a frame failed to decrypt: tampered with, replayed or corrupted on the way" : "\(error)"
        }
    }
}

/// How a sign-in check came out, as the server's store and limiter decided it.
public enum SignInVerdict: Equatable, Sendable {
    /// Granted; `previousKey` is the identity key this sign-in replaced (a new device), if any.
    case granted(previousKey: X25519PublicKey?)
    case wrongPasscode
    /// Too many failed sign-ins for this user from this address: `retryAfter` whole seconds.
    case lockedOut(retryAfter: Int)
    /// Too many checks in progress for this user or address: try again in a moment.
    case busy
    /// The store could not be read or written; not the client's fault, and not counted.
    case unavailable

    var reason: String? {
        switch self {
        case .granted: return nil
        case .wrongPasscode: return "wrong user ID or passcode"
        case let .lockedOut(seconds):
            let minutes = (seconds + 59) / 60
            return "locked out: too many failed sign-ins for this user from your address; try again in "
                + (seconds < 60 ? "\(max(seconds, 1)) s" : "\(minutes) minute\(minutes == 1 ? "" : "s")")
        case .busy: return "too many sign-ins in progress for this user or address; try again in a moment"
        case .unavailable: return "the server cannot check passcodes right now; try again later"
        }
    }
}

/// The server's state machine for one connection (PROTOCOL.md §4, §9): the first frame (a HELLO,
/// or a RELAY leg handed to the relay), handshake, sign-up and sign-in, lookups, lists in pages,
/// calls, presence, passcode changes, logout, deadlines and keep-alive probes. Requests that need
/// the store, the directory or the relay go out as actions; their answers come back through the
/// `…Answered` functions.
public struct ServerSession<Backend: CryptoBackend> {
    public typealias Configuration = ServerSessionConfiguration

    /// AUTHREQ's content, for the store and directory.
    public struct SignIn: Equatable, Sendable {
        public let userID: UserID
        public let passcode: String
        public let port: Int
        public let addresses: [Endpoint]
        public let identityKey: X25519PublicKey
        /// The peer takes CALLOFFER (a §9 peer).
        public let takesCallOffers: Bool

        public init(userID: UserID, passcode: String, port: Int, addresses: [Endpoint], identityKey: X25519PublicKey,
                    takesCallOffers: Bool = false) {
            self.userID = userID
            self.passcode = passcode
            self.port = port
            self.addresses = addresses
            self.identityKey = identityKey
            self.takesCallOffers = takesCallOffers
        }
    }

    public enum Action: Equatable {
        case send([UInt8])
        /// Close this connection, for `reason` (logged).
        case close(ServerCloseReason)
        /// The first frame asked for a relay leg (§9.5): hand the connection over, with the
        /// bytes that came after that frame. The session is done.
        case relay(token: String, pending: [UInt8])
        /// Check the passcode (limiter, then scrypt in constant time) and answer with
        /// `signInAnswered`. When granted the server records the user in its directory.
        case verifySignIn(SignIn)
        /// Create the account, durably, then answer with `signUpAnswered`.
        case createAccount(userID: UserID, passcode: String, identityKey: X25519PublicKey)
        /// Check `passcode` as at sign-in, store `newPasscode` durably, answer with `passwordAnswered`.
        case changePasscode(userID: UserID, passcode: String, newPasscode: String)
        /// Look up a signed-in user; answer with `lookupAnswered`.
        case lookup(UserID)
        /// List the signed-in users; answer with `listAnswered`.
        case list
        /// CALLREQ from the signed-in `caller`: offer the call to `callee` (CALLOFFER) and answer
        /// with `callAnswered`, at the same moment.
        case call(caller: UserID, callee: UserID)
        /// This session's user is no longer signed in here (logout, close, replaced).
        case signedOut(UserID)
    }

    private struct Opening { var pending: [UInt8] = [] }
    private struct Handshaking { var channel: SecureChannel<Backend> }
    private struct Ready {
        var channel: SecureChannel<Backend>
        var identityKey: X25519PublicKey
        var signedIn: UserID?
        /// The request sent out as an action and not yet answered; later requests wait in `queued`.
        var awaiting: Awaiting?
        var queued: [ControlMessage] = []
        var lastHeard: Instant
        /// When the server's KEEPALIVE went out, while no word has come since.
        var probeSentAt: Instant?
        /// The client answers KEEPALIVE (it said so at sign-in, or did so): silence after a probe means it is gone.
        var answersProbes = false
        /// CALLREQs in the current minute.
        var callWindow: (start: Instant, count: Int)?
    }
    private enum Awaiting: Equatable { case signIn(UserID), signUp, password, lookup, list, call }
    private enum State {
        case opening(Opening)
        case handshaking(Handshaking)
        case ready(Ready)
        case handedOver
        case closed
    }

    public let configuration: Configuration
    private let localStatic: X25519KeyPair
    private var state = State.opening(Opening())
    private let deadline: Instant
    /// Requests that may wait behind an unanswered one before the client is cut off.
    public static var maximumQueued: Int { 16 }
    /// The first frame is a HELLO or a RELAY, both far shorter: a longer one is not a client.
    public static var maximumFirstFrame: Int { 512 }

    public init(configuration: Configuration, localStatic: X25519KeyPair, acceptedAt: Instant) {
        self.configuration = configuration
        self.localStatic = localStatic
        deadline = acceptedAt.advanced(by: configuration.signInDeadline)
    }

    public var signedInUser: UserID? { if case let .ready(ready) = state { ready.signedIn } else { nil } }
    public var isClosed: Bool {
        switch state {
        case .closed, .handedOver: return true
        case .opening, .handshaking, .ready: return false
        }
    }

    /// When `tick` next has something to do: the sign-in deadline; once signed in, the next
    /// probe, a probe's expiry or the idle timeout; nil when closed.
    public var nextDeadline: Instant? {
        switch state {
        case .opening, .handshaking: return deadline
        case let .ready(ready):
            guard ready.signedIn != nil else { return deadline }
            let idle = ready.lastHeard.advanced(by: configuration.idleTimeout)
            guard let sent = ready.probeSentAt else { return min(idle, ready.lastHeard.advanced(by: configuration.probeInterval)) }
            return ready.answersProbes ? min(idle, sent.advanced(by: configuration.probeTimeout)) : idle
        case .handedOver, .closed: return nil
        }
    }

    // MARK: Events

    public mutating func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes, now: Instant) -> [Action] {
        switch state {
        case var .opening(opening):
            opening.pending.append(contentsOf: bytes)
            return open(opening, now: now)
        case var .handshaking(handshaking):
            let actions = handshake(&handshaking.channel, handshaking.channel.receive(bytes), now: now)
            if case .handshaking = state { state = .handshaking(handshaking) }
            return actions
        case var .ready(ready):
            var actions = [Action]()
            for channelAction in ready.channel.receive(bytes) {
                switch channelAction {
                case let .deliver(plaintext):
                    let message: ControlMessage
                    do { message = try ControlMessage.decode(plaintext) } catch { return actions + refuse(&ready, "\(error)") }
                    heard(&ready, now: now, keepAlive: message == .keepAlive)
                    // Handled at once when nothing is pending, so a burst of requests in one read
                    // only counts as in flight once they really wait.
                    if ready.awaiting == nil, ready.queued.isEmpty {
                        actions += handle(message, &ready, now: now)
                    } else {
                        ready.queued.append(message)
                        guard ready.queued.count <= Self.maximumQueued else { return actions + refuse(&ready, "too many requests in flight") }
                    }
                    if isClosed { return actions }
                case let .fail(error):
                    state = .ready(ready)
                    switch error {
                    case .closed: return actions + close(.clientClosed)
                    case .framing(.truncated): return actions + close(.closedInsideFrame)
                    default: return actions + close(.channelFailed(error))
                    }
                case .send, .established, .handshakeReceived:
                    break
                }
            }
            return commit(ready, actions)
        case .handedOver, .closed:
            return []
        }
    }

    public mutating func endOfStream() -> [Action] {
        switch state {
        case .opening:
            return close(.clientClosed)
        case var .handshaking(handshaking):
            _ = handshaking.channel.endOfStream()
            return close(.closedDuringHandshake)
        case var .ready(ready):
            if case .fail(.framing)? = ready.channel.endOfStream().first { return close(.closedInsideFrame) }
            return close(.clientClosed)
        case .handedOver, .closed:
            return []
        }
    }

    /// Deadlines: sign-in within `signInDeadline` of the accept; once signed in, probes and the
    /// idle timeout.
    public mutating func tick(now: Instant) -> [Action] {
        switch state {
        case .opening, .handshaking:
            return now >= deadline ? close(.noSignInBeforeDeadline) : []
        case var .ready(ready):
            guard ready.signedIn != nil else { return now >= deadline ? close(.noSignInBeforeDeadline) : [] }
            if now >= ready.lastHeard.advanced(by: configuration.idleTimeout) { return close(.idle) }
            if let sent = ready.probeSentAt {
                if ready.answersProbes, now >= sent.advanced(by: configuration.probeTimeout) { return close(.stoppedAnswering) }
                return []
            }
            guard now >= ready.lastHeard.advanced(by: configuration.probeInterval) else { return [] }
            ready.probeSentAt = now
            let actions = send(.keepAlive, &ready)
            return commit(ready, actions)
        case .handedOver, .closed:
            return []
        }
    }

    /// The answer to AUTHREQ; granted, `network` is where the server sees the client (ext).
    public mutating func signInAnswered(_ verdict: SignInVerdict, network: ControlMessage.PeerNetwork? = nil) -> [Action] {
        answer { awaiting, ready in
            guard case let .signIn(userID) = awaiting else { return nil }
            guard case let .granted(previousKey) = verdict else {
                return [.authReply(.init(userID: userID, status: .refused, reason: verdict.reason))]
            }
            ready.signedIn = userID
            return [.authReply(.init(userID: userID, status: .granted,
                                     extensions: ControlMessage.ServerExtension.allCases.map(\.rawValue),
                                     previousKey: previousKey.map { Base64.encode($0.bytes) }, network: network))]
        }
    }

    public mutating func signUpAnswered(_ status: ControlMessage.SignUpReply.Status, reason: String) -> [Action] {
        answer { awaiting, _ in awaiting == .signUp ? [.signUpReply(.init(status: status, reason: reason))] : nil }
    }

    /// The answer to a passcode change: `verdict` for the current passcode's check; `.granted`
    /// means the new one is stored durably.
    public mutating func passwordAnswered(_ verdict: SignInVerdict) -> [Action] {
        answer { awaiting, _ in
            guard awaiting == .password else { return nil }
            if case .granted = verdict { return [.passwordReply(.init(status: .changed, reason: ""))] }
            let reason = verdict == .wrongPasscode ? "the current passcode is wrong" : verdict.reason ?? "refused"
            return [.passwordReply(.init(status: .refused, reason: reason))]
        }
    }

    public mutating func lookupAnswered(_ reply: ControlMessage.EncodedLookupReply) -> [Action] {
        answer(encoded: { awaiting, _ in awaiting == .lookup ? [reply.plaintext] : nil })
    }

    /// The users signed in now, sent as LISTREPLY pages each within the 4096-byte limit.
    public mutating func listAnswered(_ users: [UserID]) -> [Action] {
        answer { awaiting, _ in awaiting == .list ? Self.listPages(users) : nil }
    }

    public mutating func callAnswered(_ reply: ControlMessage.CallReply) -> [Action] {
        answer { awaiting, _ in awaiting == .call ? [.callReply(reply)] : nil }
    }

    /// Sends the replies to the request in flight (nil: the answer does not match it, ignored),
    /// then goes on with requests that waited behind it.
    private mutating func answer(_ reply: (Awaiting, inout Ready) -> [ControlMessage]?) -> [Action] {
        answer(encoded: { awaiting, ready in reply(awaiting, &ready)?.map { $0.encoded() } })
    }

    /// `answer` with the replies already encoded (a lookup's, made once by the directory).
    private mutating func answer(encoded reply: (Awaiting, inout Ready) -> [[UInt8]]?) -> [Action] {
        guard case var .ready(ready) = state, let awaiting = ready.awaiting, let plaintexts = reply(awaiting, &ready) else { return [] }
        ready.awaiting = nil
        var actions = [Action]()
        for plaintext in plaintexts { actions += send(encoded: plaintext, &ready) }
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

    /// Someone calls this client (§9.3): send CALLOFFER, if it is still signed in.
    public mutating func callOffered(_ offer: ControlMessage.CallOffer) -> [Action] {
        guard case var .ready(ready) = state, ready.signedIn != nil else { return [] }
        let actions = send(.callOffer(offer), &ready)
        return commit(ready, actions)
    }

    /// The same user signed in on another connection: this one ends (without a sign-out, which
    /// would remove the new session from the directory).
    public mutating func replacedByNewSignIn() -> [Action] {
        guard case var .ready(ready) = state else { return [] }
        ready.signedIn = nil
        state = .ready(ready)
        let notice = send(.error(reason: Self.replacedReason), &ready)
        return notice + close(.replaced)
    }

    /// The ERROR reason a replaced session is told (the peer stops reconnecting on it).
    public static var replacedReason: String { "signed in from another connection" }

    // MARK: The first frame

    private mutating func open(_ opening: Opening, now: Instant) -> [Action] {
        let bytes = opening.pending
        guard bytes.count >= Framing.headerSize else {
            state = .opening(opening)
            return []
        }
        let length = Int(bytes[0]) << 8 | Int(bytes[1])
        guard length <= Self.maximumFirstFrame else { return close(.firstFrameTooLong(length)) }
        guard bytes.count >= Framing.headerSize + length else {
            state = .opening(opening)
            return []
        }
        let end = Framing.headerSize + length
        if case let .relay(token)? = try? ControlMessage.decode(Array(bytes[Framing.headerSize..<end])) {
            state = .handedOver
            return [.relay(token: token, pending: Array(bytes[end...]))]
        }
        var channel = SecureChannel<Backend>(responderWith: localStatic, allowed: configuration.allowedCiphers,
                                             maximumMessage: SecureChannel<Backend>.maximumControlFrame)
        let actions = handshake(&channel, channel.receive(bytes), now: now)
        if case .opening = state { state = .handshaking(Handshaking(channel: channel)) }
        return actions
    }

    /// Carries out the channel's handshake actions; moves to `ready` once the handshake is answered.
    private mutating func handshake(_ channel: inout SecureChannel<Backend>, _ channelActions: [SecureChannel<Backend>.Action],
                                    now: Instant) -> [Action] {
        var actions = [Action]()
        for channelAction in channelActions {
            switch channelAction {
            case let .handshakeReceived(remoteStatic, _):
                // Handshake payloads are empty on this channel (§4); anything else is ignored.
                for reply in channel.respond(payload: []) {
                    switch reply {
                    case let .send(bytes): actions.append(.send(bytes))
                    case let .fail(error): return actions + close(.handshakeFailed(error))
                    case .established, .deliver, .handshakeReceived: break
                    }
                }
                state = .ready(Ready(channel: channel, identityKey: remoteStatic, lastHeard: now))
            case let .send(bytes):
                actions.append(.send(bytes))
            case let .fail(error):
                return actions + close(error == .closed ? .closedDuringHandshake : .handshakeFailed(error))
            case .established, .deliver:
                break
            }
        }
        return actions
    }

    // MARK: Requests

    /// Any message is a sign of life; a KEEPALIVE after our probe shows the client answers them.
    private func heard(_ ready: inout Ready, now: Instant, keepAlive: Bool) {
        ready.lastHeard = now
        if ready.probeSentAt != nil {
            if keepAlive { ready.answersProbes = true }
            ready.probeSentAt = nil
        }
    }

    private mutating func processQueue(_ ready: inout Ready) -> [Action] {
        var actions = [Action]()
        while ready.awaiting == nil, !ready.queued.isEmpty, !isClosed {
            let message = ready.queued.removeFirst()
            actions += handle(message, &ready, now: ready.lastHeard)
        }
        return actions
    }

    private mutating func handle(_ message: ControlMessage, _ ready: inout Ready, now: Instant) -> [Action] {
        switch message {
        case let .authRequest(request):
            guard PasscodeDigest.isWellFormed(request.passcode) else {
                return send(.authReply(.init(userID: request.userID, status: .refused, reason: "malformed passcode digest")), &ready)
            }
            ready.awaiting = .signIn(request.userID)
            if request.extensions.contains(ControlMessage.ClientExtension.keepAlive.rawValue) { ready.answersProbes = true }
            var actions = [Action]()
            if let previous = ready.signedIn {  // signing in again on the same connection
                ready.signedIn = nil
                actions.append(.signedOut(previous))
            }
            return actions + [.verifySignIn(SignIn(userID: request.userID, passcode: request.passcode, port: request.port ?? 0,
                                                   addresses: request.addresses, identityKey: ready.identityKey,
                                                   takesCallOffers: request.extensions.contains(ControlMessage.ClientExtension.calls.rawValue)))]
        case let .signUpRequest(request):
            guard configuration.allowSignUp else {
                return send(.signUpReply(.init(status: .refused, reason: "sign-up is closed on this server")), &ready)
            }
            guard PasscodeDigest.isWellFormed(request.passcode) else {
                return send(.signUpReply(.init(status: .refused, reason: "malformed passcode digest")), &ready)
            }
            ready.awaiting = .signUp
            return [.createAccount(userID: request.userID, passcode: request.passcode, identityKey: ready.identityKey)]
        case let .passwordRequest(request):
            guard let user = ready.signedIn, user == request.userID else {
                return send(.passwordReply(.init(status: .refused, reason: "sign in as \(request.userID) first")), &ready)
            }
            guard PasscodeDigest.isWellFormed(request.passcode), PasscodeDigest.isWellFormed(request.newPasscode) else {
                return send(.passwordReply(.init(status: .refused, reason: "malformed passcode digest")), &ready)
            }
            ready.awaiting = .password
            return [.changePasscode(userID: user, passcode: request.passcode, newPasscode: request.newPasscode)]
        case let .lookupRequest(request):
            // Not signed in, or asking as someone else: NOTFOUND, as the seed says.
            guard let user = ready.signedIn, user == request.userID else {
                return send(encoded: ControlMessage.EncodedLookupReply.notFound.plaintext, &ready)
            }
            ready.awaiting = .lookup
            return [.lookup(request.lookup)]
        case let .listRequest(userID):
            guard let user = ready.signedIn, user == userID else { return send(.listReply(.init(users: [])), &ready) }
            ready.awaiting = .list
            return [.list]
        case let .callRequest(request):
            guard let user = ready.signedIn, user == request.userID else {
                return send(.callReply(.init(status: .notFound, reason: "sign in first")), &ready)
            }
            guard request.callee != user else { return send(.callReply(.init(status: .refused, reason: "you cannot call yourself")), &ready) }
            guard admitCall(&ready, now: now) else {
                return send(.callReply(.init(status: .refused, reason: "too many calls in a minute; wait a moment")), &ready)
            }
            ready.awaiting = .call
            return [.call(caller: user, callee: request.callee)]
        case let .logoutRequest(userID):
            guard let user = ready.signedIn, user == userID else {
                return send(.error(reason: "LOGOUTREQ for a user not signed in here"), &ready)
            }
            ready.signedIn = nil
            state = .ready(ready)
            return [.signedOut(user)] + close(.signedOut)
        case .keepAlive:
            return []
        case .hello, .authReply, .lookupReply, .signUpReply, .listReply, .presence, .error, .connectRequest, .connectReply,
             .passwordReply, .callReply, .callOffer, .relay:
            return refuse(&ready, "\(message.messageType) is not a request a client may send")
        }
    }

    private func admitCall(_ ready: inout Ready, now: Instant) -> Bool {
        if let window = ready.callWindow, now < window.start.advanced(by: .seconds(60)) {
            guard window.count < configuration.callsPerMinute else { return false }
            ready.callWindow = (window.start, window.count + 1)
        } else {
            ready.callWindow = (now, 1)
        }
        return true
    }

    /// LISTREPLY pages: as many users as fit under the size limit each, `more` on all but the last.
    static func listPages(_ users: [UserID]) -> [ControlMessage] {
        // The encoded size of a page: the fixed part, then `"id",` per user.
        let fixed = ControlMessage.listReply(.init(users: [], more: true)).encoded().count
        var pages = [[UserID]](), page = [UserID](), size = fixed
        for user in users {
            let cost = user.rawValue.utf8.count + 3
            if size + cost > ControlMessage.maximumSize, !page.isEmpty {
                pages.append(page)
                page = []
                size = fixed
            }
            page.append(user)
            size += cost
        }
        pages.append(page)
        return pages.enumerated().map { .listReply(.init(users: $0.element, more: $0.offset < pages.count - 1)) }
    }

    /// A protocol error: ERROR to the client, then close (PROTOCOL.md §4).
    private mutating func refuse(_ ready: inout Ready, _ reason: String) -> [Action] {
        state = .ready(ready)
        return send(.error(reason: reason), &ready) + close(.protocolError(reason))
    }

    private func send(_ message: ControlMessage, _ ready: inout Ready) -> [Action] {
        send(encoded: message.encoded(), &ready)
    }

    private func send(encoded plaintext: [UInt8], _ ready: inout Ready) -> [Action] {
        guard let frame = try? ready.channel.seal(plaintext) else { return [] }
        return [.send(frame)]
    }

    private mutating func commit(_ ready: Ready, _ actions: [Action]) -> [Action] {
        if case .ready = state { state = .ready(ready) }
        return actions
    }

    private mutating func close(_ reason: ServerCloseReason) -> [Action] {
        let signedIn = signedInUser
        state = .closed
        return (signedIn.map { [Action.signedOut($0)] } ?? []) + [.close(reason)]
    }
}
