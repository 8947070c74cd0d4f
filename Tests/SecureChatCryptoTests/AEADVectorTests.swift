import SecureChatBackends
import SecureChatCrypto
import Testing

/// Published AEAD vectors on every backend. Our Cipher is what Noise needs: a 256-bit key,
/// a 96-bit nonce and a 128-bit tag; vectors for other sizes are counted as skipped, by reason.
@Suite("AEAD vectors")
struct AEADVectorTests {
    @Test("Wycheproof AES-GCM", arguments: BackendName.allCases)
    func wycheproofAESGCM(backend: BackendName) throws {
        try runWycheproofAEAD(backend.implementation, file: "wycheproof/aes_gcm_test.json", kind: .aesGCM, backendName: backend)
    }

    @Test("Wycheproof ChaCha20-Poly1305", arguments: BackendName.allCases)
    func wycheproofChaChaPoly(backend: BackendName) throws {
        try runWycheproofAEAD(backend.implementation, file: "wycheproof/chacha20_poly1305_test.json",
                              kind: .chaChaPoly, backendName: backend)
    }

    @Test("NIST CAVS AES-256-GCM encrypt (gcmEncryptExtIV256.rsp)", arguments: BackendName.allCases)
    func nistGCMEncrypt(backend: BackendName) throws {
        try runNISTGCM(backend.implementation, file: "pyca/ciphers/AES/GCM/gcmEncryptExtIV256.rsp", backendName: backend)
    }

    @Test("NIST CAVS AES-256-GCM decrypt (gcmDecrypt256.rsp)", arguments: BackendName.allCases)
    func nistGCMDecrypt(backend: BackendName) throws {
        try runNISTGCM(backend.implementation, file: "pyca/ciphers/AES/GCM/gcmDecrypt256.rsp", backendName: backend)
    }

    @Test("pyca ChaCha20-Poly1305 (RFC 7539, BoringSSL and OpenSSL sets)",
          arguments: BackendName.allCases, ["boringssl.txt", "openssl.txt"])
    func pycaChaChaPoly(backend: BackendName, file: String) throws {
        try runPycaChaChaPoly(backend.implementation, file: "pyca/ciphers/ChaCha20Poly1305/" + file, backendName: backend)
    }
}

private func runWycheproofAEAD<Backend: CryptoBackend>(_: Backend.Type, file: String, kind: CipherKind,
                                                       backendName: BackendName) throws {
    guard let document = try VectorFiles.json(file) else { return }
    var tally = VectorTally(suite: "\(file) on \(backendName)")
    for (group, test) in wycheproofTests(document) {
        let keySize = group["keySize"] as? Int ?? 0, ivSize = group["ivSize"] as? Int ?? 0
        let tagSize = group["tagSize"] as? Int ?? 0
        guard keySize == 256 else { tally.skip("key size \(keySize) (we use 256-bit keys)"); continue }
        guard ivSize == 96 else { tally.skip("IV size \(ivSize) (Noise nonces are 96 bits)"); continue }
        guard tagSize == 128 else { tally.skip("tag size \(tagSize) (Noise tags are 128 bits)"); continue }
        let id = test["tcId"] as? Int ?? -1
        let valid = test["result"] as? String == "valid"
        let cipher = try Backend.makeCipher(kind, key: SecretBytes(test.hex("key")))
        let nonce = test.hex("iv"), ad = test.hex("aad"), message = test.hex("msg")
        let sealed = test.hex("ct") + test.hex("tag")
        if valid {
            tally.check(try cipher.sealed(nonce: nonce, associatedData: ad, plaintext: message) == sealed, "tcId \(id): seal")
            tally.check((try? cipher.opened(nonce: nonce, associatedData: ad, ciphertext: sealed)) == message, "tcId \(id): open")
        } else {
            tally.check((try? cipher.opened(nonce: nonce, associatedData: ad, ciphertext: sealed)) == nil,
                        "tcId \(id): an invalid ciphertext was accepted")
        }
    }
    tally.finish()
}

private func runNISTGCM<Backend: CryptoBackend>(_: Backend.Type, file: String, backendName: BackendName) throws {
    guard let text = VectorFiles.text(file) else { return }
    var tally = VectorTally(suite: "\(file) on \(backendName)")
    for record in KeyValueRecord.parse(text) where record.fields["KEY"] != nil {
        let ivBits = record.sections["IVLEN"] ?? "?", tagBits = record.sections["TAGLEN"] ?? "?"
        guard ivBits == "96" else { tally.skip("IVlen \(ivBits) (Noise nonces are 96 bits)"); continue }
        guard tagBits == "128" else { tally.skip("Taglen \(tagBits) (Noise tags are 128 bits)"); continue }
        guard let key = record.bytes("KEY"), let nonce = record.bytes("IV"), let ad = record.bytes("AAD"),
              let ciphertext = record.bytes("CT"), let tag = record.bytes("TAG") else {
            tally.check(false, "malformed record \(record.fields)")
            continue
        }
        let label = "[IVlen \(ivBits) PTlen \(record.sections["PTLEN"] ?? "?")] Count \(record.fields["COUNT"] ?? "?")"
        let cipher = try Backend.makeCipher(.aesGCM, key: SecretBytes(key))
        let opened = try? cipher.opened(nonce: nonce, associatedData: ad, ciphertext: ciphertext + tag)
        if record.words.contains("FAIL") {
            tally.check(opened == nil, "\(label): a FAIL vector was accepted")
        } else {
            let plaintext = record.bytes("PT") ?? []
            tally.check(opened == plaintext, "\(label): open")
            tally.check(try cipher.sealed(nonce: nonce, associatedData: ad, plaintext: plaintext) == ciphertext + tag,
                        "\(label): seal")
        }
    }
    tally.finish()
}

private func runPycaChaChaPoly<Backend: CryptoBackend>(_: Backend.Type, file: String, backendName: BackendName) throws {
    guard let text = VectorFiles.text(file) else { return }
    var tally = VectorTally(suite: "\(file) on \(backendName)")
    for record in KeyValueRecord.parse(text) where record.fields["KEY"] != nil {
        guard let key = record.bytes("KEY"), let nonce = record.bytes("NONCE", "IV"), let ad = record.bytes("AD", "AAD"),
              let plaintext = record.bytes("IN", "PLAINTEXT"), let ciphertext = record.bytes("CT", "CIPHERTEXT"),
              let tag = record.bytes("TAG") else {
            tally.check(false, "malformed record \(record.fields)")
            continue
        }
        guard nonce.count == AEADSize.nonce else { tally.skip("nonce of \(nonce.count) bytes"); continue }
        let label = "COUNT \(record.fields["COUNT"] ?? "?")"
        let cipher = try Backend.makeCipher(.chaChaPoly, key: SecretBytes(key))
        let opened = try? cipher.opened(nonce: nonce, associatedData: ad, ciphertext: ciphertext + tag)
        if record.fields["RESULT"] != nil {  // OpenSSL's set marks a bad tag with a Result line
            tally.check(opened == nil, "\(label): a bad tag was accepted")
        } else {
            tally.check(opened == plaintext, "\(label): open")
            tally.check(try cipher.sealed(nonce: nonce, associatedData: ad, plaintext: plaintext) == ciphertext + tag,
                        "\(label): seal")
        }
    }
    tally.finish()
}
