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
        abstract: "Add, remove, list the server's accounts, or set one's passcode.",
        discussion: """
            `list` reads the data directory and works while the server runs. `add`, `remove` and \
            `passwd` change it, so they need the server stopped (it holds the directory; the \
            command says so). Users can also create their own accounts with \
            `securechat peer --signup` when the server allows sign-up, and change their own \
            passcode with `securechat passwd`.

            EXAMPLES:
              securechat user add carol --data-dir /var/lib/securechat
              securechat user list --data-dir /var/lib/securechat
              printf 'new-passcode\\n' | securechat user passwd carol
            """,
        subcommands: [Add.self, Remove.self, List.self, Passwd.self]
    )

    struct StoreOptions: ParsableArguments {
        @Option(help: ArgumentHelp("A server config file (for the data directory and scrypt parameters).", valueName: "FILE"))
        var config: String?

        @Option(name: .customLong("data-dir"), help: ArgumentHelp("The server's data directory (default ./securechat-data).", valueName: "DIR"))
        var dataDir: String?

        var settings: ServerSettings {
            get throws {
                var settings = try ServerSettings(configPath: config)
                if let dataDir { settings.server.dataDirectory = dataDir }
                return settings
            }
        }

        /// Opens the store with the server's lock held, so a running server's store is not changed under it.
        func withStore<R>(_ body: (AccountStore<AdministrationBackend>) throws -> R) throws -> R {
            let settings = try settings
            do {
                try Files.makeDirectory(settings.server.dataDirectory)
                let lock = try DirectoryLock(path: settings.server.lockPath,
                                             purpose: "cannot change accounts in \(settings.server.dataDirectory) while the server runs; stop it first")
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
            abstract: "Create an account. The passcode is read from the terminal without echo (twice), or as one line of standard input.")

        @Argument(help: "The user ID: 1–32 of a-z 0-9 . _ -, starting with a letter or digit.")
        var name: String

        @OptionGroup var store: StoreOptions

        func run() throws {
            let user = try Parse.user(name)
            let digest = try newPasscodeDigest(for: user)
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
            let user = try Parse.user(name)
            guard try store.withStore({ try $0.remove(user: user) }) else { throw CLIError("there is no account \(user)") }
            print("removed \(user)")
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set an account's passcode (the administrator's reset; users change theirs with `securechat passwd`).")

        @Argument(help: "The user ID.")
        var name: String

        @OptionGroup var store: StoreOptions

        func run() throws {
            let user = try Parse.user(name)
            let digest = try newPasscodeDigest(for: user)
            guard try store.withStore({ try $0.setPasscode(user: user, digest: digest) }) else {
                throw CLIError("there is no account \(user)")
            }
            print("the passcode of \(user) is set")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the accounts, with each identity key's fingerprint (works while the server runs).")

        @OptionGroup var store: StoreOptions

        func run() throws {
            let settings = try store.settings
            guard Files.exists(settings.server.dataDirectory) else {
                throw CLIError("\(settings.server.dataDirectory) does not exist: no server has used it (wrong --data-dir?)")
            }
            let book: AccountBook
            do { book = try AccountStore<AdministrationBackend>.readOnly(settings.server.accountsPath) } catch { throw CLIError("\(error)") }
            if book.users.isEmpty { print("no accounts") }
            for user in book.users {
                let key = book[user]?.identityKey.map { Fingerprint.of($0, backend: AdministrationBackend.self) } ?? "(no key yet: not signed in)"
                print("\(user)\t\(key)")
            }
        }
    }
}

/// A new passcode: typed twice without echo on a terminal (at least 8 characters), else one
/// line of standard input.
func newPasscodeDigest(for user: UserID) throws -> String {
    guard let passcode = Terminal.readSecret(prompt: "New passcode for \(user): "), passcode.count > 0 else {
        throw CLIError("no passcode given")
    }
    if Terminal.isInteractive {
        guard passcode.count >= Passcodes.minimumLength else {
            throw CLIError("a passcode needs at least \(Passcodes.minimumLength) characters")
        }
        guard let again = Terminal.readSecret(prompt: "The same passcode again: "),
              passcode.withUnsafeBytes({ a in again.withUnsafeBytes { b in constantTimeEquals(a, b) } }) else {
            throw CLIError("the two passcodes differ; nothing was changed")
        }
    }
    return try PasscodeDigest.wire(userID: user, passcode: passcode, backend: AdministrationBackend.self)
}
