import Logging
import NIOCore
import SecureChatCore
import SecureChatCrypto

/// What NIO sees of a server connection. NIO calls its handlers through a protocol, and a generic
/// handler's protocol methods run as unspecialised generic code on every message (metadata lookups
/// and boxing cost about a tenth of the server's time). So this handler is concrete and reaches the
/// generic `ServerConnection` through closures made by `ServerConnection.events`, which
/// `RendezvousServer.start` calls where the caller has made the backend type concrete.
final class ServerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Events {
        let added: (ChannelHandlerContext) -> Void
        let read: (ByteBuffer) -> Void
        let inactive: () -> Void
        let removed: () -> Void
        let failed: (any Error) -> Void
    }

    private let events: Events

    init(_ events: Events) { self.events = events }

    func handlerAdded(context: ChannelHandlerContext) { events.added(context) }
    func handlerRemoved(context: ChannelHandlerContext) { events.removed() }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { events.read(unwrapInboundIn(data)) }

    func channelInactive(context: ChannelHandlerContext) {
        events.inactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        events.failed(error)
        context.close(promise: nil)
    }
}

/// One client connection of the server: bytes and timers in, the session's actions carried out.
/// Store and hashing work goes to the thread pool and its answer comes back on this event loop.
final class ServerConnection<Backend: CryptoBackend> {
    private let shared: ServerContext<Backend>
    private let id: UInt64
    private let address: String
    private var session: ServerSession<Backend>
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var logger: Logger

    init(context shared: ServerContext<Backend>, id: UInt64, address: String) {
        self.shared = shared
        self.id = id
        self.address = address
        session = ServerSession(configuration: shared.configuration.session, localStatic: shared.keyPair,
                                acceptedAt: Self.now())
        logger = shared.logger
        logger[metadataKey: "from"] = "\(address)"
    }

    private static func now() -> Instant { Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    /// The handler's view of this connection. `@inline(__always)` so that the closures are made,
    /// and specialised, in the caller.
    @inline(__always)
    var events: ServerChannelHandler.Events {
        .init(added: { [self] context in
                  self.context = context
                  scheduleTick()
              },
              read: { [self] buffer in perform(session.receive(buffer.readableBytesView, now: Self.now())) },
              inactive: { [self] in perform(session.endOfStream()) },
              removed: { [self] in
                  timer?.cancel()
                  context = nil
              },
              failed: { [self] error in logger.info("connection error", metadata: ["error": "\(error)"]) })
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

    private func perform(_ actions: [ServerSession<Backend>.Action]) {
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
                logClose(reason)
                context.close(promise: nil)
            case let .verifySignIn(user, digest, port, identityKey):
                verifySignIn(user, digest: digest, port: port, identityKey: identityKey)
            case let .createAccount(user, digest, identityKey):
                createAccount(user, digest: digest, identityKey: identityKey)
            case let .lookup(user):
                perform(session.lookupAnswered(lookupReply(user)))
            case .list:
                perform(session.listAnswered(shared.directory.users))
            case let .signedOut(user):
                signOut(user)
            }
        }
        if wrote { context.flush() }
    }

    private func logClose(_ reason: String) {
        switch reason {
        case "signed out", "connection closed":
            logger.debug("connection closed", metadata: ["reason": "\(reason)"])
        case "replaced by a new sign-in", "idle past the timeout":
            logger.info("connection closed", metadata: ["reason": "\(reason)"])
        default:
            logger.warning("connection closed", metadata: ["reason": "\(reason)"])
        }
    }

    private func lookupReply(_ user: UserID) -> ControlMessage.LookupReply {
        guard let entry = shared.directory.lookup(user) else { return .notFound }
        return .init(found: .init(answer: user, address: entry.address,
                                  encryptionKey: entry.encodedIdentityKey, port: entry.port))
    }

    /// A limited attempt is refused at once, without hashing; others hash on the pool.
    private func verifySignIn(_ user: UserID, digest: String, port: Int, identityKey: X25519PublicKey) {
        let limited = shared.limiter.withLock { $0.isLimited(user: user, address: address, now: Self.now()) }
        if limited {
            logger.warning("sign-in refused", metadata: ["user": "\(user)", "reason": "too many failed sign-ins"])
            perform(session.signInAnswered(granted: false))
            return
        }
        let store = shared.store
        runOnPool({ try store.verify(user: user, digest: digest, identityKey: identityKey) }) { [self] result in
            let granted = (try? result.get()) ?? false
            if case let .failure(error) = result {
                logger.error("sign-in check failed", metadata: ["user": "\(user)", "error": "\(error)"])
            }
            signInChecked(user, granted: granted, port: port, identityKey: identityKey)
        }
    }

    private func signInChecked(_ user: UserID, granted: Bool, port: Int, identityKey: X25519PublicKey) {
        let now = Self.now()
        guard granted else {
            shared.limiter.withLock { $0.recordFailure(user: user, address: address, now: now) }
            logger.warning("sign-in refused", metadata: ["user": "\(user)", "reason": "wrong user ID or passcode"])
            perform(session.signInAnswered(granted: false))
            return
        }
        shared.limiter.withLock { $0.recordSuccess(user: user) }
        guard !session.isClosed, let context else { return }
        let handle = ConnectionHandle(eventLoop: context.eventLoop, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        let entry = OnlineDirectory.Entry(connection: id, address: address, port: port, identityKey: identityKey, handle: handle)
        let replaced = shared.directory.signIn(user, entry)
        replaced?.handle.replacedByNewSignIn()
        logger.info("signed in", metadata: ["user": "\(user)", "port": "\(port)"])
        perform(session.signInAnswered(granted: true))
        broadcast(.init(userID: user, status: .online))
        scheduleTick()
    }

    private func createAccount(_ user: UserID, digest: String, identityKey: X25519PublicKey) {
        let store = shared.store
        runOnPool({ try store.create(user: user, digest: digest, identityKey: identityKey) }) { [self] result in
            switch result {
            case .success(.created):
                logger.info("account created", metadata: ["user": "\(user)"])
                perform(session.signUpAnswered(.created, reason: ""))
            case .success(.exists):
                logger.info("sign-up refused", metadata: ["user": "\(user)", "reason": "the user ID is taken"])
                perform(session.signUpAnswered(.exists, reason: "this user ID is taken"))
            case let .failure(error):
                logger.error("sign-up failed", metadata: ["user": "\(user)", "error": "\(error)"])
                perform(session.signUpAnswered(.refused, reason: "the server could not store the account"))
            }
        }
    }

    private func signOut(_ user: UserID) {
        guard shared.directory.signOut(user, connection: id) else { return }
        logger.info("signed out", metadata: ["user": "\(user)"])
        broadcast(.init(userID: user, status: .offline))
    }

    private func broadcast(_ presence: ControlMessage.Presence) {
        guard shared.configuration.presenceBroadcast else { return }
        for handle in shared.directory.others(than: presence.userID) { handle.presenceChanged(presence) }
    }

    /// Runs blocking work on the hashing pool and hands its result back on this event loop.
    private func runOnPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T,
                                        then: @escaping (Result<T, any Error>) -> Void) {
        guard let context else { return }
        shared.hashingPool.runIfActive(eventLoop: context.eventLoop, work)
            .assumeIsolated()
            .whenComplete(then)
    }

    // MARK: Told by other connections

    fileprivate func replacedByNewSignIn() { perform(session.replacedByNewSignIn()) }

    fileprivate func presenceChanged(_ presence: ControlMessage.Presence) {
        perform(session.presenceChanged(presence))
    }
}

/// How other connections reach a handler: always on its own event loop.
private struct ConnectionHandle<Backend: CryptoBackend>: SessionHandle {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<ServerConnection<Backend>>

    func replacedByNewSignIn() { eventLoop.execute { handler.value.replacedByNewSignIn() } }
    func presenceChanged(_ presence: ControlMessage.Presence) { eventLoop.execute { handler.value.presenceChanged(presence) } }
}
