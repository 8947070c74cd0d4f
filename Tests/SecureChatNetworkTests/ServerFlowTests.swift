import NIOCore
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import Testing

/// PROTOCOL.md §4 over real loopback TCP: an in-process server and clients.
@Suite("Server flows over loopback")
struct ServerFlowTests {
    @Test("sign-up, sign-in, lookup, list, keep-alive and logout, as the reference says")
    func everyFlow() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let aliKey = try TestBackend.generateX25519KeyPair()

        try await server.connect(identity: aliKey) { ali in
            #expect(try await ali.signUp("ali", "sesame") == .signUpReply(.init(status: .created, reason: "")))
            #expect(try await ali.signUp("ali", "other") == .signUpReply(.init(status: .exists, reason: "this user ID is taken")))
            // Not signed in yet: lookups and lists give nothing.
            #expect(try await ali.lookup("ali", as: "ali") == .lookupReply(.notFound))
            #expect(try await ali.request(.listRequest(userID: user("ali"))) == .listReply(.init(users: [])))
            #expect(try await ali.signIn("ali", "wrong") == .refused("ali"))
            #expect(try await ali.signIn("nobody", "sesame") == .refused("nobody"))
            #expect(try await ali.signIn("ali", "sesame", port: 4321) == .granted("ali"))

            guard case let .lookupReply(reply) = try await ali.lookup("ali", as: "ali"), let own = reply.found else {
                Issue.record("no lookup reply")
                return
            }
            #expect(own.answer == user("ali") && own.address == "127.0.0.1" && own.port == 4321
                    && own.encryptionKey == Base64.encode(aliKey.publicKey.bytes))
            #expect(own.candidates.first == Endpoint("127.0.0.1:4321")!, "§9.2: the observed address with the port first, then its source port")
            #expect(own.candidates.count == 2)
            let found = ControlMessage.lookupReply(reply)
            #expect(try await ali.lookup("bianca", as: "ali") == .lookupReply(.notFound))
            // Asking as someone else: NOTFOUND, as the seed says.
            #expect(try await ali.lookup("ali", as: "bianca") == .lookupReply(.notFound))
            #expect(try await ali.request(.listRequest(userID: user("ali"))) == .listReply(.init(users: [user("ali")])))
            try await ali.send(.keepAlive)
            // Twelve more requests: past the rekey after ten messages each way.
            for _ in 0..<12 { #expect(try await ali.lookup("ali", as: "ali") == found) }

            try await ali.send(.logoutRequest(userID: user("ali")))
            await #expect(throws: ControlConnection<TestBackend>.Failure.closedByServer) { try await ali.receive() }
        }
        #expect(await eventually { server.server.signedInUsers.isEmpty })
        #expect(server.log.contains("account created", ["user": "ali"]))
        #expect(server.log.all.contains { $0.message == "signed in" && $0.metadata["user"] == "ali" && $0.metadata["from"]?.hasPrefix("127.0.0.1:") == true })
        #expect(server.log.contains("sign-in refused", ["user": "ali", "reason": "wrong user ID or passcode"]))
        #expect(server.log.contains("signed out", ["user": "ali"]))
    }

    @Test("both ciphers are served")
    func bothCiphers() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        for cipher in CipherKind.allCases {
            let reply = try await server.connect(cipher: cipher) { try await $0.signUp("user-\(cipher.configName)") }
            #expect(reply == .signUpReply(.init(status: .created, reason: "")))
        }
    }

    @Test("accounts survive a restart; a store it cannot parse stops the start and is left untouched")
    func storeSurvivesRestart() async throws {
        let directory = makeTemporaryDirectory()
        let key = try TestBackend.generateX25519KeyPair()
        var server = try await TestServer.start(dataDirectory: directory)
        let firstKey = server.server.publicKey
        let created = try await server.connect(identity: key) { try await $0.signUp("ali", "sesame") }
        #expect(created == .signUpReply(.init(status: .created, reason: "")))
        await server.stop()

        server = try await TestServer.start(dataDirectory: directory)
        #expect(server.server.publicKey == firstKey, "the server key is kept")
        #expect(!server.server.createdKey)
        let signedIn = try await server.connect(identity: key) { try await $0.signIn("ali", "sesame") }
        #expect(signedIn == .granted("ali"))
        await server.stop()

        let damaged = Array("securechat-accounts 1\nali $scrypt$broken -\n".utf8)
        try Files.writeAtomically(damaged, to: directory + "/accounts", mode: 0o600)
        await #expect { try await TestServer.start(dataDirectory: directory) } throws: { error in
            "\(error)".contains("accounts cannot be read") && "\(error)".contains("line 2")
        }
        #expect(try Files.read(directory + "/accounts") == damaged)
        #expect(Files.permissions(directory + "/server.key") == 0o600)
    }

    @Test("a second sign-in replaces the first session, which is told and closed")
    func secondSignInReplaces() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let key = try TestBackend.generateX25519KeyPair()
        try await server.connect(identity: key) { first in
            _ = try await first.signUp("ali", "sesame")
            #expect(try await first.signIn("ali", "sesame", port: 1111) == .granted("ali"))
            try await server.connect(identity: key) { second in
                #expect(try await second.signIn("ali", "sesame", port: 2222) == .granted("ali"))
                #expect(try await first.receive() == .error(reason: "signed in from another connection"))
                await #expect(throws: ControlConnection<TestBackend>.Failure.closedByServer) { try await first.receive() }
                guard case let .lookupReply(reply) = try await second.lookup("ali", as: "ali") else { Issue.record(); return }
                #expect(reply.found?.port == 2222)
            }
        }
        #expect(server.log.contains("connection closed", ["reason": "replaced by a new sign-in of the same user"]))
    }

    @Test("PRESENCE reaches signed-in users when others sign in and out")
    func presence() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        try await server.connect { ali in
            _ = try await ali.signUp("ali", "a")
            _ = try await ali.signIn("ali", "a")
            try await server.connect { bianca in
                _ = try await bianca.signUp("bianca", "b")
                _ = try await bianca.signIn("bianca", "b")
                #expect(try await ali.receiveAny() == .presence(.init(userID: user("bianca"), status: .online)))
                try await bianca.send(.logoutRequest(userID: user("bianca")))
            }
            #expect(try await ali.receiveAny() == .presence(.init(userID: user("bianca"), status: .offline)))
        }
    }

    @Test("200 clients signing in at once all succeed, and are all online together")
    func manyAtOnce() async throws {
        // All from one host here: its caps are raised (one host's own limits are tested elsewhere).
        let server = try await TestServer.start {
            $0.maximumConnectionsPerHost = 1000
            $0.maximumUnsignedPerHost = 1000
            $0.signInLimits.inFlightPerHost = 1000
            $0.signInLimits.failuresPerHost = 1000  // attempts in flight count until they succeed
            $0.signInLimits.signUpsPerHost = 1000
            $0.maximumQueuedHashes = 1000
        }
        defer { Task { await server.stop() } }
        let count = 200
        // Two barriers: everyone signed in, then everyone has looked at the directory, so that
        // no client leaves while another is still checking.
        let signedIn = Counter(), checked = Counter()
        let results = try await withThrowingTaskGroup(of: (granted: Bool, sawEveryone: Bool).self) { group in
            for index in 0..<count {
                group.addTask {
                    try await server.connect { client in
                        let name = "user\(index)"
                        let created = try await client.signUp(name, "p\(index)") == .signUpReply(.init(status: .created, reason: ""))
                        let granted = try await client.signIn(name, "p\(index)") == .granted(name)
                        signedIn.increment()
                        _ = await eventually(seconds: 60) { signedIn.current == count }
                        let sawEveryone = server.server.signedInUsers.count == count
                        checked.increment()
                        _ = await eventually(seconds: 60) { checked.current == count }
                        return (created && granted, sawEveryone)
                    }
                }
            }
            return try await group.reduce(into: [(granted: Bool, sawEveryone: Bool)]()) { $0.append($1) }
        }
        #expect(results.filter { $0.granted }.count == count)
        #expect(results.allSatisfy { $0.sawEveryone })
    }
}
