import CGcrypt
import SecureChatCrypto

extension GcryptBackend {
    /// libgcrypt's scrypt fixes r: GCRY_KDF_SCRYPT means r = 8, and its test-only id 41 means r = 1.
    private static func scryptAlgorithm(r: UInt32) throws -> Int32 {
        switch r {
        case 8: return Int32(GCRY_KDF_SCRYPT.rawValue)
        case 1: return 41
        default: throw CryptoError.unsupportedParameters("libgcrypt's scrypt supports r = 8 (and 1) only, not r = \(r)")
        }
    }

    public static func scrypt(password: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer,
                              parameters: ScryptParameters, into output: UnsafeMutableRawBufferPointer) throws {
        GcryptLibrary.ensureInitialized()
        try parameters.validate()
        let algorithm = try scryptAlgorithm(r: parameters.r)
        guard parameters.n <= UInt64(Int32.max) else { throw CryptoError.unsupportedParameters("scrypt N too large for libgcrypt") }
        var empty: UInt8 = 0
        let error = withUnsafeMutablePointer(to: &empty) { emptyPointer in
            gcry_kdf_derive(password.baseAddress ?? UnsafeRawPointer(emptyPointer), password.count,
                            algorithm, Int32(parameters.n),
                            salt.baseAddress ?? UnsafeRawPointer(emptyPointer), salt.count,
                            UInt(parameters.p), output.count, output.baseAddress)
        }
        try check(error, "gcry_kdf_derive")
    }

    public static func randomBytes(into output: UnsafeMutableRawBufferPointer) throws {
        GcryptLibrary.ensureInitialized()
        guard output.count > 0 else { return }
        gcry_randomize(output.baseAddress, output.count, GCRY_STRONG_RANDOM)
    }
}
