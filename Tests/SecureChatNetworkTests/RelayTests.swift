import NIOCore
import NIOPosix
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import Testing

/// A raw relay leg: a TCP connection to the server whose first frame is RELAY.
private final class Leg: @unchecked Sendable {
    // @unchecked: used by one test task at a time.
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator

    private init(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
        iterator = channel.inbound.makeAsyncIterator()
    }

    static func open(_ server: TestServer, token: String, then more: [UInt8] = []) async throws -> Leg {
        let channel = try await ClientBootstrap(group: testGroup).connect(host: "127.0.0.1", port: server.address.port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        try await channel.outbound.write(ByteBuffer(bytes: try Framing.frame(ControlMessage.relay(token: token).encoded()) + more))
        return Leg(channel)
    }

    /// Reads until `count` bytes came; nil if the server closed first or `seconds` passed.
    func read(_ count: Int, seconds: Int64 = 5) async -> [UInt8]? {
        var received = [UInt8]()
        let deadline = NIODeadline.now() + .seconds(seconds)
        while received.count < count, NIODeadline.now() < deadline {
            guard let buffer = await nextOrNil(before: deadline) else { return nil }
            received += buffer.readableBytesView
        }
        return received.count >= count ? received : nil
    }

    /// Whether the server closes this leg within `seconds`.
    func closedByServer(seconds: Int64 = 5) async -> Bool {
        let deadline = NIODeadline.now() + .seconds(seconds)
        while NIODeadline.now() < deadline {
            if await nextOrNil(before: deadline) == nil { return NIODeadline.now() < deadline }
        }
        return false
    }

    /// The next buffer; nil at the end of the stream (or an error), or when the deadline passed.
    private func nextOrNil(before deadline: NIODeadline) async -> ByteBuffer? {
        let timer = channel.channel.eventLoop.scheduleTask(deadline: deadline) { [channel] in channel.channel.close(promise: nil) }
        defer { timer.cancel() }
        return try? await iterator.next()
    }

    func write(_ bytes: [UInt8]) async throws { try await channel.outbound.write(ByteBuffer(bytes: bytes)) }

    func close() async {
        channel.outbound.finish()
        try? await channel.channel.close()
    }
}

/// Two §9 peers signed in: ali calls bianca; returns both tokens (ali's, bianca's).
private func tokens(_ server: TestServer, caller: String = "ali", callee: String = "bianca") async throws -> (String, String, String?) {
    let calleeKey = try TestBackend.generateX25519KeyPair()
    let holder = CalleeHolder()
    let calleeTask = Task {
        try await server.connect(identity: calleeKey) { bianca in
            _ = try await bianca.signUp(callee, "sesame")
            _ = try await bianca.request(.authRequest(.init(userID: user(callee), passcode: try digest(callee, "sesame"), port: 7001,
                                                            extensions: ["calls"])))
            holder.ready()
            while true {
                if case let .callOffer(offer) = try await bianca.receive() { return offer.relay }
            }
        }
    }
    await holder.wait()
    let (callerToken, reason): (String, String?) = try await server.connect { ali in
        _ = try await ali.signUp(caller, "sesame")
        _ = try await ali.request(.authRequest(.init(userID: user(caller), passcode: try digest(caller, "sesame"), port: 7002,
                                                     extensions: ["calls"])))
        guard case let .callReply(reply) = try await ali.request(.callRequest(.init(userID: user(caller), callee: user(callee)))) else {
            return ("", "no CALLREPLY")
        }
        return (reply.found?.relay ?? "", reply.reason)
    }
    return (callerToken, try await calleeTask.value, reason)
}

private final class CalleeHolder: Sendable {
    private let flag = Counter()
    func ready() { flag.increment() }
    func wait() async { _ = await eventually(seconds: 10) { flag.current > 0 } }
}

@Suite("Relay")
struct RelayTests {
    @Test("paired legs copy bytes both ways, unchanged, whichever leg comes first; a token is good once")
    func pairsAndCopies() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let (aliToken, biancaToken, reason) = try await tokens(server)
        #expect(reason == nil && !aliToken.isEmpty && !biancaToken.isEmpty && aliToken != biancaToken)
        let early = Array("bytes before the partner came".utf8)
        let ali = try await Leg.open(server, token: aliToken, then: early)
        try await Task.sleep(for: .milliseconds(100))
        let bianca = try await Leg.open(server, token: biancaToken)
        #expect(await bianca.read(early.count) == early, "what waited is delivered once paired")
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try await bianca.write(big)
        #expect(await ali.read(big.count) == big)
        // Used again: refused and closed.
        let again = try await Leg.open(server, token: aliToken)
        #expect(await again.closedByServer())
        #expect(server.log.contains("relay leg refused", ["reason": "unknown, used or expired relay token"]))
        await again.close()
        // One leg ends: the other is closed too.
        await ali.close()
        #expect(await bianca.closedByServer())
        await bianca.close()
    }

    @Test("two legs that arrive at the same moment are paired (with two locks, both could wait for each other)")
    func simultaneousArrivals() async throws {
        let server = try await TestServer.start { $0.relay.callsPerUser = 100 }
        defer { Task { await server.stop() } }
        for round in 0..<20 {
            let (aliToken, biancaToken, _) = try await tokens(server)
            async let caller = Leg.open(server, token: aliToken)
            async let callee = Leg.open(server, token: biancaToken, then: [UInt8(round)])
            let (ali, bianca) = try await (caller, callee)
            #expect(await ali.read(1) == [UInt8(round)], "round \(round): the legs were paired")
            await ali.close()
            await bianca.close()
        }
    }

    @Test("a leg with no partner is closed when its token expires; an unknown token at once")
    func noPartner() async throws {
        // Long enough that the leg opens before its token expires even under a sanitizer on a
        // loaded machine (2 s once did not: the leg was refused instead).
        let server = try await TestServer.start { $0.relay.tokenLifetime = .seconds(5) }
        defer { Task { await server.stop() } }
        let (aliToken, _, _) = try await tokens(server)
        let lonely = try await Leg.open(server, token: aliToken)
        #expect(await lonely.closedByServer(seconds: 15))
        #expect(server.log.contains("relay leg closed: its partner never came"))
        let stranger = try await Leg.open(server, token: Base64.encode([UInt8](repeating: 9, count: 32)))
        #expect(await stranger.closedByServer(seconds: 4), "closed at once, not when a token would expire")
        await lonely.close()
        await stranger.close()
    }

    @Test("a relayed call over its rate is throttled, not buffered: the sender is slowed")
    func rateLimit() async throws {
        let server = try await TestServer.start { $0.relay.bytesPerSecond = 100_000 }
        defer { Task { await server.stop() } }
        let (aliToken, biancaToken, _) = try await tokens(server)
        let ali = try await Leg.open(server, token: aliToken)
        let bianca = try await Leg.open(server, token: biancaToken)
        // Paired once a byte gets across; before that the caller may send 16 KiB only.
        try await bianca.write([0])
        #expect(await ali.read(1) == [0])
        let started = NIODeadline.now()
        let chunk = [UInt8](repeating: 1, count: 100_000)
        let writer = Task { for _ in 0..<6 { try await ali.write(chunk) } }
        #expect(await bianca.read(600_000, seconds: 20) != nil)
        let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        // A second's burst, then the rate; NIO reads up to 4 × 64 KiB before asking again, a
        // debt paid after the transfer ends. So at least (600 − 100 − 262) kB / 100 kB/s.
        #expect(elapsed > 2, "600 kB at 100 kB/s took \(elapsed) s: the rate holds")
        try await writer.value
        await ali.close()
        await bianca.close()
    }

    @Test("relayed calls past the limit per user are refused in CALLREPLY's reason; relaying off says so")
    func limits() async throws {
        let server = try await TestServer.start { $0.relay.callsPerUser = 1 }
        defer { Task { await server.stop() } }
        let (aliToken, biancaToken, _) = try await tokens(server, caller: "ali", callee: "bianca")
        let one = try await Leg.open(server, token: aliToken)
        let two = try await Leg.open(server, token: biancaToken)
        _ = await two.read(0)
        let (_, _, refused) = try await tokens(server, caller: "ali", callee: "carol")
        #expect(refused == RelayBook.Refusal.userLimit.rawValue)
        await one.close()
        await two.close()
        let off = try await TestServer.start { $0.relay.enabled = false }
        defer { Task { await off.stop() } }
        let (token, _, reason) = try await tokens(off)
        #expect(token.isEmpty && reason == RelayBook.Refusal.disabled.rawValue)
    }
}
