import ArgumentParser
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Show a key file's public key and fingerprint.",
        subcommands: [Show.self]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public key and fingerprint of a key file (a server's server.key or a peer's NAME.key).",
            discussion: """
                EXAMPLES:
                  securechat key show /var/lib/securechat/server.key
                  securechat key show ~/.securechat/ali.key
                """)

        @Argument(help: ArgumentHelp("The key file.", valueName: "FILE"))
        var file: String

        func run() throws {
            let key: X25519KeyPair
            do { key = try KeyFile.load(file, backend: AdministrationBackend.self) } catch { throw CLIError("\(error)") }
            print("public key: \(Base64.encode(key.publicKey.bytes))")
            print("fingerprint: \(Fingerprint.of(key.publicKey, backend: AdministrationBackend.self))")
        }
    }
}
