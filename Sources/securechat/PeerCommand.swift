import Dispatch
import Glibc
import NIOCore
import NIOPosix
import SecureChatBackends
import SecureChatCommandLine
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork

struct PeerCommand: Command {
    static let spec = CommandSpec(
        "peer",
        abstract: "Sign in to a securechat server and chat directly with other peers.",
        discussion: """
            --user and --server-key are required: on the command line, or in the config file \
            (~/.securechat/peer.conf is read when it exists, so they are typed once).

            The passcode comes from --passcode-file (a file only you can read), else \
            SECURECHAT_PASSCODE, else the terminal (no echo); never from an argument. With \
            --signup it is asked twice and must have at least 8 characters.

            Commands while running (/help lists them): /chat NAME, /list, /hangup, /info, \
            /fingerprint [NAME], /trust NAME FINGERPRINT, /accept, /reject, /reconnect, /quit; \
            //text sends a line that starts with /. Any other line while chatting is sent. \
            Ctrl-C while chatting hangs up; Ctrl-C or end of input otherwise quits. With standard \
            input not a terminal, every event is one line on standard output (`NAME> text`, \
            `Hang up (NAME)`, status lines).

            Config-only settings (see Configs/peer.conf): known-peers, accept-ciphers, answer \
            (auto or ask), answer-timeout, call-timeout, relay-delay, direct, chat-keepalive, \
            chat-timeout, keepalive, reconnect-max, timestamps, trace.

            EXAMPLES:
              securechat peer --user ali --signup --server 192.0.2.10:7400 --server-key KEY
              securechat peer --user ali --chat bianca
              securechat peer --user ali --server a:7400 --server b:7400 --server-key KEY
              SECURECHAT_PASSCODE=… securechat peer --user ali < commands.txt
            """,
        options: [
            .value("user", "NAME", help: "Your user ID (required, here or in the config)."),
            .configFile("A peer config file (default ~/.securechat/peer.conf when it exists; see Configs/peer.conf)."),
            .value("server", "HOST:PORT", help: "The server (default 127.0.0.1:7400); again for each further node of the service, tried in turn.",
                   repeats: true),
            .value("server-key", "BASE64", help: "The server's public key, as `serve` printed it (required, here or in the config)."),
            .value("listen", "HOST:PORT", help: "Your one port for calls, the server connection and dials (default :0, every address, a port the system picks)."),
            .value("key-file", "FILE", help: "Your identity key (default ~/.securechat/NAME.key; created if missing).", completion: .files),
            .value("passcode-file", "FILE", help: "Read the passcode from the first line of FILE (mode 0600).", completion: .files),
            .flag("signup", help: "Create the account first (an existing one is signed in to when the passcode is right)."),
            .value("chat", "NAME", help: "Call NAME as soon as signed in."),
            .backend,
            .value("cipher", "CIPHER", help: "Cipher for your calls and server connection: chachapoly or aesgcm (default chachapoly).",
                   completion: .ciphers),
            .toggle("timestamps", help: "Show the time before chat lines (default: in a terminal only)."),
        ])

    let settings: PeerSettings
    let passcodeFile: String?

    /// The config file, then the flags over it.
    init(_ arguments: ParsedArguments) throws {
        var settings = try PeerSettings(configPath: arguments.value("config"))
        if let user = try arguments.user("user") { settings.user = user }
        let servers = try arguments.serverAddresses()
        if !servers.isEmpty { settings.servers = servers }
        if let serverKey = arguments.value("server-key") { settings.serverKey = try PeerSettings.parseKey(serverKey) }
        if let listen = try arguments.listenAddress() { settings.options.listen = listen }
        if let keyFile = arguments.value("key-file") { settings.keyFile = keyFile }
        if let backend = try arguments.choice("backend", BackendName.self) { settings.backend = backend }
        if let cipher = try arguments.cipher() { settings.options.cipher = cipher }
        if let chat = try arguments.user("chat") { settings.options.callOnStart = chat }
        if let timestamps = arguments.toggle("timestamps") { settings.timestamps = timestamps }
        if arguments.flag("signup") { settings.options.signUp = true }
        self.settings = settings
        passcodeFile = arguments.value("passcode-file")
    }

    func run() async throws {
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
    /// Never empty: the nodes of the service, tried in turn.
    var servers = [HostPort(host: "127.0.0.1", port: 7400)]
    var serverKey: X25519PublicKey?
    var keyFile: String?
    var knownPeersFile: String?
    var backend = BackendName.openssl
    var timestamps: Bool?
    var options = PeerConfiguration.Options()

    /// `configPath`, or ~/.securechat/peer.conf when it exists.
    init(configPath: String?) throws {
        var path = configPath
        if path == nil, let home = try? Self.homeDirectory(creating: false), Files.exists(home + "/peer.conf") {
            path = home + "/peer.conf"
        }
        var file = try ConfigFile.loadIfGiven(path)
        if let name = try file.take("user", expected: "a user ID", { UserID($0.lowercased()) }) { user = name }
        if let servers = try file.serverAddresses("server") { self.servers = servers }
        if let key = try file.take("server-key", expected: "a base64 X25519 public key", { try? Self.parseKey($0) }) { serverKey = key }
        if let listen = try file.listenAddress("listen") { options.listen = listen }
        if let path = try file.path("key-file") { keyFile = path }
        if let path = try file.path("known-peers") { knownPeersFile = path }
        if let backend = try file.backend("backend") { self.backend = backend }
        if let cipher = try file.cipher("cipher") { options.cipher = cipher }
        if let ciphers = try file.take("accept-ciphers", expected: "a comma-separated list of chachapoly and aesgcm",
                                       ServerSettings.parseCiphers) { options.allowedCiphers = ciphers }
        if let ask = try file.take("answer", expected: "auto or ask", { ["auto": false, "ask": true][$0] }) {
            options.askBeforeAnswering = ask
        }
        if let timeout = try file.duration("answer-timeout") { options.answerTimeout = timeout }
        if let timeout = try file.duration("call-timeout") { options.callSetup.callTimeout = timeout }
        if let delay = try file.duration("relay-delay") { options.callSetup.relayDelay = delay }
        if let direct = try file.boolean("direct") { options.callSetup.directPaths = direct }
        if let interval = try file.duration("chat-keepalive") { options.timeouts.keepAlive = interval }
        if let silence = try file.duration("chat-timeout") { options.timeouts.silence = silence }
        if let interval = try file.duration("keepalive") { options.keepAliveInterval = interval }
        if let maximum = try file.duration("reconnect-max") { options.reconnectDelays.maximum = maximum }
        if let stamps = try file.boolean("timestamps") { timestamps = stamps }
        if let trace = try file.take("trace", expected: "setup", { $0 == "setup" ? true : nil }) { options.traceSetup = trace }
        try file.requireAllUsed()
    }

    static func parseKey(_ text: String) throws -> X25519PublicKey {
        guard let bytes = Base64.decode(text), let key = try? X25519PublicKey(bytes: bytes) else {
            throw CLIError("the server key must be 44 characters of base64, as `securechat serve` (or `serve --show-key`) prints it")
        }
        return key
    }

    /// ~/.securechat, created private on first use (and refused if others can write to it).
    static func homeDirectory(creating: Bool = true) throws -> String {
        guard let home = getenv("HOME").map({ String(cString: $0) }), !home.isEmpty else {
            throw CLIError("HOME is not set: give --key-file and known-peers in the config")
        }
        let directory = home + "/.securechat"
        if creating { try Files.makeDirectory(directory) }
        return directory
    }
}

/// Runs one peer: passcode, key, the node on its own event loop, the console, signals.
struct PeerRunner<Backend: CryptoBackend> {
    let settings: PeerSettings
    let passcodeFile: String?

    func run() async throws {
        guard let user = settings.user else {
            throw CLIError("--user NAME is required (or `user = NAME` in the config), e.g. securechat peer --user ali --server-key KEY")
        }
        guard let serverKey = settings.serverKey else {
            throw CLIError("--server-key is required: the key `securechat serve` printed when it started (`serve --show-key` prints it again)")
        }
        let console = Console(timestamps: settings.timestamps)
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
        let digest = try Passcodes.digest(for: user, signUp: settings.options.signUp, file: passcodeFile, backend: Backend.self)

        let configuration = PeerConfiguration(user: user, passcodeDigest: digest, servers: settings.servers, serverKey: serverKey,
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
        let suspends = Signals([SIGTSTP]) { _ in console.suspend() }
        let resumes = Signals([SIGCONT, SIGWINCH]) { _ in console.resume() }
        DispatchQueue.global().async {
            console.readLines { line in
                if let command = Commands.parse(line, console: console) { handle.submit(command) }
            }
            handle.submit(.quit)
        }

        var failure: String?
        loop: for await event in events {
            defer { handle.eventShown() }
            switch event {
            case let .info(text): console.show(text)
            case let .signedIn(fingerprint, replaced):
                console.show("signed in as \(user) (your fingerprint: \(fingerprint))")
                if let replaced {
                    console.show("note: this device's key replaced the key the server had for \(user) (\(replaced)): people who "
                                 + "pinned that one will see a changed key and must compare fingerprints with you again")
                }
            case let .connected(peer, path): console.show("connected to \(peer) (\(path))")
            case let .received(from, text): console.showMessage("\(from)> \(text)")
            case let .hangUp(by):
                switch by {
                case .you: console.show("Hang up (you)")
                case let .them(peer): console.show("Hang up (\(peer))")
                case let .lost(peer): console.show("Hang up (connection to \(peer) lost)")
                }
            case let .signInRefused(refusal):
                let reason = Self.words(refusal, user: user, signUp: settings.options.signUp)
                console.show("sign-in refused: \(reason)")
                guard case .wrongPasscode = refusal, console.interactive,
                      let passcode = await console.readSecret(prompt: "Passcode for \(user): ") else {
                    failure = "sign-in refused: \(reason)"
                    handle.submit(.stop)
                    continue
                }
                handle.retrySignIn(passcodeDigest: try PasscodeDigest.wire(userID: user, passcode: passcode, backend: Backend.self))
            case let .fatal(reason):
                failure = reason
                handle.submit(.stop)
            case .stopped:
                break loop
            }
        }
        // In order: no more commands to the node, the terminal back, then the event loop.
        handle.close()
        withExtendedLifetime((interrupts, suspends, resumes)) {}
        console.restore()
        try? await group.shutdownGracefully()
        if let failure { throw CLIError(failure) }
    }

    private static func words(_ refusal: SignInRefusal, user: UserID, signUp: Bool) -> String {
        switch refusal {
        case .wrongPasscode:
            return signUp ? "the account \(user) exists already, and that is not its passcode" : "wrong user ID or passcode"
        case let .lockedOut(reason), let .unavailable(reason), let .other(reason):
            return reason
        case .busy:
            return "the server is checking too many sign-ins from your address; try again in a minute"
        }
    }
}

/// Typed lines as commands.
enum Commands {
    static let help: [(String, String)] = [
        ("/chat NAME", "call NAME"),
        ("/hangup", "end the chat or the call being placed (also Ctrl-C)"),
        ("/list", "who is online"),
        ("/info", "the current call's path, addresses and fingerprints"),
        ("/fingerprint [NAME]", "your fingerprint, or NAME's (pinned, or the server's, not yet verified)"),
        ("/trust NAME FINGERPRINT", "pin NAME's key after you compared its fingerprint with NAME"),
        ("/accept, /reject", "answer a call (with `answer = ask` in the config)"),
        ("/reconnect", "sign in again (after another device took over)"),
        ("/quit", "sign out and quit (also Ctrl-D, or Ctrl-C when not chatting)"),
        ("//text", "send a line that starts with /"),
    ]

    /// One typed line as a command; nil (with a message) for a line that is not one.
    static func parse(_ line: String, console: Console) -> PeerRequest? {
        guard line.hasPrefix("/"), !line.hasPrefix("//") else {
            let text = line.hasPrefix("//") ? String(line.dropFirst()) : line
            guard !text.isEmpty else { return nil }
            guard text.utf8.count <= ChatRecord.maximumText else {
                console.show("that line is too long to send (at most \(ChatRecord.maximumText) bytes)")
                return nil
            }
            return .text(text)
        }
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        func name(_ index: Int = 1) -> UserID? {
            guard words.count > index, let user = try? Parse.user(words[index]) else {
                console.show("\(words[0]) needs a user ID, e.g. \(words[0]) bianca")
                return nil
            }
            return user
        }
        switch words[0].lowercased() {
        case "/chat": return name().map { .chat($0) }
        case "/list": return .list
        case "/hangup": return .hangUp
        case "/info": return .info
        case "/fingerprint": return words.count == 1 ? .fingerprint(nil) : name().map { .fingerprint($0) }
        case "/trust":
            guard words.count >= 3, let user = name() else {
                console.show("/trust needs a user ID and the fingerprint you compared, e.g. /trust bianca 1a2b3c4d…")
                return nil
            }
            return .trust(user, fingerprint: words[2...].joined())
        case "/accept": return .accept
        case "/reject": return .reject
        case "/reconnect": return .reconnect
        case "/quit", "/exit": return .quit
        case "/help":
            let width = help.map(\.0.count).max() ?? 0
            for (command, what) in help { console.show(command + String(repeating: " ", count: width - command.count + 2) + what) }
            return nil
        default:
            console.show("unknown command \(words[0]): /help lists the commands (//text sends a line starting with /)")
            return nil
        }
    }
}

/// Where the passcode comes from, in order: `--passcode-file`, SECURECHAT_PASSCODE, the terminal.
enum Passcodes {
    static let minimumLength = 8

    static func digest<Backend: CryptoBackend>(for user: UserID, signUp: Bool, file: String?, backend: Backend.Type) throws -> String {
        let passcode = try read(for: user, signUp: signUp, file: file)
        guard passcode.count > 0 else { throw CLIError("the passcode is empty") }
        if signUp, passcode.count < minimumLength {
            throw CLIError("a new passcode needs at least \(minimumLength) characters")
        }
        return try PasscodeDigest.wire(userID: user, passcode: passcode, backend: Backend.self)
    }

    private static func read(for user: UserID, signUp: Bool, file: String?) throws -> SecretBytes {
        if let file { return try fromFile(file) }
        if let value = getenv("SECURECHAT_PASSCODE") {
            let passcode = SecretBytes(UnsafeRawBufferPointer(start: value, count: strlen(value)))
            // Wiped where it lies: unsetenv alone would leave it in /proc/self/environ.
            explicit_bzero(value, strlen(value))
            unsetenv("SECURECHAT_PASSCODE")
            return passcode
        }
        guard Terminal.isInteractive else {
            throw CLIError("no passcode: standard input is not a terminal; give --passcode-file FILE or set SECURECHAT_PASSCODE")
        }
        guard let typed = Terminal.readSecret(prompt: signUp ? "New passcode for \(user): " : "Passcode for \(user): ") else {
            throw CLIError("no passcode given")
        }
        guard signUp else { return typed }
        guard typed.count >= minimumLength else { throw CLIError("a new passcode needs at least \(minimumLength) characters") }
        guard let again = Terminal.readSecret(prompt: "The same passcode again: "),
              typed.withUnsafeBytes({ a in again.withUnsafeBytes { b in constantTimeEquals(a, b) } }) else {
            throw CLIError("the two passcodes differ; nothing was created")
        }
        return typed
    }

    /// The first line of a file only its owner can read (like a key file).
    static func fromFile(_ path: String) throws -> SecretBytes {
        if let mode = Files.permissions(path), mode & 0o077 != 0 {
            throw CLIError("\(path) is readable by other users (mode \(String(mode, radix: 8))); run: chmod 600 \(path)")
        }
        var contents = try Files.read(path)
        defer { contents.withUnsafeMutableBytes(secureWipe) }
        return SecretBytes(contents.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") })
    }
}
