import SecureChatCrypto

/// Runs cacophony-format Noise test vectors (`{"vectors":[…]}`): every vector whose protocol this
/// engine speaks is played through a real initiator and responder, comparing every handshake and
/// transport ciphertext, every payload and the handshake hash. Others are counted by reason.
public struct NoiseVectorReport: Sendable {
    public var passed: [String] = []
    public var failed: [(name: String, reason: String)] = []
    public var skipped: [String: Int] = [:]

    public var skippedCount: Int { skipped.values.reduce(0, +) }
}

public enum NoiseVectors {
    /// `computingAhead`: each side's ephemeral key comes with its DH to the other side's static
    /// key computed before the handshake (`CryptoBackend.computingAhead`), as a callee makes it;
    /// the bytes on the wire must not change.
    public static func run<Backend: CryptoBackend>(_ document: [UInt8], backend: Backend.Type,
                                                   computingAhead: Bool = false) throws -> NoiseVectorReport {
        let root = try JSONValue.parse(document)
        guard case let .array(vectors)? = root["vectors"] else {
            throw JSONError(offset: 0, problem: "no \"vectors\" array")
        }
        var report = NoiseVectorReport()
        for (index, vector) in vectors.enumerated() {
            guard case let .string(name)? = vector["protocol_name"] else {
                report.failed.append(("vector \(index)", "no protocol_name"))
                continue
            }
            let noiseProtocol: NoiseProtocol
            do {
                noiseProtocol = try NoiseProtocol(name: name)
            } catch let NoiseError.unsupportedProtocol(reason) {
                report.skipped["unsupported: \(reason)", default: 0] += 1
                continue
            }
            do {
                try play(vector, noiseProtocol, Backend.self, computingAhead: computingAhead)
                report.passed.append(name)
            } catch {
                report.failed.append((name, "\(error)"))
            }
        }
        return report
    }

    struct Mismatch: Error, CustomStringConvertible {
        let description: String
    }

    private static func play<Backend: CryptoBackend>(_ vector: JSONValue, _ noiseProtocol: NoiseProtocol, _: Backend.Type,
                                                     computingAhead: Bool) throws {
        func bytes(_ key: String) throws -> [UInt8]? {
            guard let value = vector[key] else { return nil }
            guard case let .string(text) = value, let decoded = [UInt8](hex: text) else {
                throw Mismatch(description: "\(key) is not hex")
            }
            return decoded
        }
        func keyPair(_ key: String) throws -> X25519KeyPair? {
            try bytes(key).map { try Backend.x25519KeyPair(privateKey: SecretBytes($0)) }
        }
        func publicKey(_ key: String) throws -> X25519PublicKey? {
            try bytes(key).map { try X25519PublicKey(bytes: $0) }
        }
        let initiatorStatic = try keyPair("init_static"), responderStatic = try keyPair("resp_static")
        func ephemeral(_ key: String, towards other: X25519KeyPair?) throws -> X25519KeyPair? {
            let pair = try keyPair(key)
            guard computingAhead, let pair, let other else { return pair }
            return try Backend.computingAhead(pair, with: other.publicKey)
        }
        var initiator = try HandshakeState<Backend>(
            protocol: noiseProtocol, role: .initiator, prologue: try bytes("init_prologue") ?? [],
            localStatic: initiatorStatic, remoteStatic: try publicKey("init_remote_static"),
            ephemeral: try ephemeral("init_ephemeral", towards: responderStatic))
        var responder = try HandshakeState<Backend>(
            protocol: noiseProtocol, role: .responder, prologue: try bytes("resp_prologue") ?? [],
            localStatic: responderStatic, remoteStatic: try publicKey("resp_remote_static"),
            ephemeral: try ephemeral("resp_ephemeral", towards: initiatorStatic))
        guard case let .array(messages)? = vector["messages"] else { throw Mismatch(description: "no messages") }

        var transports: (initiator: NoiseTransport<Backend>, responder: NoiseTransport<Backend>)?
        for (index, message) in messages.enumerated() {
            guard case let .string(payloadHex)? = message["payload"], let payload = [UInt8](hex: payloadHex),
                  case let .string(ciphertextHex)? = message["ciphertext"], let expected = [UInt8](hex: ciphertextHex) else {
                throw Mismatch(description: "message \(index) is malformed")
            }
            let fromInitiator = noiseProtocol.pattern.isOneWay || index % 2 == 0
            let ciphertext: [UInt8], received: [UInt8]
            if var pair = transports {
                if fromInitiator {
                    ciphertext = try pair.initiator.seal(payload)
                    received = try pair.responder.open(ciphertext)
                } else {
                    ciphertext = try pair.responder.seal(payload)
                    received = try pair.initiator.open(ciphertext)
                }
                transports = pair
            } else if fromInitiator {
                ciphertext = try initiator.writeMessage(payload: payload)
                received = try responder.readMessage(ciphertext)
            } else {
                ciphertext = try responder.writeMessage(payload: payload)
                received = try initiator.readMessage(ciphertext)
            }
            guard ciphertext == expected else { throw Mismatch(description: "message \(index): ciphertext differs") }
            guard received == payload else { throw Mismatch(description: "message \(index): payload differs") }

            if transports == nil, initiator.isComplete, responder.isComplete {
                if let expectedHash = try bytes("handshake_hash"), initiator.handshakeHash != expectedHash
                    || responder.handshakeHash != expectedHash {
                    throw Mismatch(description: "handshake hash differs")
                }
                transports = (try initiator.split(rekeyInterval: nil), try responder.split(rekeyInterval: nil))
            }
        }
        guard transports != nil else { throw Mismatch(description: "the handshake did not complete") }
    }
}
