import Glibc
import NIOPosix
import NIOCore
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import Testing

/// Every bad input closes only its own connection, with a log line, while a good client beside
/// it keeps getting answers; plus the limits: rate, deadline, connection cap.
@Suite("Server defences")
struct ServerDefenceTests {
    /// A misbehaving client: sends something, and the server must close it.
    struct Misbehaviour: Sendable, CustomStringConvertible {
        var description: String
        /// The reason the server logs when it closes the connection (a prefix).
        var loggedReason: String
        var act: @Sendable (TestServer) async throws -> Void
    }

    static func framed(_ body: [UInt8]) -> [UInt8] { [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body }

    /// Raw bytes on a fresh connection; the server must close it.
    static func raw(_ description: String, _ reason: String, _ bytes: [UInt8]) -> Misbehaviour {
        Misbehaviour(description: description, loggedReason: reason) { server in
            let answer = try await sendRawAndAwaitClose(bytes, to: server.address)
            #expect(answer != nil, "\(description): the server did not close the connection")
        }
    }

    /// After a good handshake, `frame` builds what the client sends; the server must close.
    static func afterHandshake(_ description: String, _ reason: String,
                               _ frame: @escaping @Sendable (inout ControlConnection<TestBackend>) throws -> [UInt8]) -> Misbehaviour {
        Misbehaviour(description: description, loggedReason: reason) { server in
            try await server.connect { connection in
                try await connection.sendRaw(try frame(&connection))
                await #expect(throws: (any Error).self, "\(description): the server did not close the connection") {
                    while true { _ = try await connection.receive() }
                }
            }
        }
    }

    static let hello = Array(#"{"msgtype":"HELLO","version":1,"noise":"Noise_IK_25519_ChaChaPoly_SHA256"}"#.utf8)
    static let lookup = ControlMessage.lookupRequest(.init(userID: UserID("ali")!, lookup: UserID("ali")!))

    static let misbehaviours: [Misbehaviour] = [
        raw("garbage bytes", "not a securechat client (a first message of", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8) + [UInt8](repeating: 0x41, count: 20_000)),
        raw("an unsupported HELLO", "handshake refused: the client asked for Noise_XX",
            framed(Array(#"{"msgtype":"HELLO","version":1,"noise":"Noise_XX_25519_ChaChaPoly_SHA256"}"#.utf8))),
        raw("a HELLO of a later version", "not a securechat client (version 2",
            framed(Array(#"{"msgtype":"HELLO","version":2,"noise":"Noise_IK_25519_ChaChaPoly_SHA256"}"#.utf8))),
        raw("a HELLO that is not JSON", "not a securechat client (the first frame", framed(Array("hello there".utf8))),
        raw("a zero-length frame", "broken framing during the handshake", [0, 0]),
        raw("a handshake message of random bytes", "handshake failed: the client may have a wrong server key",
            framed(hello) + framed([UInt8](repeating: 7, count: 96))),
        Misbehaviour(description: "a handshake to the wrong server key", loggedReason: "handshake failed: the client may have a wrong server key") { server in
            let wrongKey = try TestBackend.generateX25519KeyPair().publicKey
            await #expect(throws: (any Error).self) {
                try await ControlConnection<TestBackend>.with(server.address, serverKey: wrongKey,
                                                              identity: try TestBackend.generateX25519KeyPair(),
                                                              group: testGroup) { _ in }
            }
        },
        afterHandshake("a tampered frame", "a frame failed to decrypt") { connection in
            var frame = try connection.sealed(lookup)
            frame[frame.count - 3] ^= 0x01
            return frame
        },
        afterHandshake("a replayed frame", "a frame failed to decrypt") { connection in
            let frame = try connection.sealed(lookup)
            return frame + frame
        },
        Misbehaviour(description: "a frame cut short, then the end of the stream", loggedReason: "the client closed the connection in the middle of a message") { server in
            try await server.connect { connection in try await connection.sendRaw(Array(try connection.sealed(lookup).dropLast(5))) }
        },
        afterHandshake("bad JSON", "protocol error: ") { connection in
            try connection.sealedRaw(Array(#"{"msgtype":"LOOKUPREQ","userid":"ali""#.utf8))
        },
        afterHandshake("a field of the wrong type", "protocol error: ") { connection in
            try connection.sealedRaw(Array(#"{"msgtype":"LOOKUPREQ","userid":42,"lookup":"ali"}"#.utf8))
        },
        afterHandshake("an oversized message", "framing error: payloadTooLarge") { connection in
            try connection.sealedRaw(Array(#"{"msgtype":"KEEPALIVE","pad":""#.utf8) + [UInt8](repeating: 0x61, count: 5000) + Array(#""}"#.utf8))
        },
        afterHandshake("a message only the server may send", "protocol error: ") { connection in
            try connection.sealed(.authReply(.init(userID: UserID("ali")!, status: .granted)))
        },
    ]

    @Test("each bad input closes only its connection, is logged, and a good client is served throughout",
          arguments: misbehaviours)
    func misbehavingClient(_ misbehaviour: Misbehaviour) async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        try await server.connect { good in
            _ = try await good.signUp("ali", "sesame")
            #expect(try await good.signIn("ali", "sesame") == .granted("ali"))
            for _ in 0..<3 {
                try await misbehaviour.act(server)
                guard case let .lookupReply(reply) = try await good.lookup("ali", as: "ali") else {
                    Issue.record("the good client got no lookup reply")
                    return
                }
                #expect(reply.found?.answer == UserID("ali"))
            }
        }
        let logged = await eventually {
            server.log.all.filter { $0.message == "connection closed" && ($0.metadata["reason"] ?? "").hasPrefix(misbehaviour.loggedReason) }.count >= 3
        }
        #expect(logged, "expected 3 log lines with reason \(misbehaviour.loggedReason); log:\n\(server.log.text)")
    }

    @Test("failed sign-ins back off per user and host: then refused without hashing, even with the right passcode; another host is not locked out")
    func rateLimitPerUserAndHost() async throws {
        let server = try await TestServer.start {
            $0.signInLimits.freeFailures = 3
            $0.signInLimits.firstBackOff = .seconds(60)
        }
        defer { Task { await server.stop() } }
        let key = try TestBackend.generateX25519KeyPair()
        try await server.connect(identity: key) { client in
            _ = try await client.signUp("ali", "sesame")
            for _ in 0..<3 { #expect(try await client.signIn("ali", "wrong") == .refused("ali")) }
            guard case let .authReply(locked) = try await client.signIn("ali", "sesame") else { Issue.record(); return }
            #expect(locked.status == .refused && locked.reason?.hasPrefix("locked out: too many failed sign-ins") == true,
                    "a lock-out says it is one: \(locked.reason ?? "")")
        }
        // A stranger's guesses from 127.0.0.1 do not lock ali out at 127.0.0.2.
        let fromElsewhere = try await server.connect(identity: key, from: "127.0.0.2") { try await $0.signIn("ali", "sesame") }
        #expect(fromElsewhere == .granted("ali"))
        #expect(server.log.count("sign-in refused", ["reason": "locked out"]) == 1)
        #expect(server.log.count("sign-in refused", ["reason": "wrong user ID or passcode"]) == 3)
    }

    @Test("failed sign-ins are limited per host, across user IDs")
    func rateLimitPerHost() async throws {
        let server = try await TestServer.start { $0.signInLimits.failuresPerHost = 4 }
        defer { Task { await server.stop() } }
        try await server.connect { client in
            _ = try await client.signUp("ali", "sesame")
            for index in 0..<4 { #expect(try await client.signIn("guess\(index)", "x") == .refused("guess\(index)")) }
            guard case let .authReply(locked) = try await client.signIn("ali", "sesame") else { Issue.record(); return }
            #expect(locked.reason?.hasPrefix("locked out") == true)
        }
        #expect(server.log.contains("sign-in refused", ["user": "ali", "reason": "locked out"]))
    }

    @Test("guesses sent all at once are counted all at once: 30 at one user get at most the free failures hashed")
    func concurrentGuesses() async throws {
        let server = try await TestServer.start {
            $0.signInLimits.firstBackOff = .seconds(60)
            $0.maximumUnsignedPerHost = 100
        }
        defer { Task { await server.stop() } }
        _ = try await server.connect { try await $0.signUp("ali", "sesame") }
        let replies = try await withThrowingTaskGroup(of: ControlMessage.self) { group in
            for index in 0..<30 {
                group.addTask { try await server.connect { try await $0.signIn("ali", index == 29 ? "sesame" : "guess\(index)") } }
            }
            return try await group.reduce(into: [ControlMessage]()) { $0.append($1) }
        }
        let hashed = server.log.count("sign-in refused", ["reason": "wrong user ID or passcode"])
            + replies.filter { $0 == .granted("ali") }.count
        #expect(hashed <= 3, "\(hashed) of 30 simultaneous attempts were checked")
        #expect(replies.allSatisfy { if case let .authReply(reply) = $0 { reply.status == .refused || $0 == .granted("ali") } else { false } })
    }

    @Test("a client that does not finish handshake and sign-in within the deadline is closed")
    func signInDeadline() async throws {
        // The slow client must finish its handshake within the deadline, which under a sanitizer on
        // a loaded machine took longer than 300 ms.
        let server = try await TestServer.start { $0.session.signInDeadline = .seconds(3) }
        defer { Task { await server.stop() } }
        // Silent: connects and sends nothing.
        #expect(try await sendRawAndAwaitClose([], to: server.address, seconds: 10) != nil)
        // Slow: finishes the handshake but never signs in.
        _ = try await server.connect { client in
            await #expect(throws: ControlConnection<TestBackend>.Failure.closedByServer) { try await client.receive() }
        }
        #expect(server.log.count("connection closed", ["reason": "no sign-in before the deadline (a stalled or idle client)"]) == 2)
    }

    @Test("a signed-in session idle past the timeout is closed; KEEPALIVE keeps it")
    func idleTimeout() async throws {
        // Keep-alives every 250 ms against a 3 s timeout: wide margins for a machine running every
        // suite at once (a 1.5 s timeout once saw a longer gap there).
        let server = try await TestServer.start { $0.session.idleTimeout = .seconds(3) }
        defer { Task { await server.stop() } }
        try await server.connect { client in
            _ = try await client.signUp("ali", "sesame")
            _ = try await client.signIn("ali", "sesame")
            for _ in 0..<14 {  // 3.5 s in all: past the timeout, so only KEEPALIVE explains the session still being there
                try await Task.sleep(for: .milliseconds(250))
                try await client.send(.keepAlive)
            }
            #expect(server.server.signedInUsers == [UserID("ali")!], "KEEPALIVE kept the session")
            await #expect(throws: ControlConnection<TestBackend>.Failure.closedByServer) { try await client.receive() }
        }
        #expect(server.log.contains("connection closed", ["reason": "idle past the timeout"]))
    }

    @Test("a server limited to one cipher (`--cipher aesgcm`) closes handshakes with the other, and serves its own")
    func cipherRestriction() async throws {
        let server = try await TestServer.start { $0.session.allowedCiphers = [.aesGCM] }
        defer { Task { await server.stop() } }
        await #expect(throws: (any Error).self) { try await server.connect(cipher: .chaChaPoly) { _ in } }
        let reply = try await server.connect(cipher: .aesGCM) { try await $0.signUp("ali") }
        #expect(reply == .signUpReply(.init(status: .created, reason: "")))
        #expect(await eventually { server.log.contains("connection closed", ["reason": "handshake refused: the client asked for Noise_IK_25519_ChaChaPoly_SHA256, which this server does not allow"]) })
    }

    @Test("past the connection cap new connections are closed at once, and others go on")
    func connectionCap() async throws {
        let server = try await TestServer.start { $0.maximumConnections = 2 }
        defer { Task { await server.stop() } }
        try await server.connect { first in
            _ = try await first.signUp("ali", "sesame")
            try await server.connect { second in
                _ = try await second.signUp("bianca", "sesame")
                #expect(try await sendRawAndAwaitClose([], to: server.address, seconds: 5) == [])
                #expect(try await first.signIn("ali", "sesame") == .granted("ali"))
            }
        }
        #expect(server.log.contains("connection refused", ["reason": "at the connection cap"]))
    }
}

@Suite("Server limits per host")
struct HostLimitTests {
    @Test("one host cannot take the connection cap: connections not signed in are capped per host, another host still gets in")
    func unsignedPerHost() async throws {
        let server = try await TestServer.start { $0.maximumUnsignedPerHost = 3 }
        defer { Task { await server.stop() } }
        var held = [NIOAsyncChannel<ByteBuffer, ByteBuffer>]()
        for count in 1...3 {
            held.append(try await ClientBootstrap(group: testGroup).connect(host: "127.0.0.1", port: server.address.port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            })
            // Accepted connections are set up on several event loops, in no set order: wait for
            // each to be counted, so that the fourth, not one of these, is the one past the cap.
            #expect(await eventually { server.server.openConnections == count })
        }
        #expect(try await sendRawAndAwaitClose([], to: server.address, seconds: 5) == [], "the fourth from this host is closed at once")
        let elsewhere = try await server.connect(from: "127.0.0.2") { try await $0.signUp("ali", "sesame") }
        #expect(elsewhere == .signUpReply(.init(status: .created, reason: "")))
        #expect(server.log.contains("connection refused", ["reason": "too many connections from this host"]))
        for channel in held { try? await channel.channel.close() }
    }

    @Test("sign-ups are limited per host and window")
    func signUpsPerHost() async throws {
        let server = try await TestServer.start { $0.signInLimits.signUpsPerHost = 2 }
        defer { Task { await server.stop() } }
        let replies = try await server.connect { client in
            [try await client.signUp("u1", "sesame"), try await client.signUp("u2", "sesame"), try await client.signUp("u3", "sesame")]
        }
        #expect(replies == [.signUpReply(.init(status: .created, reason: "")), .signUpReply(.init(status: .created, reason: "")),
                            .signUpReply(.init(status: .refused, reason: "too many accounts created from your address; try again later"))])
        let other = try await server.connect(from: "127.0.0.2") { try await $0.signUp("u4", "sesame") }
        #expect(other == .signUpReply(.init(status: .created, reason: "")))
    }

    @Test("on every address (`::`), an IPv4 client is recorded as its IPv4 address")
    func dualStackAddresses() async throws {
        let server = try await TestServer.start { $0.host = HostPort.everyAddress }
        defer { Task { await server.stop() } }
        try await server.connect { client in
            _ = try await client.signUp("ali", "sesame")
            _ = try await client.signIn("ali", "sesame", port: 7777)
            guard case let .lookupReply(reply) = try await client.lookup("ali", as: "ali") else { Issue.record(); return }
            #expect(reply.found?.address == "127.0.0.1", "not ::ffff:127.0.0.1")
        }
    }
}

@Suite("Account store on disk")
struct AccountStoreTests {
    @Test("each change appends one flushed line, whatever the size; the journal is folded in once it outgrows the snapshot")
    func journalGrowsByOneLine() throws {
        let directory = makeTemporaryDirectory()
        let path = directory + "/accounts"
        let parameters = ScryptParameters(n: 1 << 10, r: 8, p: 1)
        var store: AccountStore<TestBackend>? = try AccountStore<TestBackend>(path: path, parameters: parameters)
        let journalPath = path + ".journal"
        var sizes = [Int]()
        for index in 0..<800 {
            _ = try store!.create(user: user("user\(index)"), digest: try digest("user\(index)", "p"), identityKey: nil)
            sizes.append(Files.permissions(journalPath) == nil ? 0 : (try Files.read(journalPath)).count)
        }
        let growth = zip(sizes.dropFirst(), sizes).map { $0 - $1 }
        #expect(growth.filter { $0 > 0 }.allSatisfy { $0 < 200 }, "one line per change, not the whole store")
        #expect(growth.contains { $0 < 0 }, "compacted at least once")
        #expect(try Files.read(path).count > 0)
        store = nil
        let reopened = try AccountFile(path: path)
        #expect(reopened.users.count == 800)
        // A crash in the middle of an append leaves a torn line: cut off at the next start.
        let journal = reopened.journalPath
        let before = try Files.read(journal)
        try Files.writeAtomically(before + Array("set torn $scr".utf8), to: journal, mode: 0o600)
        _ = try AccountStore<TestBackend>(path: path, parameters: parameters)
        #expect(try Files.read(journal) == before)
        #expect(try AccountFile.readOnly(path).users.count == 800)
    }

    @Test("a data directory others can write to, or another user's, is refused with the fix")
    func unsafeDirectories() throws {
        let directory = makeTemporaryDirectory() + "/data"
        try Files.makeDirectory(directory)
        chmod(directory, 0o777)
        #expect { try Files.makeDirectory(directory) } throws: { "\($0)".contains("other users can write to it (mode 777); run: chmod go-w") }
        chmod(directory, 0o700)
        try Files.makeDirectory(directory)
        // A planted link where the temporary file goes is replaced, never followed.
        let target = makeTemporaryDirectory() + "/victim"
        try Files.writeAtomically([1], to: target, mode: 0o600)
        symlink(target, directory + "/file.tmp")
        try Files.writeAtomically([2, 2], to: directory + "/file", mode: 0o600)
        #expect(try Files.read(target) == [1])
        #expect(try Files.read(directory + "/file") == [2, 2])
    }
}
