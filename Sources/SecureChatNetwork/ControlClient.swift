#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import SecureChatCore
import SecureChatCrypto

/// A plain request/reply client of the server's control channel (PROTOCOL.md §4), for scripts,
/// load generators and tests: connect, handshake, then typed messages both ways. The peer's own
/// logic (presence, calls) lives in `ClientSession`; this is only the transport.
public struct ControlConnection<Backend: CryptoBackend>: ~Copyable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case channel(SecureChannelError)
        case message(MessageError)
        case closedByServer

        public var description: String {
            switch self {
            case let .channel(error): return "\(error)"
            case let .message(error): return "bad message from the server: \(error)"
            case .closedByServer: return "the server closed the connection"
            }
        }
    }

    private var channel: SecureChannel<Backend>
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var pending: [ControlMessage] = []
    /// PRESENCE messages that arrived while waiting for replies, oldest first.
    public private(set) var presence: [ControlMessage.Presence] = []

    /// Connects to `address` (from `source`, an IP address of this machine, if given), runs the
    /// handshake, and gives `body` the connection; closes after.
    public static func with<Result>(
        _ address: HostPort, serverKey: X25519PublicKey, identity: X25519KeyPair, cipher: CipherKind = .chaChaPoly,
        from source: String? = nil, group: any EventLoopGroup, _ body: (inout ControlConnection) async throws -> Result
    ) async throws -> Result {
        var bootstrap = ClientBootstrap(group: group)
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        let channel = try await bootstrap
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let (secure, first) = try SecureChannel<Backend>.initiator(cipher: cipher, localStatic: identity,
                                                                       remoteStatic: serverKey, payload: [])
            var connection = ControlConnection(channel: secure, inbound: inbound.makeAsyncIterator(), outbound: outbound)
            try await outbound.write(ByteBuffer(bytes: first))
            try await connection.awaitEstablished()
            return try await body(&connection)
        }
    }

    private init(channel: SecureChannel<Backend>, inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
                 outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.channel = channel
        self.inbound = inbound
        self.outbound = outbound
    }

    public mutating func send(_ message: ControlMessage) async throws {
        try await outbound.write(ByteBuffer(bytes: try sealed(message)))
    }

    /// The frame that would carry `message`, not sent (the nonce is used): for tests that
    /// tamper with or replay frames.
    public mutating func sealed(_ message: ControlMessage) throws -> [UInt8] { try sealedRaw(message.encoded()) }

    /// Any plaintext sealed into a frame, not sent: for tests that send malformed messages.
    public mutating func sealedRaw(_ plaintext: [UInt8]) throws -> [UInt8] {
        do { return try channel.seal(plaintext) } catch let error as SecureChannelError { throw Failure.channel(error) }
    }

    /// Bytes written as they are, bypassing the channel: for tests of a misbehaving client.
    public func sendRaw(_ bytes: [UInt8]) async throws { try await outbound.write(ByteBuffer(bytes: bytes)) }

    /// The next message that is not PRESENCE (those are kept in `presence`).
    public mutating func receive() async throws -> ControlMessage {
        while true {
            let message = try await receiveAny()
            if case let .presence(update) = message { presence.append(update) } else { return message }
        }
    }

    /// The next message of any kind.
    public mutating func receiveAny() async throws -> ControlMessage {
        while pending.isEmpty {
            let next: ByteBuffer?
            do {
                next = try await inbound.next()
            } catch let error as IOError where error.errnoCode == ECONNRESET {
                // The server closed with our last bytes unread: for the client, simply closed.
                next = nil
            }
            guard let buffer = next else {
                for action in channel.endOfStream() { if case let .fail(error) = action, error != .closed { throw Failure.channel(error) } }
                throw Failure.closedByServer
            }
            try handle(channel.receive(buffer.readableBytesView))
        }
        return pending.removeFirst()
    }

    public mutating func request(_ message: ControlMessage) async throws -> ControlMessage {
        try await send(message)
        return try await receive()
    }

    private mutating func awaitEstablished() async throws {
        while true {
            guard let buffer = try await inbound.next() else { throw Failure.closedByServer }
            if try handle(channel.receive(buffer.readableBytesView)) { return }
        }
    }

    /// Queues delivered messages; true once the handshake completed.
    @discardableResult
    private mutating func handle(_ actions: [SecureChannel<Backend>.Action]) throws -> Bool {
        var established = false
        for action in actions {
            switch action {
            case .established: established = true
            case let .deliver(plaintext):
                do { pending.append(try ControlMessage.decode(plaintext)) } catch { throw Failure.message(error) }
            case let .fail(error): throw Failure.channel(error)
            case .send, .handshakeReceived: break
            }
        }
        return established
    }
}
