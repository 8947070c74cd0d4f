import Glibc
import Logging
import NIOCore
import NIOPosix
import SecureChatBackends
import SecureChatCommandLine
import SecureChatCore
import SecureChatCrypto
import SecureChatGcrypt
import SecureChatNetwork
import SecureChatOpenSSL

struct ServeCommand: Command {
    static let spec = CommandSpec(
        "serve",
        abstract: "Run the rendezvous server: sign-in, presence, lookup, call set-up and relay for peers.",
        discussion: """
            On start it prints one line with its public key and the exact `securechat peer` flags \
            that reach it; --show-key prints them again (also while it runs). SIGINT or SIGTERM \
            stops it cleanly. A flag beats the config file (see Configs/server.conf, which \
            documents every setting).

            Config-only settings: scrypt-log-n, scrypt-r, scrypt-p, signup, presence, \
            failed-signins-free, signin-backoff-max, failed-signins-per-host, failed-signins-per-user, \
            failed-signin-window, signins-in-flight-per-host, signups-per-host, max-connections, max-connections-per-host, \
            max-unsigned-per-host, signin-deadline, idle-timeout, probe-interval, probe-timeout, \
            relay-idle-timeout, hashing-threads, network-threads, log-level; and for a node of a \
            scale-out deployment (several servers on one PostgreSQL, docs/DEPLOYING.md): database, \
            database-password-file, node-name, node-address, node-lease.

            EXAMPLES:
              securechat serve --listen :7400 --data-dir /var/lib/securechat
              securechat serve --config /etc/securechat/server.conf
              securechat serve --show-key --data-dir /var/lib/securechat
              securechat serve --listen :7400 --no-relay
            """,
        options: [
            .configFile("A server config file."),
            .value("listen", "HOST:PORT", help: "Address and port to listen on (default 127.0.0.1:7400; :7400 is every address)."),
            .value("data-dir", "DIR", help: "Where the server key and accounts live (default ./securechat-data).", completion: .directories),
            .backend,
            .value("cipher", "CIPHER", help: "Allow only this cipher: chachapoly or aesgcm (default: both).", completion: .ciphers),
            .toggle("relay", help: "Relay calls that find no direct path (default on); the relay sees only ciphertext."),
            .value("relay-calls-per-user", "N", help: "Relayed calls one user may have at once (default 2)."),
            .value("relay-calls", "N", help: "Relayed calls in all at once (default 200)."),
            .value("relay-rate", "BYTES", help: "Bytes per second per relayed call in each direction (default 1048576; 0: no limit)."),
            .flag("show-key", help: "Print the server's public key and the peer flags, and exit."),
        ])

    let config: String?
    let listen: HostPort?
    let dataDir: String?
    let backend: BackendName?
    let cipher: CipherKind?
    let relay: Bool?
    let relayCallsPerUser: Int?
    let relayCalls: Int?
    let relayRate: Int?
    let showKey: Bool

    init(_ arguments: ParsedArguments) throws {
        config = arguments.value("config")
        listen = try arguments.listenAddress()
        dataDir = arguments.value("data-dir")
        backend = try arguments.choice("backend", BackendName.self)
        cipher = try arguments.cipher()
        relay = arguments.toggle("relay")
        relayCallsPerUser = try arguments.integer("relay-calls-per-user", in: ServerSettings.relayCallsPerUserRange)
        relayCalls = try arguments.integer("relay-calls", in: ServerSettings.relayCallsRange)
        relayRate = try arguments.integer("relay-rate", in: ServerSettings.relayRateRange)
        showKey = arguments.flag("show-key")
    }

    func run() async throws {
        var settings = try ServerSettings(configPath: config)
        if let listen {
            settings.server.host = listen.host
            settings.server.port = listen.port
        }
        if let dataDir { settings.server.dataDirectory = dataDir }
        if let backend { settings.backend = backend }
        if let cipher { settings.server.session.allowedCiphers = [cipher] }
        if let relay { settings.server.relay.enabled = relay }
        if let relayCallsPerUser { settings.server.relay.callsPerUser = relayCallsPerUser }
        if let relayCalls { settings.server.relay.callsInAll = relayCalls }
        if let relayRate { settings.server.relay.bytesPerSecond = relayRate }
        if showKey { return try Self.showKey(settings.server) }
        startLogging(level: settings.logLevel)
        // A switch with concrete types, not the existential: lets the compiler specialise the
        // generic server for each backend.
        switch settings.backend {
        case .openssl: try await serve(settings, backend: OpenSSLBackend.self)
        case .gcrypt: try await serve(settings, backend: GcryptBackend.self)
        }
    }

    /// `--show-key`: reads the key file only (no lock: it works while the server runs).
    private static func showKey(_ server: ServerConfiguration) throws {
        guard Files.exists(server.keyPath) else {
            throw CLIError("\(server.keyPath) does not exist: the server creates its key on first start (wrong --data-dir?)")
        }
        let key: X25519KeyPair
        do { key = try KeyFile.load(server.keyPath, backend: AdministrationBackend.self) } catch { throw CLIError("\(error)") }
        Output.line(RendezvousServer<AdministrationBackend>.startLine(listening: HostPort(host: server.host, port: server.port),
                                                                      key: key.publicKey))
        Output.line("fingerprint: \(Fingerprint.of(key.publicKey, backend: AdministrationBackend.self))")
    }

    private func serve<Backend: CryptoBackend>(_ settings: ServerSettings, backend: Backend.Type) async throws {
        let logger = Logger(label: "securechat.server")
        let threads = settings.server.networkThreads
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads > 0 ? threads : System.coreCount)
        let server: RendezvousServer<Backend>
        let membership: ServerMembership
        do {
            membership = try await ServerMembership.join(settings, eventLoop: group.next(), logger: logger, backend: Backend.self)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        do {
            server = try await RendezvousServer<Backend>.start(configuration: settings.server, group: group, logger: logger,
                                                               storage: membership.storage, nodes: membership.nodes)
        } catch {
            await membership.leave()
            try? await group.shutdownGracefully()
            throw CLIError("\(error)")
        }
        membership.attach(server.inbox)
        if server.createdKey { logger.notice("created a new server key", metadata: ["file": "\(settings.server.keyPath)"]) }
        let stopSignal = Signals.catching([SIGINT, SIGTERM])
        Output.line(server.startLine)
        let signal = await stopSignal()
        logger.notice("stopping", metadata: ["signal": "\(signal == SIGINT ? "SIGINT" : "SIGTERM")"])
        await server.stop()
        await membership.leave()
        try? await group.shutdownGracefully()
    }
}

/// The server's settings: defaults, then the config file.
struct ServerSettings {
    var server = ServerConfiguration()
    var backend = BackendName.openssl
    var logLevel = Logger.Level.info
    /// Set for a node of a scale-out deployment (`database = …`).
    var scaleOut: ScaleOutSettings?

    // Settings that are both a flag and a config key: one range for both.
    static let relayCallsPerUserRange = 1...1000
    static let relayCallsRange = 1...1_000_000
    static let relayRateRange = 0...(1 << 30)

    init(configPath: String?) throws {
        var file = try ConfigFile.loadIfGiven(configPath)
        if let listen = try file.listenAddress("listen") { server.host = listen.host; server.port = listen.port }
        if let directory = try file.path("data-dir") { server.dataDirectory = directory }
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
        if let free = try file.integer("failed-signins-free", in: 1...100) { server.signInLimits.freeFailures = free }
        if let maximum = try file.duration("signin-backoff-max") { server.signInLimits.maximumBackOff = maximum }
        if let limit = try file.integer("failed-signins-per-host", in: 1...1_000_000) { server.signInLimits.failuresPerHost = limit }
        if let limit = try file.integer("failed-signins-per-user", in: 1...1_000_000) { server.signInLimits.failuresPerUser = limit }
        if let window = try file.duration("failed-signin-window") { server.signInLimits.window = window }
        if let limit = try file.integer("signins-in-flight-per-host", in: 1...100_000) { server.signInLimits.inFlightPerHost = limit }
        if let limit = try file.integer("signups-per-host", in: 0...1_000_000) { server.signInLimits.signUpsPerHost = limit }
        if let cap = try file.integer("max-connections", in: 1...1_000_000) { server.maximumConnections = cap }
        if let cap = try file.integer("max-connections-per-host", in: 1...1_000_000) { server.maximumConnectionsPerHost = cap }
        if let cap = try file.integer("max-unsigned-per-host", in: 1...1_000_000) { server.maximumUnsignedPerHost = cap }
        if let deadline = try file.duration("signin-deadline") { server.session.signInDeadline = deadline }
        if let idle = try file.duration("idle-timeout") { server.session.idleTimeout = idle }
        if let interval = try file.duration("probe-interval") { server.session.probeInterval = interval }
        if let timeout = try file.duration("probe-timeout") { server.session.probeTimeout = timeout }
        if let relay = try file.boolean("relay") { server.relay.enabled = relay }
        if let limit = try file.integer("relay-calls-per-user", in: Self.relayCallsPerUserRange) { server.relay.callsPerUser = limit }
        if let limit = try file.integer("relay-calls", in: Self.relayCallsRange) { server.relay.callsInAll = limit }
        if let rate = try file.integer("relay-rate", in: Self.relayRateRange) { server.relay.bytesPerSecond = rate }
        if let idle = try file.duration("relay-idle-timeout") { server.relay.idleTimeout = idle }
        if let threads = try file.integer("hashing-threads", in: 0...256) { server.hashingThreads = threads }
        if let threads = try file.integer("network-threads", in: 0...256) { server.networkThreads = threads }
        if let level = try file.logLevel("log-level") { logLevel = level }
        scaleOut = try ScaleOutSettings.read(&file)
        try file.requireAllUsed()
    }

    static func parseCiphers(_ text: String) -> [CipherKind]? {
        let names = text.split(separator: ",").map { String($0.trimmed) }
        let kinds = names.compactMap(CipherKind.init(configName:))
        return kinds.count == names.count && !kinds.isEmpty ? kinds : nil
    }
}
