import SecureChatCrypto
import SecureChatGcrypt
import SecureChatOpenSSL

/// The crypto backends securechat ships, by the name used in config files and flags.
public enum BackendName: String, CaseIterable, Sendable, CustomStringConvertible {
    case openssl
    case gcrypt

    public var description: String { rawValue }

    /// The implementation. Passing it to a function generic over `CryptoBackend` opens the
    /// existential once and runs that function's generic code unspecialised: right where speed
    /// does not matter (self-test, peer). Hot paths switch on the name and pass the concrete
    /// type instead, so that the compiler specialises them (`serve`, `bench`).
    public var implementation: any CryptoBackend.Type {
        switch self {
        case .openssl: return OpenSSLBackend.self
        case .gcrypt: return GcryptBackend.self
        }
    }
}
