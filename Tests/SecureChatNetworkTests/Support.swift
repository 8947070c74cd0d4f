import Glibc
import Logging
import NIOCore
import NIOPosix
import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import SecureChatOpenSSL
import Synchronization

typealias TestBackend = OpenSSLBackend

/// One event loop group for every test in this target.
let testGroup = MultiThreadedEventLoopGroup.singleton

/// Log lines kept in memory, to assert what the server logged.
final class LogRecorder: Sendable {
    struct Line: Sendable { var level: Logger.Level; var message: String; var metadata: [String: String] }
    private let lines = Locked<[Line]>([])

    var all: [Line] { lines.withLock { $0 } }
    var text: String { all.map { "\($0.level) \($0.message) \($0.metadata.sorted { $0.key < $1.key })" }.joined(separator: "\n") }

    func contains(_ message: String, _ metadata: [String: String] = [:]) -> Bool {
        all.contains { line in line.message == message && metadata.allSatisfy { line.metadata[$0.key] == $0.value } }
    }

    func count(_ message: String, _ metadata: [String: String] = [:]) -> Int {
        all.filter { line in line.message == message && metadata.allSatisfy { line.metadata[$0.key] == $0.value } }.count
    }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    fileprivate func append(_ line: Line) { lines.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            recorder.append(Line(level: event.level, message: "\(event.message)",
                                 metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// A fresh private directory under /tmp.
func makeTemporaryDirectory() -> String {
    var template = Array("/tmp/securechat-test-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

/// A server on a free loopback port with cheap scrypt, its log recorded.
struct TestServer: Sendable {
    let server: RendezvousServer<TestBackend>
    let log: LogRecorder
    let configuration: ServerConfiguration

    static func start(dataDirectory: String = makeTemporaryDirectory(),
                      _ adjust: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = dataDirectory
        configuration.scrypt = ScryptParameters(n: 1 << 10, r: 8, p: 1)
        // The vector suites run beside these and hold the test threads for seconds at a time, so
        // a client here may not get to sign in within the default 10 s; the tests of the
        // deadline set their own.
        configuration.session.signInDeadline = .seconds(60)
        adjust(&configuration)
        let log = LogRecorder()
        let server = try await RendezvousServer<TestBackend>.start(configuration: configuration, group: testGroup, logger: log.logger)
        return TestServer(server: server, log: log, configuration: configuration)
    }

    var address: HostPort { HostPort(host: "127.0.0.1", port: server.localAddress.port!) }

    func stop() async { await server.stop() }

    /// Runs `body` on a connection with `identity` (a fresh key by default), from `source` (a
    /// loopback address: 127.0.0.2 is another host to the server).
    func connect<Result>(identity: X25519KeyPair? = nil, cipher: CipherKind = .chaChaPoly, from source: String? = nil,
                         _ body: (inout ControlConnection<TestBackend>) async throws -> Result) async throws -> Result {
        let identity = try identity ?? TestBackend.generateX25519KeyPair()
        return try await ControlConnection<TestBackend>.with(address, serverKey: server.publicKey, identity: identity,
                                                             cipher: cipher, from: source, group: testGroup, body)
    }
}

func digest(_ user: String, _ passcode: String) throws -> String {
    try PasscodeDigest.wire(userID: UserID(user)!, passcode: SecretBytes(Array(passcode.utf8)), backend: TestBackend.self)
}

func user(_ name: String) -> UserID { UserID(name)! }

extension ControlConnection where Backend == TestBackend {
    mutating func signUp(_ name: String, _ passcode: String = "pass-\(#line)") async throws -> ControlMessage {
        try await request(.signUpRequest(.init(userID: user(name), passcode: try digest(name, passcode))))
    }

    mutating func signIn(_ name: String, _ passcode: String, port: Int = 5000) async throws -> ControlMessage {
        try await request(.authRequest(.init(userID: user(name), passcode: try digest(name, passcode), port: port)))
    }

    mutating func lookup(_ name: String, as asker: String) async throws -> ControlMessage {
        try await request(.lookupRequest(.init(userID: user(asker), lookup: user(name))))
    }
}

extension ControlMessage {
    static func granted(_ name: String) -> ControlMessage {
        .authReply(.init(userID: user(name), status: .granted, extensions: ControlMessage.ServerExtension.allCases.map(\.rawValue)))
    }
    static func refused(_ name: String) -> ControlMessage {
        .authReply(.init(userID: user(name), status: .refused, reason: "wrong user ID or passcode"))
    }
}

/// Waits until `condition` holds, polling; fails the caller's expectation by returning false after `seconds`.
func eventually(seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = NIODeadline.now() + .milliseconds(Int64(seconds * 1000))
    while NIODeadline.now() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Writes `bytes` on a plain TCP connection, then reads until the server closes it (or `seconds`
/// pass: then nil, the server kept it open). Returns what the server sent.
func sendRawAndAwaitClose(_ bytes: [UInt8], to address: HostPort, seconds: Int64 = 5) async throws -> [UInt8]? {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    do {
        channel = try await ClientBootstrap(group: testGroup)
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
    } catch ChannelError.ioOnClosedChannel where bytes.isEmpty {
        return []  // closed by the server before the connection was even set up here
    }
    return try await channel.executeThenClose { inbound, outbound in
        if !bytes.isEmpty { try await outbound.write(ByteBuffer(bytes: bytes)) }
        return try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask {
                var received = [UInt8]()
                do {
                    for try await buffer in inbound { received += buffer.readableBytesView }
                } catch let error as IOError where error.errnoCode == ECONNRESET {
                    // Closed with our bytes unread: closed all the same.
                }
                return received
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }
}

/// A counter tasks can share.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var current: Int { value.load(ordering: .relaxed) }
}
