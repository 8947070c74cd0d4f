import SecureChatCrypto

/// One account as the server keeps it: the passcode hash and the identity key bound at sign-up
/// (or at the latest sign-in from a new device, PROTOCOL.md §4). An account an administrator
/// added has no key until its first sign-in.
public struct Account: Equatable, Sendable {
    public var passcode: PasscodeHash
    public var identityKey: X25519PublicKey?

    public init(passcode: PasscodeHash, identityKey: X25519PublicKey?) {
        self.passcode = passcode
        self.identityKey = identityKey
    }
}

public enum AccountBookError: Error, Equatable, Sendable, CustomStringConvertible {
    case badHeader
    case badLine(number: Int, why: String)

    public var description: String {
        switch self {
        case .badHeader: return "the first line is not \"\(AccountBook.header)\""
        case let .badLine(number, why): return "line \(number): \(why)"
        }
    }
}

/// The account store's content and its text form: a header line, then one line per account,
/// `userid <passcode hash> <identity key base64, or - for none yet>`, sorted. The file handling (atomic replace) is
/// the server's; this type only says what a valid store is, strictly.
public struct AccountBook: Equatable, Sendable {
    public static let header = "securechat-accounts 1"
    public private(set) var accounts: [UserID: Account] = [:]

    public init() {}

    public subscript(user: UserID) -> Account? {
        get { accounts[user] }
        set { accounts[user] = newValue }
    }

    public var users: [UserID] { accounts.keys.sorted() }

    public func serialized() -> [UInt8] {
        var text = Self.header + "\n"
        for user in users {
            guard let account = accounts[user] else { continue }
            text += Self.line(user, account)
        }
        return Array(text.utf8)
    }

    private static func line(_ user: UserID, _ account: Account) -> String {
        "\(user) \(account.passcode.encoded) \(account.identityKey.map { Base64.encode($0.bytes) } ?? "-")\n"
    }

    /// One change to the book, as the store's journal records it. Applying a change twice is the
    /// same as once, so a journal replayed over a snapshot that already holds it changes nothing.
    public enum Change: Equatable, Sendable {
        case set(UserID, Account)
        case remove(UserID)
    }

    public mutating func apply(_ change: Change) {
        switch change {
        case let .set(user, account): accounts[user] = account
        case let .remove(user): accounts[user] = nil
        }
    }

    /// The journal line for `change`: `set <account line>` or `remove <userid>`.
    public static func journalLine(_ change: Change) -> [UInt8] {
        switch change {
        case let .set(user, account): return Array(("set " + line(user, account)).utf8)
        case let .remove(user): return Array("remove \(user)\n".utf8)
        }
    }

    /// Reads a journal: the changes of its complete lines, and how many bytes they take. A last
    /// line without its newline was being written when the writer stopped (never acknowledged):
    /// it is left out, for the store to cut off. Any other bad line is an error.
    public static func parseJournal(_ bytes: [UInt8]) throws(AccountBookError) -> (changes: [Change], validLength: Int) {
        var changes = [Change]()
        var start = 0, number = 0
        while let newline = bytes[start...].firstIndex(of: 0x0A) {
            number += 1
            let lineBytes = Array(bytes[start..<newline])
            guard isValidUTF8(lineBytes) else { throw .badLine(number: number, why: "not UTF-8") }
            let text = String(decoding: lineBytes, as: UTF8.self)
            if text.hasPrefix("set ") {
                let (user, account) = try parseAccount(Substring(text.dropFirst(4)), number: number)
                changes.append(.set(user, account))
            } else if text.hasPrefix("remove "), let user = UserID(String(text.dropFirst(7))) {
                changes.append(.remove(user))
            } else {
                throw .badLine(number: number, why: "not a journal entry")
            }
            start = newline + 1
        }
        return (changes, start)
    }

    public init(parsing bytes: [UInt8]) throws(AccountBookError) {
        guard isValidUTF8(bytes) else { throw .badLine(number: 1, why: "not UTF-8") }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(Self.header) else { throw .badHeader }
        guard lines.last == "" else { throw .badLine(number: lines.count, why: "the file does not end with a newline (truncated?)") }
        for (index, line) in lines.dropFirst().dropLast().enumerated() {
            let number = index + 2
            let (user, account) = try Self.parseAccount(line, number: number)
            guard accounts[user] == nil else { throw .badLine(number: number, why: "\(user) appears twice") }
            accounts[user] = account
        }
    }

    /// `userid <passcode hash> <identity key base64, or ->`.
    private static func parseAccount(_ line: Substring, number: Int) throws(AccountBookError) -> (UserID, Account) {
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 3 else { throw .badLine(number: number, why: "expected 3 fields, found \(fields.count)") }
        guard let user = UserID(String(fields[0])) else { throw .badLine(number: number, why: "not a valid user ID") }
        guard let passcode = PasscodeHash(encoded: String(fields[1])) else {
            throw .badLine(number: number, why: "not a valid scrypt passcode hash")
        }
        var key: X25519PublicKey?
        if fields[2] != "-" {
            guard let keyBytes = Base64.decode(String(fields[2])), let parsed = try? X25519PublicKey(bytes: keyBytes) else {
                throw .badLine(number: number, why: "not a valid identity key")
            }
            key = parsed
        }
        return (user, Account(passcode: passcode, identityKey: key))
    }
}
