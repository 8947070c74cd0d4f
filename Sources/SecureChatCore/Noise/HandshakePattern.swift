import SecureChatCrypto

/// A Noise handshake pattern (§7): pre-messages and message token lists, read from the
/// specification's own notation so that one engine runs every pattern in the table.
public struct HandshakePattern: Sendable {
    public enum Token: String, Sendable {
        case e, s, ee, es, se, ss
    }

    public let name: String
    /// Keys known before the handshake: `-> s` (the initiator's) and `<- s` (the responder's).
    let initiatorPreMessage: [Token]
    let responderPreMessage: [Token]
    /// Messages in order; even indices go initiator → responder.
    let messages: [[Token]]

    /// One-way patterns (N, K, X) carry transport messages from the initiator only.
    public var isOneWay: Bool { messages.count == 1 }

    public static func named(_ name: String) -> HandshakePattern? { table[name] }

    public static var supportedNames: [String] { table.keys.sorted() }

    /// Parses "pre-messages | messages", each a ';'-separated list of "-> tokens" or "<- tokens".
    private init(name: String, _ definition: String) {
        let parts = definition.split(separator: "|", omittingEmptySubsequences: false)
        func lines(_ text: Substring) -> [(fromInitiator: Bool, tokens: [Token])] {
            text.split(separator: ";").map { line in
                let trimmed = line.trimmingSpaces
                let fromInitiator = trimmed.hasPrefix("->")
                let tokens = trimmed.dropFirst(2).split(separator: ",").map { Token(rawValue: String($0.trimmingSpaces))! }
                return (fromInitiator, tokens)
            }
        }
        let preMessages = lines(parts[0])
        self.name = name
        initiatorPreMessage = preMessages.filter(\.fromInitiator).flatMap(\.tokens)
        responderPreMessage = preMessages.filter { !$0.fromInitiator }.flatMap(\.tokens)
        messages = lines(parts[1]).map(\.tokens)
    }

    // Noise §7.4 (one-way), §7.5 (interactive) and §7.6 (deferred), revision 34.
    private static let table: [String: HandshakePattern] = Dictionary(uniqueKeysWithValues: [
        ("N", "<- s | -> e, es"),
        ("K", "-> s; <- s | -> e, es, ss"),
        ("X", "<- s | -> e, es, s, ss"),
        ("NN", " | -> e; <- e, ee"),
        ("NK", "<- s | -> e, es; <- e, ee"),
        ("NX", " | -> e; <- e, ee, s, es"),
        ("KN", "-> s | -> e; <- e, ee, se"),
        ("KK", "-> s; <- s | -> e, es, ss; <- e, ee, se"),
        ("KX", "-> s | -> e; <- e, ee, se, s, es"),
        ("XN", " | -> e; <- e, ee; -> s, se"),
        ("XK", "<- s | -> e, es; <- e, ee; -> s, se"),
        ("XX", " | -> e; <- e, ee, s, es; -> s, se"),
        ("IN", " | -> e, s; <- e, ee, se"),
        ("IK", "<- s | -> e, es, s, ss; <- e, ee, se"),
        ("IX", " | -> e, s; <- e, ee, se, s, es"),
        ("NK1", "<- s | -> e; <- e, ee, es"),
        ("NX1", " | -> e; <- e, ee, s; -> es"),
        ("X1N", " | -> e; <- e, ee; -> s; <- se"),
        ("X1K", "<- s | -> e, es; <- e, ee; -> s; <- se"),
        ("XK1", "<- s | -> e; <- e, ee, es; -> s, se"),
        ("X1K1", "<- s | -> e; <- e, ee, es; -> s; <- se"),
        ("X1X", " | -> e; <- e, ee, s, es; -> s; <- se"),
        ("XX1", " | -> e; <- e, ee, s; -> es, s, se"),
        ("X1X1", " | -> e; <- e, ee, s; -> es, s; <- se"),
        ("K1N", "-> s | -> e; <- e, ee; -> se"),
        ("K1K", "-> s; <- s | -> e, es; <- e, ee; -> se"),
        ("KK1", "-> s; <- s | -> e; <- e, ee, se, es"),
        ("K1K1", "-> s; <- s | -> e; <- e, ee, es; -> se"),
        ("K1X", "-> s | -> e; <- e, ee, s, es; -> se"),
        ("KX1", "-> s | -> e; <- e, ee, se, s; -> es"),
        ("K1X1", "-> s | -> e; <- e, ee, s; -> se, es"),
        ("I1N", " | -> e, s; <- e, ee; -> se"),
        ("I1K", "<- s | -> e, es, s; <- e, ee; -> se"),
        ("IK1", "<- s | -> e, s; <- e, ee, se, es"),
        ("I1K1", "<- s | -> e, s; <- e, ee, es; -> se"),
        ("I1X", " | -> e, s; <- e, ee, s, es; -> se"),
        ("IX1", " | -> e, s; <- e, ee, se, s; -> es"),
        ("I1X1", " | -> e, s; <- e, ee, s; -> se, es"),
    ].map { ($0.0, HandshakePattern(name: $0.0, $0.1)) })
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        let text = self[...]
        guard let first = text.firstIndex(where: { $0 != " " }), let last = text.lastIndex(where: { $0 != " " }) else {
            return Substring()
        }
        return Substring(text[first...last])
    }
}

/// A full Noise protocol name this engine runs: `Noise_<pattern>_25519_<ChaChaPoly|AESGCM>_SHA256`.
public struct NoiseProtocol: Sendable, Equatable {
    public let pattern: HandshakePattern
    public let cipher: CipherKind

    /// Kept as parsed: every handshake hashes it, and building it again costs three allocations.
    public let name: String

    public static func == (lhs: NoiseProtocol, rhs: NoiseProtocol) -> Bool { lhs.name == rhs.name }

    /// Parses a protocol name; the error says what this engine does not support.
    public init(name: String) throws {
        let parts = name.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "Noise" else { throw NoiseError.unsupportedProtocol("not a Noise protocol name") }
        guard parts[2] == "25519" else { throw NoiseError.unsupportedProtocol("DH \(parts[2]) (only 25519)") }
        guard parts[4] == "SHA256" else { throw NoiseError.unsupportedProtocol("hash \(parts[4]) (only SHA256)") }
        guard let cipher = CipherKind(rawValue: parts[3]) else { throw NoiseError.unsupportedProtocol("cipher \(parts[3])") }
        // (A byte search: String.contains(String) would link the regex engine into the binary.)
        let pattern = Array(parts[1].utf8), psk = Array("psk".utf8)
        if pattern.indices.contains(where: { pattern[$0...].starts(with: psk) }) {
            throw NoiseError.unsupportedProtocol("pre-shared-key patterns")
        }
        guard let pattern = HandshakePattern.named(parts[1]) else { throw NoiseError.unsupportedProtocol("pattern \(parts[1])") }
        self.pattern = pattern
        self.cipher = cipher
        self.name = name  // its five parts are exactly the ones checked above
    }

    /// securechat's own protocol, `Noise_IK_25519_<cipher>_SHA256`, parsed once: the server and the
    /// peer start every handshake with it, and parsing it costs allocations each time.
    public static func ik(_ cipher: CipherKind) -> NoiseProtocol {
        switch cipher {
        case .chaChaPoly: ikChaChaPoly
        case .aesGCM: ikAESGCM
        }
    }

    // Names this engine supports (the vector tests parse the same ones), so parsing cannot fail.
    private static let ikChaChaPoly = try! NoiseProtocol(name: "Noise_IK_25519_ChaChaPoly_SHA256")
    private static let ikAESGCM = try! NoiseProtocol(name: "Noise_IK_25519_AESGCM_SHA256")
}
