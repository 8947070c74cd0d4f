import Logging
import NIOCore
import SecureChatCore
import SecureChatCrypto
import Synchronization

/// What NIO sees of a server connection. NIO calls its handlers through a protocol, and a generic
/// handler's protocol methods run as unspecialised generic code on every message (metadata lookups
/// and boxing cost about a tenth of the server's time). So this handler is concrete and reaches the
/// generic `ServerConnection` through closures made by `ServerConnection.events`, which
/// `RendezvousServer.start` calls where the caller has made the backend type concrete.
///
/// It also applies backpressure: while the client does not read what it is sent (the channel
/// is not writable), its requests are not read either.
final class ServerChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Events {
        let added: (ChannelHandlerContext) -> Void
        let read: (ByteBuffer) -> Void
        let inactive: () -> Void
        let removed: () -> Void
        let failed: (any Error) -> Void
    }

    private let events: Events
    private var readHeld = false

    init(_ events: Events) { self.events = events }

    func handlerAdded(context: ChannelHandlerContext) { events.added(context) }
    func handlerRemoved(context: ChannelHandlerContext) { events.removed() }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { events.read(unwrapInboundIn(data)) }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable { context.read() } else { readHeld = true }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, readHeld {
            readHeld = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.inactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        events.failed(error)
        context.close(promise: nil)
    }
}

/// Set when a connection closes, for work queued on its behalf: a hashing job of a client that
/// left is skipped, not run.
final class ClosedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// One client connection of the server: bytes and timers in, the session's actions carried out.
/// Store and hashing work goes to the thread pool and its answer comes back on this event loop.
///
/// `perform` is `@inlinable`, and what it touches `@usableFromInline`, so that the command line,
/// where the backend is chosen, specialises it: cross-module optimisation left it generic, and
/// every request and reply then ran through unspecialised code (callgrind: 69k → 56k
/// instructions per lookup on the server).
@usableFromInline
final class ServerConnection<Backend: CryptoBackend> {
    @usableFromInline let shared: ServerContext<Backend>
    @usableFromInline let id: UInt64
    private let source: Endpoint
    @usableFromInline var session: ServerSession<Backend>
    @usableFromInline var context: ChannelHandlerContext?
    @usableFromInline var timer: Scheduled<Void>?
    @usableFromInline var logger: Logger
    private let closed = ClosedFlag()
    /// Counted among its host's connections that are not signed in, until it signs in or closes.
    private var countedUnsigned = true

    init(context shared: ServerContext<Backend>, id: UInt64, source: Endpoint) {
        self.shared = shared
        self.id = id
        self.source = source
        session = ServerSession(configuration: shared.configuration.session, localStatic: shared.keyPair,
                                acceptedAt: Self.now())
        logger = shared.logger
        logger[metadataKey: "conn"] = "\(id)"
        logger[metadataKey: "from"] = "\(source)"
    }

    @usableFromInline static func now() -> Instant { Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    /// The handler's view of this connection. `@inline(__always)` so that the closures are made,
    /// and specialised, in the caller.
    @inline(__always)
    var events: ServerChannelHandler.Events {
        .init(added: { [self] context in
                  self.context = context
                  scheduleTick()
              },
              read: { [self] buffer in perform(session.receive(buffer.readableBytesView, now: Self.now())) },
              inactive: { [self] in
                  perform(session.endOfStream())
                  ended()
              },
              removed: { [self] in
                  timer?.cancel()
                  context = nil
              },
              failed: { [self] error in
                  logger.info("connection failed", metadata: ["reason": "\(NetworkWords.describe(error, while: .talking(with: "the client")))"])
              })
    }

    @usableFromInline func ended() {
        closed.set()
        if countedUnsigned {
            countedUnsigned = false
            shared.hosts.leaveUnsigned(source.address)
        }
    }

    // MARK: Timers

    private func scheduleTick() {
        timer?.cancel()
        guard let context, let deadline = session.nextDeadline else { return }
        let when = NIODeadline.uptimeNanoseconds(deadline.nanoseconds)
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) { [self] in
            perform(session.tick(now: Self.now()))
            scheduleTick()
        }
    }

    // MARK: Actions

    @inlinable func perform(_ actions: [ServerSession<Backend>.Action]) {
        guard let context else { return }
        var wrote = false
        for action in actions {
            switch action {
            case let .send(bytes):
                context.write(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
                wrote = true
            case let .close(reason):
                if wrote { context.flush() }
                wrote = false
                if reason.isRoutine {
                    logger.debug("connection closed", metadata: ["reason": "\(reason)"])
                } else {
                    logger.warning("connection closed", metadata: ["reason": "\(reason)"])
                }
                context.close(promise: nil)
            case let .relay(token, pending):
                timer?.cancel()
                ended()
                shared.relay.arrive(token: token, pending: pending, id: id, context: context, logger: logger, now: Self.now())
                return
            case let .verifySignIn(request):
                verifySignIn(request)
            case let .createAccount(user, digest, identityKey):
                createAccount(user, digest: digest, identityKey: identityKey)
            case let .changePasscode(user, digest, newDigest):
                changePasscode(user, digest: digest, newDigest: newDigest)
            case let .lookup(user):
                perform(session.lookupAnswered(shared.directory.lookupReply(for: user)))
            case .list:
                perform(session.listAnswered(shared.directory.users))
            case let .call(caller, callee):
                perform(session.callAnswered(call(from: caller, to: callee)))
            case let .signedOut(user):
                signOut(user)
            }
        }
        if wrote {
            context.flush()
            closeIfNotReading(context)
        }
    }

    /// A client that does not read what it is sent (PRESENCE, replies) must not grow the
    /// server's memory: past the bound it is closed.
    @usableFromInline func closeIfNotReading(_ context: ChannelHandlerContext) {
        guard !context.channel.isWritable,
              let pending = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes),
              pending > shared.configuration.maximumPendingOutput else { return }
        logger.warning("connection closed", metadata: ["reason": "the client does not read what it is sent (\(pending) bytes waiting)"])
        context.close(promise: nil)
    }

    /// The sign-in limiter decides first (refused without hashing when locked out or busy);
    /// an admitted attempt hashes on the pool and is counted as the verdict says.
    @usableFromInline func verifySignIn(_ request: ServerSession<Backend>.SignIn) {
        let store = shared.store
        let (user, digest, key) = (request.userID, request.passcode, request.identityKey)
        checkPasscode(user, "sign-in", { try store.verify(user: user, digest: digest, identityKey: key) }) { [self] verdict in
            var network: ControlMessage.PeerNetwork?
            if case let .granted(previousKey) = verdict { network = signedIn(request, replacing: previousKey) }
            perform(session.signInAnswered(verdict, network: network))
            if case .granted = verdict {
                shared.broadcast(.init(userID: user, status: .online))
                scheduleTick()
            }
        }
    }

    @usableFromInline func changePasscode(_ user: UserID, digest: String, newDigest: String) {
        let store = shared.store
        checkPasscode(user, "passcode change", { try store.changePasscode(user: user, digest: digest, newDigest: newDigest) }) { [self] verdict in
            if case .granted = verdict { logger.info("passcode changed", metadata: ["user": "\(user)"]) }
            perform(session.passwordAnswered(verdict))
        }
    }

    /// Runs a passcode check through the limiter and the pool; `then` gets the verdict.
    private func checkPasscode(_ user: UserID, _ what: String, _ check: @escaping @Sendable () throws -> SignInVerdict,
                               then: @escaping (SignInVerdict) -> Void) {
        let admission = shared.limiter.withLock { $0.admit(user: user, address: source.address, now: Self.now()) }
        guard case let .admitted(ticket) = admission else {
            let verdict: SignInVerdict
            if case let .lockedOut(wait) = admission { verdict = .lockedOut(retryAfter: Int(wait.components.seconds) + 1) } else { verdict = .busy }
            logger.warning("\(what) refused", metadata: ["user": "\(user)", "reason": "\(verdict == .busy ? "too many in progress" : "locked out")"])
            return then(verdict)
        }
        runOnPool(check) { [self] result in
            let verdict: SignInVerdict
            switch result {
            case let .success(checked?): verdict = checked
            case .success(nil): verdict = .unavailable  // skipped: the client left, or the pool is full
            case let .failure(error):
                logger.error("\(what) check failed", metadata: ["user": "\(user)", "error": "\(error)"])
                verdict = .unavailable
            }
            let outcome: SignInLimiter.Outcome = switch verdict {
            case .granted: .granted
            case .wrongPasscode: .wrongPasscode
            case .lockedOut, .busy, .unavailable: .notChecked
            }
            shared.limiter.withLock { $0.finish(ticket, outcome, now: Self.now()) }
            if verdict == .wrongPasscode {
                logger.warning("\(what) refused", metadata: ["user": "\(user)", "reason": "wrong user ID or passcode"])
            }
            then(verdict)
        }
    }

    /// Records the user in the directory; returns where the server sees them, for AUTHREPLY.
    private func signedIn(_ request: ServerSession<Backend>.SignIn, replacing previousKey: X25519PublicKey?) -> ControlMessage.PeerNetwork? {
        guard !session.isClosed, let context else { return nil }
        if countedUnsigned {
            countedUnsigned = false
            shared.hosts.leaveUnsigned(source.address)
        }
        let handle = ConnectionHandle(eventLoop: context.eventLoop, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        let session = SessionRecord(user: request.userID, stamp: shared.makeStamp(), connection: id, observed: source,
                                    port: request.port, advertised: request.addresses, identityKey: request.identityKey,
                                    takesCallOffers: request.takesCallOffers)
        let entry = OnlineDirectory.Entry(session, handle: handle)
        let replaced = shared.directory.signIn(request.userID, entry)
        replaced?.handle.replacedByNewSignIn()
        if replaced?.stamp != session.stamp { shared.nodes.signedIn(session) }
        logger.info("signed in", metadata: ["user": "\(request.userID)", "port": "\(request.port)"]
                    .merging(previousKey == nil ? [:] : ["identity key": "replaced (a new device)"]) { $1 })
        return entry.network
    }

    @usableFromInline func createAccount(_ user: UserID, digest: String, identityKey: X25519PublicKey) {
        guard shared.limiter.withLock({ $0.admitSignUp(address: source.address, now: Self.now()) }) else {
            logger.warning("sign-up refused", metadata: ["user": "\(user)", "reason": "too many sign-ups from this host"])
            return perform(session.signUpAnswered(.refused, reason: "too many accounts created from your address; try again later"))
        }
        let store = shared.store
        runOnPool({ try store.create(user: user, digest: digest, identityKey: identityKey) }) { [self] result in
            switch result {
            case .success(.created?):
                logger.info("account created", metadata: ["user": "\(user)"])
                perform(session.signUpAnswered(.created, reason: ""))
            case .success(.exists?):
                logger.info("sign-up refused", metadata: ["user": "\(user)", "reason": "the user ID is taken"])
                perform(session.signUpAnswered(.exists, reason: "this user ID is taken"))
            case .success(nil):
                perform(session.signUpAnswered(.refused, reason: "the server is busy; try again in a moment"))
            case let .failure(error):
                logger.error("sign-up failed", metadata: ["user": "\(user)", "error": "\(error)"])
                perform(session.signUpAnswered(.refused, reason: "the server could not store the account"))
            }
        }
    }

    /// CALLREQ: the callee is offered the call (CALLOFFER) at the moment the caller is answered,
    /// each with its own relay token when the relay allows the call. A §5 callee is offered
    /// nothing (it checks the caller by lookup) and cannot take a relay leg.
    @usableFromInline func call(from caller: UserID, to callee: UserID) -> ControlMessage.CallReply {
        guard let found = shared.directory.lookup(callee), let own = shared.directory.lookup(caller),
              own.connection == id, own.stamp.node == shared.nodes.name else {
            return .init(status: .notFound)
        }
        var tokens = (caller: "", callee: "")
        var refusal: String? = RelayBook.Refusal.disabled.rawValue
        if !found.takesCallOffers {
            refusal = "\(callee)'s program cannot use the relay"
        } else if shared.relay.enabled, let callerToken = try? Self.relayToken(), let calleeToken = try? Self.relayToken() {
            refusal = shared.relay.offer(caller: caller, callee: callee, tokens: (callerToken, calleeToken), now: Self.now())?.rawValue
            if refusal == nil { tokens = (callerToken, calleeToken) }
        }
        if found.takesCallOffers {
            // The relay pairs both legs here: a callee on another node is told where that is.
            let relayServer = found.stamp.node == shared.nodes.name || tokens.callee.isEmpty ? nil : shared.nodes.relayAddress
            found.handle.callOffered(.init(caller: caller, encryptionKey: own.encodedIdentityKey, candidates: own.candidates,
                                           relay: tokens.callee, network: own.network, relayServer: relayServer))
        }
        logger.info("call offered", metadata: ["user": "\(caller)", "callee": "\(callee)", "relay": "\(refusal ?? "granted")"])
        return .init(status: .success, reason: refusal,
                     found: .init(callee: callee, encryptionKey: found.encodedIdentityKey, candidates: found.candidates,
                                  relay: tokens.caller, network: found.network))
    }

    /// 32 random bytes, base64 (§9.5).
    private static func relayToken() throws -> String { Base64.encode(try Backend.randomBytes(count: 32)) }

    @usableFromInline func signOut(_ user: UserID) {
        guard shared.directory.signOut(user, node: shared.nodes.name, connection: id) else { return }
        shared.nodes.signedOut(user: user, connection: id)
        logger.info("signed out", metadata: ["user": "\(user)"])
        shared.broadcast(.init(userID: user, status: .offline))
    }

    /// Runs blocking work on the hashing pool and hands its result back on this event loop. The
    /// work is skipped (nil) if the connection closed before its turn, or if too much is queued.
    private func runOnPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T,
                                        then: @escaping (Result<T?, any Error>) -> Void) {
        guard let context else { return }
        guard shared.queuedHashes.add(1, ordering: .relaxed).newValue <= shared.configuration.maximumQueuedHashes else {
            shared.queuedHashes.subtract(1, ordering: .relaxed)
            logger.warning("request refused: too much hashing work queued")
            return then(.success(nil))
        }
        let (closed, shared) = (self.closed, self.shared)
        shared.hashingPool.runIfActive(eventLoop: context.eventLoop) { () throws -> T? in
            defer { shared.queuedHashes.subtract(1, ordering: .relaxed) }
            return closed.isSet ? nil : try work()
        }
        .assumeIsolated()
        .whenComplete(then)
    }

    // MARK: Told by other connections

    fileprivate func replacedByNewSignIn() { perform(session.replacedByNewSignIn()) }

    fileprivate func presenceChanged(_ presence: ControlMessage.Presence) { perform(session.presenceChanged(presence)) }

    fileprivate func callOffered(_ offer: ControlMessage.CallOffer) { perform(session.callOffered(offer)) }
}

/// How other connections reach a handler: always on its own event loop.
private struct ConnectionHandle<Backend: CryptoBackend>: SessionHandle {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<ServerConnection<Backend>>

    func replacedByNewSignIn() { eventLoop.execute { handler.value.replacedByNewSignIn() } }
    func presenceChanged(_ presence: ControlMessage.Presence) { eventLoop.execute { handler.value.presenceChanged(presence) } }
    func callOffered(_ offer: ControlMessage.CallOffer) { eventLoop.execute { handler.value.callOffered(offer) } }
}
