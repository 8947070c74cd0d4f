import COpenSSL
import SecureChatCrypto

extension OpenSSLBackend {
    public static func sha256(_ message: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(output.count, DigestSize.sha256, "SHA-256 output")
        var length: UInt32 = 0
        try check(EVP_Digest(message.baseAddress ?? UnsafeRawPointer(bitPattern: 1), message.count,
                             output.baseAddress!.assumingMemoryBound(to: UInt8.self), &length,
                             OpenSSLAlgorithms.sha256, nil), "EVP_Digest")
    }

    public static func hmacSHA256(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer,
                                  into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(output.count, DigestSize.sha256, "HMAC-SHA256 output")
        var length: UInt32 = 0
        var empty: UInt8 = 0
        try withUnsafeMutablePointer(to: &empty) { (emptyPointer) in
            // libcrypto wants non-null pointers even for empty key or message.
            let result = HMAC(OpenSSLAlgorithms.sha256,
                              key.baseAddress ?? UnsafeRawPointer(emptyPointer), Int32(key.count),
                              message.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(emptyPointer),
                              message.count,
                              output.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
            guard result != nil, length == UInt32(DigestSize.sha256) else {
                ERR_clear_error()
                throw CryptoError.backendFailure(operation: "HMAC")
            }
        }
    }
}
