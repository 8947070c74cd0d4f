import NIOPosix
import SecureChatBackends
import SecureChatCommandLine
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork

struct PasswdCommand: Command {
    static let spec = CommandSpec(
        "passwd",
        abstract: "Change your own passcode on the server.",
        discussion: """
            Signs in with your identity key and current passcode, then sets the new one (asked \
            twice on a terminal; with standard input not a terminal, two lines: the current \
            passcode, then the new one). Signing in here signs out a peer of yours that is signed \
            in now: `/reconnect` there afterwards. --server and --server-key come from the config \
            (~/.securechat/peer.conf by default) when not given.

            EXAMPLES:
              securechat passwd --user ali
              securechat passwd --user ali --server 192.0.2.10:7400 --server-key KEY
            """,
        options: [
            .value("user", "NAME", help: "Your user ID (required, here or in the config)."),
            .configFile("A peer config file (default ~/.securechat/peer.conf when it exists)."),
            .value("server", "HOST:PORT", help: "The server."),
            .value("server-key", "BASE64", help: "The server's public key."),
            .value("key-file", "FILE", help: "Your identity key (default ~/.securechat/NAME.key).", completion: .files),
        ])

    let settings: PeerSettings

    init(_ arguments: ParsedArguments) throws {
        var settings = try PeerSettings(configPath: arguments.value("config"))
        if let user = try arguments.user("user") { settings.user = user }
        if let server = try arguments.serverAddresses().last { settings.servers = [server] }
        if let serverKey = arguments.value("server-key") { settings.serverKey = try PeerSettings.parseKey(serverKey) }
        if let keyFile = arguments.value("key-file") { settings.keyFile = keyFile }
        self.settings = settings
    }

    func run() async throws {
        guard let user = settings.user else { throw CLIError("--user NAME is required (or `user = NAME` in the config)") }
        guard let key = settings.serverKey else { throw CLIError("--server-key is required (or `server-key = …` in the config)") }
        try await change(user, at: settings.servers[0], serverKey: key, keyPath: try settings.keyFile ?? PeerSettings.homeDirectory() + "/\(user).key",
                         cipher: settings.options.cipher, backend: settings.backend.implementation)
    }

    private func change<Backend: CryptoBackend>(_ user: UserID, at server: HostPort, serverKey: X25519PublicKey, keyPath: String,
                                               cipher: CipherKind, backend: Backend.Type) async throws {
        let identity: X25519KeyPair
        do { identity = try KeyFile.load(keyPath, backend: Backend.self) } catch {
            throw CLIError("\(error) (your identity key: passwd signs in with it, so the server keeps it)")
        }
        guard let current = Terminal.readSecret(prompt: "Current passcode for \(user): "), current.count > 0 else {
            throw CLIError("no passcode given")
        }
        let currentDigest = try PasscodeDigest.wire(userID: user, passcode: current, backend: Backend.self)
        let newDigest = try newPasscodeDigest(for: user)
        let reply: ControlMessage
        do {
            reply = try await ControlConnection<Backend>.with(server, serverKey: serverKey, identity: identity, cipher: cipher,
                                                              group: MultiThreadedEventLoopGroup.singleton) { connection in
                let signIn = try await connection.request(.authRequest(.init(userID: user, passcode: currentDigest, port: 0)))
                guard case let .authReply(auth) = signIn, auth.status == .granted else {
                    if case let .authReply(auth) = signIn { throw CLIError("sign-in refused: \(auth.reason ?? "refused")") }
                    throw CLIError("the server did not answer the sign-in")
                }
                let reply = try await connection.request(.passwordRequest(.init(userID: user, passcode: currentDigest, newPasscode: newDigest)))
                try? await connection.send(.logoutRequest(userID: user))
                return reply
            }
        } catch let error as CLIError {
            throw error
        } catch let error as ControlConnection<Backend>.Failure {
            throw CLIError("\(error)")
        } catch {
            throw CLIError(NetworkWords.describe(error, while: .connecting(to: "the server", at: server)))
        }
        guard case let .passwordReply(answer) = reply else { throw CLIError("the server answered \(reply.messageType)") }
        guard answer.status == .changed else { throw CLIError("passcode not changed: \(VisibleText.make(answer.reason, .terminal))") }
        print("passcode changed for \(user)")
    }
}
