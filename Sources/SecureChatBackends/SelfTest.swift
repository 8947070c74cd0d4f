import SecureChatCrypto

/// Known-answer tests of every primitive on every chosen backend, plus checks that the backends
/// agree with each other. Run by `securechat selftest`; the vectors are published ones (RFCs, NIST).
public enum SelfTest {
    public struct Result: Sendable {
        public let subject: String
        public let check: String
        /// nil when the check passed.
        public let failure: String?
    }

    public static func run(backends: [BackendName]) -> [Result] {
        var results = [Result]()
        for backend in backends {
            results += knownAnswerChecks(backend.implementation).map { $0.run(subject: backend.rawValue) }
        }
        for (index, first) in backends.enumerated() {
            for second in backends[(index + 1)...] {
                results += crossChecks(first.implementation, second.implementation)
                    .map { $0.run(subject: "\(first)↔\(second)") }
            }
        }
        return results
    }
}

struct SelfTestFailure: Error, CustomStringConvertible {
    let description: String
}

private struct Check {
    let name: String
    let body: () throws -> Void

    init(_ name: String, _ body: @escaping () throws -> Void) {
        self.name = name
        self.body = body
    }

    func run(subject: String) -> SelfTest.Result {
        do {
            try body()
            return .init(subject: subject, check: name, failure: nil)
        } catch {
            return .init(subject: subject, check: name, failure: "\(error)")
        }
    }
}

private func expect(_ actual: [UInt8], equals expectedHex: String) throws {
    guard actual.hexString == expectedHex else {
        throw SelfTestFailure(description: "got \(actual.hexString), expected \(expectedHex)")
    }
}

private func expect(_ condition: Bool, _ message: String) throws {
    guard condition else { throw SelfTestFailure(description: message) }
}

private func hex(_ string: String) -> [UInt8] {
    guard let bytes = [UInt8](hex: string) else { preconditionFailure("bad hex in a built-in vector") }
    return bytes
}

// MARK: - Known answers

private func knownAnswerChecks<Backend: CryptoBackend>(_: Backend.Type) -> [Check] {
    [
        Check("SHA-256 FIPS 180-2 \"abc\"") {
            try expect(try Backend.sha256(Array("abc".utf8)),
                       equals: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        },
        Check("HMAC-SHA256 RFC 4231 case 2") {
            var mac = [UInt8](repeating: 0, count: 32)
            try Array("Jefe".utf8).withUnsafeBytes { key in
                try Array("what do ya want for nothing?".utf8).withUnsafeBytes { message in
                    try mac.withUnsafeMutableBytes { try Backend.hmacSHA256(key: key, message: message, into: $0) }
                }
            }
            try expect(mac, equals: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        },
        Check("HKDF-SHA256 RFC 5869 case 1") {
            var okm = [UInt8](repeating: 0, count: 42)
            try hex("000102030405060708090a0b0c").withUnsafeBytes { salt in
                try [UInt8](repeating: 0x0b, count: 22).withUnsafeBytes { ikm in
                    try hex("f0f1f2f3f4f5f6f7f8f9").withUnsafeBytes { info in
                        try okm.withUnsafeMutableBytes {
                            try Backend.hkdf(salt: salt, inputKeyMaterial: ikm, info: info, into: $0)
                        }
                    }
                }
            }
            try expect(okm, equals: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
        },
        Check("X25519 RFC 7748 §6.1 key pair and shared secret") {
            let alice = try Backend.x25519KeyPair(privateKey: SecretBytes(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")))
            try expect(alice.publicKey.bytes, equals: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
            let bobPublic = try X25519PublicKey(bytes: hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
            let shared = try Backend.x25519SharedSecret(alice, bobPublic)
            try expect(shared.unsafeBytesCopy, equals: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        },
        Check("X25519 refuses a low-order point (all-zero result)") {
            let pair = try Backend.generateX25519KeyPair()
            let lowOrder = try X25519PublicKey(bytes: [UInt8](repeating: 0, count: 32))
            do {
                _ = try Backend.x25519SharedSecret(pair, lowOrder)
                throw SelfTestFailure(description: "an all-zero shared secret was accepted")
            } catch CryptoError.zeroSharedSecret {}
        },
        Check("ChaCha20-Poly1305 RFC 8439 §2.8.2") {
            try aeadKnownAnswer(Backend.self, .chaChaPoly,
                                key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
                                nonce: "070000004041424344454647", associatedData: "50515253c0c1c2c3c4c5c6c7",
                                plaintext: Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8).hexString,
                                sealed: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
                                    + "1ae10b594f09e26a7e902ecbd0600691")
        },
        Check("AES-256-GCM NIST CAVS gcmEncryptExtIV256 [PT 128, AAD 128] count 0") {
            try aeadKnownAnswer(Backend.self, .aesGCM,
                                key: "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
                                nonce: "ac93a1a6145299bde902f21a", associatedData: "1e0889016f67601c8ebea4943bc23ad6",
                                plaintext: "2d71bcfa914e4ac045b2aa60955fad24",
                                sealed: "8995ae2e6df3dbf96fac7b7137bae67f" + "eca5aa77d51d4a0a14d9c51e1da474ab")
        },
        Check("scrypt RFC 7914 §12 (N=1024, r=8, p=16)") {
            var derived = [UInt8](repeating: 0, count: 64)
            try Array("password".utf8).withUnsafeBytes { password in
                try Array("NaCl".utf8).withUnsafeBytes { salt in
                    try derived.withUnsafeMutableBytes {
                        try Backend.scrypt(password: password, salt: salt,
                                           parameters: ScryptParameters(n: 1024, r: 8, p: 16), into: $0)
                    }
                }
            }
            try expect(derived, equals: "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
        },
        Check("CSPRNG gives distinct, non-zero output") {
            let first = try Backend.randomBytes(count: 32), second = try Backend.randomBytes(count: 32)
            try expect(first != second && first.contains { $0 != 0 }, "two 32-byte draws were equal or zero")
        },
    ]
}

/// Seals the vector, compares, opens it back, and checks a flipped tag bit is refused.
private func aeadKnownAnswer<Backend: CryptoBackend>(_: Backend.Type, _ kind: CipherKind, key: String, nonce: String,
                                                     associatedData: String, plaintext: String, sealed: String) throws {
    let cipher = try Backend.makeCipher(kind, key: SecretBytes(hex(key)))
    let nonceBytes = hex(nonce), ad = hex(associatedData), message = hex(plaintext)
    var output = try cipher.sealed(nonce: nonceBytes, associatedData: ad, plaintext: message)
    try expect(output, equals: sealed)
    try expect(try cipher.opened(nonce: nonceBytes, associatedData: ad, ciphertext: output) == message, "open did not round-trip")
    output[output.count - 1] ^= 1
    do {
        _ = try cipher.opened(nonce: nonceBytes, associatedData: ad, ciphertext: output)
        throw SelfTestFailure(description: "a flipped tag bit was accepted")
    } catch CryptoError.authenticationFailed {}
}

// MARK: - Cross-backend agreement

private func crossChecks<First: CryptoBackend, Second: CryptoBackend>(_: First.Type, _: Second.Type) -> [Check] {
    var checks = CipherKind.allCases.map { kind in
        Check("\(kind.rawValue): sealed by one opens on the other, rekey agrees") {
            let key = SecretBytes(try First.randomBytes(count: AEADSize.key))
            let first = try First.makeCipher(kind, key: key), second = try Second.makeCipher(kind, key: key)
            for size in [0, 1, 15, 16, 17, 63, 64, 1000, 4096, 65519] {
                let message = try First.randomBytes(count: size), ad = try First.randomBytes(count: size % 40)
                let nonce = try First.randomBytes(count: AEADSize.nonce)
                let forward = try first.sealed(nonce: nonce, associatedData: ad, plaintext: message)
                try expect(try second.opened(nonce: nonce, associatedData: ad, ciphertext: forward) == message,
                           "\(size) bytes sealed by \(First.name) did not open on \(Second.name)")
                let backward = try second.sealed(nonce: nonce, associatedData: ad, plaintext: message)
                try expect(backward == forward, "\(size) bytes: the backends sealed differently")
            }
            try first.rekey()
            try second.rekey()
            let probe = try first.sealed(nonce: [UInt8](repeating: 0, count: 12), associatedData: [], plaintext: [1, 2, 3])
            try expect(try second.opened(nonce: [UInt8](repeating: 0, count: 12), associatedData: [], ciphertext: probe) == [1, 2, 3],
                       "after rekey the backends disagree")
        }
    }
    checks.append(Check("X25519: both backends derive the same keys and shared secret") {
        let alice = try First.generateX25519KeyPair(), bob = try Second.generateX25519KeyPair()
        try expect(try Second.x25519KeyPair(privateKey: alice.exportedPrivateKey()).publicKey == alice.publicKey,
                   "public keys differ")
        // Each backend with the other's key pairs: the foreign key is imported from its raw bytes.
        let one = try First.x25519SharedSecret(alice, bob.publicKey)
        let two = try Second.x25519SharedSecret(bob, alice.publicKey)
        let crossed = try Second.x25519SharedSecret(alice, bob.publicKey)
        try expect(one.unsafeBytesCopy == two.unsafeBytesCopy && one.unsafeBytesCopy == crossed.unsafeBytesCopy, "shared secrets differ")
    })
    return checks
}
