import COpenSSL
import SecureChatCrypto

/// AES-256-GCM or ChaCha20-Poly1305 on OpenSSL EVP. One context, keyed once: each message
/// only sets the nonce and the direction (both AEADs use the same key schedule to seal and to
/// open), so seal and open allocate nothing and a cipher costs one context.
public final class OpenSSLCipher: Cipher {
    public let kind: CipherKind
    private let context: OpaquePointer

    public init(kind: CipherKind, key: UnsafeRawBufferPointer) throws {
        guard let context = EVP_CIPHER_CTX_new() else {
            throw CryptoError.backendFailure(operation: "EVP_CIPHER_CTX_new")
        }
        self.kind = kind
        self.context = context
        try check(EVP_CipherInit_ex2(context, OpenSSLAlgorithms.cipher(kind), nil, nil, 1, nil), "EVP_CipherInit_ex2")
        try setKey(key)
    }

    deinit {
        EVP_CIPHER_CTX_free(context)  // cleanses the key schedule
    }

    public func setKey(_ key: UnsafeRawBufferPointer) throws {
        try requireLength(key.count, AEADSize.key, "cipher key")
        // -1: the direction stays as it is; seal and open set it with the nonce.
        try check(EVP_CipherInit_ex2(context, nil, key.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, -1, nil),
                  "EVP_CipherInit_ex2")
    }

    public func seal(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
                     plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(nonce.count, AEADSize.nonce, "nonce")
        try requireLength(output.count, plaintext.count + AEADSize.tag, "sealed output")
        try check(EVP_EncryptInit_ex2(context, nil, nil, bytes(nonce), nil), "EVP_EncryptInit_ex2")
        var written: Int32 = 0
        if associatedData.count > 0 {
            try check(EVP_EncryptUpdate(context, nil, &written, bytes(associatedData), Int32(associatedData.count)),
                      "EVP_EncryptUpdate")
        }
        let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if plaintext.count > 0 {
            try check(EVP_EncryptUpdate(context, out, &written, bytes(plaintext), Int32(plaintext.count)),
                      "EVP_EncryptUpdate")
        }
        try check(EVP_EncryptFinal_ex(context, out + plaintext.count, &written), "EVP_EncryptFinal_ex")
        try check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(AEADSize.tag), out + plaintext.count),
                  "EVP_CTRL_AEAD_GET_TAG")
    }

    public func open(nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
                     ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(nonce.count, AEADSize.nonce, "nonce")
        guard ciphertext.count >= AEADSize.tag else { throw CryptoError.authenticationFailed }
        let bodyCount = ciphertext.count - AEADSize.tag
        try requireLength(output.count, bodyCount, "opened output")
        do {
            try withTag(of: ciphertext, openingInto: output) { (tag) in
                try check(EVP_DecryptInit_ex2(context, nil, nil, bytes(nonce), nil), "EVP_DecryptInit_ex2")
                var written: Int32 = 0
                if associatedData.count > 0 {
                    try check(EVP_DecryptUpdate(context, nil, &written, bytes(associatedData), Int32(associatedData.count)),
                              "EVP_DecryptUpdate")
                }
                let out = output.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) }
                if bodyCount > 0 {
                    try check(EVP_DecryptUpdate(context, out, &written, bytes(ciphertext), Int32(bodyCount)),
                              "EVP_DecryptUpdate")
                }
                // SET_TAG copies the tag; it does not write through the pointer.
                try check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(AEADSize.tag), UnsafeMutableRawPointer(mutating: tag)),
                          "EVP_CTRL_AEAD_SET_TAG")
                // EVP_DecryptFinal_ex compares the tag in constant time; 0 means it did not verify.
                // It writes nothing for AEADs but wants a pointer even when the output is empty.
                var scratch: UInt8 = 0
                let verified = withUnsafeMutablePointer(to: &scratch) { EVP_DecryptFinal_ex(context, out ?? $0, &written) == 1 }
                guard verified else {
                    ERR_clear_error()
                    throw CryptoError.authenticationFailed
                }
            }
        } catch {
            secureWipe(output)
            throw error
        }
    }
}

@inline(__always)
private func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
    buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
}
