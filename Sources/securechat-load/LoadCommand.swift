import Glibc
import NIOCore
import NIOPosix
import SecureChatCommandLine
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import SecureChatOpenSSL
import Synchronization

/// Drives a running `securechat serve` for scripts/bench-server.sh: prepares accounts, measures
/// lookups per second with concurrent clients, and holds many idle signed-in sessions.
/// A developer tool: not part of the shipped binary.
@main
enum LoadCommand {
    static let tree = CommandNode.group(
        CommandSpec("securechat-load", abstract: "Load generator for the securechat server (scripts/bench-server.sh)."),
        [.command(Prepare.self), .command(Lookups.self), .command(Idle.self), .command(SignUps.self), .command(PresenceDelay.self)])

    static func main() async {
        exit(await CommandLineTool.run(tree, Array(CommandLine.arguments.dropFirst()), visible: { $0 }) { stream, text in
            var bytes = Array(text.utf8)
            _ = write(stream == .output ? STDOUT_FILENO : STDERR_FILENO, &bytes, bytes.count)
        })
    }
}

/// A failure of the load run (printed as "Error: …").
struct LoadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
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

/// The server to load: `--server HOST:PORT --server-key BASE64`.
struct ServerOptions {
    static let specs: [OptionSpec] = [.value("server", "HOST:PORT", help: "The server.", required: true),
                                      .value("server-key", "BASE64", help: "Its public key.", required: true)]
    let server: HostPort
    let key: X25519PublicKey

    init(_ arguments: ParsedArguments) throws {
        server = try arguments.require(try arguments.value("server", expected: "HOST:PORT") { HostPort($0) }, "server")
        key = try arguments.require(try arguments.value("server-key", expected: "a base64 X25519 public key") { text in
            Base64.decode(text).flatMap { try? X25519PublicKey(bytes: $0) }
        }, "server-key")
    }
}

/// Signs in user `index` on `connection`.
func signIn(_ connection: inout ControlConnection<Backend>, _ index: Int) async throws {
    let user = benchUser(index)
    let reply = try await connection.request(.authRequest(.init(userID: user, passcode: try benchDigest(index), port: 9)))
    // Only the verdict: the reply also names the server's extensions.
    guard case let .authReply(answer) = reply, answer.userID == user, answer.status == .granted else {
        throw LoadError("sign-in of \(user) failed: \(reply)")
    }
}

struct Prepare: Command {
    static let spec = CommandSpec("prepare", abstract: "Write an account store with USERS bench accounts (server stopped).",
                                  options: [.value("data-dir", "DIR", help: "The data directory.", required: true),
                                            .value("users", "USERS", help: "How many accounts.", required: true),
                                            .value("log-n", "N", help: "scrypt's log2 N (default 10).")])
    let dataDir: String
    let users: Int
    let logN: Int

    init(_ arguments: ParsedArguments) throws {
        dataDir = try arguments.require(arguments.value("data-dir"), "data-dir")
        users = try arguments.require(try arguments.integer("users", in: 1...1_000_000), "users")
        logN = try arguments.integer("log-n", in: 10...20) ?? 10
    }

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

struct Lookups: Command {
    static let spec = CommandSpec("lookups", abstract: "CLIENTS signed-in clients doing lookups back to back; prints lookups per second.",
                                  options: ServerOptions.specs + [
                                      .value("clients", "CLIENTS", help: "Signed-in clients (default 50)."),
                                      .value("seconds", "S", help: "How long (default 10)."),
                                      .value("threads", "N", help: "Event loop threads of the load generator (default 1, as redis-benchmark)."),
                                  ])
    let options: ServerOptions
    let clients: Int
    let seconds: Double
    let threads: Int

    init(_ arguments: ParsedArguments) throws {
        options = try ServerOptions(arguments)
        clients = try arguments.integer("clients", in: 1...100_000) ?? 50
        seconds = try arguments.value("seconds", expected: "a number of seconds", Double.init) ?? 10
        threads = try arguments.integer("threads", in: 1...64) ?? 1
    }

    func run() async throws {
        let key = options.key
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
            if state.failed.value > 0 { throw LoadError("a client failed to sign in or look up") }
            try await Task.sleep(for: .milliseconds(5))
        }
        for index in 0..<clients { state.kick(index) }
        try await Task.sleep(for: .seconds(seconds))
        let count = state.completed.value
        guard state.failed.value == 0 else { throw LoadError("a lookup failed") }
        say("lookups: \(count) in \(seconds) s = \(Int(Double(count) / seconds)) per second with \(clients) clients")
        try? await group.shutdownGracefully()
    }
}

/// Shared counters of the lookup load, and each client's way to start its first lookup.
final class LookupLoad: Sendable {
    let signedIn = Counter(), completed = Counter(), failed = Counter()
    private let starters: Locked<[Int: @Sendable () -> Void]> = Locked([:])
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
    /// The first LOOKUPREPLY, decoded and checked: every later one must be the same bytes (the
    /// server answers a lookup of the same user with the same reply), so comparing them checks
    /// each reply without parsing it again, as redis-benchmark checks a reply's type, not its value.
    private var expectedReply: [UInt8]?
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
            case let .deliver(plaintext) where plaintext == expectedReply:
                load.completed.add()
                sendLookup()
            case let .deliver(plaintext):
                switch try? ControlMessage.decode(plaintext) {
                case .authReply(let reply)? where reply.status == .granted: load.signedIn.add()
                case .lookupReply(let reply)? where reply.found != nil:
                    expectedReply = plaintext
                    load.completed.add()
                    sendLookup()
                case .presence?: break  // another client signing in, on a server that tells
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

struct Idle: Command {
    static let spec = CommandSpec("idle", abstract: "Sign in SESSIONS users and hold them idle; prints `ready` then waits for end of input.",
                                  options: ServerOptions.specs + [
                                      .value("sessions", "SESSIONS", help: "How many.", required: true),
                                      .value("parallel", "N", help: "Sign-ins in flight at once (default 64)."),
                                  ])
    let options: ServerOptions
    let sessions: Int
    let parallel: Int

    init(_ arguments: ParsedArguments) throws {
        options = try ServerOptions(arguments)
        sessions = try arguments.require(try arguments.integer("sessions", in: 1...1_000_000), "sessions")
        parallel = try arguments.integer("parallel", in: 1...10_000) ?? 64
    }

    func run() async throws {
        let key = options.key
        let group = MultiThreadedEventLoopGroup.singleton
        let signedIn = Counter()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for index in 0..<sessions {
                // At most `parallel` sign-ins in flight; the held sessions only wait.
                while signedIn.value < index - parallel { try await Task.sleep(for: .milliseconds(2)) }
                tasks.addTask {
                    try await ControlConnection<Backend>.with(options.server, serverKey: key,
                                                              identity: try benchIdentity(index), group: group) { connection in
                        do { try await signIn(&connection, index) } catch {
                            say("idle: \(error)")  // said at once: the count it waits for would never come
                            exit(1)
                        }
                        signedIn.add()
                        // Hold the session until the script stops us, through the server's keep-alive probes.
                        while case .keepAlive? = try? await connection.receiveAny() { try? await connection.send(.keepAlive) }
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

struct SignUps: Command {
    static let spec = CommandSpec("signups", abstract: "Sign up USERS bench accounts through the protocol; prints sign-ups per second.",
                                  options: ServerOptions.specs + [
                                      .value("users", "USERS", help: "How many.", required: true),
                                      .value("parallel", "N", help: "Sign-ups in flight at once (default 8)."),
                                  ])
    let options: ServerOptions
    let users: Int
    let parallel: Int

    init(_ arguments: ParsedArguments) throws {
        options = try ServerOptions(arguments)
        users = try arguments.require(try arguments.integer("users", in: 1...1_000_000), "users")
        parallel = try arguments.integer("parallel", in: 1...1000) ?? 8
    }

    func run() async throws {
        let (key, server, users, parallel) = (options.key, options.server, users, parallel)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for worker in 0..<parallel {
                tasks.addTask {
                    for index in stride(from: worker, to: users, by: parallel) {
                        try await ControlConnection<Backend>.with(server, serverKey: key, identity: try benchIdentity(index),
                                                                  group: MultiThreadedEventLoopGroup.singleton) { connection in
                            let reply = try await connection.request(.signUpRequest(.init(userID: benchUser(index), passcode: try benchDigest(index))))
                            guard case let .signUpReply(answer) = reply, answer.status == .created else {
                                throw LoadError("sign-up of \(benchUser(index)) failed: \(reply)")
                            }
                        }
                    }
                }
            }
            try await tasks.waitForAll()
        }
        let seconds = milliseconds(ContinuousClock.now - started) / 1000
        say("signups: \(users) in \(fixedPoint(seconds, decimals: 2)) s = \(Int(Double(users) / seconds)) per second, \(parallel) in flight")
    }
}

/// How long a PRESENCE change takes to reach a client on another node: bench0 watches on
/// `--server`, bench1 signs in and out on `--other` ROUNDS times; from bench1's AUTHREPLY to
/// bench0's PRESENCE.
struct PresenceDelay: Command {
    static let spec = CommandSpec("presence", abstract: "Time from a sign-in on one node to the PRESENCE on another; prints p50 and p99.",
                                  options: ServerOptions.specs + [
                                      .value("other", "HOST:PORT", help: "The node bench1 signs in to.", required: true),
                                      .value("rounds", "N", help: "Sign-ins (default 200)."),
                                  ])
    let options: ServerOptions
    let other: HostPort
    let rounds: Int

    init(_ arguments: ParsedArguments) throws {
        options = try ServerOptions(arguments)
        other = try arguments.require(try arguments.value("other", expected: "HOST:PORT") { HostPort($0) }, "other")
        rounds = try arguments.integer("rounds", in: 1...100_000) ?? 200
    }

    func run() async throws {
        let (key, other, rounds) = (options.key, other, rounds)
        let group = MultiThreadedEventLoopGroup.singleton
        let arrivals = AsyncStream.makeStream(of: ContinuousClock.Instant.self)
        let watcher = Task {
            try await ControlConnection<Backend>.with(options.server, serverKey: key, identity: try benchIdentity(0), group: group) { connection in
                try await signIn(&connection, 0)
                arrivals.continuation.yield(.now)  // ready
                while true {
                    if case let .presence(update) = try await connection.receiveAny(), update.userID == benchUser(1),
                       update.status == .online {
                        arrivals.continuation.yield(.now)
                    }
                }
            }
        }
        var arrived = arrivals.stream.makeAsyncIterator()
        _ = await arrived.next()
        var delays = [Double]()
        for _ in 0..<rounds {
            let signedIn = try await ControlConnection<Backend>.with(other, serverKey: key, identity: try benchIdentity(1), group: group) { connection in
                try await signIn(&connection, 1)
                return ContinuousClock.now
            }
            guard let seen = await arrived.next() else { throw LoadError("the watcher stopped") }
            delays.append(milliseconds(seen - signedIn))
            try await Task.sleep(for: .milliseconds(20))  // the sign-out travels too before the next round
        }
        watcher.cancel()
        delays.sort()
        let percentile = { (p: Double) in delays[min(delays.count - 1, Int(Double(delays.count) * p))] }
        say("presence: \(rounds) sign-ins, p50 \(fixedPoint(percentile(0.5), decimals: 2)) ms, p99 \(fixedPoint(percentile(0.99), decimals: 2)) ms")
    }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
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
