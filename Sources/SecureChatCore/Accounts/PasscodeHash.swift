import SecureChatCrypto

/// How the server keeps a passcode (PROTOCOL.md §4): never the wire digest itself, but scrypt of
/// it under a random per-user salt, in a self-describing string (PHC style, standard base64):
/// `$scrypt$ln=14,r=8,p=1$<salt>$<hash>`. Changing the parameters later leaves old strings valid.
public struct PasscodeHash: Equatable, Sendable {
    public static let saltCount = 16
    /// The largest scrypt N (as log2) a stored hash may name: 2^24 at r = 8 is 16 GiB.
    public static let maximumLogN: UInt64 = 24
    public static let hashCount = 32

    public let parameters: ScryptParameters
    public let salt: [UInt8]
    public let hash: [UInt8]

    /// Hashes `digest` (the wire passcode) with a fresh salt.
    public static func make<Backend: CryptoBackend>(digest: String, parameters: ScryptParameters,
                                                    backend: Backend.Type) throws -> PasscodeHash {
        let salt = try Backend.randomBytes(count: saltCount)
        return PasscodeHash(parameters: parameters, salt: salt,
                            hash: try scrypt(digest, salt: salt, parameters: parameters, backend: backend))
    }

    /// Whether `digest` matches, compared in constant time. A backend failure counts as no match.
    public func matches<Backend: CryptoBackend>(digest: String, backend: Backend.Type) -> Bool {
        guard let candidate = try? Self.scrypt(digest, salt: salt, parameters: parameters, backend: backend) else {
            return false
        }
        return constantTimeEquals(candidate, hash)
    }

    private static func scrypt<Backend: CryptoBackend>(_ digest: String, salt: [UInt8], parameters: ScryptParameters,
                                                       backend: Backend.Type) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: hashCount)
        let password = Array(digest.utf8)
        try password.withUnsafeBytes { password in
            try salt.withUnsafeBytes { salt in
                try output.withUnsafeMutableBytes { output in
                    try Backend.scrypt(password: password, salt: salt, parameters: parameters, into: output)
                }
            }
        }
        return output
    }

    public var encoded: String {
        let logN = UInt64.bitWidth - 1 - parameters.n.leadingZeroBitCount
        return "$scrypt$ln=\(logN),r=\(parameters.r),p=\(parameters.p)$\(Base64.encode(salt))$\(Base64.encode(hash))"
    }

    /// Parses `encoded`; nil for anything else (the store refuses to start on it).
    public init?(encoded text: String) {
        let fields = text.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty, fields[1] == "scrypt",
              let parameters = Self.parseParameters(fields[2]),
              let salt = Base64.decode(String(fields[3])), salt.count == Self.saltCount,
              let hash = Base64.decode(String(fields[4])), hash.count == Self.hashCount
        else { return nil }
        self.init(parameters: parameters, salt: salt, hash: hash)
    }

    private init(parameters: ScryptParameters, salt: [UInt8], hash: [UInt8]) {
        self.parameters = parameters
        self.salt = salt
        self.hash = hash
    }

    private static func parseParameters(_ text: Substring) -> ScryptParameters? {
        var values = [Substring: UInt64]()
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, values[parts[0]] == nil, let value = UInt64(parts[1]) else { return nil }
            values[parts[0]] = value
        }
        // Bounded far above what any server uses, so that a damaged line cannot ask for
        // exabytes (or overflow the memory arithmetic).
        guard values.count == 3, let logN = values["ln"], (1...Self.maximumLogN).contains(logN),
              let r = values["r"], let p = values["p"], (1...64).contains(r), (1...64).contains(p)
        else { return nil }
        let r32 = UInt32(r), p32 = UInt32(p)
        let parameters = ScryptParameters(n: 1 << logN, r: r32, p: p32)
        guard (try? parameters.validate()) != nil else { return nil }
        return parameters
    }
}
