import NIOCore
import NIOPosix
import SecureChatCore
import SecureChatCrypto

/// `securechat peer`: the server connection (a `ClientSession`), the listener for direct calls,
/// and the calls themselves (`PeerConnection`s), all on one event loop so that the state is plain
/// values with no locks. Commands come in with `submit`; what the user should see goes out as
/// `PeerEvent`s. A chat does not pass through the server and survives losing it.
public final class PeerNode<Backend: CryptoBackend> {
    private struct Call {
        var connection: PeerConnection<Backend>
        let channel: any Channel
        let outgoing: Bool
        /// The callee, or the caller once their CONNECTREQ arrived. Kept here because the
        /// connection forgets it when it closes, and closing is when we need it.
        var peer: UserID?
        var chatting = false
        /// Ended by a HANGUP from either side, not by a fault worth telling the user about.
        var hungUp = false
        /// The caller's key as the server gave it (and the handshake proved): pinned on first contact.
        var callerKey: X25519PublicKey?
        /// A checked call waiting for /accept or /reject (config `answer = ask`).
        var awaitingUser = false
    }

    private let configuration: PeerConfiguration
    private let eventLoop: any EventLoop
    private let emit: @Sendable (PeerEvent) -> Void
    private var passcodeDigest: String
    /// The pinned keys while there is no server connection. While there is one, its session
    /// holds them (it checks them and pins new ones), and they come back here when it ends.
    private var pinnedWithoutSession: [UserID: X25519PublicKey]
    private var pinnedKeys: [UserID: X25519PublicKey] { session?.pinnedKeys ?? pinnedWithoutSession }

    private var session: ClientSession<Backend>?
    private var serverChannel: (any Channel)?
    private var listener: (any Channel)?
    private var listeningPort: Int { listener?.localAddress?.port ?? 0 }
    /// Connections by id: the chat, a call being placed, callers being checked.
    private var calls: [Int: Call] = [:]
    private var nextCallID = 0
    private var failedAttempts = 0
    private var signedInOnce = false
    private var stopping = false
    private var keepAlive: RepeatedTask?
    private var reconnect: Scheduled<Void>?

    /// Starts the peer on `eventLoop`: listen, then connect and sign in. Events go to `emit`.
    public static func start(configuration: PeerConfiguration, eventLoop: any EventLoop,
                             emit: @escaping @Sendable (PeerEvent) -> Void) -> EventLoopFuture<Handle> {
        eventLoop.flatSubmit {
            let pinned: [UserID: X25519PublicKey]
            do { pinned = try KnownPeers.load(configuration.knownPeersPath) } catch { return eventLoop.makeFailedFuture(error) }
            let node = PeerNode(configuration: configuration, eventLoop: eventLoop, pinnedKeys: pinned, emit: emit)
            let handle = Handle(node: node.loopBound)
            return node.listen().map { handle }
        }
    }

    /// How other threads reach the node: everything hops to its event loop.
    public struct Handle: Sendable {
        fileprivate let node: NIOLoopBound<PeerNode>

        public func submit(_ command: PeerRequest) { node.eventLoop.execute { node.value.handle(command) } }

        /// After `signInRefused`: try again with another passcode digest.
        public func retrySignIn(passcodeDigest: String) {
            node.eventLoop.execute {
                node.value.passcodeDigest = passcodeDigest
                node.value.connectToServer()
            }
        }
    }

    private init(configuration: PeerConfiguration, eventLoop: any EventLoop, pinnedKeys: [UserID: X25519PublicKey],
                 emit: @escaping @Sendable (PeerEvent) -> Void) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.emit = emit
        pinnedWithoutSession = pinnedKeys
        passcodeDigest = configuration.passcodeDigest
    }

    private var loopBound: NIOLoopBound<PeerNode> { NIOLoopBound(self, eventLoop: eventLoop) }

    // MARK: Listening for calls

    private func listen() -> EventLoopFuture<Void> {
        let bound = loopBound
        return ServerBootstrap(group: eventLoop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Child channels live on the same single loop as the node.
                    try bound.value.accept(channel)
                }
            }
            .bind(host: configuration.options.listen.host, port: configuration.options.listen.port)
            .flatMapErrorThrowing { [address = configuration.options.listen] error in
                throw FileError("cannot listen for calls on \(address): \(error)")
            }
            .map { channel in
                bound.value.listener = channel
                bound.value.emit(.info("listening for calls on port \(bound.value.listeningPort)"))
                bound.value.connectToServer()
                bound.value.startKeepAlive()
            }
    }

    private func accept(_ channel: any Channel) throws {
        let id = register(PeerConnection(answeringWith: configuration.identity, allowed: configuration.options.allowedCiphers,
                                         sourceAddress: channel.remoteAddress?.ipAddress ?? ""),
                          channel: channel, outgoing: false)
        try attach(channel, id: id)
    }

    private func register(_ connection: PeerConnection<Backend>, channel: any Channel, outgoing: Bool, peer: UserID? = nil) -> Int {
        nextCallID += 1
        calls[nextCallID] = Call(connection: connection, channel: channel, outgoing: outgoing, peer: peer)
        return nextCallID
    }

    private func attach(_ channel: any Channel, id: Int) throws {
        let bound = loopBound
        try channel.pipeline.syncOperations.addHandler(StreamHandler(
            onBytes: { buffer in bound.value.peerBytes(id, buffer) },
            onEnd: { bound.value.peerEnded(id) }))
    }

    // MARK: The server connection

    private func connectToServer() {
        guard !stopping, serverChannel == nil else { return }
        let bound = loopBound
        let connection: (ClientSession<Backend>, [UInt8])
        do {
            connection = try ClientSession<Backend>.connect(
                userID: configuration.user, passcode: passcodeDigest, port: listeningPort,
                signUpFirst: configuration.options.signUp && !signedInOnce, cipher: configuration.options.cipher,
                identity: configuration.identity, serverKey: configuration.serverKey, pinnedKeys: pinnedKeys)
        } catch {
            return emit(.fatal("cannot start the server connection: \(error)"))
        }
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StreamHandler(
                        onBytes: { buffer in bound.value.serverBytes(channel, buffer) },
                        onEnd: { bound.value.serverEnded(channel) }))
                }
            }
            .connect(host: configuration.server.host, port: configuration.server.port)
            .assumeIsolated()
            .whenComplete { result in
                let node = bound.value
                switch result {
                case let .success(channel):
                    guard !node.stopping else { return channel.close(promise: nil) }
                    node.serverChannel = channel
                    node.session = connection.0
                    channel.writeAndFlush(ByteBuffer(bytes: connection.1), promise: nil)
                case let .failure(error):
                    node.serverLost("cannot reach the server at \(node.configuration.server): \(error)")
                }
            }
    }

    private func serverBytes(_ channel: any Channel, _ buffer: ByteBuffer) {
        guard channel === serverChannel, var session else { return }
        let actions = session.receive(buffer.readableBytesView)
        self.session = session
        perform(actions)
    }

    private func serverEnded(_ channel: any Channel) {
        guard channel === serverChannel else { return }
        let actions = session?.serverClosed() ?? []
        perform(actions)
        if serverChannel != nil { serverLost("the server closed the connection") }
    }

    /// The server connection is gone: chats go on; try again after a growing delay.
    private func serverLost(_ why: String) {
        closeServer()
        guard !stopping else { return }
        failedAttempts += 1
        let delay = configuration.options.reconnectDelays.delay(afterFailures: failedAttempts)
        emit(.info("server: \(why); trying again in \(delay.components.seconds) s"))
        let bound = loopBound
        reconnect = eventLoop.scheduleTask(in: TimeAmount(delay)) { bound.value.connectToServer() }
    }

    private func startKeepAlive() {
        let bound = loopBound
        let interval = TimeAmount(configuration.options.keepAliveInterval)
        keepAlive = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            // Only while connected: without a server there is nobody to keep alive, and nothing to say.
            guard bound.value.session != nil else { return }
            bound.value.sessionDo { $0.keepAlive() }
        }
    }

    /// Runs a session command and carries out its actions; without a server connection, says so.
    private func sessionDo(_ command: (inout ClientSession<Backend>) -> [ClientSession<Backend>.Action]) {
        guard var session else { return emit(.info("not connected to the server yet")) }
        let actions = command(&session)
        self.session = session
        perform(actions)
    }

    private func perform(_ actions: [ClientSession<Backend>.Action]) {
        for action in actions {
            switch action {
            case let .send(bytes):
                serverChannel?.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
            case .signedIn:
                signedIn()
            case let .signInRefused(reason):
                closeServer()
                emit(.signInRefused(reason))
            case .signedUp:
                emit(.info("account \(configuration.user) created"))
            case let .signUpRefused(status, reason):
                closeServer()
                emit(.fatal(status == .exists ? "sign-up refused: \(configuration.user) already exists (sign in without --signup)"
                                              : "sign-up refused: \(reason)"))
            case let .dial(user, address, port, key):
                dial(user, address: address, port: port, key: key)
            case let .notOnline(user):
                emit(.info("not online: \(user)"))
            case let .pinnedKeyChanged(user, pinned, offered):
                emit(.info("refused: the key of \(user) changed. Pinned: \(fingerprint(pinned)); offered now: "
                           + "\(fingerprint(offered)). Compare with \(user) by voice; if they agree, /trust \(user)"))
            case let .pinned(user, key):
                pinned(user, key)
            case let .incomingLookup(user, reply):
                incomingLookedUp(user, reply)
            case let .users(users):
                emit(.info("online: " + (users.isEmpty ? "nobody" : users.map(\.description).joined(separator: ", "))))
            case let .presence(presence):
                emit(.info("\(presence.userID) is \(presence.status == .online ? "online" : "offline")"))
            case let .chatStarted(user):
                emit(.connected(user))
            case let .chatRefused(user, reason):
                emit(.info("refused: \(user): \(reason)"))
            case .hangUp:
                emit(.hangUp)
            case let .serverError(reason):
                emit(.info("server: \(reason)"))
            case let .fail(reason):
                serverLost(reason)
            case let .rejected(reason):
                emit(.info(reason))
            }
        }
    }

    private func signedIn() {
        failedAttempts = 0
        let first = !signedInOnce
        signedInOnce = true
        emit(.signedIn(fingerprint: fingerprint(configuration.identity.publicKey)))
        // A chat that went on while the server was away: the session learns it again.
        if let peer = calls.values.first(where: \.chatting)?.peer {
            sessionDo { $0.chatConnected(with: peer) }
        }
        if first, let user = configuration.options.callOnStart { handle(.chat(user)) }
    }

    /// Forgets the server connection, then closes it: closing runs `serverEnded` at once, which
    /// must find it already gone.
    private func closeServer() {
        let channel = serverChannel
        serverChannel = nil
        if let session { pinnedWithoutSession = session.pinnedKeys }
        session = nil
        channel?.close(promise: nil)
    }

    private func fingerprint(_ key: X25519PublicKey) -> String { Fingerprint.of(key, backend: Backend.self) }

    /// The session pinned a first key for `user`: tell the user and save it.
    private func pinned(_ user: UserID, _ key: X25519PublicKey) {
        emit(.info("pinned the key of \(user): \(fingerprint(key))"))
        save()
    }

    private func save() {
        do {
            try KnownPeers.save(pinnedKeys, to: configuration.knownPeersPath)
        } catch {
            emit(.info("cannot save known peers: \(error)"))
        }
    }

    // MARK: Calls

    private func dial(_ user: UserID, address: String, port: Int, key: X25519PublicKey) {
        let connection: (PeerConnection<Backend>, [UInt8])
        do {
            connection = try PeerConnection<Backend>.call(from: configuration.user, identity: configuration.identity,
                                                          to: user, calleeKey: key, cipher: configuration.options.cipher)
        } catch {
            return sessionDo { $0.callFailed(to: user, reason: "\(error)") }
        }
        emit(.info("calling \(user) at \(HostPort(host: address, port: port))"))
        let bound = loopBound
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .connect(host: address, port: port)
            .assumeIsolated()
            .whenComplete { result in
                let node = bound.value
                switch result {
                case let .success(channel):
                    let id = node.register(connection.0, channel: channel, outgoing: true, peer: user)
                    do {
                        try node.attach(channel, id: id)
                        channel.writeAndFlush(ByteBuffer(bytes: connection.1), promise: nil)
                    } catch {
                        node.calls[id] = nil
                        channel.close(promise: nil)
                        node.sessionDo { $0.callFailed(to: user, reason: "\(error)") }
                    }
                case let .failure(error):
                    node.sessionDo { $0.callFailed(to: user, reason: "cannot connect: \(error)") }
                }
            }
    }

    private func peerBytes(_ id: Int, _ buffer: ByteBuffer) { callDo(id) { $0.receive(buffer.readableBytesView) } }

    private func peerEnded(_ id: Int) { callDo(id) { $0.endOfStream() } }

    /// Runs an event on call `id`'s connection and carries out its actions.
    private func callDo(_ id: Int, _ event: (inout PeerConnection<Backend>) -> [PeerConnection<Backend>.Action]) {
        guard var connection = calls[id]?.connection else { return }
        let actions = event(&connection)
        calls[id]?.connection = connection
        perform(actions, call: id)
    }

    /// The server answered our lookup for a caller: let the connection decide (§5.2).
    private func incomingLookedUp(_ user: UserID, _ reply: ControlMessage.LookupReply) {
        guard let (id, call) = calls.first(where: { !$0.value.outgoing && !$0.value.chatting && $0.value.peer == user }) else { return }
        calls[id]?.callerKey = reply.found.flatMap { Base64.decode($0.encryptionKey) }.flatMap { try? X25519PublicKey(bytes: $0) }
        let refusal = call.connection.check(reply, pinnedKey: pinnedKeys[user], busy: isBusy(besides: id))
        guard refusal == nil, configuration.options.askBeforeAnswering, let key = calls[id]?.callerKey else {
            return answer(id, refusal: refusal)
        }
        calls[id]?.awaitingUser = true
        emit(.info("\(user) is calling (fingerprint \(fingerprint(key))): /accept or /reject"))
        let bound = loopBound
        eventLoop.scheduleTask(in: TimeAmount(configuration.options.answerTimeout)) {
            guard bound.value.calls[id]?.awaitingUser == true else { return }
            bound.value.emit(.info("missed call from \(user)"))
            bound.value.answer(id, refusal: .declined)
        }
    }

    private func isBusy(besides id: Int) -> Bool {
        (session?.isBusy ?? false) || calls.contains { $0.key != id && $0.value.chatting }
    }

    private func answer(_ id: Int, refusal: CallRefusal?) {
        calls[id]?.awaitingUser = false
        callDo(id) { $0.answer(refusal: refusal) }
    }

    private func perform(_ actions: [PeerConnection<Backend>.Action], call id: Int) {
        for action in actions {
            guard let call = calls[id] else { return }
            switch action {
            case let .send(bytes):
                call.channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
            case let .lookUp(user):
                calls[id]?.peer = user
                emit(.info("incoming call from \(user)"))
                guard session != nil else {
                    emit(.info("refused a call from \(user): not connected to the server to check it"))
                    abandon(id)
                    continue
                }
                sessionDo { session in
                    let actions = session.checkIncoming(from: user)
                    // Not signed in: the call cannot be checked; drop it (see docs/PROTOCOL.md).
                    if case .rejected? = actions.first { self.abandon(id) }
                    return actions.filter { if case .rejected = $0 { false } else { true } }
                }
            case let .connected(user):
                calls[id]?.chatting = true
                if !call.outgoing, let key = call.callerKey { sessionDo { $0.pinCaller(user, key: key) } }
                if session != nil { sessionDo { $0.chatConnected(with: user) } } else { emit(.connected(user)) }
            case let .refused(reason):
                if call.outgoing, let user = call.peer {
                    sessionDo { $0.callFailed(to: user, reason: reason) }
                } else {
                    emit(.info("refused a call: \(reason)"))
                }
            case let .received(text):
                if let user = call.peer { emit(.received(from: user, text: text)) }
            case .hungUp:
                calls[id]?.hungUp = true
            case let .close(reason):
                close(id, reason: reason)
            }
        }
    }

    private func close(_ id: Int, reason: String) {
        guard let call = calls.removeValue(forKey: id) else { return }
        call.channel.close(promise: nil)
        guard let user = call.peer else { return }
        if call.chatting {
            if !call.hungUp { emit(.info("chat ended: \(reason)")) }
            // The session goes back to LoggedIn; `Hang up` is shown whether or not the server is there.
            _ = session?.chatEnded(with: user)
            emit(.hangUp)
        } else if call.outgoing, session != nil {
            sessionDo { $0.callFailed(to: user, reason: reason) }
        }
    }

    private func abandon(_ id: Int) {
        calls.removeValue(forKey: id)?.channel.close(promise: nil)
    }

    // MARK: Commands

    private func handle(_ command: PeerRequest) {
        switch command {
        case let .chat(user):
            sessionDo { $0.requestChat(with: user) }
        case .list:
            sessionDo { $0.list() }
        case .hangUp:
            guard let id = chattingCall ?? placingCall else { return emit(.info("not in a call")) }
            hangUp(id)
        case let .fingerprint(user):
            guard let user else {
                return emit(.info("your fingerprint: \(fingerprint(configuration.identity.publicKey))"))
            }
            guard let key = pinnedKeys[user] else { return emit(.info("no key known for \(user) yet: /chat \(user) first")) }
            emit(.info("fingerprint of \(user): \(fingerprint(key))"))
        case let .trust(user):
            pinnedWithoutSession[user] = nil
            session?.trust(user)
            save()
            emit(.info("forgot the pinned key of \(user): the next key seen for \(user) will be pinned"))
        case let .text(line):
            guard let id = chattingCall else { return emit(.info("not in a chat: /chat NAME calls someone, /help lists commands")) }
            callDo(id) { $0.sendText(line) }
        case .accept, .reject:
            guard let id = calls.first(where: { $0.value.awaitingUser })?.key else { return emit(.info("nobody is calling")) }
            answer(id, refusal: command == .reject ? .declined : isBusy(besides: id) ? .busy : nil)
        case .interrupt:
            if let id = chattingCall ?? placingCall { hangUp(id) } else { handle(.quit) }
        case .quit:
            quit()
        }
    }

    private var chattingCall: Int? { calls.first { $0.value.chatting }?.key }
    private var placingCall: Int? { calls.first { $0.value.outgoing && !$0.value.chatting }?.key }

    private func hangUp(_ id: Int) {
        calls[id]?.hungUp = true
        callDo(id) { $0.hangUp() }
    }

    private func quit() {
        if let id = chattingCall { hangUp(id) }
        stopping = true
        reconnect?.cancel()
        keepAlive?.cancel()
        if var session {
            let actions = session.signOut()
            self.session = session
            for case let .send(bytes) in actions { serverChannel?.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil) }
        }
        let server = serverChannel
        closeServer()
        for id in calls.keys { abandon(id) }
        let emit = self.emit
        let closing = [server?.closeFuture, listener?.close()].compactMap { $0 }
        EventLoopFuture.whenAllComplete(closing, on: eventLoop).whenComplete { _ in emit(.stopped) }
    }
}
