import SecureChatCrypto

/// Why a callee refuses a call; the text goes in CONNECTREPLY's `reason`.
public enum CallRefusal: String, Sendable, CaseIterable {
    /// Not signed in, or not with the key of this handshake. One reason for both, so that a
    /// caller without the user's key learns nothing, not even whether the user is online.
    case notVerified = "the caller could not be verified with the server"
    case addressMismatch = "the caller's address does not match the server's record"
    case pinnedKeyChanged = "the caller's key differs from the key pinned for them"
    case busy = "busy"
    /// The user was asked (config `answer = ask`) and said no, or did not answer in time.
    case declined = "declined"
}

/// What the callee knows about a caller from the server (CALLOFFER, or its own LOOKUPREPLY for a
/// §5 caller), to check a connection that claims to come from them (§5.2, §9.6).
public struct CallerRecord: Equatable, Sendable {
    public let user: UserID
    /// The key the server has for the caller.
    public let key: X25519PublicKey
    /// Source IPs a connection accepted from the caller may have: the observed one and the
    /// caller's candidates.
    public let addresses: Set<IPAddress>

    public init(user: UserID, key: X25519PublicKey, addresses: Set<IPAddress>) {
        self.user = user
        self.key = key
        self.addresses = addresses
    }

    /// From a §5 LOOKUPREPLY for `user`; nil when it does not describe them.
    public init?(lookup reply: ControlMessage.LookupReply, for user: UserID) {
        guard let found = reply.found, found.answer == user,
              let key = Base64.decode(found.encryptionKey).flatMap({ try? X25519PublicKey(bytes: $0) }) else { return nil }
        var addresses = Set(found.candidates.map(\.address))
        if let address = IPAddress(found.address) { addresses.insert(address) }
        self.init(user: user, key: key, addresses: addresses)
    }
}

/// How a connection came to be, for the callee's address check (§9.6).
public enum ConnectionOrigin: Equatable, Sendable {
    /// Accepted by our listener from this source address.
    case accepted(from: IPAddress)
    /// Dialled by us to one of the caller's candidates (or met in a simultaneous open).
    case dialled
    /// Our relay leg for this call, paired by the server.
    case relay
}

/// Time limits of one peer connection (each configurable through the peer's settings).
public struct PeerTimeouts: Equatable, Sendable {
    /// From accepting a connection to its handshake message 1.
    public var handshake: Duration = .seconds(10)
    /// Caller: from message 1 to the answer (the callee may be asking its user).
    public var answer: Duration = .seconds(40)
    /// Callee: from ACCEPTED to the caller's first record, which proves the caller holds the
    /// keys (a replayed message 1 never sends it).
    public var confirmation: Duration = .seconds(10)
    /// A chat sends KEEPALIVE after this long without sending anything…
    public var keepAlive: Duration = .seconds(10)
    /// …and ends after this long without hearing anything.
    public var silence: Duration = .seconds(35)

    public init() {}
}

/// Why a peer connection closed, for what the user is told.
public enum PeerCloseReason: Equatable, Sendable, CustomStringConvertible {
    case hungUpHere
    case hungUpThere
    case closedThere
    /// Nothing heard for `seconds`: the other side froze, slept or vanished.
    case silent(seconds: Int64)
    case tampered
    case broken(String)
    case refusedHere(CallRefusal)
    case refusedThere(String)
    case handshakeFailed(SecureChannelError)
    /// Accepted, but no handshake came in time.
    case noHandshake
    /// Accepted the call, but the caller never proved it holds the keys (a replay?).
    case notConfirmed
    /// Called, but no answer came in time.
    case noAnswer
    /// Dropped by us: another connection carries the call, or the call was given up.
    case abandoned

    public var description: String {
        switch self {
        case .hungUpHere: return "hung up"
        case .hungUpThere: return "the other side hung up"
        case .closedThere: return "the other side closed the connection"
        case let .silent(seconds): return "no word from the other side for \(seconds) s (frozen, asleep or gone)"
        case .tampered: return "a message was tampered with, replayed or reordered on the way"
        case let .broken(why): return "the other side broke the protocol (\(why))"
        case let .refusedHere(refusal): return "refused: \(refusal.rawValue)"
        case let .refusedThere(reason): return "refused: \(reason)"
        case let .handshakeFailed(error): return "the handshake failed (\(error))"
        case .noHandshake: return "no handshake in time"
        case .notConfirmed: return "the caller never confirmed the call"
        case .noAnswer: return "no answer in time"
        case .abandoned: return "not needed"
        }
    }
}

/// One peer-to-peer connection (PROTOCOL.md §5, §9), as the caller (always the Noise initiator,
/// whoever opened the TCP connection) or the callee (the responder). The callee checks the
/// caller (`CallerRecord`) before answering, then waits for the caller's first record before it
/// reports the call. Chats send keep-alives and end after a silence. Time comes in as `Instant`s.
public struct PeerConnection<Backend: CryptoBackend> {
    public enum Action: Equatable {
        case send([UInt8])
        /// Callee: message 1 arrived from `user` with `key`; check them and `answer`.
        case checkCaller(user: UserID, key: X25519PublicKey)
        case connected(UserID)
        /// A TEXT line from the other side.
        case received(String)
        /// Close the TCP connection.
        case close(PeerCloseReason)
    }

    private struct Calling { var channel: SecureChannel<Backend>; let callee: UserID }
    private struct Answering { var channel: SecureChannel<Backend>; let origin: ConnectionOrigin }
    private struct CheckingCaller {
        var channel: SecureChannel<Backend>
        let caller: UserID
        let key: X25519PublicKey
        let origin: ConnectionOrigin
    }
    private struct Confirming { var channel: SecureChannel<Backend>; let caller: UserID }
    private struct Chatting { var channel: SecureChannel<Backend>; let peer: UserID; var lastSent: Instant; var lastHeard: Instant }
    private enum State {
        case calling(Calling)
        case answering(Answering)
        case checkingCaller(CheckingCaller)
        case confirming(Confirming)
        case chatting(Chatting)
        case closed(PeerCloseReason)
    }

    private var state: State
    private let timeouts: PeerTimeouts
    /// When the current state's time runs out (none while checking: the user may be asked).
    private var deadline: Instant?

    /// Calls `callee` (whose key came from the server): returns the connection and the first bytes.
    /// `ephemeral`: a key made ahead for message 1 (while the server answered), else made now.
    public static func call(from caller: UserID, identity: X25519KeyPair, to callee: UserID, calleeKey: X25519PublicKey,
                            cipher: CipherKind, ephemeral: X25519KeyPair? = nil, timeouts: PeerTimeouts = PeerTimeouts(),
                            now: Instant) throws -> (PeerConnection, [UInt8]) {
        call(try prepareCall(from: caller, identity: identity, to: callee, calleeKey: calleeKey, cipher: cipher, ephemeral: ephemeral),
             timeouts: timeouts, now: now)
    }

    /// A caller's message 1 written ahead: to a callee whose key is pinned, while the server
    /// answers CALLREQ, so that its DH is off the call's critical path. Not copyable, as its
    /// handshake state may serve one connection only; its time starts when a call takes it.
    public struct PreparedCall: ~Copyable {
        fileprivate let channel: SecureChannel<Backend>
        fileprivate let firstMessage: [UInt8]
        public let callee: UserID
        public let calleeKey: X25519PublicKey
    }

    public static func prepareCall(from caller: UserID, identity: X25519KeyPair, to callee: UserID, calleeKey: X25519PublicKey,
                                   cipher: CipherKind, ephemeral: X25519KeyPair? = nil) throws -> PreparedCall {
        let request = ControlMessage.connectRequest(initiator: caller).encoded()
        let (channel, bytes) = try SecureChannel<Backend>.initiator(cipher: cipher, localStatic: identity, remoteStatic: calleeKey,
                                                                    payload: request, ephemeral: ephemeral)
        return PreparedCall(channel: channel, firstMessage: bytes, callee: callee, calleeKey: calleeKey)
    }

    /// Calls with a message 1 written ahead: the connection and its first bytes.
    public static func call(_ prepared: consuming PreparedCall, timeouts: PeerTimeouts = PeerTimeouts(),
                            now: Instant) -> (PeerConnection, [UInt8]) {
        let connection = PeerConnection(state: .calling(Calling(channel: prepared.channel, callee: prepared.callee)), timeouts: timeouts,
                                        deadline: now.advanced(by: timeouts.answer))
        return (connection, prepared.firstMessage)
    }

    /// Answers a connection of `origin`.
    public init(answeringWith identity: X25519KeyPair, allowed: [CipherKind], origin: ConnectionOrigin,
                timeouts: PeerTimeouts = PeerTimeouts(), now: Instant) {
        self.init(state: .answering(Answering(channel: SecureChannel(responderWith: identity, allowed: allowed), origin: origin)),
                  timeouts: timeouts, deadline: now.advanced(by: timeouts.handshake))
    }

    private init(state: State, timeouts: PeerTimeouts, deadline: Instant?) {
        self.state = state
        self.timeouts = timeouts
        self.deadline = deadline
    }

    /// The other side, once known: the callee, or the caller once message 1 named them.
    public var peer: UserID? {
        switch state {
        case let .chatting(chatting): return chatting.peer
        case let .calling(calling): return calling.callee
        case let .checkingCaller(checking): return checking.caller
        case let .confirming(confirming): return confirming.caller
        case .answering, .closed: return nil
        }
    }

    public var isChatting: Bool { if case .chatting = state { true } else { false } }
    /// Whether this connection holds a call being answered or carried: the peer is busy.
    public var holdsCall: Bool {
        switch state {
        case .confirming, .chatting: return true
        case .calling, .answering, .checkingCaller, .closed: return false
        }
    }
    public var isClosed: Bool { if case .closed = state { true } else { false } }

    /// Answering, and nothing came yet: an initiator sends HELLO at once, a callee's dial to
    /// its caller sends nothing (the caller is the initiator on it).
    public var isQuietAnswer: Bool {
        if case let .answering(answering) = state { answering.channel.hasReceivedNothing } else { false }
    }

    /// When `tick` next has something to do.
    public var nextDeadline: Instant? {
        guard case let .chatting(chatting) = state else { return deadline }
        return min(chatting.lastSent.advanced(by: timeouts.keepAlive), chatting.lastHeard.advanced(by: timeouts.silence))
    }

    // MARK: Events

    public mutating func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes, now: Instant) -> [Action] {
        switch state {
        case var .calling(calling):
            defer { if case .calling = state { state = .calling(calling) } }
            return process(calling.channel.receive(bytes), channel: &calling.channel, now: now)
        case var .answering(answering):
            defer { if case .answering = state { state = .answering(answering) } }
            var actions = [Action]()
            for action in answering.channel.receive(bytes) {
                switch action {
                case let .handshakeReceived(remoteStatic, payload):
                    guard case let .connectRequest(caller)? = try? ControlMessage.decode(payload) else {
                        return actions + close(.broken("message 1 did not carry CONNECTREQ"))
                    }
                    state = .checkingCaller(CheckingCaller(channel: answering.channel, caller: caller, key: remoteStatic,
                                                           origin: answering.origin))
                    deadline = nil
                    actions.append(.checkCaller(user: caller, key: remoteStatic))
                case let .send(bytes):
                    actions.append(.send(bytes))
                case let .fail(error):
                    return actions + close(error == .closed ? .closedThere : .handshakeFailed(error))
                case .established, .deliver:
                    break
                }
            }
            return actions
        case var .checkingCaller(checking):
            // Nothing may arrive before we answer; the channel reports it as an error.
            defer { if case .checkingCaller = state { state = .checkingCaller(checking) } }
            return process(checking.channel.receive(bytes), channel: &checking.channel, now: now)
        case var .confirming(confirming):
            defer { if case .confirming = state { state = .confirming(confirming) } }
            return process(confirming.channel.receive(bytes), channel: &confirming.channel, now: now)
        case var .chatting(chatting):
            chatting.lastHeard = now
            defer { if case .chatting = state { state = .chatting(chatting) } }
            return process(chatting.channel.receive(bytes), channel: &chatting.channel, now: now)
        case .closed:
            return []
        }
    }

    /// The checks of §5.2 and §9.6 for the caller being checked, in an order that tells a caller
    /// without the user's key nothing: nil when all hold. For a peer that asks its user first:
    /// check, ask, then `answer`.
    public func check(_ record: CallerRecord?, pinnedKey: X25519PublicKey?, busy: Bool) -> CallRefusal? {
        guard case let .checkingCaller(checking) = state else { return .notVerified }
        guard let record, record.user == checking.caller, record.key == checking.key else { return .notVerified }
        if case let .accepted(source) = checking.origin, !record.addresses.contains(source) { return .addressMismatch }
        if let pinnedKey, pinnedKey != checking.key { return .pinnedKeyChanged }
        return busy ? .busy : nil
    }

    /// Accepts the call (nil) or refuses it, with CONNECTREPLY in handshake message 2 (sent with
    /// `ephemeral` when one was made ahead; it is taken only when message 2 is written, so a
    /// connection with nothing to answer leaves it for the next). Accepted, it waits for the
    /// caller's first record before it reports `connected`.
    public mutating func answer(refusal: CallRefusal?, ephemeral: @autoclosure () -> X25519KeyPair? = nil, now: Instant) -> [Action] {
        guard case var .checkingCaller(checking) = state else { return [] }
        let reply = ControlMessage.connectReply(.init(status: refusal == nil ? .accepted : .refused, reason: refusal?.rawValue))
        var actions = [Action]()
        for action in checking.channel.respond(payload: reply.encoded(), ephemeral: ephemeral()) {
            if case let .send(bytes) = action { actions.append(.send(bytes)) }
            if case let .fail(error) = action { return actions + close(.handshakeFailed(error)) }
        }
        if let refusal { return actions + close(.refusedHere(refusal)) }
        state = .confirming(Confirming(channel: checking.channel, caller: checking.caller))
        deadline = now.advanced(by: timeouts.confirmation)
        return actions
    }

    /// Sends one line of text.
    public mutating func sendText(_ line: String, now: Instant) -> [Action] {
        var body = Array(line.utf8)
        defer { body.withUnsafeMutableBytes(secureWipe) }
        return body.withUnsafeBytes { sendRecord(.text, body: $0, now: now) }
    }

    /// Hangs up: HANGUP to the other side, then close (PROTOCOL.md §5.5).
    public mutating func hangUp(now: Instant) -> [Action] {
        switch state {
        case .chatting:
            let sent = sendRecord(.hangUp, body: UnsafeRawBufferPointer(start: nil, count: 0), now: now)
            return sent.filter { if case .send = $0 { true } else { false } } + close(.hungUpHere)
        case .calling, .answering, .checkingCaller, .confirming:
            return close(.abandoned)
        case .closed:
            return []
        }
    }

    /// Drops the connection without a word (another one carries the call, or the call was given up).
    public mutating func abandon() -> [Action] {
        if case .closed = state { return [] }
        return close(.abandoned)
    }

    public mutating func endOfStream() -> [Action] {
        switch state {
        case .chatting, .calling, .answering, .checkingCaller, .confirming: return close(.closedThere)
        case .closed: return []
        }
    }

    /// Deadlines: the handshake, the answer, the caller's confirmation; in a chat, keep-alives
    /// and the silence limit.
    public mutating func tick(now: Instant) -> [Action] {
        switch state {
        case let .chatting(chatting):
            if now >= chatting.lastHeard.advanced(by: timeouts.silence) {
                return close(.silent(seconds: timeouts.silence.components.seconds))
            }
            guard now >= chatting.lastSent.advanced(by: timeouts.keepAlive) else { return [] }
            return sendRecord(.keepAlive, body: UnsafeRawBufferPointer(start: nil, count: 0), now: now)
        case .calling:
            return (deadline.map { now >= $0 } ?? false) ? close(.noAnswer) : []
        case .answering:
            return (deadline.map { now >= $0 } ?? false) ? close(.noHandshake) : []
        case .confirming:
            return (deadline.map { now >= $0 } ?? false) ? close(.notConfirmed) : []
        case .checkingCaller, .closed:
            return []
        }
    }

    /// Encodes and seals one chat record as a frame in `output`, in place, with no heap
    /// allocation (the chat record path); returns the frame length.
    public static func sealRecord(_ type: ChatRecordType, body: UnsafeRawBufferPointer, channel: inout SecureChannel<Backend>,
                                  into output: UnsafeMutableRawBufferPointer) throws -> Int {
        let recordArea = UnsafeMutableRawBufferPointer(rebasing: output[Framing.headerSize...])
        let recordCount = try ChatRecord.encode(type, body: body, into: recordArea)
        return try channel.sealFrame(UnsafeRawBufferPointer(rebasing: recordArea[..<recordCount]), into: output)
    }

    /// Opens one sealed chat record (a frame's payload) into `output` and validates it, with no
    /// heap allocation; the body is a view into `output`. The counterpart of `sealRecord`.
    public static func openRecord(_ ciphertext: UnsafeRawBufferPointer, channel: inout SecureChannel<Backend>,
                                  into output: UnsafeMutableRawBufferPointer) throws -> (ChatRecordType, UnsafeRawBufferPointer) {
        let count = try channel.openMessage(ciphertext, into: output)
        return try ChatRecord.decode(UnsafeRawBufferPointer(rebasing: output[..<count]))
    }

    /// Seals one record on the chat's channel (the caller's first record confirms the call).
    private mutating func sendRecord(_ type: ChatRecordType, body: UnsafeRawBufferPointer, now: Instant) -> [Action] {
        guard case var .chatting(chatting) = state else { return [] }
        var frame = [UInt8](repeating: 0, count: Framing.headerSize + 1 + body.count + AEADSize.tag)
        do {
            let count = try frame.withUnsafeMutableBytes { out in try Self.sealRecord(type, body: body, channel: &chatting.channel, into: out) }
            chatting.lastSent = now
            state = .chatting(chatting)
            return [.send(Array(frame.prefix(count)))]
        } catch {
            state = .chatting(chatting)
            return close(.broken("cannot send: \(error)"))
        }
    }

    private mutating func process(_ channelActions: [SecureChannel<Backend>.Action], channel: inout SecureChannel<Backend>,
                                  now: Instant) -> [Action] {
        var actions = [Action]()
        for action in channelActions {
            switch action {
            case let .established(payload):
                guard case let .calling(calling) = state else { return actions + close(.broken("an unexpected handshake")) }
                guard case let .connectReply(reply)? = try? ControlMessage.decode(payload) else {
                    return actions + close(.broken("message 2 did not carry CONNECTREPLY"))
                }
                guard reply.status == .accepted else { return actions + close(.refusedThere(reply.reason ?? "refused")) }
                state = .chatting(Chatting(channel: channel, peer: calling.callee, lastSent: now, lastHeard: now))
                deadline = nil
                actions.append(.connected(calling.callee))
                // The first record proves to the callee that we hold the keys (key confirmation).
                actions += sendRecord(.keepAlive, body: UnsafeRawBufferPointer(start: nil, count: 0), now: now)
                if case .chatting(let chatting) = state { channel = chatting.channel }
            case let .deliver(plaintext):
                if case let .confirming(confirming) = state {
                    state = .chatting(Chatting(channel: channel, peer: confirming.caller, lastSent: now, lastHeard: now))
                    deadline = nil
                    actions.append(.connected(confirming.caller))
                }
                let record = plaintext.withUnsafeBytes { raw -> Result<(ChatRecordType, String), any Error> in
                    do {
                        let (type, body) = try ChatRecord.decode(raw)
                        return .success((type, String(decoding: body, as: UTF8.self)))
                    } catch { return .failure(error) }
                }
                switch record {
                case let .success((.text, line)): actions.append(.received(line))
                case .success((.keepAlive, _)): break
                case .success((.hangUp, _)): return actions + close(.hungUpThere)
                case let .failure(error): return actions + close(.broken("a bad chat record: \(error)"))
                }
            case let .fail(error):
                switch error {
                case .decryption: return actions + close(.tampered)
                case .closed: return actions + close(.closedThere)
                default: return actions + close(.handshakeFailed(error))
                }
            case let .send(bytes):
                actions.append(.send(bytes))
            case .handshakeReceived:
                break
            }
        }
        return actions
    }

    private mutating func close(_ reason: PeerCloseReason) -> [Action] {
        state = .closed(reason)
        deadline = nil
        return [.close(reason)]
    }
}
