import CGcrypt
import SecureChatCrypto

/// The libgcrypt backend (1.9 or later, for gcry_ecc_mul_point).
public enum GcryptBackend: CryptoBackend {
    public typealias AEAD = GcryptCipher

    public static let name = "gcrypt"

    public static var libraryDescription: String {
        GcryptLibrary.ensureInitialized()
        return "libgcrypt " + String(cString: gcry_check_version(nil))
    }
}

enum GcryptLibrary {
    static let minimumVersion = "1.9.0"

    /// Swift runs a global's initialiser once, thread-safely; the C side also guards with pthread_once.
    private static let initialized: Bool = securechat_gcrypt_initialize(minimumVersion) == 0

    static func ensureInitialized() {
        // Without the library every operation would be wrong; there is no way to continue.
        guard initialized else { fatalError("libgcrypt \(minimumVersion) or later is required") }
    }
}

@inline(__always)
func check(_ error: gcry_error_t, _ operation: StaticString) throws {
    guard error == 0 else { throw CryptoError.backendFailure(operation: operation) }
}
