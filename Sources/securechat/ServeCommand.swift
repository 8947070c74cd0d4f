import ArgumentParser
import Glibc
import Logging
import NIOCore
import NIOPosix
import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import SecureChatGcrypt
import SecureChatNetwork
import SecureChatOpenSSL

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the rendezvous server: sign-in, presence and lookup for peers.",
        discussion: """
            On start it prints one line with its public key and the exact `securechat peer` flags \
            that reach it. SIGINT or SIGTERM stops it cleanly. Every option, and more, can be set in \
            a config file (see Configs/server.conf); a flag beats the file.
            """
    )

    @Option(help: ArgumentHelp("A server config file.", valueName: "FILE"))
    var config: String?

    @Option(help: ArgumentHelp("Address and port to listen on (default 127.0.0.1:7400).", valueName: "HOST:PORT"))
    var listen: HostPort?

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Where the server key and accounts live (default ./securechat-data).", valueName: "DIR"))
    var dataDir: String?

    @Option(help: "Crypto backend: openssl or gcrypt (default openssl).")
    var backend: BackendName?

    @Option(help: "Allow only this cipher: chachapoly or aesgcm (default: both).")
    var cipher: CipherKind?

    func run() async throws {
        var settings = try ServerSettings(configPath: config)
        if let listen { settings.server.host = listen.host; settings.server.port = listen.port }
        if let dataDir { settings.server.dataDirectory = dataDir }
        if let backend { settings.backend = backend }
        if let cipher { settings.server.session.allowedCiphers = [cipher] }
        startLogging(level: settings.logLevel)
        // A switch with concrete types, not the existential: lets the compiler specialise the
        // generic server for each backend.
        switch settings.backend {
        case .openssl: try await serve(settings, backend: OpenSSLBackend.self)
        case .gcrypt: try await serve(settings, backend: GcryptBackend.self)
        }
    }

    private func serve<Backend: CryptoBackend>(_ settings: ServerSettings, backend: Backend.Type) async throws {
        let logger = Logger(label: "securechat.server")
        let threads = settings.server.networkThreads
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads > 0 ? threads : System.coreCount)
        let server: RendezvousServer<Backend>
        do {
            server = try await RendezvousServer<Backend>.start(configuration: settings.server, group: group, logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            throw CLIError("\(error)")
        }
        if server.createdKey { logger.notice("created a new server key", metadata: ["file": "\(settings.server.keyPath)"]) }
        Output.line(server.startLine)
        let signal = await Signals.first(of: [SIGINT, SIGTERM])
        logger.notice("stopping", metadata: ["signal": "\(signal == SIGINT ? "SIGINT" : "SIGTERM")"])
        await server.stop()
        try? await group.shutdownGracefully()
    }
}

/// The server's settings: defaults, then the config file.
struct ServerSettings {
    var server = ServerConfiguration()
    var backend = BackendName.openssl
    var logLevel = Logger.Level.info

    init(configPath: String?) throws {
        var file = try ConfigFile.loadIfGiven(configPath)
        if let listen = try file.hostPort("listen") { server.host = listen.host; server.port = listen.port }
        if let directory = try file.string("data-dir") { server.dataDirectory = directory }
        if let backend = try file.backend("backend") { self.backend = backend }
        if let ciphers = try file.take("ciphers", expected: "a comma-separated list of chachapoly and aesgcm", Self.parseCiphers) {
            server.session.allowedCiphers = ciphers
        }
        let logN = try file.integer("scrypt-log-n", in: 10...20) ?? 14
        let r = try file.integer("scrypt-r", in: 1...16) ?? 8
        let p = try file.integer("scrypt-p", in: 1...16) ?? 1
        server.scrypt = ScryptParameters(n: 1 << UInt64(logN), r: UInt32(r), p: UInt32(p))
        if let signUp = try file.boolean("signup") { server.session.allowSignUp = signUp }
        if let presence = try file.boolean("presence") { server.presenceBroadcast = presence }
        if let limit = try file.integer("failed-signins-per-user", in: 1...1000) { server.signInLimits.failuresPerUser = limit }
        if let limit = try file.integer("failed-signins-per-address", in: 1...100_000) { server.signInLimits.failuresPerAddress = limit }
        if let window = try file.duration("failed-signin-window") { server.signInLimits.window = window }
        if let cap = try file.integer("max-connections", in: 1...1_000_000) { server.maximumConnections = cap }
        if let deadline = try file.duration("signin-deadline") { server.session.signInDeadline = deadline }
        if let idle = try file.duration("idle-timeout") { server.session.idleTimeout = idle }
        if let threads = try file.integer("hashing-threads", in: 0...256) { server.hashingThreads = threads }
        if let threads = try file.integer("network-threads", in: 0...256) { server.networkThreads = threads }
        if let level = try file.logLevel("log-level") { logLevel = level }
        try file.requireAllUsed()
    }

    static func parseCiphers(_ text: String) -> [CipherKind]? {
        let names = text.split(separator: ",").map { String($0.trimmed) }
        let kinds = names.compactMap(CipherKind.init(configName:))
        return kinds.count == names.count && !kinds.isEmpty ? kinds : nil
    }
}
