import Logging
import NIOCore
import NIOPosix
import SecureChatCore
import SecureChatCrypto
import Synchronization

/// What every connection of one server shares. All of it is safe from any event loop.
final class ServerContext<Backend: CryptoBackend>: Sendable {
    let configuration: ServerConfiguration
    let keyPair: X25519KeyPair
    let store: AccountStore<Backend>
    let directory = OnlineDirectory()
    let limiter: Mutex<SignInLimiter>
    /// scrypt and store writes run here, never on an event loop.
    let hashingPool: NIOThreadPool
    let logger: Logger
    let openConnections = Atomic<Int>(0)
    /// Every accepted connection, so that `stop` can close them.
    let channels = Mutex<[UInt64: any Channel]>([:])
    private let nextConnectionID = Atomic<UInt64>(1)

    init(configuration: ServerConfiguration, keyPair: X25519KeyPair, store: AccountStore<Backend>,
         hashingPool: NIOThreadPool, logger: Logger) {
        self.configuration = configuration
        self.keyPair = keyPair
        self.store = store
        limiter = Mutex(SignInLimiter(configuration: configuration.signInLimits))
        self.hashingPool = hashingPool
        self.logger = logger
    }

    func makeConnectionID() -> UInt64 { nextConnectionID.add(1, ordering: .relaxed).oldValue }
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
    private let lock: Mutex<DirectoryLock?>

    /// Opens the data directory (creating it, the key and an empty store on first start), binds,
    /// and starts accepting. Throws with a clear message on anything it cannot use.
    public static func start(configuration: ServerConfiguration, group: any EventLoopGroup,
                             logger: Logger) async throws -> RendezvousServer {
        try Files.makeDirectory(configuration.dataDirectory)
        let lock = try DirectoryLock(path: configuration.lockPath,
                                     purpose: "cannot use the data directory \(configuration.dataDirectory)")
        let (keyPair, created) = try KeyFile.loadOrCreate(configuration.keyPath, backend: Backend.self)
        let store = try AccountStore<Backend>(path: configuration.accountsPath, parameters: configuration.scrypt)
        let pool = NIOThreadPool(numberOfThreads: configuration.hashingThreads > 0
                                     ? configuration.hashingThreads : System.coreCount)
        pool.start()
        let context = ServerContext(configuration: configuration, keyPair: keyPair, store: store,
                                    hashingPool: pool, logger: logger)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try Self.accept(channel, context) }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            try? await pool.shutdownGracefully()
            throw FileError("cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
        return RendezvousServer(localAddress: channel.localAddress!, publicKey: keyPair.publicKey,
                                createdKey: created, context: context, channel: channel, lock: lock)
    }

    private init(localAddress: SocketAddress, publicKey: X25519PublicKey, createdKey: Bool,
                 context: ServerContext<Backend>, channel: any Channel, lock: DirectoryLock) {
        self.localAddress = localAddress
        self.publicKey = publicKey
        self.createdKey = createdKey
        self.context = context
        self.channel = channel
        self.lock = Mutex(lock)
    }

    /// A new TCP connection: refused past the cap, else given its own session handler.
    private static func accept(_ channel: any Channel, _ context: ServerContext<Backend>) throws {
        let open = context.openConnections.add(1, ordering: .relaxed).newValue
        let id = context.makeConnectionID()
        context.channels.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { _ in
            context.openConnections.subtract(1, ordering: .relaxed)
            _ = context.channels.withLock { $0.removeValue(forKey: id) }
        }
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        guard open <= context.configuration.maximumConnections else {
            context.logger.warning("connection refused: at the connection cap",
                                   metadata: ["from": "\(address)", "cap": "\(context.configuration.maximumConnections)"])
            channel.close(promise: nil)
            return
        }
        let connection = ServerConnection(context: context, id: id, address: address)
        try channel.pipeline.syncOperations.addHandler(ServerChannelHandler(connection.events))
    }

    /// Users signed in now.
    public var signedInUsers: [UserID] { context.directory.users }
    public var openConnections: Int { context.openConnections.load(ordering: .relaxed) }

    /// Stops accepting, closes every connection, and releases the data directory.
    public func stop() async {
        try? await channel.close()
        for connection in context.channels.withLock({ Array($0.values) }) { try? await connection.close() }
        try? await context.hashingPool.shutdownGracefully()
        lock.withLock { $0 = nil }
    }

    /// The one line printed at start: the key and the exact flags that reach this server.
    public var startLine: String {
        let key = Base64.encode(publicKey.bytes)
        let host = context.configuration.host == "0.0.0.0" || context.configuration.host == "::"
            ? "THIS-HOST" : context.configuration.host
        return "securechat server listening on \(localAddress.ipAddress ?? host):\(localAddress.port ?? 0), key \(key)"
            + " — reach it with: securechat peer --user NAME --server \(host):\(localAddress.port ?? 0) --server-key \(key)"
    }
}
