import Glibc
import Logging
import NIOCore
import NIOPosix
import SecureChatCore
import SecureChatCrypto
import Synchronization

/// What every connection of one server shares. All of it is safe from any event loop.
@usableFromInline
final class ServerContext<Backend: CryptoBackend>: Sendable {
    let configuration: ServerConfiguration
    let keyPair: X25519KeyPair
    let store: AccountStore<Backend>
    @usableFromInline let directory = OnlineDirectory()
    /// The other nodes of a scale-out deployment, or none.
    let nodes: any ServerNodes
    private let lastStamp = Atomic<UInt64>(0)
    let limiter: Locked<SignInLimiter>
    let hosts: HostCounts
    @usableFromInline let relay: RelayCoordinator
    /// scrypt and store writes run here, never on an event loop.
    let hashingPool: NIOThreadPool
    /// Jobs queued on the pool and not yet run.
    let queuedHashes = Atomic<Int>(0)
    let logger: Logger
    let openConnections = Atomic<Int>(0)
    /// Every accepted connection, so that `stop` can close them.
    let channels = Locked<[UInt64: any Channel]>([:])
    private let nextConnectionID = Atomic<UInt64>(1)

    init(configuration: ServerConfiguration, keyPair: X25519KeyPair, store: AccountStore<Backend>, nodes: any ServerNodes,
         hashingPool: NIOThreadPool, logger: Logger) {
        self.configuration = configuration
        self.keyPair = keyPair
        self.store = store
        self.nodes = nodes
        limiter = Locked(SignInLimiter(configuration: configuration.signInLimits))
        hosts = HostCounts(perHost: configuration.maximumConnectionsPerHost, unsignedPerHost: configuration.maximumUnsignedPerHost)
        relay = RelayCoordinator(configuration: configuration.relay, logger: logger)
        self.hashingPool = hashingPool
        self.logger = logger
    }

    func makeConnectionID() -> UInt64 { nextConnectionID.add(1, ordering: .relaxed).oldValue }

    /// A stamp for a sign-in on this node: the wall clock (comparable across nodes), and always
    /// later than the last one taken here.
    func makeStamp() -> SessionStamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let now = UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
        var last = lastStamp.load(ordering: .relaxed)
        while true {
            let next = max(now, last &+ 1)
            let (exchanged, original) = lastStamp.compareExchange(expected: last, desired: next, ordering: .relaxed)
            if exchanged { return SessionStamp(time: next, node: nodes.name) }
            last = original
        }
    }

    /// Tells everyone signed in on this node about `presence` (the other nodes tell theirs).
    func broadcast(_ presence: ControlMessage.Presence) {
        guard configuration.presenceBroadcast else { return }
        for handle in directory.others(than: presence.userID, on: nodes.name) { handle.presenceChanged(presence) }
    }

    func forget(_ id: UInt64) {
        openConnections.subtract(1, ordering: .relaxed)
        _ = channels.withLock { $0.removeValue(forKey: id) }
    }
}

/// Connections per host (an IPv4 address or an IPv6 /64), so that one host cannot take the
/// server's whole connection cap, and fewer of them before they sign in.
final class HostCounts: Sendable {
    private struct Count { var open = 0; var unsigned = 0 }
    private let counts = Locked<[IPAddress: Count]>([:])
    private let perHost: Int
    private let unsignedPerHost: Int

    init(perHost: Int, unsignedPerHost: Int) {
        self.perHost = perHost
        self.unsignedPerHost = unsignedPerHost
    }

    /// Counts a new connection from `address` (not signed in yet); false, not counted, past a cap.
    func admit(_ address: IPAddress) -> Bool {
        counts.withLock { counts in
            var count = counts[address.hostKey] ?? Count()
            guard count.open < perHost, count.unsigned < unsignedPerHost else { return false }
            count.open += 1
            count.unsigned += 1
            counts[address.hostKey] = count
            return true
        }
    }

    /// The connection signed in, or ended before it did.
    func leaveUnsigned(_ address: IPAddress) { change(address) { $0.unsigned -= 1 } }

    func closed(_ address: IPAddress) { change(address) { $0.open -= 1 } }

    private func change(_ address: IPAddress, _ body: (inout Count) -> Void) {
        counts.withLock { counts in
            guard var count = counts[address.hostKey] else { return }
            body(&count)
            counts[address.hostKey] = count.open <= 0 ? nil : count
        }
    }
}

/// `securechat serve`: the rendezvous server of PROTOCOL.md §4 over SwiftNIO. Each connection
/// drives a `ServerSession`; the directory of signed-in users is shared by all event loops.
public final class RendezvousServer<Backend: CryptoBackend>: Sendable {
    public let localAddress: SocketAddress
    public let publicKey: X25519PublicKey
    /// Whether the server key was created by this start (first run on this data directory).
    public let createdKey: Bool
    private let context: ServerContext<Backend>
    private let channel: any Channel
    private let lock: Locked<DirectoryLock?>
    /// Closes relay legs whose partner never came.
    private let expiry: RepeatedTask

    /// Binds first, so that nothing is created on disk before the address is known to work; then
    /// opens the data directory (creating it, the key and an empty store on first start) and only
    /// then starts accepting. Throws with a clear message on anything it cannot use.
    ///
    /// A scale-out node passes its accounts `storage` and its `nodes`; a standalone server keeps
    /// its accounts in the data directory.
    public static func start(configuration: ServerConfiguration, group: any EventLoopGroup, logger: Logger,
                             storage: (any AccountStorage)? = nil, nodes: any ServerNodes = StandaloneNode()) async throws -> RendezvousServer {
        let ready = ContextSlot<Backend>()
        let channel = try await Listener.bind(
            ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                // Nothing is accepted until the data directory is open (`autoRead` below).
                .serverChannelOption(.autoRead, value: false)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try Self.accept(channel, ready.context!) }
                },
            to: HostPort(host: configuration.host, port: configuration.port), for: "peers")
        let lock: DirectoryLock
        let context: ServerContext<Backend>
        let created: Bool
        do {
            try Files.makeDirectory(configuration.dataDirectory)
            lock = try DirectoryLock(path: configuration.lockPath,
                                     purpose: "cannot use the data directory \(configuration.dataDirectory)")
            let (keyPair, madeKey) = try KeyFile.loadOrCreate(configuration.keyPath, backend: Backend.self)
            let store = try AccountStore<Backend>(storage: try storage ?? AccountFile(path: configuration.accountsPath),
                                                  parameters: configuration.scrypt)
            let pool = NIOThreadPool(numberOfThreads: configuration.hashingThreads > 0
                                         ? configuration.hashingThreads : System.coreCount)
            pool.start()
            context = ServerContext(configuration: configuration,
                                    keyPair: keyPair.keepingStaticSecrets(capacity: configuration.staticSecretsKept), store: store,
                                    nodes: nodes, hashingPool: pool, logger: logger)
            created = madeKey
        } catch {
            try? await channel.close()
            throw error
        }
        ready.context = context
        let relay = context.relay
        let expiry = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            relay.expire(now: Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds))
        }
        try await channel.pipeline.addHandler(AcceptFailureHandler { reason in
            logger.warning("connection dropped: could not set it up", metadata: ["reason": "\(reason)"])
        })
        try await channel.setOption(.autoRead, value: true).get()
        return RendezvousServer(localAddress: channel.localAddress!, publicKey: context.keyPair.publicKey,
                                createdKey: created, context: context, channel: channel, lock: lock, expiry: expiry)
    }

    private init(localAddress: SocketAddress, publicKey: X25519PublicKey, createdKey: Bool,
                 context: ServerContext<Backend>, channel: any Channel, lock: DirectoryLock, expiry: RepeatedTask) {
        self.localAddress = localAddress
        self.publicKey = publicKey
        self.createdKey = createdKey
        self.context = context
        self.channel = channel
        self.lock = Locked(lock)
        self.expiry = expiry
    }

    /// A new TCP connection: refused past the caps (in all, per host), else given its own session handler.
    private static func accept(_ channel: any Channel, _ context: ServerContext<Backend>) throws {
        let open = context.openConnections.add(1, ordering: .relaxed).newValue
        let id = context.makeConnectionID()
        context.channels.withLock { $0[id] = channel }
        guard let source = channel.remoteAddress?.endpoint else {
            channel.closeFuture.whenComplete { _ in context.forget(id) }
            channel.close(promise: nil)
            return
        }
        let counted = open <= context.configuration.maximumConnections && context.hosts.admit(source.address)
        channel.closeFuture.whenComplete { _ in
            context.forget(id)
            if counted { context.hosts.closed(source.address) }
        }
        guard counted else {
            let reason = open > context.configuration.maximumConnections ? "at the connection cap" : "too many connections from this host"
            context.logger.warning("connection refused", metadata: ["reason": "\(reason)", "from": "\(source)"])
            channel.close(promise: nil)
            return
        }
        let connection = ServerConnection(context: context, id: id, source: source)
        try channel.pipeline.syncOperations.addHandler(ServerChannelHandler(connection.events))
    }

    /// Users signed in now.
    public var signedInUsers: [UserID] { context.directory.users }

    /// Where the other nodes' notices are applied (a scale-out node).
    public var inbox: NodeInbox { NodeInbox(directory: context.directory, nodes: context.nodes,
                                            broadcast: { [context] in context.broadcast($0) }, logger: context.logger) }
    public var openConnections: Int { context.openConnections.load(ordering: .relaxed) }

    /// Stops accepting, closes every connection, and releases the data directory.
    public func stop() async {
        expiry.cancel()
        try? await channel.close()
        for connection in context.channels.withLock({ Array($0.values) }) { try? await connection.close() }
        try? await context.hashingPool.shutdownGracefully()
        lock.withLock { $0 = nil }
    }

    /// The one line printed at start: the key and the exact flags that reach this server.
    public var startLine: String {
        Self.startLine(listening: HostPort(host: localAddress.plainIPAddress ?? context.configuration.host,
                                           port: localAddress.port ?? context.configuration.port),
                       key: publicKey)
    }

    /// What `serve` prints at start and `serve --show-key` again: the key and the peer flags.
    public static func startLine(listening address: HostPort, key: X25519PublicKey) -> String {
        let encoded = Base64.encode(key.bytes)
        let reach = address.isEveryAddress ? HostPort(host: "THIS-HOST", port: address.port) : address
        let shown = address.isEveryAddress ? "every address, port \(address.port)" : "\(address)"
        return "securechat server listening on \(shown), key \(encoded)"
            + " — reach it with: securechat peer --user NAME --server \(reach) --server-key \(encoded)"
    }
}

/// Where the listener's accept handler finds the server's shared state, which exists only once
/// the data directory is open (after the bind, before the first accept).
private final class ContextSlot<Backend: CryptoBackend>: @unchecked Sendable {
    // @unchecked: written once before accepting starts (autoRead on), only read afterwards.
    var context: ServerContext<Backend>?
}
