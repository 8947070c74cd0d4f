import ArgumentParser
import SecureChatBackends

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the securechat version and the crypto libraries it carries."
    )

    func run() {
        print("securechat \(SecureChat.version) (protocol version 1)")
        for backend in BackendName.allCases {
            print("  \(backend): \(backend.implementation.libraryDescription)")
        }
    }
}
