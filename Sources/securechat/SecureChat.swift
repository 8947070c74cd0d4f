import ArgumentParser
import SecureChatBackends

@main
struct SecureChat: AsyncParsableCommand {
    static let version = "0.2.0"

    static let configuration = CommandConfiguration(
        commandName: "securechat",
        abstract: "End-to-end encrypted chat: a rendezvous server and peers that talk directly (Noise IK).",
        discussion: """
            EXAMPLES:
              securechat serve --listen :7400                 run a server (prints its key)
              securechat peer --user ali --signup --server 192.0.2.10:7400 --server-key KEY
              securechat peer --user bianca --chat ali        call ali once signed in
              securechat bench                                measure this device

            Shell completions: securechat --generate-completion-script bash|zsh|fish
            """,
        version: version,
        subcommands: [ServeCommand.self, PeerCommand.self, UserCommand.self, PasswdCommand.self, KeyCommand.self,
                      BenchCommand.self, SelfTestCommand.self, VersionCommand.self]
    )

    /// `securechat` alone: the usage, and a failure status (nothing was done).
    func run() async throws {
        Output.error(Self.helpMessage() + "\n")
        throw ExitCode.failure
    }
}

/// A backend choice on the command line: one backend or all of them.
enum BackendSelection: String, ExpressibleByArgument, CaseIterable {
    case openssl, gcrypt, all

    var backends: [BackendName] {
        switch self {
        case .openssl: return [.openssl]
        case .gcrypt: return [.gcrypt]
        case .all: return BackendName.allCases
        }
    }
}
