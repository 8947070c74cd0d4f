import CGcrypt
import SecureChatCrypto

extension GcryptBackend {
    public static func sha256(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                              into output: UnsafeMutableRawBufferPointer) throws {
        GcryptLibrary.ensureInitialized()
        try requireLength(output.count, DigestSize.sha256, "SHA-256 output")
        // Without flags, SHA-256 over buffers takes libgcrypt's path with no context allocated.
        var buffers = (
            gcry_buffer_t(size: 0, off: 0, len: first.count, data: UnsafeMutableRawPointer(mutating: first.baseAddress)),
            gcry_buffer_t(size: 0, off: 0, len: second.count, data: UnsafeMutableRawPointer(mutating: second.baseAddress))
        )
        let error = withUnsafeBytes(of: &buffers) { raw in
            gcry_md_hash_buffers(Int32(GCRY_MD_SHA256.rawValue), 0, output.baseAddress,
                                 raw.baseAddress!.assumingMemoryBound(to: gcry_buffer_t.self), 2)
        }
        try check(error, "gcry_md_hash_buffers")
    }
}
