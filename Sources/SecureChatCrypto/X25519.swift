/// An X25519 public key (32 bytes). Public: safe to show, log and compare normally.
public struct X25519PublicKey: Hashable, Sendable {
    public static let byteCount = 32
    public let bytes: [UInt8]

    public init<Bytes: Collection<UInt8>>(bytes: Bytes) throws {
        try requireLength(bytes.count, Self.byteCount, "X25519 public key")
        self.bytes = Array(bytes)
    }
}

/// An X25519 key pair: the raw private half as `SecretBytes` (wiped when released, written to
/// key files), the public half, and the private key in the form of the backend that made the
/// pair, so that every DH with it is one scalar multiplication. An ephemeral pair has no raw
/// private half: its private key never leaves the library that made it.
public struct X25519KeyPair: Sendable {
    /// nil for an ephemeral key (`generateEphemeralX25519KeyPair`).
    let privateKey: SecretBytes?
    public let publicKey: X25519PublicKey
    /// The making backend's `PrivateKey`; another backend imports `privateKey` when it needs to.
    let backendKey: any AnyObject & Sendable
    /// For a long-lived static key: DH(this key, a remote static key), kept (see `StaticSecretCache`).
    public let staticSecrets: StaticSecretCache?
    /// For an ephemeral key made while waiting: DH(this key, the static key the other side is
    /// expected to prove), computed then (`computingAhead`).
    let secretAhead: (remote: X25519PublicKey, secret: SecretBytes)?

    init(privateKey: SecretBytes?, publicKey: X25519PublicKey, backendKey: any AnyObject & Sendable,
         staticSecrets: StaticSecretCache? = nil, secretAhead: (remote: X25519PublicKey, secret: SecretBytes)? = nil) {
        self.privateKey = privateKey
        self.publicKey = publicKey
        self.backendKey = backendKey
        self.staticSecrets = staticSecrets
        self.secretAhead = secretAhead
    }

    /// DH(this key, `remote`) when it was computed ahead for exactly that key, else nil.
    public func secretComputedAhead(with remote: X25519PublicKey) -> SecretBytes? {
        guard let secretAhead, secretAhead.remote == remote else { return nil }
        return secretAhead.secret
    }

    /// The raw private half, for a key file or another backend; an ephemeral pair has none.
    public func exportedPrivateKey() throws -> SecretBytes {
        guard let privateKey else {
            throw CryptoError.unsupportedParameters("an ephemeral key works only with the backend that made it")
        }
        return privateKey
    }

    /// The same key pair, keeping up to `capacity` static–static secrets: for the server's key
    /// and a peer's identity, which meet the same remote static keys again and again.
    public func keepingStaticSecrets(capacity: Int) -> X25519KeyPair {
        X25519KeyPair(privateKey: privateKey, publicKey: publicKey, backendKey: backendKey,
                      staticSecrets: StaticSecretCache(capacity: capacity), secretAhead: secretAhead)
    }
}

extension CryptoBackend {
    /// A new key pair from the library's key generator, its raw private half kept (for a key file).
    public static func generateX25519KeyPair() throws -> X25519KeyPair {
        try generateKeyPair(keepingPrivateKey: true)
    }

    /// A new key pair for one handshake (Noise's `e`): the private key stays in the library,
    /// never copied out.
    public static func generateEphemeralX25519KeyPair() throws -> X25519KeyPair {
        try generateKeyPair(keepingPrivateKey: false)
    }

    private static func generateKeyPair(keepingPrivateKey: Bool) throws -> X25519KeyPair {
        let privateKey = keepingPrivateKey ? SecretBytes(count: X25519PublicKey.byteCount) : nil
        var publicBytes = [UInt8](repeating: 0, count: X25519PublicKey.byteCount)
        let key = try publicBytes.withUnsafeMutableBytes { (out) in
            guard let privateKey else { return try generatePrivateKey(scalar: nil, publicKey: out) }
            return try privateKey.withUnsafeMutableBytes { (scalar) in try generatePrivateKey(scalar: scalar, publicKey: out) }
        }
        return X25519KeyPair(privateKey: privateKey, publicKey: try X25519PublicKey(bytes: publicBytes), backendKey: key)
    }

    /// `pair` with DH(pair, `remote`) computed now: for an ephemeral key made while waiting for
    /// a handshake in which the other side is expected to prove `remote` (a callee knows the
    /// caller's key from CALLOFFER before message 1: the responder's `se` in IK), so that this
    /// scalar multiplication too is off the critical path. A handshake uses it only when the key
    /// proved is `remote`; otherwise it computes the DH as usual.
    public static func computingAhead(_ pair: X25519KeyPair, with remote: X25519PublicKey) throws -> X25519KeyPair {
        if pair.secretComputedAhead(with: remote) != nil { return pair }
        return X25519KeyPair(privateKey: pair.privateKey, publicKey: pair.publicKey, backendKey: pair.backendKey,
                             staticSecrets: pair.staticSecrets, secretAhead: (remote, try x25519SharedSecret(pair, remote)))
    }

    /// The key pair for an existing private key (32 bytes, clamped by X25519 itself).
    public static func x25519KeyPair(privateKey: SecretBytes) throws -> X25519KeyPair {
        try requireLength(privateKey.count, X25519PublicKey.byteCount, "X25519 private key")
        var publicBytes = [UInt8](repeating: 0, count: X25519PublicKey.byteCount)
        let key = try privateKey.withUnsafeBytes { (scalar) in
            try publicBytes.withUnsafeMutableBytes { (out) in try importPrivateKey(scalar, publicKey: out) }
        }
        return X25519KeyPair(privateKey: privateKey, publicKey: try X25519PublicKey(bytes: publicBytes), backendKey: key)
    }

    /// This backend's form of the pair's private key: the one it holds, or (a pair another
    /// backend made) imported now.
    static func privateKey(of keyPair: X25519KeyPair) throws -> PrivateKey {
        if let key = keyPair.backendKey as? PrivateKey { return key }
        return try keyPair.exportedPrivateKey().withUnsafeBytes { (scalar) in
            try withUnsafeTemporaryAllocation(byteCount: X25519PublicKey.byteCount, alignment: 1) { (unused) in
                try importPrivateKey(scalar, publicKey: unused)
            }
        }
    }

    /// Diffie-Hellman: the shared secret, refused when it is all zeros (a low-order public key).
    public static func x25519SharedSecret(_ keyPair: X25519KeyPair, _ publicKey: X25519PublicKey) throws -> SecretBytes {
        try x25519SharedSecret(keyPair, peer: try peerKey(publicKey))
    }

    /// Diffie-Hellman with an imported peer key: the shared secret, refused when all zeros.
    public static func x25519SharedSecret(_ keyPair: X25519KeyPair, peer: PeerKey) throws -> SecretBytes {
        let shared = SecretBytes(count: X25519PublicKey.byteCount)
        try shared.withUnsafeMutableBytes { (out) in try x25519SharedSecret(keyPair, peer: peer, into: out) }
        return shared
    }

    /// The remote static key in the backend's form and, when kept, DH(local static, it).
    public typealias StaticPeer = (key: PeerKey, staticStatic: SecretBytes?)

    /// The remote static key in this backend's form, with DH(local static, it) (Noise's `ss`)
    /// when the local pair keeps static secrets: that DH is the same for every handshake between
    /// the two keys, so it is taken from the pair's cache, as WireGuard's
    /// `precomputedStaticStatic`, and the key with it. Without a cache the key is imported and
    /// `ss`, if the pattern has it, is the caller's to compute.
    public static func staticPeer(_ local: X25519KeyPair?, _ remote: X25519PublicKey) throws -> StaticPeer {
        guard let local, let cache = local.staticSecrets else { return (try peerKey(remote), nil) }
        let kept = try cache.kept(for: remote) {
            let imported = try peerKey(remote)
            return StaticSecretCache.Kept(secret: try x25519SharedSecret(local, peer: imported), peerKey: imported)
        }
        if let keptKey = kept.peerKey as? PeerKey { return (keptKey, kept.secret) }
        // Kept by another backend (a pair used with both): this one's own, not kept.
        let imported = try peerKey(remote)
        return (imported, try x25519SharedSecret(local, peer: imported))
    }

    /// The peer's public key in this backend's form, for several DH with it.
    public static func peerKey(_ publicKey: X25519PublicKey) throws -> PeerKey {
        try publicKey.bytes.withUnsafeBytes { (point) in try importPeerKey(point) }
    }

    /// Diffie-Hellman with an imported peer key into a caller-owned 32-byte buffer; refuses an
    /// all-zero result.
    public static func x25519SharedSecret(_ keyPair: X25519KeyPair, peer: PeerKey,
                                          into output: UnsafeMutableRawBufferPointer) throws {
        try x25519(try privateKey(of: keyPair), peer: peer, into: output)
        if constantTimeIsZero(UnsafeRawBufferPointer(output)) {
            secureWipe(output)
            throw CryptoError.zeroSharedSecret
        }
    }
}
