import Foundation
import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import Testing

@Suite("Noise")
struct NoiseVectorTests {
    /// Every cacophony vector for 25519 × {ChaChaPoly, AESGCM} × SHA256 on both backends: the
    /// fundamental, one-way and deferred patterns, with the transport messages after each handshake.
    /// `computingAhead`: each ephemeral key comes with its DH to the other side's static key made
    /// before the handshake, as a callee makes it while it waits; the same bytes must result.
    @Test("cacophony vectors", arguments: BackendName.allCases, [false, true])
    func cacophony(backend: BackendName, computingAhead: Bool) throws {
        let path = VectorPaths.noiseVectors
        guard let data = FileManager.default.contents(atPath: path) else {
            if VectorPaths.sharedRequired {
                Issue.record("Noise vectors missing at \(path)")
            } else {
                print("vectors: NOT RUN — Noise vectors not found at \(path)")
            }
            return
        }
        let report = try NoiseVectors.run(Array(data), backend: backend.implementation, computingAhead: computingAhead)
        for failure in report.failed { Issue.record("\(failure.name): \(failure.reason)") }
        let patterns = Set(report.passed.map { $0.split(separator: "_")[1] })
        print("vectors: cacophony on \(backend)\(computingAhead ? ", DH computed ahead" : ""): \(report.passed.count) passed, \(report.failed.count) failed, "
              + "\(report.skippedCount) skipped (\(report.skipped.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: ", ")))")
        for required in ["IK", "NK", "XX", "KK"] {
            #expect(report.passed.contains("Noise_\(required)_25519_ChaChaPoly_SHA256"))
            #expect(report.passed.contains("Noise_\(required)_25519_AESGCM_SHA256"))
        }
        #expect(patterns.count >= 38, "every pattern in the engine's table ran")
    }

    @Test("securechat's own protocols are IK over 25519 and SHA-256, with each cipher", arguments: CipherKind.allCases)
    func ownProtocol(cipher: CipherKind) throws {
        let noise = NoiseProtocol.ik(cipher)
        #expect(noise.name == "Noise_IK_25519_\(cipher.rawValue)_SHA256")
        #expect(noise.pattern.name == "IK")
        #expect(noise.cipher == cipher)
        #expect(try NoiseProtocol(name: noise.name) == noise)
    }
}

enum VectorPaths {
    static var root: String {
        if let explicit = ProcessInfo.processInfo.environment["SECURECHAT_VECTORS"] { return explicit }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("../shared/vectors").standardizedFileURL.path
    }

    static var noiseVectors: String { root + "/noise/cacophony.txt" }

    /// The seed documents, in ../shared beside the clone.
    static var seeds: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("../shared/seeds").standardizedFileURL.path
    }

    /// scripts/test.sh sets SECURECHAT_SHARED when ../shared is there: then every suite that
    /// reads it must run. A clone without it runs the rest and says what it skipped.
    static var sharedRequired: Bool { ProcessInfo.processInfo.environment["SECURECHAT_SHARED"] != nil }
}

@Suite("Rekey")
struct RekeyTests {
    /// PROTOCOL.md §3.4: the key changes before message 11, 21, … of each direction. A receiver
    /// that never rekeys reads messages 1–10 and fails on 11; one that rekeys reads all 35.
    @Test(arguments: BackendName.allCases, CipherKind.allCases)
    func rekeyBeforeEleventhMessage(backend: BackendName, cipher: CipherKind) throws {
        try runRekey(backend.implementation, cipher)
    }
}

private func runRekey<B: CryptoBackend>(_: B.Type, _ cipher: CipherKind) throws {
    var (initiator, responder) = try transportPair(B.self, cipher)
    var sender = try initiator.split(rekeyInterval: 10)
    var rekeying = try responder.split(rekeyInterval: 10)
    var plain = try responder.split(rekeyInterval: nil)
    for index in 1...35 {
        let message = try sender.seal(Array("line \(index)".utf8))
        #expect(try rekeying.open(message) == Array("line \(index)".utf8))
        if index <= 10 {
            #expect(try plain.open(message) == Array("line \(index)".utf8))
        } else if index == 11 {
            #expect(throws: NoiseError.decryptionFailed) { _ = try plain.open(message) }
        }
    }
}
