import COpenSSL
import SecureChatCrypto

/// The OpenSSL (libcrypto 3) backend.
public enum OpenSSLBackend: CryptoBackend {
    public typealias AEAD = OpenSSLCipher

    public static let name = "openssl"

    public static var libraryDescription: String {
        String(cString: OpenSSL_version(OPENSSL_VERSION))
    }
}

/// Algorithms fetched once: implicit fetches by name on every call cost allocations and time.
enum OpenSSLAlgorithms {
    nonisolated(unsafe) static let aes256GCM: OpaquePointer = fetchCipher("AES-256-GCM")
    nonisolated(unsafe) static let chaCha20Poly1305: OpaquePointer = fetchCipher("ChaCha20-Poly1305")
    nonisolated(unsafe) static let sha256: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("libcrypto has no SHA256") }
        return md
    }()

    static func cipher(_ kind: CipherKind) -> OpaquePointer {
        switch kind {
        case .aesGCM: return aes256GCM
        case .chaChaPoly: return chaCha20Poly1305
        }
    }

    private static func fetchCipher(_ name: String) -> OpaquePointer {
        // A libcrypto without these algorithms cannot run securechat at all.
        guard let cipher = EVP_CIPHER_fetch(nil, name, nil) else { fatalError("libcrypto has no \(name)") }
        return cipher
    }
}

@inline(__always)
func check(_ result: Int32, _ operation: StaticString) throws {
    guard result == 1 else {
        ERR_clear_error()
        throw CryptoError.backendFailure(operation: operation)
    }
}
