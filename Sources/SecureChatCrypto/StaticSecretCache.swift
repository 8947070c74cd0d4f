/// DH(local static, remote static) for the remote static keys one local key meets, kept: in
/// Noise IK the `ss` token's DH is the same for every handshake between the same two static
/// keys (wireguard-go computes it once per peer, `precomputedStaticStatic`). Holding it is no
/// more exposure than holding the static private key it comes from, which is in memory anyway.
///
/// Bounded: two generations of at most `capacity / 2` each. Inserting into a full current one
/// makes it the old one and drops (wipes) the older: recently used secrets stay, a flood of new
/// remote keys cannot grow it, and no operation scans it.
public final class StaticSecretCache: Sendable {
    private struct Generations {
        var current: [X25519PublicKey: SecretBytes] = [:]
        var previous: [X25519PublicKey: SecretBytes] = [:]
    }

    public let capacity: Int
    private let generations = Locked(Generations())

    public init(capacity: Int) {
        self.capacity = max(capacity, 2)
    }

    /// How many secrets are kept now.
    public var count: Int { generations.withLock { $0.current.count + $0.previous.count } }

    /// The kept secret for `remote`, or `compute()`'s, kept from now on. A failed computation
    /// (a low-order key) is not kept.
    public func secret(for remote: X25519PublicKey, compute: () throws -> SecretBytes) throws -> SecretBytes {
        if let kept = lookUp(remote) { return kept }
        let secret = try compute()
        insert(secret, for: remote)
        return secret
    }

    private func lookUp(_ remote: X25519PublicKey) -> SecretBytes? {
        generations.withLock { generations in
            if let secret = generations.current[remote] { return secret }
            guard let secret = generations.previous.removeValue(forKey: remote) else { return nil }
            generations.current[remote] = secret  // used again: back into the current generation
            rotateIfFull(&generations)
            return secret
        }
    }

    private func insert(_ secret: SecretBytes, for remote: X25519PublicKey) {
        generations.withLock { generations in
            generations.current[remote] = secret
            rotateIfFull(&generations)
        }
    }

    private func rotateIfFull(_ generations: inout Generations) {
        guard generations.current.count >= capacity / 2 else { return }
        generations.previous = generations.current  // the older generation's secrets are released and wiped
        generations.current = [:]
    }
}
