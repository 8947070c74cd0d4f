import ArgumentParser
import NIOPosix
import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork

struct PasswdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd",
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
            """
    )

    @Option(help: ArgumentHelp("Your user ID (required, here or in the config).", valueName: "NAME")) var user: String?
    @Option(help: ArgumentHelp("A peer config file (default ~/.securechat/peer.conf when it exists).", valueName: "FILE"))
    var config: String?
    @Option(help: ArgumentHelp("The server.", valueName: "HOST:PORT")) var server: String?
    @Option(name: .customLong("server-key"), help: ArgumentHelp("The server's public key.", valueName: "BASE64")) var serverKey: String?
    @Option(name: .customLong("key-file"), help: ArgumentHelp("Your identity key (default ~/.securechat/NAME.key).", valueName: "FILE"))
    var keyFile: String?

    func run() async throws {
        var settings = try PeerSettings(configPath: config)
        if let user { settings.user = try Parse.user(user) }
        if let server { settings.server = try Parse.server(server) }
        if let serverKey { settings.serverKey = try PeerSettings.parseKey(serverKey) }
        if let keyFile { settings.keyFile = keyFile }
        guard let user = settings.user else { throw CLIError("--user NAME is required (or `user = NAME` in the config)") }
        guard let key = settings.serverKey else { throw CLIError("--server-key is required (or `server-key = …` in the config)") }
        try await change(user, at: settings.server, serverKey: key, keyPath: try settings.keyFile ?? PeerSettings.homeDirectory() + "/\(user).key",
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
