import SecureChatCrypto

/// Why a channel closed. Safe to log: no key material, no message content.
public enum SecureChannelError: Error, Equatable, Sendable, CustomStringConvertible {
    case framing(FrameError)
    case badHello(String)
    case cipherNotAllowed(String)
    case handshake(NoiseError)
    /// A transport frame failed to decrypt: tampered, replayed, reordered or truncated.
    case decryption
    /// A message could not be sealed (too long for one frame, or the nonce is spent).
    case sealing(NoiseError)
    case unexpectedFrame(String)
    /// The responder refused the handshake and said why (initiator side).
    case refused(HandshakeRefusal)
    /// The stream ended before the handshake completed (initiator side): a responder that does
    /// not tell why closes like this when the key or the cipher is not its own.
    case closedDuringHandshake
    case closed

    public var description: String {
        switch self {
        case let .framing(error): return "framing error: \(error)"
        case let .badHello(why): return "bad HELLO: \(why)"
        case let .cipherNotAllowed(name): return "protocol not allowed here: \(name)"
        case let .handshake(error): return "handshake failed: \(error)"
        case .decryption: return "a frame failed to decrypt (tampered, replayed or reordered)"
        case let .sealing(error): return "cannot seal a message: \(error)"
        case let .unexpectedFrame(why): return "unexpected frame: \(why)"
        case let .refused(refusal): return "the other side refused the handshake: \(refusal.reason)"
        case .closedDuringHandshake: return "the other side closed the connection during the handshake"
        case .closed: return "the channel is closed"
        }
    }
}

/// Why a responder refused a handshake. It says so in one plaintext ERROR frame before closing
/// (the reference only says it closes; words beat a silent close). The frame is unauthenticated,
/// so the initiator uses it only to explain a failure, never to decide anything.
public enum HandshakeRefusal: Equatable, Sendable {
    case unsupportedHello
    case cipherNotAllowed(allowed: [CipherKind])
    /// Message 1 did not decrypt: the initiator used a key that is not this side's.
    case wrongKey
    /// A reason this version does not know.
    case other(String)

    private static let helloReason = "HELLO refused: unsupported protocol version or message"
    private static let ciphersPrefix = "cipher refused; this side allows: "
    private static let keyReason = "handshake failed: the key you used is not this side's key"

    public var reason: String {
        switch self {
        case .unsupportedHello: return Self.helloReason
        case let .cipherNotAllowed(allowed): return Self.ciphersPrefix + allowed.map(\.configName).joined(separator: ", ")
        case .wrongKey: return Self.keyReason
        case let .other(reason): return reason
        }
    }

    public init(reason: String) {
        if reason == Self.helloReason {
            self = .unsupportedHello
        } else if reason == Self.keyReason {
            self = .wrongKey
        } else if reason.hasPrefix(Self.ciphersPrefix) {
            let names = reason.dropFirst(Self.ciphersPrefix.count).split(separator: ",").map { String($0.trimmingSpaces) }
            let kinds = names.compactMap(CipherKind.init(configName:))
            self = kinds.count == names.count ? .cipherNotAllowed(allowed: kinds) : .other(reason)
        } else {
            self = .other(reason)
        }
    }

    /// The plaintext frame that carries the refusal.
    var frame: [UInt8] { (try? Framing.frame(ControlMessage.error(reason: reason).encoded())) ?? [] }
}

/// One securechat connection's framing, HELLO and Noise IK (PROTOCOL.md §2–3), for either role.
/// Bytes in, actions out; no I/O. After any error it stays failed.
public struct SecureChannel<Backend: CryptoBackend> {
    public enum Action: Equatable {
        /// Bytes to write to the stream (already framed).
        case send([UInt8])
        /// Responder: handshake message 1 arrived; answer with `respond(payload:)`.
        case handshakeReceived(remoteStatic: X25519PublicKey, payload: [UInt8])
        /// Handshake complete; for the initiator, `payload` is message 2's.
        case established(payload: [UInt8])
        /// A transport message's plaintext.
        case deliver([UInt8])
        /// Close the connection.
        case fail(SecureChannelError)
    }

    private struct AwaitingHello { let localStatic: X25519KeyPair; let allowed: [CipherKind] }
    private struct AwaitingMessage1 { var handshake: HandshakeState<Backend> }
    private struct AwaitingDecision { var handshake: HandshakeState<Backend> }
    private struct AwaitingMessage2 { var handshake: HandshakeState<Backend> }

    private enum State {
        case awaitingHello(AwaitingHello)
        case awaitingMessage1(AwaitingMessage1)
        case awaitingDecision(AwaitingDecision)
        case awaitingMessage2(AwaitingMessage2)
        /// The transport is `transport`.
        case established
        case failed(SecureChannelError)
    }

    private var state: State
    /// Set exactly while `state` is `.established`. Kept out of the enum so that each message is
    /// sealed and opened in place: through the enum, every message copied the whole state out
    /// and back (outlined copies and destroys of the enum, thousands of instructions a lookup).
    private var transport: NoiseTransport<Backend>?
    private var decoder: FrameDecoder

    /// A responder that has not received a byte: no HELLO, not even part of one.
    public var hasReceivedNothing: Bool {
        if case .awaitingHello = state { decoder.bufferedCount == 0 } else { false }
    }
    /// securechat's rekey rule: every 10 transport messages per direction.
    public static var rekeyInterval: UInt64 { 10 }
    /// The largest frame of a control channel: a 4096-byte message and its tag. Longer ones are
    /// refused from their header on, never buffered.
    public static var maximumControlFrame: Int { ControlMessage.maximumSize + AEADSize.tag }

    /// A responder (the server, or a peer being called) allowing `allowed` ciphers, taking
    /// frames of at most `maximumMessage` bytes.
    public init(responderWith localStatic: X25519KeyPair, allowed: [CipherKind], maximumMessage: Int = Framing.maximumPayload) {
        state = .awaitingHello(AwaitingHello(localStatic: localStatic, allowed: allowed))
        decoder = FrameDecoder(maximumPayload: maximumMessage)
    }

    /// An initiator: returns the channel and the bytes to send first (HELLO, then message 1).
    /// `ephemeral`: a key made ahead for message 1 (`HandshakeState.useEphemeral`), else made now.
    public static func initiator(cipher: CipherKind, localStatic: X25519KeyPair, remoteStatic: X25519PublicKey,
                                 payload: [UInt8], ephemeral: X25519KeyPair? = nil,
                                 maximumMessage: Int = Framing.maximumPayload) throws -> (SecureChannel, [UInt8]) {
        let noise = NoiseProtocol.ik(cipher)
        let hello = ControlMessage.hello(.init(noise: noise.name)).encoded()
        var handshake = try HandshakeState<Backend>(protocol: noise, role: .initiator, prologue: hello,
                                                    localStatic: localStatic, remoteStatic: remoteStatic, ephemeral: ephemeral)
        let message1 = try handshake.writeMessage(payload: payload)
        let channel = SecureChannel(state: .awaitingMessage2(AwaitingMessage2(handshake: handshake)), maximumMessage: maximumMessage)
        return (channel, try Framing.frame(hello) + Framing.frame(message1))
    }

    private init(state: State, maximumMessage: Int) {
        self.state = state
        decoder = FrameDecoder(maximumPayload: maximumMessage)
    }

    /// Bytes from the stream.
    public mutating func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> [Action] {
        if case let .failed(error) = state { return [.fail(error)] }
        decoder.append(bytes)
        var actions = [Action]()
        while true {
            let frame: Range<Int>?
            do { frame = try decoder.nextFrameRange() } catch { return actions + fail(.framing(error)) }
            guard let frame else { return actions }
            actions += handle(frameAt: frame)
            if case .failed = state { return actions }
        }
    }

    /// The stream ended: an error if it stopped inside a frame.
    public mutating func endOfStream() -> [Action] {
        do { try decoder.finish() } catch { return fail(.framing(error)) }
        if case .awaitingMessage2 = state { return fail(.closedDuringHandshake) }
        return fail(.closed)
    }

    /// Responder: answer message 1 with `payload` in message 2; the channel is then established.
    /// `ephemeral`: a key made ahead for message 2, else made now.
    public mutating func respond(payload: [UInt8], ephemeral: X25519KeyPair? = nil) -> [Action] {
        guard case var .awaitingDecision(waiting) = state else { return fail(.unexpectedFrame("no handshake to answer")) }
        do {
            if let ephemeral { try waiting.handshake.useEphemeral(ephemeral) }
            let message2 = try waiting.handshake.writeMessage(payload: payload)
            transport = try waiting.handshake.split(rekeyInterval: Self.rekeyInterval)
            state = .established
            return [.send(try Framing.frame(message2)), .established(payload: [])]
        } catch let error as NoiseError {
            return fail(.handshake(error))
        } catch {
            return fail(.unexpectedFrame("\(error)"))
        }
    }

    /// Seals one transport message and frames it (allocating; control messages).
    public mutating func seal(_ plaintext: [UInt8]) throws -> [UInt8] {
        // One array, written once: sealFrame fills exactly header + ciphertext + tag.
        try [UInt8](unsafeUninitializedCapacity: Framing.headerSize + plaintext.count + AEADSize.tag) { (frame, count) in
            count = try plaintext.withUnsafeBytes { (bytes) in try sealFrame(bytes, into: UnsafeMutableRawBufferPointer(frame)) }
        }
    }

    /// Seals one transport message into `output` as a whole frame (header + ciphertext) and
    /// returns its length. No heap allocation: the chat record path.
    public mutating func sealFrame(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        try requireEstablished()
        guard output.count >= Framing.headerSize else { throw SecureChannelError.sealing(.messageTooLong) }
        do {
            let count = try transport!.seal(plaintext, into: UnsafeMutableRawBufferPointer(rebasing: output[Framing.headerSize...]))
            Framing.writeHeader(count: count, into: output)
            return Framing.headerSize + count
        } catch {
            throw SecureChannelError.sealing(error as? NoiseError ?? .messageTooLong)
        }
    }

    /// Opens one transport message (a frame's payload, without its header) into `output` and
    /// returns the plaintext length. No heap allocation: the chat record path. A message that does
    /// not open fails the channel for good, as in `receive`.
    public mutating func openMessage(_ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        try requireEstablished()
        guard let count = try? transport!.open(ciphertext, into: output) else {
            _ = fail(.decryption)  // stays failed
            throw SecureChannelError.decryption
        }
        return count
    }

    /// Throws unless the handshake is complete and nothing has failed.
    private func requireEstablished() throws {
        // Every message passes here: the switch below copies the whole state to bind `.failed`'s
        // error (callgrind: 484 instructions a lookup, 260 with this test first).
        if case .established = state { return }
        switch state {
        case .established: return
        case let .failed(error): throw error
        case .awaitingHello, .awaitingMessage1, .awaitingDecision, .awaitingMessage2:
            throw SecureChannelError.unexpectedFrame("the handshake is not complete")
        }
    }

    /// One whole frame, held by the decoder at `range`: a transport message is opened from
    /// there into its plaintext; a handshake frame is copied out.
    private mutating func handle(frameAt range: Range<Int>) -> [Action] {
        switch state {
        case let .awaitingHello(waiting):
            return readHello(decoder.payload(range), waiting)
        case var .awaitingMessage1(waiting):
            do {
                let payload = try waiting.handshake.readMessage(decoder.payload(range))
                guard let remoteStatic = waiting.handshake.remoteStatic else { return fail(.handshake(.missingKey("remote static key"))) }
                state = .awaitingDecision(AwaitingDecision(handshake: waiting.handshake))
                return [.handshakeReceived(remoteStatic: remoteStatic, payload: payload)]
            } catch {
                return refuse(.wrongKey, .handshake(error as? NoiseError ?? .decryptionFailed))
            }
        case .awaitingDecision:
            return fail(.unexpectedFrame("a frame before the handshake was answered"))
        case var .awaitingMessage2(waiting):
            let frame = decoder.payload(range)
            do {
                let payload = try waiting.handshake.readMessage(frame)
                transport = try waiting.handshake.split(rekeyInterval: Self.rekeyInterval)
                state = .established
                return [.established(payload: payload)]
            } catch {
                // A responder that refused says why in plaintext instead of message 2.
                if case let .error(reason)? = try? ControlMessage.decode(frame) {
                    return fail(.refused(HandshakeRefusal(reason: reason)))
                }
                return fail(.handshake(error as? NoiseError ?? .decryptionFailed))
            }
        case .established:
            let plaintext = decoder.withPayload(range) { (ciphertext) in
                try? [UInt8](unsafeUninitializedCapacity: max(ciphertext.count - AEADSize.tag, 0)) { (out, count) in
                    count = try transport!.open(ciphertext, into: UnsafeMutableRawBufferPointer(out))
                }
            }
            guard let plaintext else { return fail(.decryption) }  // stays failed
            return [.deliver(plaintext)]
        case let .failed(error):
            return [.fail(error)]
        }
    }

    private mutating func readHello(_ frame: [UInt8], _ waiting: AwaitingHello) -> [Action] {
        guard case let .hello(hello)? = try? ControlMessage.decode(frame) else {
            return refuse(.unsupportedHello, .badHello("the first frame is not a HELLO message"))
        }
        guard hello.version == 1 else { return refuse(.unsupportedHello, .badHello("version \(hello.version) is not supported")) }
        guard let cipher = waiting.allowed.first(where: { NoiseProtocol.ik($0).name == hello.noise }) else {
            return refuse(.cipherNotAllowed(allowed: waiting.allowed), .cipherNotAllowed(hello.noise))
        }
        do {
            // The prologue is the HELLO frame's exact bytes, so a changed HELLO breaks the handshake.
            let handshake = try HandshakeState<Backend>(protocol: NoiseProtocol.ik(cipher), role: .responder,
                                                        prologue: frame, localStatic: waiting.localStatic)
            state = .awaitingMessage1(AwaitingMessage1(handshake: handshake))
            return []
        } catch {
            return fail(.handshake(error as? NoiseError ?? .decryptionFailed))
        }
    }

    private mutating func fail(_ error: SecureChannelError) -> [Action] {
        state = .failed(error)
        transport = nil  // its keys are wiped as it goes
        return [.fail(error)]
    }

    /// Responder: tells the initiator why in plaintext, then fails.
    private mutating func refuse(_ refusal: HandshakeRefusal, _ error: SecureChannelError) -> [Action] {
        [.send(refusal.frame)] + fail(error)
    }
}
