import CBuildInfo
import SecureChatBackends
import SecureChatCommandLine

struct VersionCommand: Command {
    static let spec = CommandSpec(
        "version", abstract: "Print the securechat version, the commit it was built from and its crypto libraries.",
        discussion: "EXAMPLES:\n  securechat version")

    init(_ arguments: ParsedArguments) {}

    func run() {
        print("securechat \(SecureChat.version) (commit \(String(cString: securechat_build_commit())), protocol version 1)")
        for backend in BackendName.allCases {
            print("  \(backend): \(backend.implementation.libraryDescription)")
        }
    }
}
