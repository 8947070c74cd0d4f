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

    @Test("the limiter counts an attempt when admitted, backs off per user × host, and refunds a success")
    func limiter() {
        var limiter = SignInLimiter(configuration: .init(freeFailures: 3, firstBackOff: .seconds(10), failuresPerHost: 100,
                                                         failuresPerUser: 100, window: .seconds(600), inFlightPerUser: 10, inFlightPerHost: 10))
        let ali = UserID("ali")!, t0 = Instant(nanoseconds: 1_000)
        let home = IPAddress("10.0.0.1")!, stranger = IPAddress("198.51.100.7")!
        func admit(_ user: UserID, _ host: IPAddress, _ now: Instant) -> SignInLimiter.Admission { limiter.admit(user: user, address: host, now: now) }
        // The stranger's three guesses are counted as they are admitted, before any hash ran…
        var tickets = [SignInLimiter.Ticket]()
        for _ in 0..<3 {
            guard case let .admitted(ticket) = admit(ali, stranger, t0) else { Issue.record("not admitted"); return }
            tickets.append(ticket)
        }
        #expect(admit(ali, stranger, t0) == .lockedOut(retryAfter: .seconds(10)), "a fourth at once is refused without hashing")
        for ticket in tickets { limiter.finish(ticket, .wrongPasscode, now: t0) }
        // …and cost ali nothing at home.
        guard case let .admitted(good) = admit(ali, home, t0) else { Issue.record("ali locked out by a stranger"); return }
        limiter.finish(good, .granted, now: t0)
        // The back-off doubles: 10 s after three failures, 20 s after the fourth.
        guard case let .admitted(fourth) = admit(ali, stranger, t0.advanced(by: .seconds(10))) else { Issue.record("no retry after the wait"); return }
        limiter.finish(fourth, .wrongPasscode, now: t0.advanced(by: .seconds(10)))
        #expect(admit(ali, stranger, t0.advanced(by: .seconds(29))) == .lockedOut(retryAfter: .seconds(1)))
        // IPv6: one host is its whole /64.
        let v6a = IPAddress("2001:db8:1:2::a")!, v6b = IPAddress("2001:db8:1:2:ffff::b")!
        for _ in 0..<3 { if case let .admitted(ticket) = admit(UserID("bianca")!, v6a, t0) { limiter.finish(ticket, .wrongPasscode, now: t0) } }
        if case .admitted = admit(UserID("bianca")!, v6b, t0) { Issue.record("another address of the same /64 is the same host") }
        // A check that did not happen (store error, client gone) is refunded.
        guard case let .admitted(unchecked) = admit(UserID("carol")!, home, t0) else { Issue.record(); return }
        limiter.finish(unchecked, .notChecked, now: t0)
        for _ in 0..<3 { if case let .admitted(ticket) = admit(UserID("carol")!, home, t0) { limiter.finish(ticket, .wrongPasscode, now: t0) } }
        if case .admitted = admit(UserID("carol")!, home, t0) { Issue.record("the refund was not given: one failure too many") }
    }

    @Test("the limiter bounds hashes in flight per user and per host, and budgets per host and sign-ups")
    func limiterBudgets() {
        var limiter = SignInLimiter(configuration: .init(failuresPerHost: 5, failuresPerUser: 1000, inFlightPerUser: 2, inFlightPerHost: 3,
                                                         signUpsPerHost: 2, signUpWindow: .seconds(60)))
        let host = IPAddress("10.0.0.9")!, t0 = Instant(nanoseconds: 1)
        var admitted = [SignInLimiter.Ticket]()
        for name in ["a", "a", "a", "b", "c"] {
            if case let .admitted(ticket) = limiter.admit(user: UserID(name)!, address: host, now: t0) { admitted.append(ticket) }
        }
        #expect(admitted.count == 3, "two for user a, then the host's three")
        #expect(limiter.admit(user: UserID("d")!, address: host, now: t0) == .busy)
        for ticket in admitted { limiter.finish(ticket, .wrongPasscode, now: t0) }
        for name in ["e", "f"] { if case let .admitted(ticket) = limiter.admit(user: UserID(name)!, address: host, now: t0) { limiter.finish(ticket, .wrongPasscode, now: t0) } }
        guard case .lockedOut = limiter.admit(user: UserID("g")!, address: host, now: t0) else { Issue.record("no host budget"); return }
        let signUps = (0..<3).map { _ in limiter.admitSignUp(address: host, now: t0) }
        #expect(signUps == [true, true, false], "two sign-ups per window")
        let later = limiter.admitSignUp(address: host, now: t0.advanced(by: .seconds(61)))
        #expect(later)
    }

    @Test("the limiter's tables stay bounded")
    func limiterBounded() {
        var limiter = SignInLimiter(configuration: .init(freeFailures: 1, maximumTracked: 50))
        for index in 0..<500 {
            let host = IPAddress("10.0.\(index / 256).\(index % 256)")!, now = Instant(nanoseconds: UInt64(index))
            if case let .admitted(ticket) = limiter.admit(user: UserID("u\(index)")!, address: host, now: now) {
                limiter.finish(ticket, .wrongPasscode, now: now)
            }
        }
        guard case .lockedOut = limiter.admit(user: UserID("u499")!, address: IPAddress("10.0.1.243")!, now: Instant(nanoseconds: 500)) else {
            Issue.record("the newest entry was dropped")
            return
        }
        guard case .admitted = limiter.admit(user: UserID("u0")!, address: IPAddress("10.0.0.0")!, now: Instant(nanoseconds: 500)) else {
            Issue.record("the oldest entries were not dropped")
            return
        }
    }

    @Test("the server session names its next deadline: the sign-in deadline, then the idle timeout")
    func nextDeadline() throws {
        let keys = try OpenSSLBackend.generateX25519KeyPair()
        let start = Instant(nanoseconds: 5_000_000_000)
        let session = ServerSession<OpenSSLBackend>(configuration: .init(signInDeadline: .seconds(10)), localStatic: keys, acceptedAt: start)
        #expect(session.nextDeadline == start.advanced(by: .seconds(10)))
    }
}

@Suite("Account journal")
struct AccountJournalTests {
    @Test("the journal replays over the snapshot, twice the same as once; a torn last line is left out")
    func journal() throws {
        let hash = PasscodeHash(encoded: "$scrypt$ln=10,r=8,p=1$\(Base64.encode([UInt8](repeating: 1, count: 16)))$\(Base64.encode([UInt8](repeating: 2, count: 32)))")!
        let ali = UserID("ali")!, bianca = UserID("bianca")!
        let changes: [AccountBook.Change] = [.set(ali, Account(passcode: hash, identityKey: nil)), .set(bianca, Account(passcode: hash, identityKey: nil)),
                                             .remove(ali)]
        let bytes = changes.flatMap(AccountBook.journalLine)
        let torn = bytes + Array("set carol $scr".utf8)
        let (read, valid) = try AccountBook.parseJournal(torn)
        #expect(read == changes && valid == bytes.count)
        var once = AccountBook(), twice = AccountBook()
        for change in read { once.apply(change) }
        for change in read + read { twice.apply(change) }
        #expect(once == twice && once.users == [bianca])
        #expect(throws: AccountBookError.badLine(number: 2, why: "not a journal entry")) {
            try AccountBook.parseJournal(Array("remove ali\nrename ali bob\n".utf8))
        }
    }
}
