import SecureChatCore
import SecureChatCrypto

/// The identity keys a peer has pinned (PROTOCOL.md §6), like ssh's known_hosts: one
/// `userid base64key` per line, `#` comments. Written whole and atomically, mode 0600.
public enum KnownPeers {
    public static func load(_ path: String) throws -> [UserID: X25519PublicKey] {
        guard let contents = try Files.readIfPresent(path) else { return [:] }
        var keys = [UserID: X25519PublicKey]()
        for (index, line) in String(decoding: contents, as: UTF8.self).split(separator: "\n").enumerated() {
            let text = line.trimmed
            if text.isEmpty || text.hasPrefix("#") { continue }
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 2, let user = UserID(String(fields[0])), let bytes = Base64.decode(String(fields[1])),
                  let key = try? X25519PublicKey(bytes: bytes), keys[user] == nil else {
                throw FileError("\(path):\(index + 1): expected one `userid key` per line, each user once")
            }
            keys[user] = key
        }
        return keys
    }

    /// Pins (or with nil, forgets) the key of `user` in the file, keeping every other line as
    /// the file has it now: two peers of one user (two terminals) each add their own pins
    /// without losing the other's. A lock file keeps the read-change-write whole.
    public static func pin(_ user: UserID, _ key: X25519PublicKey?, in path: String) throws {
        let lock = try DirectoryLock(path: path + ".lock", purpose: "cannot update \(path)", waiting: true)
        defer { withExtendedLifetime(lock) {} }
        var keys = try load(path)
        keys[user] = key
        var text = "# securechat known peers: userid and pinned identity key. /trust NAME FINGERPRINT changes one.\n"
        for (user, key) in keys.sorted(by: { $0.key < $1.key }) { text += "\(user) \(Base64.encode(key.bytes))\n" }
        try Files.writeAtomically(Array(text.utf8), to: path, mode: 0o600)
    }
}
