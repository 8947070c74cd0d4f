import CAllocationCounter
import SecureChatBackends
import SecureChatBench
import SecureChatCore
import SecureChatCrypto
import Testing

/// The allocation budget (issue 3): once set up, sealing and opening through the transport and
/// the chat record path allocate nothing; control messages allocate a little, counted here.
@Suite("Allocations", .enabled(if: securechat_allocation_counting() == 1, "a sanitizer's allocator replaces the counting one"))
struct AllocationTests {
    @Test("transport seal/open and the chat record path (seal and open) allocate nothing",
          arguments: BackendName.allCases, CipherKind.allCases)
    func hotPathAllocatesNothing(backend: BackendName, cipher: CipherKind) throws {
        let counts = try measureHotPath(backend.implementation, cipher)
        print("allocations: \(backend) \(cipher.rawValue): \(counts.transport) in 1000 transport seal+open (rekeys included), "
              + "\(counts.record) in 1000 chat records sealed and opened")
        #expect(counts.transport == 0)
        #expect(counts.record == 0)
    }

    @Test("an IK handshake, both sides, and one DH: counted", arguments: BackendName.allCases)
    func handshakeAllocations(backend: BackendName) throws {
        let (handshake, dh) = try measureHandshake(backend.implementation)
        let (hash, hmac) = try measureHashes(backend.implementation)
        print("allocations: \(backend): \(handshake) per IK handshake (both sides), \(dh) per X25519 DH, \(hash) per SHA-256, \(hmac) per HMAC")
        #expect(handshake <= handshakeBudget(backend))
    }

    @Test("a secure channel's handshake (HELLO, both IK messages, framing) adds little to Noise's", arguments: BackendName.allCases)
    func channelHandshakeAllocations(backend: BackendName) throws {
        let (handshake, _) = try measureHandshake(backend.implementation)
        let channel = try measureChannelHandshake(backend.implementation)
        print("allocations: \(backend): \(channel) per secure channel handshake (both sides), \(handshake) of them Noise's")
        // Measured in this debug build: 45 (the HELLO's JSON, frames, the actions returned); 94
        // when each side parsed the Noise protocol name per handshake.
        #expect(channel >= handshake)
        #expect(channel - handshake <= 50)
    }

    @Test("control messages allocate a little, and it is counted", arguments: BackendName.allCases)
    func controlMessagesAreCounted(backend: BackendName) throws {
        let perMessage = try measureControl(backend.implementation)
        print("allocations: \(backend): \(perMessage) per LOOKUPREQ encoded, sealed and framed")
        #expect(perMessage < 40)
    }
}

private func measureHotPath<B: CryptoBackend>(_: B.Type, _ cipher: CipherKind) throws -> (transport: UInt64, record: UInt64) {
    var (initiator, responder) = try transportPair(B.self, cipher)
    var sender = try initiator.split(rekeyInterval: 10), receiver = try responder.split(rekeyInterval: 10)
    let message = [UInt8](repeating: 0x41, count: 200)
    var sealed = [UInt8](repeating: 0, count: 65535 + Framing.headerSize)
    var opened = [UInt8](repeating: 0, count: 65535)
    let transport: UInt64 = try message.withUnsafeBytes { plaintext in
        try sealed.withUnsafeMutableBytes { sealedBuffer in
            try opened.withUnsafeMutableBytes { openedBuffer in
                func exchange(_ times: Int) throws {
                    for _ in 0..<times {
                        let count = try sender.seal(plaintext, into: sealedBuffer)
                        _ = try receiver.open(UnsafeRawBufferPointer(rebasing: sealedBuffer[..<count]), into: openedBuffer)
                    }
                }
                // Set-up: the first messages and the first rekey instantiate run-time metadata once.
                try exchange(12)
                let before = securechat_thread_allocations()
                try exchange(1000)
                return securechat_thread_allocations() - before
            }
        }
    }
    // The chat record path: record encoded and sealed in place as a frame, then opened and
    // validated in place on the other side.
    var (sending, receiving) = try establishedChannels(B.self, cipher)
    let record: UInt64 = try message.withUnsafeBytes { body in
        try sealed.withUnsafeMutableBytes { out in
            try opened.withUnsafeMutableBytes { openedBuffer in
                func exchange(_ times: Int) throws {
                    for _ in 0..<times {
                        let count = try PeerConnection<B>.sealRecord(.text, body: body, channel: &sending, into: out)
                        let payload = UnsafeRawBufferPointer(rebasing: out[Framing.headerSize..<count])
                        let (type, received) = try PeerConnection<B>.openRecord(payload, channel: &receiving, into: openedBuffer)
                        guard case .text = type, received.count == body.count else { throw NoiseError.decryptionFailed }
                    }
                }
                try exchange(12)
                let before = securechat_thread_allocations()
                try exchange(1000)
                return securechat_thread_allocations() - before
            }
        }
    }
    return (transport, record)
}

private func measureControl<B: CryptoBackend>(_: B.Type) throws -> UInt64 {
    var (channel, _) = try establishedChannels(B.self, .chaChaPoly)
    let request = ControlMessage.lookupRequest(.init(userID: UserID("ali")!, lookup: UserID("bianca")!))
    _ = try channel.seal(request.encoded())
    let before = securechat_thread_allocations()
    for _ in 0..<100 { _ = try channel.seal(request.encoded()) }
    return (securechat_thread_allocations() - before) / 100
}

/// Heap allocations for one IK handshake, both sides (this debug build): what is achieved today
/// (121 and 849), so that a regression fails. Most are the libraries' own: libcrypto's for 2 key
/// generations, 2 imported ephemeral keys and the 2 ephemeral keys' derive contexts (the key
/// generator's and the static keys' contexts are kept, the remote static key is kept with the
/// static-static secret), libgcrypt's 99 inside each of its 8 X25519; see README.md, "Crypto
/// performance".
private func handshakeBudget(_ backend: BackendName) -> UInt64 {
    switch backend {
    case .openssl: 125
    case .gcrypt: 855
    }
}

private func measureHandshake<B: CryptoBackend>(_: B.Type) throws -> (handshake: UInt64, dh: UInt64) {
    var handshake = try HandshakeWorkload<B>(.chaChaPoly)
    var dh = try DiffieHellmanWorkload<B>()
    try handshake.run()
    try dh.run()
    let before = securechat_thread_allocations()
    for _ in 0..<10 { try handshake.run() }
    let middle = securechat_thread_allocations()
    for _ in 0..<10 { try dh.run() }
    return ((middle - before) / 10, (securechat_thread_allocations() - middle) / 10)
}

/// The real handshake path, both sides: the initiator's HELLO and first message, the
/// responder's checks and reply, the initiator's reading of it; static keys made once.
private func measureChannelHandshake<B: CryptoBackend>(_: B.Type) throws -> UInt64 {
    let client = try B.generateX25519KeyPair().keepingStaticSecrets(capacity: 16)
    let server = try B.generateX25519KeyPair().keepingStaticSecrets(capacity: 16)
    func handshake() throws {
        var (initiator, hello) = try SecureChannel<B>.initiator(cipher: .chaChaPoly, localStatic: client,
                                                                  remoteStatic: server.publicKey, payload: [])
        var responder = SecureChannel<B>(responderWith: server, allowed: [.aesGCM, .chaChaPoly])
        guard case .handshakeReceived? = responder.receive(hello).first, case let .send(reply)? = responder.respond(payload: []).first,
              initiator.receive(reply) == [.established(payload: [])] else {
            throw NoiseError.handshakeNotComplete
        }
    }
    try handshake()
    let before = securechat_thread_allocations()
    for _ in 0..<10 { try handshake() }
    return (securechat_thread_allocations() - before) / 10
}

private func measureHashes<B: CryptoBackend>(_: B.Type) throws -> (hash: UInt64, hmac: UInt64) {
    func count(_ kind: HashWorkload<B>.Kind) throws -> UInt64 {
        var workload = HashWorkload<B>(kind)
        try workload.run()
        let before = securechat_thread_allocations()
        for _ in 0..<10 { try workload.run() }
        return (securechat_thread_allocations() - before) / 10
    }
    return (try count(.mixHash), try count(.hkdfHMAC))
}
