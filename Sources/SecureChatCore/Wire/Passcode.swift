import SecureChatCrypto

/// The passcode as it goes on the wire (PROTOCOL.md §4): lowercase hex of
/// SHA-256("securechat/1 passcode" ‖ 0x00 ‖ userid ‖ 0x00 ‖ passcode). The server stores only a
/// memory-hard hash of this, never the digest itself.
public enum PasscodeDigest {
    public static let hexLength = 64

    public static func wire<Backend: CryptoBackend>(userID: UserID, passcode: SecretBytes, backend: Backend.Type) throws -> String {
        let prefix = Array("securechat/1 passcode".utf8) + [0] + Array(userID.rawValue.utf8) + [0]
        let input = SecretBytes(count: prefix.count + passcode.count)
        input.withUnsafeMutableBytes { buffer in
            buffer.copyBytes(from: prefix)
            passcode.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[prefix.count...]).copyMemory(from: $0) }
        }
        var digest = [UInt8](repeating: 0, count: DigestSize.sha256)
        try input.withUnsafeBytes { bytes in try digest.withUnsafeMutableBytes { try Backend.sha256(bytes, into: $0) } }
        defer { digest.withUnsafeMutableBytes { secureWipe($0) } }
        return digest.hexString
    }

    /// Whether `text` has the digest's form: 64 lowercase hex digits.
    public static func isWellFormed(_ text: String) -> Bool {
        text.utf8.count == hexLength && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
