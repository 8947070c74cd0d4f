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

    private func start(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer) throws {
        try requireLength(nonce.count, AEADSize.nonce, "nonce")
        try check(gcry_cipher_setiv(handle, nonce.baseAddress, nonce.count), "gcry_cipher_setiv")
        if associatedData.count > 0 {
            try check(gcry_cipher_authenticate(handle, associatedData.baseAddress, associatedData.count),
                      "gcry_cipher_authenticate")
        }
        try check(securechat_gcrypt_cipher_final(handle), "gcry_cipher_final")
    }

    public func seal(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
                     plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(output.count, plaintext.count + AEADSize.tag, "sealed output")
        try start(nonce: nonce, associatedData: associatedData)
        let out = output.baseAddress!
        if plaintext.count > 0 {
            try check(gcry_cipher_encrypt(handle, out, plaintext.count, plaintext.baseAddress, plaintext.count),
                      "gcry_cipher_encrypt")
        }
        try check(gcry_cipher_gettag(handle, out + plaintext.count, AEADSize.tag), "gcry_cipher_gettag")
    }

    public func open(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
                     ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        guard ciphertext.count >= AEADSize.tag else { throw CryptoError.authenticationFailed }
        let bodyCount = ciphertext.count - AEADSize.tag
        try requireLength(output.count, bodyCount, "opened output")
        // The tag is copied out first: the output may overlap the ciphertext (in place).
        var tag: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &tag) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: ciphertext[bodyCount...])) }
        do {
            try start(nonce: nonce, associatedData: associatedData)
            if bodyCount > 0 {
                try check(gcry_cipher_decrypt(handle, output.baseAddress, bodyCount, ciphertext.baseAddress, bodyCount),
                          "gcry_cipher_decrypt")
            }
            // gcry_cipher_checktag compares in constant time.
            let verdict = withUnsafeBytes(of: &tag) { gcry_cipher_checktag(handle, $0.baseAddress, AEADSize.tag) }
            guard verdict == 0 else { throw CryptoError.authenticationFailed }
        } catch {
            secureWipe(output)
            throw error
        }
    }
}
