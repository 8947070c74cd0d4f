import SecureChatBackends
import SecureChatCommandLine
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import SecureChatOpenSSL

/// Account administration hashes with OpenSSL: scrypt and SHA-256 give the same bytes on every
/// backend, so a store written here serves a server running either.
typealias AdministrationBackend = OpenSSLBackend

enum UserCommand {
    static let node = CommandNode.group(
        CommandSpec(
            "user",
            abstract: "Add, remove, list the server's accounts, or set one's passcode.",
            discussion: """
                `list` reads the data directory and works while the server runs. `add`, `remove` and \
                `passwd` change it, so they need the server stopped (it holds the directory; the \
                command says so). With a scale-out node's config (`database = …`) they work on the \
                deployment's PostgreSQL, while the nodes run. Users can also create their own accounts with \
                `securechat peer --signup` when the server allows sign-up, and change their own \
                passcode with `securechat passwd`.

                EXAMPLES:
                  securechat user add carol --data-dir /var/lib/securechat
                  securechat user list --data-dir /var/lib/securechat
                  printf 'new-passcode\\n' | securechat user passwd carol
                """),
        [.command(Add.self), .command(Remove.self), .command(List.self), .command(Passwd.self)])

    static let storeOptions: [OptionSpec] = [
        .configFile("A server config file (for the data directory and scrypt parameters)."),
        .value("data-dir", "DIR", help: "The server's data directory (default ./securechat-data).", completion: .directories),
    ]

    static let nameArgument = ArgumentSpec("NAME", help: "The user ID: 1–32 of a-z 0-9 . _ -, starting with a letter or digit.")

    /// The data directory and scrypt parameters: the config, then --data-dir.
    struct Store {
        let settings: ServerSettings

        init(_ arguments: ParsedArguments) throws {
            var settings = try ServerSettings(configPath: arguments.value("config"))
            if let dataDir = arguments.value("data-dir") { settings.server.dataDirectory = dataDir }
            self.settings = settings
        }

        /// Opens the store with the server's lock held, so a running server's store is not changed
        /// under it; a scale-out node's config names its database, whose changes are safe while
        /// the nodes run (each one a compare-and-set).
        func withStore<R>(_ body: (AccountStore<AdministrationBackend>) throws -> R) throws -> R {
            if let scaleOut = settings.scaleOut {
                return try scaleOut.withAccounts { storage, _ in
                    try body(try AccountStore(storage: storage, parameters: settings.server.scrypt))
                }
            }
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

    /// A command on one account: its name and the store.
    struct Target {
        let user: UserID
        let store: Store

        init(_ arguments: ParsedArguments) throws {
            user = try Parse.user(arguments.argument("NAME") ?? "")
            store = try Store(arguments)
        }
    }

    struct Add: Command {
        static let spec = CommandSpec(
            "add", abstract: "Create an account. The passcode is read from the terminal without echo (twice), or as one line of standard input.",
            discussion: "EXAMPLES:\n  securechat user add carol --data-dir /var/lib/securechat",
            options: storeOptions, arguments: [nameArgument])

        let target: Target
        init(_ arguments: ParsedArguments) throws { target = try Target(arguments) }

        func run() throws {
            let digest = try newPasscodeDigest(for: target.user)
            let result = try target.store.withStore { try $0.create(user: target.user, digest: digest, identityKey: nil) }
            guard result == .created else { throw CLIError("\(target.user) already has an account") }
            print("created \(target.user); the first sign-in binds its identity key")
        }
    }

    struct Remove: Command {
        static let spec = CommandSpec("remove", abstract: "Delete an account.",
                                      discussion: "EXAMPLES:\n  securechat user remove carol --data-dir /var/lib/securechat",
                                      options: storeOptions, arguments: [nameArgument])

        let target: Target
        init(_ arguments: ParsedArguments) throws { target = try Target(arguments) }

        func run() throws {
            guard try target.store.withStore({ try $0.remove(user: target.user) }) else { throw CLIError("there is no account \(target.user)") }
            print("removed \(target.user)")
        }
    }

    struct Passwd: Command {
        static let spec = CommandSpec(
            "passwd", abstract: "Set an account's passcode (the administrator's reset; users change theirs with `securechat passwd`).",
            discussion: "EXAMPLES:\n  printf 'new-passcode\\n' | securechat user passwd carol",
            options: storeOptions, arguments: [nameArgument])

        let target: Target
        init(_ arguments: ParsedArguments) throws { target = try Target(arguments) }

        func run() throws {
            let digest = try newPasscodeDigest(for: target.user)
            guard try target.store.withStore({ try $0.setPasscode(user: target.user, digest: digest) }) else {
                throw CLIError("there is no account \(target.user)")
            }
            print("the passcode of \(target.user) is set")
        }
    }

    struct List: Command {
        static let spec = CommandSpec("list", abstract: "List the accounts, with each identity key's fingerprint (works while the server runs).",
                                      discussion: "EXAMPLES:\n  securechat user list --data-dir /var/lib/securechat",
                                      options: storeOptions)

        let store: Store
        init(_ arguments: ParsedArguments) throws { store = try Store(arguments) }

        func run() throws {
            let settings = store.settings
            let book: AccountBook
            if let scaleOut = settings.scaleOut {
                book = try scaleOut.withAccounts { _, read in try read() }
            } else {
                guard Files.exists(settings.server.dataDirectory) else {
                    throw CLIError("\(settings.server.dataDirectory) does not exist: no server has used it (wrong --data-dir?)")
                }
                do { book = try AccountFile.readOnly(settings.server.accountsPath) } catch { throw CLIError("\(error)") }
            }
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
