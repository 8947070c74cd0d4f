#if ScaleOut
import Logging
import NIOPosix
import PostgresNIO
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork

/// The accounts in one PostgreSQL table, shared by every node. A change is one statement that
/// commits before it returns (PostgreSQL's default `synchronous_commit`), so `CREATED` is sent
/// only for an account the database has made durable; each change is a compare-and-set on the
/// row as it was read, so two nodes cannot undo each other's change.
final class PostgresAccounts: AccountStorage {
    private let database: Database

    init(database: Database) { self.database = database }

    func account(_ user: UserID) throws -> Account? {
        let rows = try database.queryWaiting("SELECT passcode, identity_key FROM securechat_accounts WHERE user_id = \(user.rawValue)").rows
        return try rows.first.map { try Self.account(of: user, $0.decode((String, String?).self)) }
    }

    /// The columns of one account as stored; an unreadable one is an error naming the user.
    private static func account(of user: UserID, _ columns: (passcode: String, key: String?)) throws -> Account {
        guard let hash = PasscodeHash(encoded: columns.passcode) else {
            throw ClusterError("the database holds an unreadable passcode hash for \(user)")
        }
        guard let key = columns.key else { return Account(passcode: hash, identityKey: nil) }
        guard let bytes = Base64.decode(key), let identityKey = try? X25519PublicKey(bytes: bytes) else {
            throw ClusterError("the database holds an unreadable identity key for \(user)")
        }
        return Account(passcode: hash, identityKey: identityKey)
    }

    func replace(_ user: UserID, expecting expected: Account?, with new: Account?) throws -> Bool {
        let query: PostgresQuery
        switch (expected, new) {
        case (nil, nil):
            return false
        case let (nil, new?):
            query = """
                INSERT INTO securechat_accounts (user_id, passcode, identity_key)
                VALUES (\(user.rawValue), \(new.passcode.encoded), \(Self.text(new.identityKey)))
                ON CONFLICT (user_id) DO NOTHING
                """
        case let (old?, new?):
            query = """
                UPDATE securechat_accounts SET passcode = \(new.passcode.encoded), identity_key = \(Self.text(new.identityKey))
                WHERE user_id = \(user.rawValue) AND passcode = \(old.passcode.encoded)
                AND identity_key IS NOT DISTINCT FROM \(Self.text(old.identityKey))
                """
        case let (old?, nil):
            query = """
                DELETE FROM securechat_accounts WHERE user_id = \(user.rawValue) AND passcode = \(old.passcode.encoded)
                AND identity_key IS NOT DISTINCT FROM \(Self.text(old.identityKey))
                """
        }
        return try database.queryWaiting(query).metadata.rows == 1
    }

    /// Every account (`securechat user list`), in one query.
    func book() throws -> AccountBook {
        var book = AccountBook()
        for row in try database.queryWaiting("SELECT user_id, passcode, identity_key FROM securechat_accounts").rows {
            let (name, passcode, key) = try row.decode((String, String, String?).self)
            guard let user = UserID(name) else { throw ClusterError("the database holds an account with an invalid user ID") }
            book[user] = try Self.account(of: user, (passcode, key))
        }
        return book
    }

    private static func text(_ key: X25519PublicKey?) -> String? { key.map { Base64.encode($0.bytes) } }
}

/// `securechat user` on a scale-out node's config: the accounts table, opened for one command.
public enum ClusterAccounts {
    /// Runs `body` with the table (and a way to read every account), then closes the connection.
    public static func with<Result>(_ settings: DatabaseSettings,
                                    _ body: (any AccountStorage, () throws -> AccountBook) throws -> Result) throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let database = try Database(settings: settings, eventLoop: group.next(), logger: Logger(label: "securechat.user"))
        defer { database.closeWaiting() }
        _ = try database.queryWaiting(Schema.create)
        let accounts = PostgresAccounts(database: database)
        return try body(accounts, accounts.book)
    }
}
#endif
