import SecureChatCrypto

/// Why a responder refuses a call; the text goes in CONNECTREPLY's `reason`.
public enum CallRefusal: String, Sendable, CaseIterable {
    case notSignedIn = "the caller is not signed in"
    case addressMismatch = "the caller's address does not match the server's record"
    case keyMismatch = "the caller's key does not match the server's record"
    case pinnedKeyChanged = "the caller's key differs from the key pinned for them"
    case busy = "busy"
    /// The user was asked (config `answer = ask`) and said no, or did not answer in time.
    case declined = "declined"
}


/// One direct peer-to-peer connection (PROTOCOL.md §5), as the caller (initiator) or the called
/// (responder). The responder checks the caller against its own lookup before answering:
/// signed in, same address, same key, pinned key agrees, and not busy.
public struct PeerConnection<Backend: CryptoBackend> {
    public enum Action: Equatable {
        case send([UInt8])
        /// Responder: look `user` up on the server and answer with `lookupAnswered`.
        case lookUp(UserID)
        case connected(UserID)
        /// The call did not go through; `reason` says why (ours or theirs).
        case refused(reason: String)
        /// A TEXT line from the other side.
        case received(String)
        /// The other side hung up.
        case hungUp
        /// Close the TCP connection; `reason` is for the user and the log.
        case close(reason: String)
    }

    private struct Calling { var channel: SecureChannel<Backend>; let callee: UserID }
    private struct Answering { var channel: SecureChannel<Backend>; let sourceAddress: String }
    private struct CheckingCaller { var channel: SecureChannel<Backend>; let caller: UserID; let key: X25519PublicKey; let sourceAddress: String }
    private struct Chatting { var channel: SecureChannel<Backend>; let peer: UserID }
    private enum State {
        case calling(Calling)
        case answering(Answering)
        case checkingCaller(CheckingCaller)
        case chatting(Chatting)
        case closed
    }

    private var state: State

    /// Calls `callee` (whose key came from the server): returns the connection and the first bytes.
    public static func call(from caller: UserID, identity: X25519KeyPair, to callee: UserID, calleeKey: X25519PublicKey,
                            cipher: CipherKind) throws -> (PeerConnection, [UInt8]) {
        let request = ControlMessage.connectRequest(initiator: caller).encoded()
        let (channel, bytes) = try SecureChannel<Backend>.initiator(cipher: cipher, localStatic: identity, remoteStatic: calleeKey,
                                                                    payload: request)
        return (PeerConnection(state: .calling(Calling(channel: channel, callee: callee))), bytes)
    }

    /// Answers a connection accepted from `sourceAddress` (the TCP peer's IP address).
    public init(answeringWith identity: X25519KeyPair, allowed: [CipherKind], sourceAddress: String) {
        state = .answering(Answering(channel: SecureChannel(responderWith: identity, allowed: allowed), sourceAddress: sourceAddress))
    }

    private init(state: State) { self.state = state }

    public var peer: UserID? {
        switch state {
        case let .chatting(chatting): return chatting.peer
        case let .calling(calling): return calling.callee
        case let .checkingCaller(checking): return checking.caller
        case .answering, .closed: return nil
        }
    }

    public var isChatting: Bool { if case .chatting = state { true } else { false } }

    // MARK: Events

    public mutating func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> [Action] {
        switch state {
        case var .calling(calling):
            defer { if case .calling = state { state = .calling(calling) } }
            return process(calling.channel.receive(bytes), channel: &calling.channel)
        case var .answering(answering):
            defer { if case .answering = state { state = .answering(answering) } }
            var actions = [Action]()
            for action in answering.channel.receive(bytes) {
                switch action {
                case let .handshakeReceived(remoteStatic, payload):
                    guard case let .connectRequest(caller)? = try? ControlMessage.decode(payload) else {
                        return close("the caller did not send CONNECTREQ")
                    }
                    state = .checkingCaller(CheckingCaller(channel: answering.channel, caller: caller, key: remoteStatic,
                                                           sourceAddress: answering.sourceAddress))
                    actions.append(.lookUp(caller))
                case let .fail(error):
                    return actions + close("\(error)")
                case .send, .established, .deliver:
                    break
                }
            }
            return actions
        case var .checkingCaller(checking):
            // Nothing may arrive before we answer; the channel reports it as an error.
            defer { if case .checkingCaller = state { state = .checkingCaller(checking) } }
            return process(checking.channel.receive(bytes), channel: &checking.channel)
        case var .chatting(chatting):
            defer { if case .chatting = state { state = .chatting(chatting) } }
            return process(chatting.channel.receive(bytes), channel: &chatting.channel)
        case .closed:
            return []
        }
    }

    /// The responder's lookup came back: check the caller and answer (PROTOCOL.md §5.2–3).
    public mutating func lookupAnswered(_ reply: ControlMessage.LookupReply, pinnedKey: X25519PublicKey?, busy: Bool) -> [Action] {
        answer(refusal: check(reply, pinnedKey: pinnedKey, busy: busy))
    }

    /// The checks of PROTOCOL.md §5.2 for the caller being checked: nil when all hold. For a peer
    /// that asks its user first: check, ask, then `answer`.
    public func check(_ reply: ControlMessage.LookupReply, pinnedKey: X25519PublicKey?, busy: Bool) -> CallRefusal? {
        guard case let .checkingCaller(checking) = state else { return .notSignedIn }
        guard let found = reply.found, found.answer == checking.caller else { return .notSignedIn }
        if found.address != checking.sourceAddress { return .addressMismatch }
        if Base64.decode(found.encryptionKey) != checking.key.bytes { return .keyMismatch }
        if let pinnedKey, pinnedKey != checking.key { return .pinnedKeyChanged }
        return busy ? .busy : nil
    }

    /// Accepts the call (nil) or refuses it, with CONNECTREPLY in handshake message 2.
    public mutating func answer(refusal: CallRefusal?) -> [Action] {
        guard case var .checkingCaller(checking) = state else { return [] }
        let reply = ControlMessage.connectReply(.init(status: refusal == nil ? .accepted : .refused, reason: refusal?.rawValue))
        var actions = [Action]()
        for action in checking.channel.respond(payload: reply.encoded()) {
            if case let .send(bytes) = action { actions.append(.send(bytes)) }
            if case let .fail(error) = action { return actions + close("\(error)") }
        }
        if let refusal {
            state = .closed
            return actions + [.refused(reason: refusal.rawValue), .close(reason: "refused \(checking.caller): \(refusal.rawValue)")]
        }
        state = .chatting(Chatting(channel: checking.channel, peer: checking.caller))
        return actions + [.connected(checking.caller)]
    }

    /// Sends one line of text.
    public mutating func sendText(_ line: String) -> [Action] {
        guard case var .chatting(chatting) = state else { return [] }
        var frame = [UInt8](repeating: 0, count: Framing.headerSize + 1 + line.utf8.count + AEADSize.tag)
        do {
            let count = try frame.withUnsafeMutableBytes { out in
                try Array(line.utf8).withUnsafeBytes { body in try Self.sealRecord(.text, body: body, channel: &chatting.channel, into: out) }
            }
            state = .chatting(chatting)
            return [.send(Array(frame.prefix(count)))]
        } catch {
            state = .chatting(chatting)
            return close("cannot send: \(error)")
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

    /// Hangs up: HANGUP to the other side, then close (PROTOCOL.md §5.5).
    public mutating func hangUp() -> [Action] {
        switch state {
        case var .chatting(chatting):
            var frame = [UInt8](repeating: 0, count: Framing.headerSize + 1 + AEADSize.tag)
            let sent = try? frame.withUnsafeMutableBytes { out in
                try Self.sealRecord(.hangUp, body: UnsafeRawBufferPointer(start: nil, count: 0), channel: &chatting.channel, into: out)
            }
            state = .closed
            return (sent.map { _ in [Action.send(frame)] } ?? []) + [.close(reason: "hung up")]
        case .calling, .answering, .checkingCaller:
            return close("call abandoned")
        case .closed:
            return []
        }
    }

    public mutating func endOfStream() -> [Action] {
        switch state {
        case .chatting: return close("the other side closed the connection")
        case .calling: return close("the other side closed the connection before answering")
        case .answering, .checkingCaller: return close("the caller went away")
        case .closed: return []
        }
    }

    private mutating func process(_ channelActions: [SecureChannel<Backend>.Action], channel: inout SecureChannel<Backend>) -> [Action] {
        var actions = [Action]()
        for action in channelActions {
            switch action {
            case let .established(payload):
                guard case let .calling(calling) = state else { return actions + close("unexpected handshake") }
                guard case let .connectReply(reply)? = try? ControlMessage.decode(payload) else {
                    return actions + close("the other side did not answer with CONNECTREPLY")
                }
                guard reply.status == .accepted else {
                    state = .closed
                    return actions + [.refused(reason: reply.reason ?? "refused"), .close(reason: "refused")]
                }
                state = .chatting(Chatting(channel: channel, peer: calling.callee))
                actions.append(.connected(calling.callee))
            case let .deliver(plaintext):
                let record = plaintext.withUnsafeBytes { raw -> Result<(ChatRecordType, String), any Error> in
                    do {
                        let (type, body) = try ChatRecord.decode(raw)
                        return .success((type, String(decoding: body, as: UTF8.self)))
                    } catch { return .failure(error) }
                }
                switch record {
                case let .success((.text, line)): actions.append(.received(line))
                case .success((.keepAlive, _)): break
                case .success((.hangUp, _)):
                    state = .closed
                    return actions + [.hungUp, .close(reason: "the other side hung up")]
                case let .failure(error):
                    return actions + close("bad chat record: \(error)")
                }
            case let .fail(error):
                return actions + close(error == .decryption ? "a frame was tampered with, replayed or reordered" : "\(error)")
            case .send, .handshakeReceived:
                break
            }
        }
        return actions
    }

    private mutating func close(_ reason: String) -> [Action] {
        state = .closed
        return [.close(reason: reason)]
    }
}
