import SecureChatBackends
import SecureChatCore
import SecureChatCrypto
import Testing

/// Issue 14: the static–static DH kept per remote static key (WireGuard's precomputation), and
/// a callee's ephemeral DH with the caller's key computed while it waits.
@Suite("Static-static secrets")
struct StaticSecretTests {
    @Test("an ephemeral key with its DH to the expected caller's key computed ahead: the same message 2, one DH fewer; another caller's key falls back",
          arguments: BackendName.allCases)
    func secretAhead(backend: BackendName) throws {
        try secretAhead(backend.implementation)
    }

    private func secretAhead<Base: CryptoBackend>(_: Base.Type) throws {
        typealias B = CountingBackend<Base>
        let noise = try NoiseProtocol(name: "Noise_IK_25519_ChaChaPoly_SHA256")
        let ali = try B.generateX25519KeyPair(), bianca = try B.generateX25519KeyPair(), carol = try B.generateX25519KeyPair()
        let aliE = try B.generateEphemeralX25519KeyPair(), biancaE = try B.generateEphemeralX25519KeyPair()
        var initiator = try HandshakeState<B>(protocol: noise, role: .initiator, prologue: [1], localStatic: ali,
                                              remoteStatic: bianca.publicKey, ephemeral: aliE)
        let one = try initiator.writeMessage(payload: [7])
        // Bianca's answer, with her ephemeral key as given: (message 2, its hash, DH done for it).
        func answer(_ ephemeral: X25519KeyPair) throws -> ([UInt8], [UInt8], Int) {
            let ((responder, two), count) = try countingDiffieHellman {
                var responder = try HandshakeState<B>(protocol: noise, role: .responder, prologue: [1], localStatic: bianca, ephemeral: ephemeral)
                _ = try responder.readMessage(one)
                let two = try responder.writeMessage(payload: [8])
                return (responder, two)
            }
            return (two, responder.handshakeHash, count)
        }
        let plain = try answer(biancaE)
        let ahead = try answer(try B.computingAhead(biancaE, with: ali.publicKey))
        let elsewhere = try answer(try B.computingAhead(biancaE, with: carol.publicKey))
        #expect(plain.2 == 4, "es, ss, ee, se")
        #expect(ahead.2 == 3 && elsewhere.2 == 4)
        for other in [ahead, elsewhere] { #expect(other.0 == plain.0 && other.1 == plain.1) }
        _ = try initiator.readMessage(ahead.0)
        #expect(initiator.handshakeHash == plain.1)
    }

    @Test("a handshake with kept secrets puts the same bytes on the wire and derives the same keys", arguments: BackendName.allCases)
    func sameBytes(backend: BackendName) throws {
        try sameBytes(backend.implementation)
    }

    private func sameBytes<B: CryptoBackend>(_: B.Type) throws {
        let noise = try NoiseProtocol(name: "Noise_IK_25519_ChaChaPoly_SHA256")
        let alice = try B.generateX25519KeyPair(), bob = try B.generateX25519KeyPair()
        let aliceE = try B.generateX25519KeyPair(), bobE = try B.generateX25519KeyPair()
        func run(_ alice: X25519KeyPair, _ bob: X25519KeyPair) throws -> ([UInt8], [UInt8], [UInt8]) {
            var initiator = try HandshakeState<B>(protocol: noise, role: .initiator, prologue: [1], localStatic: alice,
                                                  remoteStatic: bob.publicKey, ephemeral: aliceE)
            var responder = try HandshakeState<B>(protocol: noise, role: .responder, prologue: [1], localStatic: bob, ephemeral: bobE)
            let one = try initiator.writeMessage(payload: [7])
            _ = try responder.readMessage(one)
            let two = try responder.writeMessage(payload: [8])
            _ = try initiator.readMessage(two)
            return (one, two, initiator.handshakeHash)
        }
        let plain = try run(alice, bob)
        let keptAlice = alice.keepingStaticSecrets(capacity: 8), keptBob = bob.keepingStaticSecrets(capacity: 8)
        let first = try run(keptAlice, keptBob)
        let again = try run(keptAlice, keptBob)  // from the kept secret this time
        #expect(keptAlice.staticSecrets?.count == 1 && keptBob.staticSecrets?.count == 1)
        for kept in [first, again] {
            #expect(kept.0 == plain.0 && kept.1 == plain.1 && kept.2 == plain.2)
        }
    }

    @Test("the remote static key is kept with the secret: the next handshake with it imports nothing", arguments: BackendName.allCases)
    func keyKept(backend: BackendName) throws {
        try keyKept(backend.implementation)
    }

    private func keyKept<B: CryptoBackend>(_: B.Type) throws {
        let local = try B.generateX25519KeyPair().keepingStaticSecrets(capacity: 8), remote = try B.generateX25519KeyPair()
        let first = try B.staticPeer(local, remote.publicKey), again = try B.staticPeer(local, remote.publicKey)
        #expect(first.key === again.key)
        let expected = try B.x25519SharedSecret(remote, local.publicKey)
        for secret in [first.staticStatic, again.staticStatic] {
            #expect(secret.map { $0.withUnsafeBytes(Array.init) } == expected.withUnsafeBytes(Array.init))
        }
        #expect(try B.staticPeer(remote, local.publicKey).staticStatic == nil, "no cache: the caller computes ss")
    }

    @Test("bounded: a flood of new remote keys cannot grow it; recent ones stay; a failed DH is not kept")
    func bounded() throws {
        let cache = StaticSecretCache(capacity: 8)
        let keys = try (0..<40).map { try OpenSSLKeys.key($0) }
        var computed = 0
        let made = { computed += 1; return StaticSecretCache.Kept(secret: SecretBytes([1]), peerKey: StandInKey()) }
        for key in keys {
            _ = try cache.kept(for: key, compute: made)
            #expect(cache.count <= 8)
        }
        #expect(computed == 40)
        _ = try cache.kept(for: keys[39], compute: made)
        #expect(computed == 40, "the most recent key is still kept")
        let lowOrder = try X25519PublicKey(bytes: [UInt8](repeating: 0, count: 32))
        let pair = try BackendName.openssl.implementation.generateX25519KeyPair().keepingStaticSecrets(capacity: 8)
        #expect(throws: CryptoError.zeroSharedSecret) { try OpenSSLKeys.staticStatic(pair, lowOrder) }
        #expect(pair.staticSecrets?.count == 0)
    }
}

/// Distinct public keys for the cache test, and the static-static DH through a concrete backend.
private enum OpenSSLKeys {
    static func key(_ index: Int) throws -> X25519PublicKey {
        try X25519PublicKey(bytes: [UInt8](repeating: 0, count: 30) + [UInt8(index), 9])
    }

    static func staticStatic(_ pair: X25519KeyPair, _ remote: X25519PublicKey) throws {
        _ = try stat(BackendName.openssl.implementation, pair, remote)
    }

    private static func stat<B: CryptoBackend>(_: B.Type, _ pair: X25519KeyPair, _ remote: X25519PublicKey) throws -> SecretBytes? {
        try B.staticPeer(pair, remote).staticStatic
    }
}

/// A peer key for the cache test, which never uses it.
private final class StandInKey: Sendable {}
