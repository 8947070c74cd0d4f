/// HKDF-SHA256 (RFC 5869) over the backend's HMAC. Noise's HKDF(ck, ikm, n) is this with
/// salt = ck, info = "" and n·32 output bytes, so one implementation serves both.
extension CryptoBackend {
    public static var hkdfMaximumLength: Int { 255 * DigestSize.sha256 }

    /// Derives `output.count` bytes (at most 255·32). An empty salt means 32 zero bytes (RFC 5869 §2.2).
    public static func hkdf(salt: UnsafeRawBufferPointer, inputKeyMaterial: UnsafeRawBufferPointer,
                            info: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        guard output.count <= hkdfMaximumLength else {
            throw CryptoError.unsupportedParameters("HKDF output is limited to \(hkdfMaximumLength) bytes")
        }
        let hashLength = DigestSize.sha256
        // One scratch area: PRK | T(i-1) | info | counter.
        try withUnsafeTemporaryAllocation(byteCount: 2 * hashLength + info.count + 1, alignment: 16) {
            (scratch) in
            defer { secureWipe(scratch) }
            let prk = UnsafeMutableRawBufferPointer(rebasing: scratch[..<hashLength])
            try extract(salt: salt, inputKeyMaterial: inputKeyMaterial, into: prk)

            let block = UnsafeMutableRawBufferPointer(rebasing: scratch[hashLength...])
            if info.count > 0 {
                UnsafeMutableRawBufferPointer(rebasing: block[hashLength..<(hashLength + info.count)]).copyMemory(from: info)
            }
            var written = 0
            var counter: UInt8 = 1
            while written < output.count {
                block[hashLength + info.count] = counter
                // T(1) hashes info | 1 only; later blocks hash T(i-1) | info | i.
                let input = counter == 1 ? UnsafeRawBufferPointer(rebasing: block[hashLength...])
                                         : UnsafeRawBufferPointer(block)
                let previous = UnsafeMutableRawBufferPointer(rebasing: block[..<hashLength])
                try withUnsafeTemporaryAllocation(byteCount: hashLength, alignment: 16) { (t) in
                    defer { secureWipe(t) }
                    try hmacSHA256(key: UnsafeRawBufferPointer(prk), message: input, into: t)
                    previous.copyMemory(from: UnsafeRawBufferPointer(t))
                }
                let take = Swift.min(hashLength, output.count - written)
                UnsafeMutableRawBufferPointer(rebasing: output[written..<(written + take)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: previous[..<take]))
                written += take
                counter &+= 1
            }
        }
    }

    private static func extract(salt: UnsafeRawBufferPointer, inputKeyMaterial: UnsafeRawBufferPointer,
                                into prk: UnsafeMutableRawBufferPointer) throws {
        if salt.count > 0 {
            try hmacSHA256(key: salt, message: inputKeyMaterial, into: prk)
            return
        }
        let zeroSalt = [UInt8](repeating: 0, count: DigestSize.sha256)
        try zeroSalt.withUnsafeBytes { (zeros) in
            try hmacSHA256(key: zeros, message: inputKeyMaterial, into: prk)
        }
    }
}
