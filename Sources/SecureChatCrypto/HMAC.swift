/// HMAC-SHA256 (RFC 2104) over the backend's two-part SHA-256, the same for every backend. The
/// libraries' own HMAC calls allocate a context each time (13 allocations in libcrypto), and a
/// Noise handshake runs 30 of them; this one keeps its pads on the stack and wipes them.
extension CryptoBackend {
    /// HMAC-SHA256 of `message` under `key` (any length, including zero) into `output` (32 bytes).
    public static func hmacSHA256(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer,
                                  into output: UnsafeMutableRawBufferPointer) throws {
        try requireLength(output.count, DigestSize.sha256, "HMAC-SHA256 output")
        let blockSize = 64
        try withUnsafeTemporaryAllocation(byteCount: blockSize + DigestSize.sha256, alignment: 16) { (scratch) in
            defer { secureWipe(scratch) }
            let pad = UnsafeMutableRawBufferPointer(rebasing: scratch[..<blockSize])
            let inner = UnsafeMutableRawBufferPointer(rebasing: scratch[blockSize...])
            pad.initializeMemory(as: UInt8.self, repeating: 0)
            if key.count > blockSize {
                try sha256(key, into: UnsafeMutableRawBufferPointer(rebasing: pad[..<DigestSize.sha256]))
            } else if key.count > 0 {
                UnsafeMutableRawBufferPointer(rebasing: pad[..<key.count]).copyMemory(from: key)
            }
            for index in pad.indices { pad[index] ^= 0x36 }
            try sha256(UnsafeRawBufferPointer(pad), message, into: inner)
            for index in pad.indices { pad[index] ^= 0x36 ^ 0x5C }
            try sha256(UnsafeRawBufferPointer(pad), UnsafeRawBufferPointer(inner), into: output)
        }
    }
}
