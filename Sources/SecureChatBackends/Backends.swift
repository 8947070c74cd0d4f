import SecureChatCrypto
import SecureChatGcrypt
import SecureChatOpenSSL

/// The crypto backends securechat ships, by the name used in config files and flags.
public enum BackendName: String, CaseIterable, Sendable, CustomStringConvertible {
    case openssl
    case gcrypt

    public var description: String { rawValue }

    /// The implementation. Passing it to a function generic over `CryptoBackend` opens the
    /// existential once, so everything below runs code specialised for the backend: the one
    /// place where the run-time choice becomes a static type.
    public var implementation: any CryptoBackend.Type {
        switch self {
        case .openssl: return OpenSSLBackend.self
        case .gcrypt: return GcryptBackend.self
        }
    }
}
