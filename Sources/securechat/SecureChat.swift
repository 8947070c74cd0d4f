import ArgumentParser
import SecureChatBackends

@main
struct SecureChat: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "securechat",
        abstract: "End-to-end encrypted chat: a rendezvous server and peers that talk directly (Noise IK).",
        version: version,
        subcommands: [ServeCommand.self, PeerCommand.self, UserCommand.self, BenchCommand.self, SelfTestCommand.self, VersionCommand.self]
    )
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
