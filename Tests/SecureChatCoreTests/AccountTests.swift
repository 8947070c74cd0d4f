import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import SecureChatGcrypt
import SecureChatOpenSSL
import Testing

@Suite("Accounts: passcode hashes, the store format, the sign-in limiter")
struct AccountTests {
    static let cheap = ScryptParameters(n: 1 << 10, r: 8, p: 1)

    @Test("a passcode hash is self-describing, salted, verifies on the other backend, and refuses other digests")
    func passcodeHash() throws {
        let digest = String(repeating: "ab", count: 32)
        let hash = try PasscodeHash.make(digest: digest, parameters: Self.cheap, backend: OpenSSLBackend.self)
        #expect(hash.encoded.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        #expect(PasscodeHash(encoded: hash.encoded) == hash)
        #expect(hash.matches(digest: digest, backend: GcryptBackend.self))
        #expect(!hash.matches(digest: String(repeating: "ab", count: 31) + "ac", backend: OpenSSLBackend.self))
        let again = try PasscodeHash.make(digest: digest, parameters: Self.cheap, backend: OpenSSLBackend.self)
        #expect(again.salt != hash.salt && again.hash != hash.hash, "a fresh salt each time")
    }

    @Test("malformed hash strings are refused", arguments: [
        "", "$scrypt$ln=10,r=8,p=1$AAAA$AAAA", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "$scrypt$ln=10,r=8$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=0,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=10,r=8,p=1,ln=11$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=10,r=x,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ])
    func malformedHash(_ text: String) {
        #expect(PasscodeHash(encoded: text) == nil)
    }

    @Test("the account book round-trips and refuses damaged files with the line number")
    func accountBook() throws {
        var book = AccountBook()
        let key = try OpenSSLBackend.generateX25519KeyPair().publicKey
        book[UserID("ali")!] = Account(passcode: try PasscodeHash.make(digest: "00", parameters: Self.cheap, backend: OpenSSLBackend.self),
                                       identityKey: key)
        book[UserID("bianca")!] = Account(passcode: try PasscodeHash.make(digest: "11", parameters: Self.cheap, backend: OpenSSLBackend.self),
                                          identityKey: nil)
        let bytes = book.serialized()
        #expect(try AccountBook(parsing: bytes) == book)
        #expect(try AccountBook(parsing: Array((AccountBook.header + "\n").utf8)).users.isEmpty)

        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        let cases: [(String, AccountBookError)] = [
            ("", .badHeader),
            ("securechat-accounts 2\n", .badHeader),
            (lines.joined(separator: "\n"), .badLine(number: 3, why: "the file does not end with a newline (truncated?)")),
            ([lines[0], lines[1], lines[1]].joined(separator: "\n") + "\n", .badLine(number: 3, why: "ali appears twice")),
            ([lines[0], "Ali" + lines[1].dropFirst(3)].joined(separator: "\n") + "\n", .badLine(number: 2, why: "not a valid user ID")),
            ([lines[0], lines[1] + " extra"].joined(separator: "\n") + "\n", .badLine(number: 2, why: "expected 3 fields, found 4")),
            ([lines[0], String(lines[1].dropLast(4))].joined(separator: "\n") + "\n",
             .badLine(number: 2, why: "not a valid identity key")),
        ]
        for (text, expected) in cases {
            #expect(throws: expected, "\(text)") { try AccountBook(parsing: Array(text.utf8)) }
        }
        #expect(throws: AccountBookError.badLine(number: 1, why: "not UTF-8")) { try AccountBook(parsing: [0xFF, 0x0A]) }
    }

    @Test("the limiter counts failures per user and per address within the window, and forgets after it")
    func limiter() {
        var limiter = SignInLimiter(configuration: .init(failuresPerUser: 2, failuresPerAddress: 3, window: .seconds(60)))
        let ali = UserID("ali")!, bianca = UserID("bianca")!, t0 = Instant(nanoseconds: 1_000)
        #expect(!limiter.isLimited(user: ali, address: "10.0.0.1", now: t0))
        limiter.recordFailure(user: ali, address: "10.0.0.1", now: t0)
        limiter.recordFailure(user: ali, address: "10.0.0.2", now: t0)
        #expect(limiter.isLimited(user: ali, address: "10.0.0.9", now: t0), "per user, from any address")
        #expect(!limiter.isLimited(user: bianca, address: "10.0.0.1", now: t0))
        limiter.recordFailure(user: bianca, address: "10.0.0.1", now: t0)
        limiter.recordFailure(user: UserID("carol")!, address: "10.0.0.1", now: t0)
        #expect(limiter.isLimited(user: UserID("dave")!, address: "10.0.0.1", now: t0), "per address, for any user")
        let later = t0.advanced(by: .seconds(61))
        #expect(!limiter.isLimited(user: ali, address: "10.0.0.1", now: later), "the window ended")
        limiter.recordSuccess(user: bianca)
        #expect(limiter.isLimited(user: bianca, address: "10.0.0.1", now: t0), "success clears the user, not the address")
        #expect(!limiter.isLimited(user: bianca, address: "10.0.0.5", now: t0))
    }

    @Test("the limiter's table stays bounded")
    func limiterBounded() {
        var limiter = SignInLimiter(configuration: .init(failuresPerUser: 1, failuresPerAddress: 100, window: .seconds(60), maximumTracked: 50))
        for index in 0..<500 {
            limiter.recordFailure(user: UserID("u\(index)")!, address: "10.0.\(index / 256).\(index % 256)",
                                  now: Instant(nanoseconds: UInt64(index)))
        }
        #expect(limiter.isLimited(user: UserID("u499")!, address: "x", now: Instant(nanoseconds: 500)))
        #expect(!limiter.isLimited(user: UserID("u0")!, address: "x", now: Instant(nanoseconds: 500)), "the oldest were dropped")
    }

    @Test("the server session names its next deadline: the sign-in deadline, then the idle timeout")
    func nextDeadline() throws {
        let keys = try OpenSSLBackend.generateX25519KeyPair()
        let start = Instant(nanoseconds: 5_000_000_000)
        let session = ServerSession<OpenSSLBackend>(configuration: .init(signInDeadline: .seconds(10)), localStatic: keys, acceptedAt: start)
        #expect(session.nextDeadline == start.advanced(by: .seconds(10)))
    }
}
