/// Every failure of the crypto layer. Cases carry no secret material, so they are safe to log.
public enum CryptoError: Error, Equatable, Sendable {
    /// The AEAD tag did not verify: tampered, replayed, reordered or wrong key.
    case authenticationFailed
    /// An X25519 result of all zeros: the peer sent a low-order point.
    case zeroSharedSecret
    /// A key, nonce or buffer had the wrong size; `what` names it.
    case invalidLength(what: StaticString, expected: Int, actual: Int)
    /// Parameters the backend cannot run (for example scrypt with an r libgcrypt lacks).
    case unsupportedParameters(String)
    /// The C library reported a failure; `operation` names the call.
    case backendFailure(operation: StaticString)

    public static func == (lhs: CryptoError, rhs: CryptoError) -> Bool {
        switch (lhs, rhs) {
        case (.authenticationFailed, .authenticationFailed), (.zeroSharedSecret, .zeroSharedSecret):
            return true
        case let (.invalidLength(a, e1, a1), .invalidLength(b, e2, a2)):
            return a.description == b.description && e1 == e2 && a1 == a2
        case let (.unsupportedParameters(a), .unsupportedParameters(b)):
            return a == b
        case let (.backendFailure(a), .backendFailure(b)):
            return a.description == b.description
        case (.authenticationFailed, _), (.zeroSharedSecret, _), (.invalidLength, _),
             (.unsupportedParameters, _), (.backendFailure, _):
            return false
        }
    }
}

extension CryptoError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .authenticationFailed: return "authentication failed (message tampered, replayed or wrong key)"
        case .zeroSharedSecret: return "X25519 produced an all-zero shared secret (low-order public key)"
        case let .invalidLength(what, expected, actual): return "\(what) must be \(expected) bytes, got \(actual)"
        case let .unsupportedParameters(why): return "unsupported parameters: \(why)"
        case let .backendFailure(operation): return "crypto library call failed: \(operation)"
        }
    }
}

/// Throws `invalidLength` unless `actual == expected`; shared by every backend's argument checks.
@inlinable
public func requireLength(_ actual: Int, _ expected: Int, _ what: StaticString) throws {
    guard actual == expected else { throw CryptoError.invalidLength(what: what, expected: expected, actual: actual) }
}
