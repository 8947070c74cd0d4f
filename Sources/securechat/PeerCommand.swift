import ArgumentParser
import Dispatch
import Glibc
import NIOCore
import NIOPosix
import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import SecureChatGcrypt
import SecureChatNetwork
import SecureChatOpenSSL

struct PeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Sign in to a securechat server and chat directly with other peers.",
        discussion: """
            The passcode comes from the terminal (no echo), else SECURECHAT_PASSCODE, else \
            --passcode-file; never from an argument.

            Commands: /chat NAME, /list, /hangup, /fingerprint [NAME], /trust NAME, /quit, /help; \
            /accept and /reject when the config says `answer = ask`. \
            Any other line while chatting is sent. Ctrl-C while chatting hangs up; Ctrl-C or end \
            of input otherwise quits. With standard input not a terminal, every event is one \
            line on standard output (`NAME> text`, `Hang up`, status lines).
            """
    )

    @Option(help: ArgumentHelp("Your user ID.", valueName: "NAME")) var user: String?
    @Option(help: ArgumentHelp("A peer config file (see Configs/peer.conf).", valueName: "FILE")) var config: String?
    @Option(help: ArgumentHelp("The server (default 127.0.0.1:7400).", valueName: "HOST:PORT")) var server: HostPort?
    @Option(name: .customLong("server-key"), help: ArgumentHelp("The server's public key, as `serve` printed it.", valueName: "BASE64"))
    var serverKey: String?
    @Option(help: ArgumentHelp("Where to listen for calls (default 0.0.0.0:0, a port chosen by the system).", valueName: "HOST:PORT"))
    var listen: HostPort?
    @Option(name: .customLong("key-file"), help: ArgumentHelp("Your identity key (default ~/.securechat/NAME.key; created if missing).", valueName: "FILE"))
    var keyFile: String?
    @Option(name: .customLong("passcode-file"), help: ArgumentHelp("Read the passcode from the first line of FILE.", valueName: "FILE"))
    var passcodeFile: String?
    @Flag(help: "Create the account first.") var signup = false
    @Option(help: ArgumentHelp("Call NAME as soon as signed in.", valueName: "NAME")) var chat: String?
    @Option(help: "Crypto backend: openssl or gcrypt (default openssl).") var backend: BackendName?
    @Option(help: "Cipher for your calls and server connection: chachapoly or aesgcm (default chachapoly).") var cipher: CipherKind?

    func run() async throws {
        var settings = try PeerSettings(configPath: config)
        if let user { settings.user = try parseUserID(user) }
        if let server { settings.server = server }
        if let serverKey { settings.serverKey = try PeerSettings.parseKey(serverKey) }
        if let listen { settings.options.listen = listen }
        if let keyFile { settings.keyFile = keyFile }
        if let backend { settings.backend = backend }
        if let cipher { settings.options.cipher = cipher }
        if let chat { settings.options.callOnStart = try parseUserID(chat) }
        if signup { settings.options.signUp = true }
        try await runPeer(settings.backend.implementation, settings)
    }

    /// The peer runs its backend-generic code unspecialised (the existential is opened here, not
    /// switched on): it moves lines people type, its crypto runs in the backends' own compiled
    /// code, and specialised copies for both backends would cost about 50 KB of the 24 MB budget.
    /// The server, where throughput matters, is specialised (`ServeCommand`).
    private func runPeer<Backend: CryptoBackend>(_: Backend.Type, _ settings: PeerSettings) async throws {
        try await PeerRunner<Backend>(settings: settings, passcodeFile: passcodeFile).run()
    }
}

/// The peer's settings: defaults, then the config file; flags are applied after.
struct PeerSettings {
    var user: UserID?
    var server = HostPort(host: "127.0.0.1", port: 7400)
    var serverKey: X25519PublicKey?
    var keyFile: String?
    var knownPeersFile: String?
    var backend = BackendName.openssl
    var options = PeerConfiguration.Options()

    init(configPath: String?) throws {
        var file = try ConfigFile.loadIfGiven(configPath)
        if let name = try file.take("user", expected: "a user ID", UserID.init) { user = name }
        if let server = try file.hostPort("server") { self.server = server }
        if let key = try file.take("server-key", expected: "a base64 X25519 public key", { try? Self.parseKey($0) }) { serverKey = key }
        if let listen = try file.hostPort("listen") { options.listen = listen }
        if let path = try file.string("key-file") { keyFile = path }
        if let path = try file.string("known-peers") { knownPeersFile = path }
        if let backend = try file.backend("backend") { self.backend = backend }
        if let cipher = try file.cipher("cipher") { options.cipher = cipher }
        if let ciphers = try file.take("accept-ciphers", expected: "a comma-separated list of chachapoly and aesgcm",
                                       ServerSettings.parseCiphers) { options.allowedCiphers = ciphers }
        if let ask = try file.take("answer", expected: "auto or ask", { ["auto": false, "ask": true][$0] }) {
            options.askBeforeAnswering = ask
        }
        if let interval = try file.duration("keepalive") { options.keepAliveInterval = interval }
        if let maximum = try file.duration("reconnect-max") { options.reconnectDelays.maximum = maximum }
        try file.requireAllUsed()
    }

    static func parseKey(_ text: String) throws -> X25519PublicKey {
        guard let bytes = Base64.decode(text), let key = try? X25519PublicKey(bytes: bytes) else {
            throw CLIError("the server key must be 44 characters of base64 (as `securechat serve` prints it)")
        }
        return key
    }

    /// ~/.securechat, created private on first use.
    static func homeDirectory() throws -> String {
        guard let home = getenv("HOME").map({ String(cString: $0) }), !home.isEmpty else {
            throw CLIError("HOME is not set: give --key-file and known-peers in the config")
        }
        let directory = home + "/.securechat"
        try Files.makeDirectory(directory)
        return directory
    }
}

/// Runs one peer: passcode, key, the node on its own event loop, the console, signals.
struct PeerRunner<Backend: CryptoBackend> {
    let settings: PeerSettings
    let passcodeFile: String?

    func run() async throws {
        guard let user = settings.user else { throw CLIError("--user NAME is required (or `user` in the config)") }
        guard let serverKey = settings.serverKey else {
            throw CLIError("--server-key is required: the key `securechat serve` printed when it started")
        }
        let console = Console()
        let keyPath = try settings.keyFile ?? (PeerSettings.homeDirectory() + "/\(user).key")
        let knownPeersPath = try settings.knownPeersFile ?? (PeerSettings.homeDirectory() + "/\(user).known_peers")
        let identity: X25519KeyPair
        do {
            let (keyPair, created) = try KeyFile.loadOrCreate(keyPath, backend: Backend.self)
            identity = keyPair
            if created { console.show("created your identity key in \(keyPath)") }
        } catch {
            throw CLIError("\(error)")
        }
        let digest = try passcodeDigest(for: user, console: console)

        let configuration = PeerConfiguration(user: user, passcodeDigest: digest, server: settings.server, serverKey: serverKey,
                                              identity: identity, knownPeersPath: knownPeersPath, options: settings.options)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (events, sink) = AsyncStream.makeStream(of: PeerEvent.self)
        let handle: PeerNode<Backend>.Handle
        do {
            handle = try await PeerNode<Backend>.start(configuration: configuration, eventLoop: group.next(),
                                                       emit: { sink.yield($0) }).get()
        } catch {
            try? await group.shutdownGracefully()
            throw CLIError("\(error)")
        }
        let interrupts = Signals([SIGINT]) { _ in handle.submit(.interrupt) }
        DispatchQueue.global().async {
            console.readLines { line in
                if let command = Self.command(line, console: console) { handle.submit(command) }
            }
            handle.submit(.quit)
        }

        var failure: String?
        loop: for await event in events {
            switch event {
            case let .info(text): console.show(text)
            case let .signedIn(fingerprint): console.show("signed in as \(user) (your fingerprint: \(fingerprint))")
            case let .connected(peer): console.show("connected to \(peer)")
            case let .received(from, text): console.show("\(from)> \(text)")
            case .hangUp: console.show("Hang up")
            case let .signInRefused(reason):
                console.show("sign-in refused: \(reason)")
                guard console.interactive, let passcode = await console.readSecret(prompt: "Passcode for \(user): ") else {
                    failure = "sign-in refused: \(reason)"
                    handle.submit(.quit)
                    continue
                }
                handle.retrySignIn(passcodeDigest: try PasscodeDigest.wire(userID: user, passcode: passcode, backend: Backend.self))
            case let .fatal(reason):
                failure = reason
                handle.submit(.quit)
            case .stopped:
                break loop
            }
        }
        withExtendedLifetime(interrupts) {}
        console.restore()
        try? await group.shutdownGracefully()
        if let failure { throw CLIError(failure) }
    }

    /// Terminal (no echo), else SECURECHAT_PASSCODE (then removed from the environment), else --passcode-file.
    private func passcodeDigest(for user: UserID, console: Console) throws -> String {
        let passcode: SecretBytes
        if console.interactive {
            guard let typed = Terminal.readSecret(prompt: "Passcode for \(user): ") else { throw CLIError("no passcode given") }
            passcode = typed
        } else if let value = getenv("SECURECHAT_PASSCODE") {
            passcode = SecretBytes(UnsafeRawBufferPointer(start: value, count: strlen(value)))
            unsetenv("SECURECHAT_PASSCODE")
        } else if let passcodeFile {
            var contents = try Files.read(passcodeFile)
            defer { contents.withUnsafeMutableBytes(secureWipe) }
            let line = contents.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
            passcode = SecretBytes(line)
        } else {
            throw CLIError("no passcode: standard input is not a terminal; set SECURECHAT_PASSCODE or give --passcode-file")
        }
        guard passcode.count > 0 else { throw CLIError("the passcode is empty") }
        return try PasscodeDigest.wire(userID: user, passcode: passcode, backend: Backend.self)
    }

    /// One typed line as a command; nil (with a message) for a line that is not one.
    static func command(_ line: String, console: Console) -> PeerRequest? {
        guard line.hasPrefix("/") else {
            guard !line.isEmpty else { return nil }
            guard line.utf8.count <= ChatRecord.maximumText else {
                console.show("that line is too long to send (at most \(ChatRecord.maximumText) bytes)")
                return nil
            }
            return .text(line)
        }
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        func name() -> UserID? {
            guard words.count == 2, let user = UserID(words[1]) else {
                console.show("\(words[0]) needs one user ID")
                return nil
            }
            return user
        }
        switch words[0] {
        case "/chat": return name().map { .chat($0) }
        case "/list": return .list
        case "/hangup": return .hangUp
        case "/fingerprint": return words.count == 1 ? .fingerprint(nil) : name().map { .fingerprint($0) }
        case "/trust": return name().map { .trust($0) }
        case "/accept": return .accept
        case "/reject": return .reject
        case "/quit": return .quit
        default:
            console.show("commands: /chat NAME, /list, /hangup, /fingerprint [NAME], /trust NAME, /accept, /reject, /quit")
            return nil
        }
    }
}
