#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import SecureChatCore
import SecureChatCrypto
import Synchronization

/// `securechat peer`: the server connection (a `ClientSession`), the listener for calls, the
/// call set-ups (`CallSetup`, one per call) and the connections that race to carry them
/// (`PeerConnection`s), all on one event loop so that the state is plain values with no locks.
/// The decisions are the core's; this carries out their actions with sockets and timers.
/// Commands come in through a `Handle`; what the user should see goes out as `PeerEvent`s.
/// A chat does not pass through the server (unless relayed) and survives losing it.
///
/// One port for everything (§9.1): the listener, the server connection and every dial use the
/// same local port, so the server sees the router's mapping of it and a dial of the other side
/// to it meets ours (a TCP simultaneous open through both routers).
public final class PeerNode<Backend: CryptoBackend> {
    typealias LinkID = Int

    /// One TCP connection (or relay leg) to another peer.
    struct Link {
        var connection: PeerConnection<Backend>
        let channel: any Channel
        /// We are the caller (the Noise initiator) on it.
        let outgoing: Bool
        var route: CallSetup.Route
        /// The call this link is an attempt of, once known (the caller's name comes with message 1).
        var call: UserID?
        var attempt: CallSetup.Attempt?
        var timer: Scheduled<Void>?
        /// A §5 caller checked and waiting for /accept or /reject.
        var awaitingUser = false
    }

    /// One call being set up, either way.
    struct Call {
        let role: CallSetup.Role
        /// Which call with this peer: every set-up numbers its attempts from 0, so a dial that
        /// completes after its call was replaced must not be taken for the new call's attempt.
        let generation: Int
        /// nil for a call from a §5 caller (no CALLOFFER: a single connection, checked by lookup).
        var setup: CallSetup?
        /// How to reach the other side (nil for a §5 caller).
        let plan: CallPlan?
        /// The caller as the server described it (callee side).
        let record: CallerRecord?
        var links: [CallSetup.Attempt: LinkID] = [:]
        var timer: Scheduled<Void>?
        var decision: Decision
        var askTimer: Scheduled<Void>?
    }

    /// The callee's answer to a call (config `answer = ask` asks the user).
    enum Decision: Equatable { case accept, asking, decline(CallRefusal) }

    let configuration: PeerConfiguration
    let eventLoop: any EventLoop
    let emit: @Sendable (PeerEvent) -> Void
    /// Events the user has not been shown yet: past a bound, the chat's reads pause (12.3: a
    /// terminal that cannot keep up must not grow the peer's memory).
    let backlog = EventBacklog()
    var passcodeDigest: String
    /// The pinned keys while there is no server connection. While there is one, its session
    /// holds them (it checks them and pins new ones), and they come back here when it ends.
    var pinnedWithoutSession: [UserID: X25519PublicKey]
    var pinnedKeys: [UserID: X25519PublicKey] { session?.pinnedKeys ?? pinnedWithoutSession }

    var session: ClientSession<Backend>?
    var serverChannel: (any Channel)?
    /// Connections being opened (server, dials), so that quitting waits for them.
    var connecting: [Int: EventLoopFuture<any Channel>] = [:]
    var nextConnect = 0
    var listener: (any Channel)?
    /// Our one port.
    var port: Int { listener?.localAddress?.port ?? 0 }
    var links: [LinkID: Link] = [:]
    var nextLink: LinkID = 1
    var calls: [UserID: Call] = [:]
    var nextCallGeneration = 0
    /// The chat going on: its link and how it connected.
    var chat: (link: LinkID, peer: UserID, path: String)?
    /// An ephemeral key made while this node waited (for CALLREPLY, or for the caller's message
    /// 1): the next handshake message written here takes it, so that its scalar multiplication
    /// is off the call's critical path. Taken once, as an ephemeral key serves one handshake.
    var spareEphemeral: X25519KeyPair?
    /// Message 1 of the call being asked for, written ahead when the callee's key is pinned
    /// (`prepareCall`); the call's first connection takes it, and the call's start drops it.
    var spareCall: PeerConnection<Backend>.PreparedCall?
    var failedAttempts = 0
    /// Which of `configuration.servers` is used now, and how many others were tried since the
    /// last sign-in (one round through them all before waiting).
    var serverIndex = 0
    var serversTriedInTurn = 0
    var server: HostPort { configuration.servers[serverIndex] }
    /// Sign-ins refused as "busy" in a row (tried again, a few times).
    var busyRetries = 0
    var signedInOnce = false
    /// Another device of this user signed in: no automatic reconnect (the devices would take
    /// turns for ever); `/reconnect` signs in here again.
    var replaced = false
    /// Commands given before the first sign-in finished: they wait for it.
    var waitingForSignIn: [PeerRequest] = []
    var stopping = false
    /// Quitting waits until then for answers still owed.
    var quitDeadline: NIODeadline?
    var keepAlive: RepeatedTask?
    var reconnect: Scheduled<Void>?

    static func now() -> Instant { Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    /// Starts the peer on `eventLoop`: listen, then connect and sign in. Events go to `emit`.
    public static func start(configuration: PeerConfiguration, eventLoop: any EventLoop,
                             emit: @escaping @Sendable (PeerEvent) -> Void) -> EventLoopFuture<Handle> {
        eventLoop.flatSubmit {
            let pinned: [UserID: X25519PublicKey]
            do { pinned = try KnownPeers.load(configuration.knownPeersPath) } catch { return eventLoop.makeFailedFuture(error) }
            let node = PeerNode(configuration: configuration, eventLoop: eventLoop, pinnedKeys: pinned, emit: emit)
            let handle = Handle(node: node.loopBound, backlog: node.backlog)
            return node.listen().map { handle }
        }
    }

    /// How other threads reach the node: everything hops to its event loop. Once the node has
    /// stopped, nothing more is sent to it (its loop may be shut down by then).
    public struct Handle: Sendable {
        fileprivate let node: NIOLoopBound<PeerNode>
        private let open = Locked(true)
        private let backlog: EventBacklog

        fileprivate init(node: NIOLoopBound<PeerNode>, backlog: EventBacklog) {
            self.node = node
            self.backlog = backlog
        }

        /// The owner showed one more event: when the backlog is small again, reading goes on.
        public func eventShown() {
            if backlog.shown() { run { $0.resumeChatReads() } }
        }

        public func submit(_ command: PeerRequest) { run { $0.handle(command) } }

        /// After a refused sign-in: try again with another passcode digest.
        public func retrySignIn(passcodeDigest: String) {
            run { node in
                node.passcodeDigest = passcodeDigest
                node.connectToServer()
            }
        }

        /// No more commands: called by the owner of the event loop before it shuts it down.
        public func close() { open.withLock { $0 = false } }

        private func run(_ body: @escaping @Sendable (PeerNode) -> Void) {
            let node = self.node
            open.withLock { open in
                guard open else { return }
                node.eventLoop.execute { body(node.value) }
            }
        }
    }

    static var staticSecretsKept: Int { 1024 }

    private init(configuration: PeerConfiguration, eventLoop: any EventLoop, pinnedKeys: [UserID: X25519PublicKey],
                 emit: @escaping @Sendable (PeerEvent) -> Void) {
        // The server's and known peers' static keys come back call after call: keep their `ss` DH.
        var configuration = configuration
        configuration.identity = configuration.identity.keepingStaticSecrets(capacity: Self.staticSecretsKept)
        self.configuration = configuration
        self.eventLoop = eventLoop
        let backlog = self.backlog
        self.emit = { event in
            backlog.added()
            emit(event)
        }
        pinnedWithoutSession = pinnedKeys
        passcodeDigest = configuration.passcodeDigest
    }

    var loopBound: NIOLoopBound<PeerNode> { NIOLoopBound(self, eventLoop: eventLoop) }

    func fingerprint(_ key: X25519PublicKey) -> String { Fingerprint.of(key, backend: Backend.self) }

    // MARK: The one port

    private func listen() -> EventLoopFuture<Void> {
        let bound = loopBound
        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(.so_reuseport), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Child channels live on the same single loop as the node.
                    try bound.value.accept(channel)
                }
            }
        return Listener.bind(bootstrap, to: configuration.options.listen, for: "calls", on: eventLoop).flatMap { channel in
            let node = bound.value
            node.listener = channel
            node.emit(.info("listening for calls on port \(node.port)"))
            node.connectToServer()
            node.startKeepAlive()
            return channel.pipeline.addHandler(AcceptFailureHandler { reason in
                bound.eventLoop.execute { bound.value.emit(.info("could not take an incoming connection: \(reason)")) }
            })
        }
    }

    /// A client socket on our one port, for `family` (the server connection and dials to peers).
    func bootstrapOnOurPort(family: NIOBSDSocket.ProtocolFamily) -> ClientBootstrap {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_reuseport), value: 1)
            .connectTimeout(.seconds(10))
        let local = family == .inet6 ? "::" : "0.0.0.0"
        guard port > 0, let address = try? SocketAddress(ipAddress: local, port: port) else { return bootstrap }
        return bootstrap.bind(to: address)
    }

    /// Keeps `future` (a connection being opened) until it completes, so that `quit` waits for it.
    func track(_ future: EventLoopFuture<any Channel>) {
        let key = nextConnect
        nextConnect += 1
        connecting[key] = future
        let bound = loopBound
        future.whenComplete { _ in bound.value.connecting[key] = nil }
    }

    // MARK: The server connection

    func connectToServer() {
        guard !stopping, serverChannel == nil else { return }
        let bound = loopBound
        let server = self.server
        let connection: (ClientSession<Backend>, [UInt8])
        do {
            let loopback = IPAddress(server.host)?.isLoopback ?? (server.host == "localhost")
            connection = try ClientSession<Backend>.connect(
                userID: configuration.user, passcode: passcodeDigest, port: port,
                addresses: LocalAddresses.candidates(listening: configuration.options.listen, port: port, includingLoopback: loopback),
                signUpFirst: configuration.options.signUp && !signedInOnce, cipher: configuration.options.cipher,
                identity: configuration.identity, serverKey: configuration.serverKey, pinnedKeys: pinnedKeys)
        } catch {
            return emit(.fatal("the server key cannot be used: it is not a valid public key (check --server-key against what `securechat serve --show-key` prints)"))
        }
        // From our one port: the server then sees the router's mapping of it (§9.1). A name is
        // resolved first (off the loop), since the port is bound before connecting.
        let future = resolve(server).flatMap { address in
            bound.value.openServerChannel(to: address, fromOurPort: true).flatMapError { error in
                // The last connection from our port to this server may still be in TIME_WAIT
                // (a restart within a minute): connect from another port rather than fail.
                guard NetworkWords.isPortBusy(error) else { return bound.value.eventLoop.makeFailedFuture(error) }
                bound.value.emit(.info("note: port \(bound.value.port) is still held by the last connection to the server; "
                                       + "connected from another port this time (a call through routers may need the relay)"))
                return bound.value.openServerChannel(to: address, fromOurPort: false)
            }
        }
        track(future)
        future.assumeIsolated().whenComplete { result in
            let node = bound.value
            switch result {
            case let .success(channel):
                guard !node.stopping else { return channel.close(promise: nil) }
                node.serverChannel = channel
                node.session = connection.0
                channel.writeAndFlush(ByteBuffer(bytes: connection.1), promise: nil)
            case let .failure(error):
                node.serverLost(NetworkWords.describe(error, while: .connecting(to: "the server", at: server)), canRetry: true)
            }
        }
    }

    private func openServerChannel(to address: SocketAddress, fromOurPort: Bool) -> EventLoopFuture<any Channel> {
        let bound = loopBound
        let bootstrap = fromOurPort ? bootstrapOnOurPort(family: address.protocol) : ClientBootstrap(group: eventLoop).connectTimeout(.seconds(10))
        return bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StreamHandler(
                        onBytes: { buffer in bound.value.serverBytes(channel, buffer) },
                        onEnd: { bound.value.serverEnded(channel) }))
                }
            }
            .connect(to: address)
    }

    /// `address`'s host as a socket address, resolving a name on a thread (never on the loop).
    private func resolve(_ address: HostPort) -> EventLoopFuture<SocketAddress> {
        if let ip = IPAddress(address.host), let resolved = try? SocketAddress(ipAddress: ip.description, port: address.port) {
            return eventLoop.makeSucceededFuture(resolved)
        }
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            try SocketAddress.makeAddressResolvingHost(address.host, port: address.port)
        }
    }

    private func serverBytes(_ channel: any Channel, _ buffer: ByteBuffer) {
        guard channel === serverChannel, var session else { return }
        let actions = session.receive(buffer.readableBytesView)
        self.session = session
        perform(actions)
    }

    private func serverEnded(_ channel: any Channel) {
        guard channel === serverChannel, var session else { return }
        let actions = session.serverClosed()
        self.session = session
        perform(actions)
    }

    /// The server connection is gone: chats go on. With several servers (nodes of one service)
    /// the next one is tried at once, each once. After that: before the first sign-in (unless
    /// the server asked to be tried again later, `evenBeforeSignIn`), or when trying again cannot
    /// help (a wrong key, another device), it is said and not tried again; otherwise again after
    /// a growing delay.
    func serverLost(_ why: String, canRetry: Bool, evenBeforeSignIn: Bool = false) {
        closeServer()
        guard !stopping else { return }
        let bound = loopBound
        if canRetry, !replaced, serversTriedInTurn < configuration.servers.count - 1 {
            serversTriedInTurn += 1
            serverIndex = (serverIndex + 1) % configuration.servers.count
            emit(.info("server: \(why); trying \(server)"))
            reconnect = eventLoop.scheduleTask(in: .milliseconds(100)) { bound.value.connectToServer() }
            return
        }
        serversTriedInTurn = 0
        guard signedInOnce || evenBeforeSignIn else { return emit(.fatal(why)) }
        guard canRetry, !replaced else { return emit(.info("server: \(why)")) }
        failedAttempts += 1
        let delay = configuration.options.reconnectDelays.delay(afterFailures: failedAttempts)
        emit(.info("server: \(why); trying again in \(delay.components.seconds) s"))
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
    func sessionDo(_ command: (inout ClientSession<Backend>) -> [ClientSession<Backend>.Action]) {
        guard var session else { return emit(.info("not connected to the server right now")) }
        let actions = command(&session)
        self.session = session
        perform(actions)
    }

    private func perform(_ actions: [ClientSession<Backend>.Action]) {
        for action in actions {
            switch action {
            case let .send(bytes):
                serverChannel?.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
            case let .signedIn(previousKey):
                signedIn(replacing: previousKey)
            case .signInRefused(.busy) where busyRetries < 10:
                // Others sign in from this address at the same moment: a little later.
                closeServer()
                busyRetries += 1
                let bound = loopBound
                reconnect = eventLoop.scheduleTask(in: .milliseconds(500 * Int64(busyRetries))) { bound.value.connectToServer() }
            case .signInRefused(.unavailable):
                serverLost("the server cannot check passcodes right now", canRetry: true, evenBeforeSignIn: true)
            case let .signInRefused(refusal):
                closeServer()
                emit(.signInRefused(refusal))
            case .signedUp:
                emit(.info("account \(configuration.user) created"))
            case .accountExists:
                emit(.info("the account \(configuration.user) exists already: signing in to it"))
            case let .signUpRefused(reason):
                closeServer()
                emit(.fatal("sign-up refused: \(reason)"))
            case let .startCall(plan):
                startCall(plan, role: .caller)
            case let .notOnline(user):
                emit(.info("not online: \(user)"))
            case let .pinnedKeyChanged(user, pinned, offered):
                emit(.info("refused: the key of \(user) changed. Pinned: \(fingerprint(pinned)); offered now: \(fingerprint(offered)). "
                           + "Compare fingerprints with \(user) in person or by voice; if theirs is the new one: "
                           + "/trust \(user) \(fingerprint(offered).replacingSpaces)"))
            case let .pinned(user, key):
                pinned(user, key)
            case let .callOffered(plan):
                callOffered(plan)
            case let .incomingLookup(token, reply):
                incomingLookedUp(token, reply)
            case let .keyLookedUp(user, key):
                showFingerprint(user, serverKey: key)
            case let .trusted(user):
                emit(.info("trusted: the key of \(user) is pinned now"))
            case let .trustRefused(user, offered):
                emit(.info("not trusted: " + (offered.map { "the key offered for \(user) has the fingerprint \(fingerprint($0)), not that one" }
                                              ?? "no key is known for \(user) (they are not online)")))
            case let .users(users):
                emit(.info("online: " + (users.isEmpty ? "nobody" : users.map(\.description).joined(separator: ", "))))
            case let .presence(presence):
                emit(.info("\(presence.userID) is \(presence.status == .online ? "online" : "offline")"))
            case let .chatStarted(user):
                emit(.connected(user, path: chat?.path ?? "direct"))
            case let .chatRefused(user, reason):
                emit(.info("refused: \(user): \(reason)"))
            case .hangUp:
                break  // told when the chat's link closes, with who hung up
            case let .serverError(reason):
                emit(.info("server: \(reason)"))
            case let .fail(failure):
                serverFailed(failure)
            case let .rejected(reason):
                emit(.info(reason))
            }
        }
    }

    private func serverFailed(_ failure: ServerLinkFailure) {
        let server = self.server
        switch failure {
        case .closed:
            serverLost("the server closed the connection", canRetry: true)
        case .closedDuringHandshake:
            serverLost("the server at \(server) closed the connection during the handshake: the server key you gave "
                       + "(--server-key) is probably not its key, or it does not allow the cipher \(configuration.options.cipher.configName). "
                       + "Check the key that `securechat serve --show-key` prints on the server", canRetry: false)
        case .refused(.wrongKey):
            serverLost("THE SERVER AT \(server) DOES NOT HAVE THE KEY YOU GAVE (--server-key). Either its key changed (the server "
                       + "was set up again) or this is not your server (someone may be in the middle). Ask whoever runs it for the "
                       + "key `securechat serve --show-key` prints, and compare before you change yours", canRetry: false)
        case let .refused(.cipherNotAllowed(allowed)):
            serverLost("the server at \(server) does not allow the cipher \(configuration.options.cipher.configName); it allows "
                       + "\(allowed.map(\.configName).joined(separator: ", ")). Use --cipher \(allowed.first?.configName ?? "aesgcm")"
                       + " (or `cipher = …` in your config)", canRetry: false)
        case .refused(.unsupportedHello):
            serverLost("the server at \(server) does not speak this version of securechat", canRetry: false)
        case let .refused(.other(reason)):
            serverLost("the server at \(server) refused the connection: \(reason)", canRetry: true)
        case .replaced:
            replaced = true
            closeServer()
            emit(.info("signed out here: \(configuration.user) signed in on another device. This one stays signed out "
                       + "(two devices would take turns for ever); /reconnect signs in here again and signs the other one out"))
        case let .broken(why):
            serverLost("the connection with the server broke: \(why)", canRetry: true)
        }
    }

    private func signedIn(replacing previousKey: X25519PublicKey?) {
        failedAttempts = 0
        serversTriedInTurn = 0
        busyRetries = 0
        let first = !signedInOnce
        signedInOnce = true
        replaced = false
        emit(.signedIn(fingerprint: fingerprint(configuration.identity.publicKey), replacedFingerprint: previousKey.map(fingerprint)))
        // A chat that went on while the server was away: the session learns it again.
        if let chat { sessionDo { $0.chatConnected(with: chat.peer) } }
        if first {
            if let user = configuration.options.callOnStart { handle(.chat(user)) }
            let waiting = waitingForSignIn
            waitingForSignIn = []
            for command in waiting { handle(command) }
        }
    }

    /// Forgets the server connection, then closes it: closing runs `serverEnded` at once, which
    /// must find it already gone.
    func closeServer() {
        let channel = serverChannel
        serverChannel = nil
        if let session { pinnedWithoutSession = session.pinnedKeys }
        session = nil
        channel?.close(promise: nil)
    }

    /// The session pinned a key for `user`: tell the user and save it.
    private func pinned(_ user: UserID, _ key: X25519PublicKey) {
        emit(.info("pinned the key of \(user): \(fingerprint(key))"))
        do {
            try KnownPeers.pin(user, key, in: configuration.knownPeersPath)
        } catch {
            emit(.info("cannot save known peers: \(error)"))
        }
    }

    private func showFingerprint(_ user: UserID, serverKey: X25519PublicKey?) {
        if let pinned = pinnedKeys[user] {
            let agrees = serverKey == nil || serverKey == pinned
            emit(.info("fingerprint of \(user): \(fingerprint(pinned)) (pinned" + (agrees ? ")" :
                       "; the server now offers \(fingerprint(serverKey!)): /trust \(user) FINGERPRINT after you compared)")))
        } else if let serverKey {
            emit(.info("fingerprint of \(user): \(fingerprint(serverKey)) (from the server, not yet verified: compare it with "
                       + "\(user), then /trust \(user) \(fingerprint(serverKey).replacingSpaces))"))
        } else {
            emit(.info("no key known for \(user): they are not online"))
        }
    }

    // MARK: Commands

    func handle(_ command: PeerRequest) {
        guard !stopping else { return }
        switch command {
        case .chat, .list, .fingerprint(.some), .trust, .quit:
            // Before the first sign-in finished, a command for the server (and the end of a
            // script) waits for it; if it fails, the program ends with that failure.
            if !signedInOnce {
                waitingForSignIn.append(command)
                return
            }
        case .hangUp, .fingerprint(nil), .accept, .reject, .info, .reconnect, .text, .interrupt, .stop:
            break
        }
        switch command {
        case let .chat(user):
            sessionDo { $0.requestChat(with: user) }
            prepareCall(to: user)
        case .list:
            sessionDo { $0.list() }
        case .hangUp:
            guard hangUpCurrent() else { return emit(.info("not in a call")) }
        case let .fingerprint(user):
            guard let user else {
                return emit(.info("your fingerprint: \(fingerprint(configuration.identity.publicKey))"))
            }
            if session?.isSignedIn == true { sessionDo { $0.lookUpKey(user) } } else { showFingerprint(user, serverKey: nil) }
        case let .trust(user, fingerprint):
            if var session {
                let actions = session.trust(user, fingerprint: fingerprint)
                self.session = session
                perform(actions)
            } else {
                emit(.info("not connected to the server: /trust needs it to learn the key offered for \(user)"))
            }
        case .accept, .reject:
            answerAsked(accept: command == .accept)
        case .info:
            emit(.info(callInfo))
        case .reconnect:
            guard serverChannel == nil else { return emit(.info("already connected to the server")) }
            replaced = false
            reconnect?.cancel()
            connectToServer()
        case let .text(line):
            guard let chat else { return emit(.info("not in a chat: /chat NAME calls someone, /help lists commands")) }
            linkDo(chat.link) { $0.sendText(line, now: Self.now()) }
        case .interrupt:
            if !hangUpCurrent() { quit() }
        case .quit, .stop:
            quit()
        }
    }

    private func quit() {
        // Answers still owed (a script's last /list) are waited for, a little.
        if let session, session.awaitsReplies, quitDeadline == nil {
            quitDeadline = NIODeadline.now() + .seconds(2)
        }
        if let deadline = quitDeadline, NIODeadline.now() < deadline, session?.awaitsReplies == true {
            let bound = loopBound
            eventLoop.scheduleTask(in: .milliseconds(20)) { bound.value.quit() }
            return
        }
        _ = hangUpCurrent()
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
        for user in Array(calls.keys) { endCall(user) }
        for id in Array(links.keys) { dropLink(id) }
        // In order: every connection closed (and every one still opening finished) before the
        // node says it stopped, so its event loop can be shut down with nothing left to run.
        let emit = self.emit
        let closing = [server?.closeFuture, listener?.close()].compactMap { $0 }
            + connecting.values.map { $0.map { _ in () } }
        EventLoopFuture.whenAllComplete(closing, on: eventLoop).whenComplete { _ in emit(.stopped) }
    }
}

/// How many events went out and were not shown yet.
final class EventBacklog: Sendable {
    static let high = 1_000
    static let low = 100
    private let pending = Atomic<Int>(0)
    private let paused = Atomic<Bool>(false)

    func added() { pending.add(1, ordering: .relaxed) }

    /// One was shown; true when reads were paused and may go on now.
    func shown() -> Bool {
        let left = pending.subtract(1, ordering: .relaxed).newValue
        return left <= Self.low && paused.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged
    }

    /// Whether reads should pause now (and remember that they did).
    func shouldPause() -> Bool {
        pending.load(ordering: .relaxed) >= Self.high && !paused.exchange(true, ordering: .relaxed)
    }
}

extension NIOBSDSocket.Option {
    /// SO_REUSEPORT, which NIO does not name: several sockets on one port (§9.1).
    static let so_reuseport = NIOBSDSocket.Option(rawValue: SO_REUSEPORT)
}

extension String {
    /// A fingerprint as one word, to paste after `/trust NAME`.
    var replacingSpaces: String { filter { $0 != " " } }
}
