import COpenSSL
import SecureChatCrypto

extension OpenSSLBackend {
    public static func sha256(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                              into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(output.count, DigestSize.sha256, "SHA-256 output")
        guard securechat_sha256(first.baseAddress, first.count, second.baseAddress, second.count,
                                output.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1 else {
            throw CryptoError.backendFailure(operation: "SHA-256")
        }
    }
}
