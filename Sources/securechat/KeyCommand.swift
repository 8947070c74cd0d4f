import SecureChatCommandLine
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork

enum KeyCommand {
    static let node = CommandNode.group(CommandSpec("key", abstract: "Show a key file's public key and fingerprint."),
                                        [.command(Show.self)])

    struct Show: Command {
        static let spec = CommandSpec(
            "show", abstract: "Print the public key and fingerprint of a key file (a server's server.key or a peer's NAME.key).",
            discussion: """
                EXAMPLES:
                  securechat key show /var/lib/securechat/server.key
                  securechat key show ~/.securechat/ali.key
                """,
            arguments: [ArgumentSpec("FILE", help: "The key file.", completion: .files)])

        let file: String

        init(_ arguments: ParsedArguments) { file = arguments.argument("FILE") ?? "" }

        func run() throws {
            let key: X25519KeyPair
            do { key = try KeyFile.load(file, backend: AdministrationBackend.self) } catch { throw CLIError("\(error)") }
            print("public key: \(Base64.encode(key.publicKey.bytes))")
            print("fingerprint: \(Fingerprint.of(key.publicKey, backend: AdministrationBackend.self))")
        }
    }
}
