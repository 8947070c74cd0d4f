/// DH(local static, remote static) for the remote static keys one local key meets, kept: in
/// Noise IK the `ss` token's DH is the same for every handshake between the same two static
/// keys (wireguard-go computes it once per peer, `precomputedStaticStatic`). Holding it is no
/// more exposure than holding the static private key it comes from, which is in memory anyway.
/// The remote key is kept beside it in the backend's form, so that the handshake's other DH with
/// it (`es` or `se`) does not import it again (an import costs OpenSSL 10 allocations).
///
/// Bounded: two generations of at most `capacity / 2` each. Inserting into a full current one
/// makes it the old one and drops (wipes) the older: recently used secrets stay, a flood of new
/// remote keys cannot grow it, and no operation scans it.
public final class StaticSecretCache: Sendable {
    /// What is kept per remote static key.
    public struct Kept: Sendable {
        /// DH(local static, remote static).
        public let secret: SecretBytes
        /// The remote static key as the backend that computed `secret` imported it.
        public let peerKey: any AnyObject & Sendable

        public init(secret: SecretBytes, peerKey: any AnyObject & Sendable) {
            self.secret = secret
            self.peerKey = peerKey
        }
    }

    private struct Generations {
        var current: [X25519PublicKey: Kept] = [:]
        var previous: [X25519PublicKey: Kept] = [:]
    }

    public let capacity: Int
    private let generations = Locked(Generations())

    public init(capacity: Int) {
        self.capacity = max(capacity, 2)
    }

    /// How many secrets are kept now.
    public var count: Int { generations.withLock { $0.current.count + $0.previous.count } }

    /// What is kept for `remote`, or `compute()`'s, kept from now on. A failed computation
    /// (a low-order key) is not kept.
    public func kept(for remote: X25519PublicKey, compute: () throws -> Kept) throws -> Kept {
        if let kept = lookUp(remote) { return kept }
        let kept = try compute()
        insert(kept, for: remote)
        return kept
    }

    private func lookUp(_ remote: X25519PublicKey) -> Kept? {
        generations.withLock { generations in
            if let kept = generations.current[remote] { return kept }
            guard let kept = generations.previous.removeValue(forKey: remote) else { return nil }
            generations.current[remote] = kept  // used again: back into the current generation
            rotateIfFull(&generations)
            return kept
        }
    }

    private func insert(_ kept: Kept, for remote: X25519PublicKey) {
        generations.withLock { generations in
            generations.current[remote] = kept
            rotateIfFull(&generations)
        }
    }

    private func rotateIfFull(_ generations: inout Generations) {
        guard generations.current.count >= capacity / 2 else { return }
        generations.previous = generations.current  // the older generation's secrets are released and wiped
        generations.current = [:]
    }
}
