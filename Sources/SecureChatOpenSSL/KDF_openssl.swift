import COpenSSL
import SecureChatCrypto

extension OpenSSLBackend {
    public static func scrypt(password: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer,
                              parameters: ScryptParameters, into output: UnsafeMutableRawBufferPointer) throws {
        try parameters.validate()
        var empty: UInt8 = 0
        try withUnsafeMutablePointer(to: &empty) { (emptyPointer) in
            let passwordPointer = UnsafeRawPointer(password.baseAddress ?? UnsafeRawPointer(emptyPointer))
            let result = EVP_PBE_scrypt(passwordPointer.assumingMemoryBound(to: CChar.self), password.count,
                                        salt.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(emptyPointer),
                                        salt.count, parameters.n, UInt64(parameters.r), UInt64(parameters.p),
                                        // OpenSSL's default cap is 32 MiB; allow what the parameters need.
                                        parameters.memoryBytes + 1 << 20,
                                        output.baseAddress!.assumingMemoryBound(to: UInt8.self), output.count)
            guard result == 1 else {
                ERR_clear_error()
                throw CryptoError.backendFailure(operation: "EVP_PBE_scrypt")
            }
        }
    }

    public static func randomBytes(into output: UnsafeMutableRawBufferPointer) throws {
        guard output.count > 0 else { return }
        try check(RAND_bytes(output.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(output.count)), "RAND_bytes")
    }
}
