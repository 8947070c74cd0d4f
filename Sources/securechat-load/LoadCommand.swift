import ArgumentParser
import Glibc
import NIOCore
import NIOPosix
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import SecureChatOpenSSL
import Synchronization

/// Drives a running `securechat serve` for scripts/bench-server.sh: prepares accounts, measures
/// lookups per second with concurrent clients, and holds many idle signed-in sessions.
/// A developer tool: not part of the shipped binary.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "securechat-load",
        abstract: "Load generator for the securechat server (scripts/bench-server.sh).",
        subcommands: [Prepare.self, Lookups.self, Idle.self])
}

typealias Backend = OpenSSLBackend
/// The wire digest of bench user `index`'s passcode (all share one passcode).
func benchDigest(_ index: Int) throws -> String {
    try PasscodeDigest.wire(userID: benchUser(index), passcode: SecretBytes(Array("bench-passcode".utf8)), backend: Backend.self)
}
func benchUser(_ index: Int) -> UserID { UserID("bench\(index)")! }

/// Each bench user's identity key, derived from its index, so that `prepare` can record it and
/// sign-ins find the key already bound (a new key would rewrite the store on every sign-in).
func benchIdentity(_ index: Int) throws -> X25519KeyPair {
    try Backend.x25519KeyPair(privateKey: SecretBytes(try Backend.sha256(Array("securechat-bench-\(index)".utf8))))
}

struct ServerOptions: ParsableArguments {
    @Option var server: HostPort
    @Option(name: .customLong("server-key")) var serverKey: String

    func key() throws -> X25519PublicKey {
        guard let bytes = Base64.decode(serverKey) else { throw ValidationError("--server-key is not base64") }
        return try X25519PublicKey(bytes: bytes)
    }
}

extension HostPort: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// Signs in user `index` on `connection`.
func signIn(_ connection: inout ControlConnection<Backend>, _ index: Int) async throws {
    let user = benchUser(index)
    let reply = try await connection.request(.authRequest(.init(userID: user, passcode: try benchDigest(index), port: 9)))
    guard reply == .authReply(.init(userID: user, status: .granted)) else { throw ValidationError("sign-in of \(user) failed: \(reply)") }
}

struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write an account store with USERS bench accounts (server stopped).")
    @Option(name: .customLong("data-dir")) var dataDir: String
    @Option var users: Int
    @Option(name: .customLong("log-n")) var logN: Int = 10

    func run() throws {
        try Files.makeDirectory(dataDir)
        let parameters = ScryptParameters(n: 1 << UInt64(logN), r: 8, p: 1)
        var book = AccountBook()
        for index in 0..<users {
            let user = benchUser(index)
            book[user] = Account(passcode: try PasscodeHash.make(digest: try benchDigest(index), parameters: parameters, backend: Backend.self),
                                 identityKey: try benchIdentity(index).publicKey)
        }
        try Files.writeAtomically(book.serialized(), to: dataDir + "/accounts", mode: 0o600)
    }
}

struct Lookups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "CLIENTS signed-in clients doing lookups back to back; prints lookups per second.")
    @OptionGroup var options: ServerOptions
    @Option var clients: Int = 50
    @Option var seconds: Double = 10
    @Option(help: "Event loop threads of the load generator (redis-benchmark uses one).") var threads: Int = 1

    func run() async throws {
        let key = try options.key()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let state = LookupLoad()
        for index in 0..<clients {
            let identity = try benchIdentity(index)
            _ = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let (secure, first) = try SecureChannel<Backend>.initiator(
                            cipher: .chaChaPoly, localStatic: identity, remoteStatic: key, payload: [])
                        try channel.pipeline.syncOperations.addHandler(
                            LookupClientHandler(index: index, clients: clients, channel: secure, first: first, load: state))
                    }
                }
                .connect(host: options.server.host, port: options.server.port).get()
        }
        while state.signedIn.value < clients {
            if state.failed.value > 0 { throw ValidationError("a client failed to sign in or look up") }
            try await Task.sleep(for: .milliseconds(5))
        }
        for index in 0..<clients { state.kick(index) }
        try await Task.sleep(for: .seconds(seconds))
        let count = state.completed.value
        guard state.failed.value == 0 else { throw ValidationError("a lookup failed") }
        say("lookups: \(count) in \(seconds) s = \(Int(Double(count) / seconds)) per second with \(clients) clients")
        try? await group.shutdownGracefully()
    }
}

/// Shared counters of the lookup load, and each client's way to start its first lookup.
final class LookupLoad: Sendable {
    let signedIn = Counter(), completed = Counter(), failed = Counter()
    private let starters: Mutex<[Int: @Sendable () -> Void]> = Mutex([:])
    func register(_ index: Int, _ start: @escaping @Sendable () -> Void) { starters.withLock { $0[index] = start } }
    func kick(_ index: Int) { starters.withLock { $0[index] }?() }
}

/// One client as a plain NIO handler, no tasks in between: sign in, then one lookup in flight at a
/// time, as redis-benchmark keeps one GET in flight per client.
final class LookupClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let index: Int
    private var channel: SecureChannel<Backend>
    private let first: [UInt8]
    private let load: LookupLoad
    private let request: [UInt8]
    private var context: ChannelHandlerContext?

    init(index: Int, clients: Int, channel: SecureChannel<Backend>, first: [UInt8], load: LookupLoad) {
        self.index = index
        self.channel = channel
        self.first = first
        self.load = load
        request = ControlMessage.lookupRequest(.init(userID: benchUser(index), lookup: benchUser((index + 1) % clients))).encoded()
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        load.register(index) { loopBound.eventLoop.execute { loopBound.value.sendLookup() } }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: first)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        for action in channel.receive(unwrapInboundIn(data).readableBytesView) {
            switch action {
            case .established:
                guard let digest = try? benchDigest(index) else { return fail() }
                send(ControlMessage.authRequest(.init(userID: benchUser(index), passcode: digest, port: 9)).encoded())
            case let .deliver(plaintext):
                switch try? ControlMessage.decode(plaintext) {
                case .authReply(let reply)? where reply.status == .granted: load.signedIn.add()
                case .lookupReply(let reply)? where reply.found != nil:
                    load.completed.add()
                    sendLookup()
                default: fail()
                }
            case .fail: fail()
            case .send, .handshakeReceived: break
            }
        }
    }

    fileprivate func sendLookup() { send(request) }

    private func send(_ plaintext: [UInt8]) {
        guard let context, let frame = try? channel.seal(plaintext) else { return fail() }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: frame)), promise: nil)
    }

    private func fail() {
        load.failed.add()
        context?.close(promise: nil)
    }
}

struct Idle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign in SESSIONS users and hold them idle; prints `ready` then waits for end of input.")
    @OptionGroup var options: ServerOptions
    @Option var sessions: Int
    @Option var parallel: Int = 64

    func run() async throws {
        let key = try options.key()
        let group = MultiThreadedEventLoopGroup.singleton
        let signedIn = Counter()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for index in 0..<sessions {
                // At most `parallel` sign-ins in flight; the held sessions only wait.
                while signedIn.value < index - parallel { try await Task.sleep(for: .milliseconds(2)) }
                tasks.addTask {
                    try await ControlConnection<Backend>.with(options.server, serverKey: key,
                                                              identity: try benchIdentity(index), group: group) { connection in
                        try await signIn(&connection, index)
                        signedIn.add()
                        // Hold the session until the script closes our input.
                        _ = try? await connection.receiveAny()
                    }
                }
            }
            while signedIn.value < sessions { try await Task.sleep(for: .milliseconds(20)) }
            say("ready: \(sessions) sessions signed in")
            // Hold them until the script stops this process.
            try await Task.sleep(for: .seconds(86_400))
        }
    }
}

final class Counter: Sendable {
    private let storage = Atomic<Int>(0)
    func add() { storage.add(1, ordering: .relaxed) }
    var value: Int { storage.load(ordering: .relaxed) }
}

/// A line to standard output at once (the script waits for it through a pipe).
func say(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
}
