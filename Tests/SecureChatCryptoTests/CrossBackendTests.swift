import SecureChatBackends
import SecureChatCrypto
import SecureChatGcrypt
import SecureChatOpenSSL
import Testing

/// What one backend seals the other opens, for random keys, nonces, associated data and sizes up
/// to the protocol's largest plaintext; and every single-bit change is refused.
@Suite("Cross-backend")
struct CrossBackendTests {
    static let maximumPlaintext = 65519

    @Test("random messages sealed by one backend open on the other", arguments: CipherKind.allCases)
    func sealedByOneOpensOnOther(kind: CipherKind) throws {
        var generator = SystemRandomNumberGenerator()
        var sizes = [0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 1024, 16384, Self.maximumPlaintext]
        // Thousands of cases, most of them small as chat lines are, some up to the maximum.
        for index in 0..<2000 {
            sizes.append(index % 10 == 0 ? Int.random(in: 0...Self.maximumPlaintext, using: &generator)
                                         : Int.random(in: 0...512, using: &generator))
        }
        for size in sizes {
            let key = SecretBytes(try OpenSSLBackend.randomBytes(count: AEADSize.key))
            let openssl = try OpenSSLBackend.makeCipher(kind, key: key), gcrypt = try GcryptBackend.makeCipher(kind, key: key)
            let nonce = try OpenSSLBackend.randomBytes(count: AEADSize.nonce)
            let ad = try OpenSSLBackend.randomBytes(count: Int.random(in: 0...64, using: &generator))
            let message = try GcryptBackend.randomBytes(count: size)
            let byOpenSSL = try openssl.sealed(nonce: nonce, associatedData: ad, plaintext: message)
            let byGcrypt = try gcrypt.sealed(nonce: nonce, associatedData: ad, plaintext: message)
            #expect(byOpenSSL == byGcrypt, "\(kind) \(size) bytes: the backends sealed differently")
            #expect(try gcrypt.opened(nonce: nonce, associatedData: ad, ciphertext: byOpenSSL) == message)
            #expect(try openssl.opened(nonce: nonce, associatedData: ad, ciphertext: byGcrypt) == message)
        }
    }

    /// Every bit of tag, ciphertext and associated data for messages up to 96 bytes (a chat line),
    /// on both backends; for the largest message every tag bit and a sample of 2,000 other bits,
    /// since flipping all 524,152 would take minutes and exercise the same code.
    @Test("every single-bit flip is refused", arguments: CipherKind.allCases)
    func bitFlipsAreRefused(kind: CipherKind) throws {
        let key = SecretBytes(try OpenSSLBackend.randomBytes(count: AEADSize.key))
        let openssl = try OpenSSLBackend.makeCipher(kind, key: key), gcrypt = try GcryptBackend.makeCipher(kind, key: key)
        var refused = 0
        for size in [0, 1, 17, 96, Self.maximumPlaintext] {
            let nonce = try OpenSSLBackend.randomBytes(count: AEADSize.nonce)
            let ad = try OpenSSLBackend.randomBytes(count: 24)
            let sealed = try openssl.sealed(nonce: nonce, associatedData: ad, plaintext: try OpenSSLBackend.randomBytes(count: size))
            let sealedBits = sealed.count * 8, adBits = ad.count * 8
            let positions: [Int] = size <= 96
                ? Array(0..<(sealedBits + adBits))
                : Array((sealedBits - AEADSize.tag * 8)..<sealedBits) + (0..<2000).map { _ in Int.random(in: 0..<(sealedBits + adBits)) }
            for bit in positions {
                var flippedSealed = sealed, flippedAD = ad
                if bit < sealedBits { flippedSealed[bit / 8] ^= 1 << (bit % 8) } else { flippedAD[(bit - sealedBits) / 8] ^= 1 << ((bit - sealedBits) % 8) }
                for cipher in [openssl as any Cipher, gcrypt as any Cipher] {
                    #expect(throws: CryptoError.authenticationFailed) {
                        _ = try cipher.opened(nonce: nonce, associatedData: flippedAD, ciphertext: flippedSealed)
                    }
                    refused += 1
                }
            }
        }
        print("cross-backend: \(kind.rawValue): \(refused) single-bit changes refused")
    }

    @Test("a wrong nonce or a truncated message is refused and leaves no plaintext", arguments: BackendName.allCases, CipherKind.allCases)
    func wrongNonceAndTruncation(backend: BackendName, kind: CipherKind) throws {
        try checkRefusals(backend.implementation, kind)
    }

    /// The tag is read where it is unless the plaintext would overwrite it first: opening at the
    /// same address (as the chat path does) and into memory that starts in the tag both open,
    /// and a tampered tag is still refused either way.
    @Test("opening in place, or into memory over the tag", arguments: BackendName.allCases, CipherKind.allCases)
    func openingInPlace(backend: BackendName, kind: CipherKind) throws {
        try checkInPlace(backend.implementation, kind)
    }

    @Test("Noise nonces: counter encoding and rekey agree across backends", arguments: CipherKind.allCases)
    func noiseCounterAndRekey(kind: CipherKind) throws {
        let key = SecretBytes(try OpenSSLBackend.randomBytes(count: AEADSize.key))
        let openssl = try OpenSSLBackend.makeCipher(kind, key: key), gcrypt = try GcryptBackend.makeCipher(kind, key: key)
        // Counter 0x0102030405060708 as a raw nonce: ChaChaPoly little-endian, AESGCM big-endian.
        let counter: UInt64 = 0x0102_0304_0506_0708
        let raw: [UInt8] = kind == .chaChaPoly ? [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1] : [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        var byCounter = [UInt8](repeating: 0, count: 5 + AEADSize.tag)
        try [UInt8]("hello".utf8).withUnsafeBytes { message in
            try byCounter.withUnsafeMutableBytes {
                try openssl.seal(counter: counter, associatedData: UnsafeRawBufferPointer(start: nil, count: 0), plaintext: message, into: $0)
            }
        }
        #expect(try gcrypt.opened(nonce: raw, associatedData: [], ciphertext: byCounter) == Array("hello".utf8))
        try openssl.rekey()
        #expect(throws: CryptoError.authenticationFailed) {
            _ = try openssl.opened(nonce: raw, associatedData: [], ciphertext: byCounter)
        }
        try gcrypt.rekey()
        let after = try openssl.sealed(nonce: raw, associatedData: [], plaintext: [1, 2, 3])
        #expect(try gcrypt.opened(nonce: raw, associatedData: [], ciphertext: after) == [1, 2, 3])
    }
}

private func checkRefusals<Backend: CryptoBackend>(_: Backend.Type, _ kind: CipherKind) throws {
    let cipher = try Backend.makeCipher(kind, key: SecretBytes(try Backend.randomBytes(count: AEADSize.key)))
    let nonce = try Backend.randomBytes(count: AEADSize.nonce)
    let sealed = try cipher.sealed(nonce: nonce, associatedData: [], plaintext: Array("attack at dawn".utf8))
    var otherNonce = nonce
    otherNonce[11] ^= 1
    var output = [UInt8](repeating: 0xAA, count: sealed.count - AEADSize.tag)
    #expect(throws: CryptoError.authenticationFailed) {
        try otherNonce.withUnsafeBytes { n in
            try sealed.withUnsafeBytes { c in
                try output.withUnsafeMutableBytes { try cipher.open(nonce: n, associatedData: UnsafeRawBufferPointer(start: nil, count: 0), ciphertext: c, into: $0) }
            }
        }
    }
    #expect(output.allSatisfy { $0 == 0 }, "unverified plaintext was left in the output buffer")
    for length in [0, 5, AEADSize.tag - 1, sealed.count - 1] {
        #expect(throws: CryptoError.authenticationFailed) {
            _ = try cipher.opened(nonce: nonce, associatedData: [], ciphertext: Array(sealed.prefix(length)))
        }
    }
}

private func checkInPlace<Backend: CryptoBackend>(_: Backend.Type, _ kind: CipherKind) throws {
    let cipher = try Backend.makeCipher(kind, key: SecretBytes(try Backend.randomBytes(count: AEADSize.key)))
    let nonce = try Backend.randomBytes(count: AEADSize.nonce)
    let message = try Backend.randomBytes(count: 40)
    let sealed = try cipher.sealed(nonce: nonce, associatedData: [], plaintext: message)
    // The libraries decrypt at the same address or into separate memory, never into memory
    // shifted within the ciphertext; an output over the tag alone is the case to check.
    let bodyCount = message.count
    for shift in [0, bodyCount, bodyCount + 1, bodyCount + 8] {
        for tampered in [false, true] {
            var buffer = sealed + [UInt8](repeating: 0, count: shift)
            if tampered { buffer[sealed.count - 1] ^= 0x80 }
            let opened: Bool = try nonce.withUnsafeBytes { nonce in
                try buffer.withUnsafeMutableBytes { buffer in
                    let ciphertext = UnsafeRawBufferPointer(rebasing: buffer[..<sealed.count])
                    let output = UnsafeMutableRawBufferPointer(rebasing: buffer[shift..<(shift + message.count)])
                    do {
                        try cipher.open(nonce: nonce, associatedData: UnsafeRawBufferPointer(start: nil, count: 0),
                                        ciphertext: ciphertext, into: output)
                        return true
                    } catch CryptoError.authenticationFailed {
                        return false
                    }
                }
            }
            #expect(opened == !tampered, "shift \(shift), tampered \(tampered)")
            if opened { #expect(Array(buffer[shift..<(shift + message.count)]) == message, "shift \(shift)") }
        }
    }
}
