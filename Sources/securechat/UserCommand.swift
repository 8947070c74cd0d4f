import ArgumentParser
import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import SecureChatOpenSSL

/// Account administration hashes with OpenSSL: scrypt and SHA-256 give the same bytes on every
/// backend, so a store written here serves a server running either.
typealias AdministrationBackend = OpenSSLBackend

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Add, remove or list the server's accounts.",
        discussion: """
            Works on the data directory of a stopped server: a running server holds it, and the \
            command then says so. Users can also create their own accounts with `securechat peer --signup` \
            when the server allows sign-up.
            """,
        subcommands: [Add.self, Remove.self, List.self]
    )

    struct StoreOptions: ParsableArguments {
        @Option(help: ArgumentHelp("A server config file (for the data directory and scrypt parameters).", valueName: "FILE"))
        var config: String?

        @Option(name: .customLong("data-dir"), help: ArgumentHelp("The server's data directory (default ./securechat-data).", valueName: "DIR"))
        var dataDir: String?

        /// Opens the store with the server's lock held, so a running server's store is not changed under it.
        func withStore<R>(_ body: (AccountStore<AdministrationBackend>) throws -> R) throws -> R {
            var settings = try ServerSettings(configPath: config)
            if let dataDir { settings.server.dataDirectory = dataDir }
            do {
                try Files.makeDirectory(settings.server.dataDirectory)
                let lock = try DirectoryLock(path: settings.server.lockPath,
                                             purpose: "cannot change accounts in \(settings.server.dataDirectory) (is the server running?)")
                defer { withExtendedLifetime(lock) {} }
                return try body(try AccountStore(path: settings.server.accountsPath, parameters: settings.server.scrypt))
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError("\(error)")
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an account. The passcode is read from the terminal without echo, or as one line of standard input.")

        @Argument(help: "The user ID: 1–32 of a-z 0-9 . _ -, starting with a letter or digit.")
        var name: String

        @OptionGroup var store: StoreOptions

        func run() throws {
            let user = try parseUserID(name)
            guard let passcode = Terminal.readSecret(prompt: "Passcode for \(user): "), passcode.count > 0 else {
                throw CLIError("no passcode given")
            }
            let digest = try PasscodeDigest.wire(userID: user, passcode: passcode, backend: AdministrationBackend.self)
            let result = try store.withStore { try $0.create(user: user, digest: digest, identityKey: nil) }
            guard result == .created else { throw CLIError("\(user) already has an account") }
            print("created \(user); the first sign-in binds its identity key")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an account.")

        @Argument(help: "The user ID.")
        var name: String

        @OptionGroup var store: StoreOptions

        func run() throws {
            let user = try parseUserID(name)
            guard try store.withStore({ try $0.remove(user: user) }) else { throw CLIError("there is no account \(user)") }
            print("removed \(user)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the accounts, with each identity key's fingerprint.")

        @OptionGroup var store: StoreOptions

        func run() throws {
            try store.withStore { store in
                for user in store.users {
                    let key = store.account(user)?.identityKey.map { Base64.encode($0.bytes) } ?? "(no key yet)"
                    print("\(user)\t\(key)")
                }
            }
        }
    }
}

func parseUserID(_ text: String) throws -> UserID {
    guard let user = UserID(text) else {
        throw CLIError("\"\(text)\" is not a valid user ID (1–32 of a-z 0-9 . _ -, starting with a letter or digit)")
    }
    return user
}
