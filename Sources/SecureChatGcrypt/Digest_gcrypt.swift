import CGcrypt
import SecureChatCrypto

extension GcryptBackend {
    public static func sha256(_ message: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        GcryptLibrary.ensureInitialized()
        try requireLength(output.count, DigestSize.sha256, "SHA-256 output")
        gcry_md_hash_buffer(Int32(GCRY_MD_SHA256.rawValue), output.baseAddress, message.baseAddress, message.count)
    }

    public static func hmacSHA256(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer,
                                  into output: UnsafeMutableRawBufferPointer) throws {
        GcryptLibrary.ensureInitialized()
        try requireLength(output.count, DigestSize.sha256, "HMAC-SHA256 output")
        // With GCRY_MD_FLAG_HMAC the first buffer is the key, the rest the message.
        var buffers = (
            gcry_buffer_t(size: 0, off: 0, len: key.count, data: UnsafeMutableRawPointer(mutating: key.baseAddress)),
            gcry_buffer_t(size: 0, off: 0, len: message.count, data: UnsafeMutableRawPointer(mutating: message.baseAddress))
        )
        let error = withUnsafeBytes(of: &buffers) { raw in
            gcry_md_hash_buffers(Int32(GCRY_MD_SHA256.rawValue), UInt32(GCRY_MD_FLAG_HMAC.rawValue), output.baseAddress,
                                 raw.baseAddress!.assumingMemoryBound(to: gcry_buffer_t.self), 2)
        }
        try check(error, "gcry_md_hash_buffers")
    }
}
