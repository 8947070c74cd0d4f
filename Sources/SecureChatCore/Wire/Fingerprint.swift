import SecureChatCrypto

/// The short fingerprint of an identity key that two people read to each other (PROTOCOL.md §6):
/// the first 10 bytes of SHA-256 over a label and the key, as five groups of four hex digits.
/// 80 bits: enough that nobody can make a key with a chosen fingerprint, short enough to say.
public enum Fingerprint {
    /// Whether `text` (as typed: any case, any spacing) is the fingerprint of `key`.
    public static func matches<Backend: CryptoBackend>(_ text: String, _ key: X25519PublicKey, backend: Backend.Type) -> Bool {
        let typed = text.lowercased().filter { !$0.isWhitespace }
        return typed == of(key, backend: backend).filter { !$0.isWhitespace }
    }

    public static func of<Backend: CryptoBackend>(_ key: X25519PublicKey, backend: Backend.Type) -> String {
        guard let digest = try? Backend.sha256(Array("securechat/1 fingerprint".utf8) + [0] + key.bytes) else {
            return "(unavailable)"
        }
        let hex = digest.prefix(10).hexString
        return stride(from: 0, to: hex.count, by: 4).map { offset in
            String(hex.dropFirst(offset).prefix(4))
        }.joined(separator: " ")
    }
}
