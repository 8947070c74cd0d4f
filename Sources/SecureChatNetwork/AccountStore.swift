import SecureChatCore
import SecureChatCrypto
import Synchronization

/// The server's accounts on disk (`accounts` in the data directory, see `AccountBook` for the
/// format). Every change is written to a new file, flushed and renamed over the old one before
/// the caller is told it happened, so an acknowledged account survives a crash at any moment.
/// Hashing runs outside the lock; the blocking calls belong on a thread pool, not an event loop.
public final class AccountStore<Backend: CryptoBackend>: Sendable {
    public let path: String
    public let parameters: ScryptParameters
    private let book: Mutex<AccountBook>
    /// Hashed against for unknown users, so they cost the same time as a wrong passcode.
    private let decoy: PasscodeHash

    /// Opens the store at `path` (missing: empty). A file it cannot parse is refused, never
    /// overwritten; the error names the file and the line.
    public init(path: String, parameters: ScryptParameters) throws {
        self.path = path
        self.parameters = parameters
        try parameters.validate()
        // Also proves the backend supports these parameters before anyone signs up.
        decoy = try PasscodeHash.make(digest: String(repeating: "0", count: PasscodeDigest.hexLength),
                                      parameters: parameters, backend: Backend.self)
        guard let contents = try Files.readIfPresent(path) else {
            book = Mutex(AccountBook())
            return
        }
        do {
            book = Mutex(try AccountBook(parsing: contents))
        } catch {
            throw FileError("the account store \(path) cannot be read (\(error)); it was left untouched")
        }
    }

    public var users: [UserID] { book.withLock { $0.users } }
    public func account(_ user: UserID) -> Account? { book.withLock { $0[user] } }

    /// Checks a sign-in. On a match with a new identity key (a new device, PROTOCOL.md §4) the
    /// stored key is updated first. Unknown users run the same hash and get false.
    public func verify(user: UserID, digest: String, identityKey: X25519PublicKey) throws -> Bool {
        let account = self.account(user)
        let matches = (account?.passcode ?? decoy).matches(digest: digest, backend: Backend.self)
        guard matches, let account, account.identityKey != identityKey else { return matches && account != nil }
        _ = try change { book in
            guard book[user]?.passcode == account.passcode else { return false }
            book[user]?.identityKey = identityKey
            return true
        }
        return true
    }

    public enum Creation: Equatable, Sendable { case created, exists }

    /// Creates an account, durably, before returning `.created`. `identityKey` is nil when an
    /// administrator adds the account: the first sign-in binds it.
    public func create(user: UserID, digest: String, identityKey: X25519PublicKey?) throws -> Creation {
        if account(user) != nil { return .exists }
        let hash = try PasscodeHash.make(digest: digest, parameters: parameters, backend: Backend.self)
        let created = try change { book in
            guard book[user] == nil else { return false }
            book[user] = Account(passcode: hash, identityKey: identityKey)
            return true
        }
        return created ? .created : .exists
    }

    /// Removes an account; false if there was none.
    public func remove(user: UserID) throws -> Bool {
        try change { book in
            guard book[user] != nil else { return false }
            book[user] = nil
            return true
        }
    }

    /// Applies `edit` to a copy and, if it changed something, writes the copy to disk before
    /// it becomes the store's content: a failed write changes nothing.
    private func change(_ edit: (inout AccountBook) -> Bool) throws -> Bool {
        try book.withLock { current in
            var next = current
            guard edit(&next) else { return false }
            try Files.writeAtomically(next.serialized(), to: path, mode: 0o600)
            current = next
            return true
        }
    }
}
