import ArgumentParser
import CBuildInfo
import SecureChatBackends

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the securechat version, the commit it was built from and its crypto libraries."
    )

    func run() {
        print("securechat \(SecureChat.version) (commit \(String(cString: securechat_build_commit())), protocol version 1)")
        for backend in BackendName.allCases {
            print("  \(backend): \(backend.implementation.libraryDescription)")
        }
    }
}
