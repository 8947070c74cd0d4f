import SecureChatCore
import SecureChatCrypto

/// A static X25519 private key in a private file (mode 0600): one line, base64. Created on first
/// use; a file others can read is refused, as ssh does, because the key is then not secret.
public enum KeyFile {
    public static func loadOrCreate<Backend: CryptoBackend>(_ path: String, backend: Backend.Type)
        throws -> (keyPair: X25519KeyPair, created: Bool)
    {
        guard Files.exists(path) else {
            let keyPair = try Backend.generateX25519KeyPair()
            var raw = try keyPair.exportedPrivateKey().withUnsafeBytes { Array($0) }
            var line = Array(Base64.encode(raw).utf8) + [0x0A]
            defer {
                raw.withUnsafeMutableBytes(secureWipe)
                line.withUnsafeMutableBytes(secureWipe)
            }
            try Files.writeAtomically(line, to: path, mode: 0o600)
            return (keyPair, true)
        }
        return (try load(path, backend: backend), false)
    }

    /// Reads an existing key file; refused when others can read it or it holds no key.
    public static func load<Backend: CryptoBackend>(_ path: String, backend: Backend.Type) throws -> X25519KeyPair {
        if let mode = Files.permissions(path), mode & 0o077 != 0 {
            throw FileError("\(path) is readable by other users (mode \(String(mode, radix: 8))); run: chmod 600 \(path)")
        }
        var contents = try Files.read(path)
        defer { contents.withUnsafeMutableBytes(secureWipe) }
        let text = String(decoding: contents, as: UTF8.self).trimmingTrailingNewline
        guard var privateBytes = Base64.decode(text), privateBytes.count == 32 else {
            throw FileError("\(path) does not hold a securechat key (one line of base64, 32 bytes)")
        }
        defer { privateBytes.withUnsafeMutableBytes(secureWipe) }
        return try Backend.x25519KeyPair(privateKey: SecretBytes(privateBytes))
    }
}

extension String {
    var trimmingTrailingNewline: String {
        var text = Substring(self)
        while let last = text.last, last == "\n" || last == "\r\n" || last == "\r" { text = text.dropLast() }
        return String(text)
    }
}
