import SecureChatCore
import SecureChatCrypto

/// What a connection can be told by others: it was replaced by a new sign-in, someone's presence
/// changed, or someone calls its user. Implementations hop to their own event loop.
protocol SessionHandle: Sendable {
    func replacedByNewSignIn()
    func presenceChanged(_ presence: ControlMessage.Presence)
    func callOffered(_ offer: ControlMessage.CallOffer)
}

/// Who is signed in now, where, and with which key: shared by every event loop, under a lock.
@usableFromInline
final class OnlineDirectory: Sendable {
    @usableFromInline struct Entry: Sendable {
        let connection: UInt64
        /// The source of the control connection (the router's mapping, behind a NAT).
        let observed: Endpoint
        /// The port the peer listens on (AUTHREQ `port`; 0: not reachable).
        let port: Int
        /// The peer's own addresses (AUTHREQ `addresses`).
        let advertised: [Endpoint]
        let identityKey: X25519PublicKey
        /// The identity key as replies carry it, encoded once at sign-in rather than per lookup.
        let encodedIdentityKey: String
        /// Where to reach the peer, best first (§9.2), computed once at sign-in.
        let candidates: [Endpoint]
        /// The observed IP as LOOKUPREPLY's `address` carries it, formatted once at sign-in.
        private let address: String
        let handle: any SessionHandle
        /// A §9 peer: it is offered calls (CALLOFFER) and can take a relay leg.
        let takesCallOffers: Bool

        init(connection: UInt64, observed: Endpoint, port: Int, advertised: [Endpoint], identityKey: X25519PublicKey,
             takesCallOffers: Bool, handle: any SessionHandle) {
            self.connection = connection
            self.observed = observed
            self.port = port
            self.advertised = advertised
            self.identityKey = identityKey
            encodedIdentityKey = Base64.encode(identityKey.bytes)
            candidates = Endpoint.candidates(observed: observed, port: port, advertised: advertised)
            address = observed.address.description
            self.takesCallOffers = takesCallOffers
            self.handle = handle
        }

        /// `observed` and `nat` for replies about this peer; only when it said where it is.
        var network: ControlMessage.PeerNetwork? {
            guard !advertised.isEmpty else { return nil }
            return .init(observed: observed, behindRouter: !advertised.contains { $0.address == observed.address })
        }

        /// LOOKUPREPLY for `user`, whose entry this is: the observed address, as §4 records it.
        @usableFromInline func lookupReply(for user: UserID) -> ControlMessage.LookupReply.Found {
            .init(answer: user, address: address, encryptionKey: encodedIdentityKey, port: port,
                  candidates: candidates)
        }
    }

    private let entries = Locked<[UserID: Entry]>([:])

    /// Records a sign-in and returns the session it replaces, if any.
    func signIn(_ user: UserID, _ entry: Entry) -> Entry? {
        entries.withLock { $0.updateValue(entry, forKey: user) }
    }

    /// Removes `user` only if `connection` still holds the entry (a replaced session must not
    /// remove its successor). True if it did.
    func signOut(_ user: UserID, connection: UInt64) -> Bool {
        entries.withLock { entries in
            guard entries[user]?.connection == connection else { return false }
            entries[user] = nil
            return true
        }
    }

    @usableFromInline func lookup(_ user: UserID) -> Entry? { entries.withLock { $0[user] } }

    @usableFromInline var users: [UserID] { entries.withLock { $0.keys.sorted() } }

    var count: Int { entries.withLock { $0.count } }

    /// The handles of everyone signed in except `user`, to tell them about `user`.
    func others(than user: UserID) -> [any SessionHandle] {
        entries.withLock { $0.compactMap { $0.key == user ? nil : $0.value.handle } }
    }
}
