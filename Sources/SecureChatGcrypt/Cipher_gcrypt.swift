import CGcrypt
import SecureChatCrypto

/// AES-256-GCM or ChaCha20-Poly1305 on libgcrypt. One handle, keyed once; each message sets
/// the nonce (which resets the AEAD state), so seal and open allocate nothing.
public final class GcryptCipher: Cipher {
    public let kind: CipherKind
    private let handle: gcry_cipher_hd_t

    public init(kind: CipherKind, key: UnsafeRawBufferPointer) throws {
        GcryptLibrary.ensureInitialized()
        var handle: gcry_cipher_hd_t?
        let (algorithm, mode) = switch kind {
        case .aesGCM: (GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM)
        case .chaChaPoly: (GCRY_CIPHER_CHACHA20, GCRY_CIPHER_MODE_POLY1305)
        }
        try check(gcry_cipher_open(&handle, Int32(algorithm.rawValue), Int32(mode.rawValue), 0), "gcry_cipher_open")
        guard let handle else { throw CryptoError.backendFailure(operation: "gcry_cipher_open") }
        self.kind = kind
        self.handle = handle
        try setKey(key)
    }

    deinit {
        gcry_cipher_close(handle)  // wipes the key schedule
    }

    public func setKey(_ key: UnsafeRawBufferPointer) throws {
        try requireLength(key.count, AEADSize.key, "cipher key")
        try check(gcry_cipher_setkey(handle, key.baseAddress, key.count), "gcry_cipher_setkey")
    }

    public func seal(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
                     plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(nonce.count, AEADSize.nonce, "nonce")
        try requireLength(output.count, plaintext.count + AEADSize.tag, "sealed output")
        let outcome = securechat_gcrypt_seal(handle, nonce.baseAddress, associatedData.baseAddress, associatedData.count,
                                             plaintext.baseAddress, plaintext.count,
                                             output.baseAddress!.assumingMemoryBound(to: UInt8.self))
        guard outcome == SECURECHAT_GCRYPT_DONE else { throw CryptoError.backendFailure(operation: "gcry_cipher (seal)") }
    }

    public func open(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
                     ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(nonce.count, AEADSize.nonce, "nonce")
        guard ciphertext.count >= AEADSize.tag else { throw CryptoError.authenticationFailed }
        let bodyCount = ciphertext.count - AEADSize.tag
        try requireLength(output.count, bodyCount, "opened output")
        let outcome = withTag(of: ciphertext, openingInto: output) { (tag) in
            securechat_gcrypt_open(handle, nonce.baseAddress, associatedData.baseAddress, associatedData.count,
                                   ciphertext.baseAddress, bodyCount, output.baseAddress, tag)
        }
        guard outcome == SECURECHAT_GCRYPT_DONE else {
            secureWipe(output)
            if outcome == SECURECHAT_GCRYPT_TAG_MISMATCH { throw CryptoError.authenticationFailed }
            throw CryptoError.backendFailure(operation: "gcry_cipher (open)")
        }
    }
}
