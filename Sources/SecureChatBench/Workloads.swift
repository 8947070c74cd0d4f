import SecureChatCore
import SecureChatCrypto

/// One operation to time, set up once: each `run()` performs it once. Used by `securechat bench`
/// and by the developers' Benchmarks/ package, so both time exactly the same code.
public protocol Workload {
    mutating func run() throws
}

extension Workload {
    @inline(__always)
    mutating func run(times count: Int) throws {
        for _ in 0..<count { try run() }
    }
}

/// Seals `size` bytes with the backend's cipher as the transport does: context and key set up
/// once, a new Noise nonce per message, caller-owned buffers, no heap allocation.
public struct SealWorkload<Backend: CryptoBackend>: Workload {
    private let cipher: Backend.AEAD
    private let buffers: MessageBuffers
    private var counter: UInt64 = 0

    public init(_ kind: CipherKind, size: Int) throws {
        cipher = try MessageBuffers.cipher(kind)
        buffers = MessageBuffers(size: size)
    }

    public mutating func run() throws {
        try cipher.seal(counter: counter, associatedData: MessageBuffers.noData,
                        plaintext: UnsafeRawBufferPointer(buffers.plaintext), into: buffers.sealed)
        counter &+= 1
    }
}

/// Opens (and verifies) one sealed message of `size` bytes, again and again.
public struct OpenWorkload<Backend: CryptoBackend>: Workload {
    private let cipher: Backend.AEAD
    private let buffers: MessageBuffers

    public init(_ kind: CipherKind, size: Int) throws {
        cipher = try MessageBuffers.cipher(kind)
        buffers = MessageBuffers(size: size)
        try cipher.seal(counter: 0, associatedData: MessageBuffers.noData,
                        plaintext: UnsafeRawBufferPointer(buffers.plaintext), into: buffers.sealed)
    }

    public mutating func run() throws {
        try cipher.open(counter: 0, associatedData: MessageBuffers.noData,
                        ciphertext: UnsafeRawBufferPointer(buffers.sealed), into: buffers.plaintext)
    }
}

/// A plaintext buffer and a sealed buffer (plaintext + tag), allocated once and used through
/// their pointers, as the C baseline uses its buffers: per message the benchmark adds nothing
/// to the cipher's own work.
final class MessageBuffers {
    static var noData: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    /// A cipher under a fixed benchmark key.
    static func cipher<AEAD: Cipher>(_ kind: CipherKind) throws -> AEAD {
        try [UInt8](repeating: 0x5A, count: AEADSize.key).withUnsafeBytes { try AEAD(kind: kind, key: $0) }
    }

    let plaintext: UnsafeMutableRawBufferPointer
    let sealed: UnsafeMutableRawBufferPointer

    init(size: Int) {
        plaintext = .allocate(byteCount: size, alignment: 16)
        plaintext.initializeMemory(as: UInt8.self, repeating: 0x41)
        sealed = .allocate(byteCount: size + AEADSize.tag, alignment: 16)
        sealed.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        plaintext.deallocate()
        sealed.deallocate()
    }
}

/// X25519 key generation: a random scalar times the base point.
public struct KeyGenerationWorkload<Backend: CryptoBackend>: Workload {
    public init() {}
    public mutating func run() throws { _ = try Backend.generateEphemeralX25519KeyPair() }
}

/// One X25519 Diffie-Hellman with checks, as the handshake does it.
public struct DiffieHellmanWorkload<Backend: CryptoBackend>: Workload {
    private let local: X25519KeyPair
    private let remote: X25519PublicKey

    public init() throws {
        local = try Backend.generateX25519KeyPair()
        remote = try Backend.generateX25519KeyPair().publicKey
    }

    public mutating func run() throws { _ = try Backend.x25519SharedSecret(local, remote) }
}

/// The hashing of one handshake, as `HandshakeCost` counts it: SHA-256 of 64 bytes (MixHash) or
/// HMAC-SHA256 of 33 bytes under a 32-byte key (one HMAC of HKDF).
public struct HashWorkload<Backend: CryptoBackend>: Workload {
    public enum Kind: Sendable { case mixHash, hkdfHMAC }
    private let kind: Kind
    private var input = [UInt8](repeating: 7, count: 64)
    private var output = [UInt8](repeating: 0, count: 32)

    public init(_ kind: Kind) { self.kind = kind }

    public mutating func run() throws {
        let kind = kind
        try input.withUnsafeBytes { input in
            try output.withUnsafeMutableBytes { output in
                switch kind {
                case .mixHash:
                    try Backend.sha256(input, into: output)
                case .hkdfHMAC:
                    try Backend.hmacSHA256(key: UnsafeRawBufferPointer(rebasing: input[..<32]),
                                           message: UnsafeRawBufferPointer(rebasing: input[..<33]), into: output)
                }
            }
        }
    }
}

/// One full Noise IK handshake, both sides in-process, through to the transports (static keys
/// made once and keeping their static–static secrets, as a running server and peer have them).
public struct HandshakeWorkload<Backend: CryptoBackend>: Workload {
    private let noise: NoiseProtocol
    private let initiatorStatic: X25519KeyPair
    private let responderStatic: X25519KeyPair

    public init(_ kind: CipherKind) throws {
        noise = NoiseProtocol.ik(kind)
        initiatorStatic = try Backend.generateX25519KeyPair().keepingStaticSecrets(capacity: 16)
        responderStatic = try Backend.generateX25519KeyPair().keepingStaticSecrets(capacity: 16)
    }

    public mutating func run() throws {
        var initiator = try HandshakeState<Backend>(protocol: noise, role: .initiator, prologue: [],
                                                    localStatic: initiatorStatic, remoteStatic: responderStatic.publicKey)
        var responder = try HandshakeState<Backend>(protocol: noise, role: .responder, prologue: [], localStatic: responderStatic)
        _ = try responder.readMessage(try initiator.writeMessage(payload: []))
        _ = try initiator.readMessage(try responder.writeMessage(payload: []))
        _ = try initiator.split(rekeyInterval: SecureChannel<Backend>.rekeyInterval)
        _ = try responder.split(rekeyInterval: SecureChannel<Backend>.rekeyInterval)
    }
}

/// What one IK handshake (both sides) must cost at least: its X25519 and hash work. Per side,
/// Noise IK does one key generation and four DH, one of them (`ss`) the same for every
/// handshake between two static keys and kept: three each; both sides together hash 14 times (MixHash:
/// two at start, then one per token `e`, `s` and payload) and run HKDF 10 times (four MixKey per
/// side and one Split each), three HMACs each.
public enum HandshakeCost {
    public static let keyGenerations = 2.0
    public static let diffieHellmans = 6.0
    public static let mixHashes = 14.0
    public static let hkdfHMACs = 30.0

    /// Seconds, from the per-second rates of the workloads above.
    public static func floor(keyGenerationsPerSecond: Double, diffieHellmansPerSecond: Double,
                             mixHashesPerSecond: Double, hmacsPerSecond: Double) -> Double {
        keyGenerations / keyGenerationsPerSecond + diffieHellmans / diffieHellmansPerSecond
            + mixHashes / mixHashesPerSecond + hkdfHMACs / hmacsPerSecond
    }
}

/// One chat record of `size` text bytes sealed through one side's channel and opened and
/// validated by the other's, in place (rekeys every 10 messages included).
public struct ChatRecordWorkload<Backend: CryptoBackend>: Workload {
    private var sending: SecureChannel<Backend>
    private var receiving: SecureChannel<Backend>
    private var text: [UInt8]
    private var frame: [UInt8]
    private var opened: [UInt8]

    public init(_ kind: CipherKind, size: Int) throws {
        (sending, receiving) = try establishedPair(Backend.self, kind)
        text = [UInt8](repeating: 0x41, count: size)
        frame = [UInt8](repeating: 0, count: Framing.headerSize + 1 + size + AEADSize.tag)
        opened = [UInt8](repeating: 0, count: 1 + size)
    }

    public mutating func run() throws {
        try text.withUnsafeBytes { text in
            try frame.withUnsafeMutableBytes { frame in
                try opened.withUnsafeMutableBytes { opened in
                    let count = try PeerConnection<Backend>.sealRecord(.text, body: text, channel: &sending, into: frame)
                    let payload = UnsafeRawBufferPointer(rebasing: frame[Framing.headerSize..<count])
                    _ = try PeerConnection<Backend>.openRecord(payload, channel: &receiving, into: opened)
                }
            }
        }
    }
}

/// Both ends of an established SecureChannel: (initiator, responder).
public func establishedPair<Backend: CryptoBackend>(_: Backend.Type, _ kind: CipherKind) throws
    -> (SecureChannel<Backend>, SecureChannel<Backend>) {
    let server = try Backend.generateX25519KeyPair()
    var (client, hello) = try SecureChannel<Backend>.initiator(cipher: kind, localStatic: try Backend.generateX25519KeyPair(),
                                                               remoteStatic: server.publicKey, payload: [])
    var responder = SecureChannel<Backend>(responderWith: server, allowed: [kind])
    guard case .handshakeReceived? = responder.receive(hello).first, case let .send(reply)? = responder.respond(payload: []).first,
          client.receive(reply) == [.established(payload: [])] else {
        throw NoiseError.handshakeNotComplete
    }
    return (client, responder)
}
