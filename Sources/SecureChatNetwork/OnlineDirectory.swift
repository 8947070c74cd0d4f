import SecureChatCore
import SecureChatCrypto
import Synchronization

/// What a connection can be told by others: it was replaced by a new sign-in, or someone's
/// presence changed. Implementations hop to their own event loop.
protocol SessionHandle: Sendable {
    func replacedByNewSignIn()
    func presenceChanged(_ presence: ControlMessage.Presence)
}

/// Who is signed in now, where, and with which key: shared by every event loop, under a lock.
final class OnlineDirectory: Sendable {
    struct Entry: Sendable {
        let connection: UInt64
        let address: String
        let port: Int
        /// The identity key as LOOKUPREPLY carries it, encoded once at sign-in rather than per lookup.
        let encodedIdentityKey: String
        let handle: any SessionHandle

        init(connection: UInt64, address: String, port: Int, identityKey: X25519PublicKey, handle: any SessionHandle) {
            self.connection = connection
            self.address = address
            self.port = port
            encodedIdentityKey = Base64.encode(identityKey.bytes)
            self.handle = handle
        }
    }

    private let entries = Mutex<[UserID: Entry]>([:])

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

    func lookup(_ user: UserID) -> Entry? { entries.withLock { $0[user] } }

    var users: [UserID] { entries.withLock { $0.keys.sorted() } }

    var count: Int { entries.withLock { $0.count } }

    /// The handles of everyone signed in except `user`, to tell them about `user`.
    func others(than user: UserID) -> [any SessionHandle] {
        entries.withLock { $0.compactMap { $0.key == user ? nil : $0.value.handle } }
    }
}
