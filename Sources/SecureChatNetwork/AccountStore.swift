import SecureChatCore
import SecureChatCrypto

/// Where the server's accounts are kept: the file of `AccountFile` (the default) or a table of
/// PostgreSQL (a scale-out deployment). Calls block; they run on the hashing pool.
public protocol AccountStorage: Sendable {
    func account(_ user: UserID) throws -> Account?
    /// Stores `new` (nil: removes the account) only if the account is still `expected` (nil: none
    /// yet), durably before it returns true; false, changing nothing, if it was not.
    func replace(_ user: UserID, expecting expected: Account?, with new: Account?) throws -> Bool
}

public enum AccountCreation: Equatable, Sendable { case created, exists }

/// The passcode checks and account changes of the server (PROTOCOL.md §4), over any storage:
/// hashing runs outside the storage, and every change is a compare-and-set against what was
/// read, so two nodes or two connections changing one account cannot undo each other.
public final class AccountStore<Backend: CryptoBackend>: Sendable {
    public let storage: any AccountStorage
    public let parameters: ScryptParameters
    /// Hashed against for unknown users, so they cost the same time as a wrong passcode.
    private let decoy: PasscodeHash

    public init(storage: any AccountStorage, parameters: ScryptParameters) throws {
        self.storage = storage
        self.parameters = parameters
        try parameters.validate()
        // Also proves the backend supports these parameters before anyone signs up.
        decoy = try PasscodeHash.make(digest: String(repeating: "0", count: PasscodeDigest.hexLength),
                                      parameters: parameters, backend: Backend.self)
    }

    /// The store in the account file at `path` (see `AccountFile`).
    public convenience init(path: String, parameters: ScryptParameters) throws {
        try self.init(storage: try AccountFile(path: path), parameters: parameters)
    }

    public func account(_ user: UserID) throws -> Account? { try storage.account(user) }

    /// Checks a sign-in: the verdict, and on a match with a new identity key (a new device,
    /// PROTOCOL.md §4) the key it replaced, after storing the new one. Unknown users run the same
    /// hash and get `.wrongPasscode`.
    public func verify(user: UserID, digest: String, identityKey: X25519PublicKey) throws -> SignInVerdict {
        let account = try self.account(user)
        let matches = (account?.passcode ?? decoy).matches(digest: digest, backend: Backend.self)
        guard matches, let account else { return .wrongPasscode }
        guard account.identityKey != identityKey else { return .granted(previousKey: nil) }
        // Lost to a concurrent change of this account: the sign-in still stands on the passcode it matched.
        _ = try storage.replace(user, expecting: account, with: Account(passcode: account.passcode, identityKey: identityKey))
        return .granted(previousKey: account.identityKey)
    }

    /// Changes a passcode after checking the current one (`.granted` once stored durably).
    public func changePasscode(user: UserID, digest: String, newDigest: String) throws -> SignInVerdict {
        let account = try self.account(user)
        guard let account, account.passcode.matches(digest: digest, backend: Backend.self) else {
            if account == nil { _ = decoy.matches(digest: digest, backend: Backend.self) }
            return .wrongPasscode
        }
        try setPasscode(user: user, digest: newDigest, expecting: account)
        return .granted(previousKey: nil)
    }

    /// Sets a passcode without the current one (the administrator's `user passwd`); false if no such user.
    @discardableResult
    public func setPasscode(user: UserID, digest: String) throws -> Bool {
        guard let account = try self.account(user) else { return false }
        try setPasscode(user: user, digest: digest, expecting: account)
        return true
    }

    private func setPasscode(user: UserID, digest: String, expecting current: Account) throws {
        let hash = try PasscodeHash.make(digest: digest, parameters: parameters, backend: Backend.self)
        guard try storage.replace(user, expecting: current, with: Account(passcode: hash, identityKey: current.identityKey)) else {
            throw FileError("the passcode of \(user) changed meanwhile; try again")
        }
    }

    /// Creates an account, durably, before returning `.created`. `identityKey` is nil when an
    /// administrator adds the account: the first sign-in binds it.
    public func create(user: UserID, digest: String, identityKey: X25519PublicKey?) throws -> AccountCreation {
        if try account(user) != nil { return .exists }
        let hash = try PasscodeHash.make(digest: digest, parameters: parameters, backend: Backend.self)
        let created = try storage.replace(user, expecting: nil, with: Account(passcode: hash, identityKey: identityKey))
        return created ? .created : .exists
    }

    /// Removes an account; false if there was none.
    public func remove(user: UserID) throws -> Bool {
        guard let account = try account(user) else { return false }
        return try storage.replace(user, expecting: account, with: nil)
    }
}

/// The server's accounts on disk: a snapshot (`accounts`, see `AccountBook` for the format) and
/// a journal of the changes since (`accounts.journal`). A change is one line appended to the
/// journal and flushed before the caller is told it happened, so its cost does not grow with the
/// number of accounts, and an acknowledged account survives a crash at any moment. When the
/// journal outgrows the snapshot, the two are folded into a new snapshot (written whole,
/// flushed, renamed over the old one) and the journal starts empty: replaying a journal over a
/// snapshot that already holds its changes changes nothing, so a crash between the two steps
/// loses nothing either.
public final class AccountFile: AccountStorage {
    public let path: String
    private let state: Locked<Contents>
    private struct Contents: ~Copyable {
        var book: AccountBook
        let journal: AppendOnlyFile
        var journalBytes: Int
        var snapshotBytes: Int
    }

    /// The journal is folded into the snapshot once it is this much larger than it, and at least this large.
    private static var minimumCompaction: Int { 64 * 1024 }

    public var journalPath: String { Self.journalPath(path) }
    static func journalPath(_ path: String) -> String { path + ".journal" }

    /// Opens the store at `path` (missing: empty). A snapshot or journal it cannot parse is
    /// refused, never overwritten; the error names the file and the line. A journal's torn last
    /// line (a crash while it was written, never acknowledged) is cut off.
    public init(path: String) throws {
        self.path = path
        let (book, snapshotBytes, journalBytes, validJournal) = try Self.read(path)
        let journal = try AppendOnlyFile(path: Self.journalPath(path))
        if validJournal < journalBytes { try journal.truncate(to: validJournal) }
        state = Locked(Contents(book: book, journal: journal, journalBytes: validJournal, snapshotBytes: snapshotBytes))
    }

    /// The accounts as they are on disk now, read without taking the store (for `user list`
    /// while the server runs: it writes only whole, flushed lines).
    public static func readOnly(_ path: String) throws -> AccountBook {
        try read(path).book
    }

    private static func read(_ path: String) throws -> (book: AccountBook, snapshotBytes: Int, journalBytes: Int, validJournal: Int) {
        var book = AccountBook()
        let snapshot = try Files.readIfPresent(path, followingLinks: false)
        if let snapshot {
            do { book = try AccountBook(parsing: snapshot) } catch {
                throw FileError("the account store \(path) cannot be read (\(error)); it was left untouched")
            }
        }
        let journalPath = Self.journalPath(path)
        let journal = try Files.readIfPresent(journalPath, followingLinks: false) ?? []
        do {
            let (changes, valid) = try AccountBook.parseJournal(journal)
            for change in changes { book.apply(change) }
            return (book, snapshot?.count ?? 0, journal.count, valid)
        } catch {
            throw FileError("the account journal \(journalPath) cannot be read (\(error)); it was left untouched")
        }
    }

    public var users: [UserID] { state.withLock { $0.book.users } }
    public func account(_ user: UserID) -> Account? { state.withLock { $0.book[user] } }

    public func replace(_ user: UserID, expecting expected: Account?, with new: Account?) throws -> Bool {
        try change { book in
            guard book[user] == expected else { return nil }
            if let new { return .set(user, new) }
            return expected == nil ? nil : .remove(user)
        }
    }

    /// Decides a change under the lock (nil: none), appends it to the journal and flushes it,
    /// and only then applies it: a failed write changes nothing. Compacts when the journal is due.
    private func change(_ decide: (AccountBook) -> AccountBook.Change?) throws -> Bool {
        try state.withLock { contents in
            guard let change = decide(contents.book) else { return false }
            let line = AccountBook.journalLine(change)
            try contents.journal.append(line)
            contents.book.apply(change)
            contents.journalBytes += line.count
            if contents.journalBytes > max(Self.minimumCompaction, contents.snapshotBytes) {
                // The change is durable already; a failed compaction only leaves a longer journal.
                try? compact(&contents)
            }
            return true
        }
    }

    private func compact(_ contents: inout Contents) throws {
        let snapshot = contents.book.serialized()
        try Files.writeAtomically(snapshot, to: path, mode: 0o600)
        try contents.journal.truncate(to: 0)
        contents.snapshotBytes = snapshot.count
        contents.journalBytes = 0
    }
}
