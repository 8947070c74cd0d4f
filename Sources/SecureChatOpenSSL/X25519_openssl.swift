import COpenSSL
import SecureChatCrypto

extension OpenSSLBackend {
    public static func x25519(scalar: UnsafeRawBufferPointer, point: UnsafeRawBufferPointer,
                              into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(scalar.count, 32, "X25519 scalar")
        try requireLength(point.count, 32, "X25519 point")
        try requireLength(output.count, 32, "X25519 output")
        let scalarBytes = scalar.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let pointBytes = point.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard let privateKey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, scalarBytes, 32) else {
            throw CryptoError.backendFailure(operation: "EVP_PKEY_new_raw_private_key")
        }
        defer { EVP_PKEY_free(privateKey) }  // frees and cleanses the private key
        guard let peerKey = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, pointBytes, 32) else {
            throw CryptoError.backendFailure(operation: "EVP_PKEY_new_raw_public_key")
        }
        defer { EVP_PKEY_free(peerKey) }
        guard let context = EVP_PKEY_CTX_new_from_pkey(nil, privateKey, nil) else {
            throw CryptoError.backendFailure(operation: "EVP_PKEY_CTX_new_from_pkey")
        }
        defer { EVP_PKEY_CTX_free(context) }
        try check(EVP_PKEY_derive_init(context), "EVP_PKEY_derive_init")
        try check(EVP_PKEY_derive_set_peer(context, peerKey), "EVP_PKEY_derive_set_peer")
        var length = 32
        // OpenSSL itself refuses an all-zero result (RFC 7748 §6.1); report it as such.
        guard EVP_PKEY_derive(context, output.baseAddress!.assumingMemoryBound(to: UInt8.self), &length) == 1 else {
            ERR_clear_error()
            secureWipe(output)
            throw CryptoError.zeroSharedSecret
        }
        try requireLength(length, 32, "X25519 output")
    }
}
