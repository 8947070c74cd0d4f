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
            text += "\(user) \(account.passcode.encoded) \(account.identityKey.map { Base64.encode($0.bytes) } ?? "-")\n"
        }
        return Array(text.utf8)
    }

    public init(parsing bytes: [UInt8]) throws(AccountBookError) {
        guard isValidUTF8(bytes) else { throw .badLine(number: 1, why: "not UTF-8") }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(Self.header) else { throw .badHeader }
        guard lines.last == "" else { throw .badLine(number: lines.count, why: "the file does not end with a newline (truncated?)") }
        for (index, line) in lines.dropFirst().dropLast().enumerated() {
            let number = index + 2
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 3 else { throw .badLine(number: number, why: "expected 3 fields, found \(fields.count)") }
            guard let user = UserID(String(fields[0])) else { throw .badLine(number: number, why: "not a valid user ID") }
            guard accounts[user] == nil else { throw .badLine(number: number, why: "\(user) appears twice") }
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
            accounts[user] = Account(passcode: passcode, identityKey: key)
        }
    }
}
