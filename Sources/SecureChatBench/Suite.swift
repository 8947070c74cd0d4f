import SecureChatCore
import SecureChatCrypto

/// One measured figure. `key` names it the same way in the JSON, in the C baseline's output and
/// in scripts/bench-crypto.sh: "seal openssl aesgcm 1024", "x25519-dh gcrypt", "connect-p50".
public struct BenchResult: Sendable, Equatable {
    public var measure: String
    public var backend: String?
    public var cipher: String?
    public var size: Int?
    public var value: Double
    public var unit: String

    public init(_ measure: String, backend: String? = nil, cipher: CipherKind? = nil, size: Int? = nil,
                value: Double, unit: String) {
        self.measure = measure
        self.backend = backend
        self.cipher = cipher?.configName
        self.size = size
        self.value = value
        self.unit = unit
    }

    public var key: String { [measure, backend, cipher, size.map(String.init)].compactMap { $0 }.joined(separator: " ") }
}

/// What to measure, from `securechat bench`'s flags.
public struct BenchPlan: Sendable {
    public var ciphers: [CipherKind]
    public var sizes: [Int]
    /// Time per measured figure, in seconds.
    public var seconds: Double

    public init(ciphers: [CipherKind], sizes: [Int], seconds: Double) {
        self.ciphers = ciphers
        self.sizes = sizes
        self.seconds = seconds
    }

    /// How many figures `CryptoBench.run` measures per backend (for progress).
    public var stepsPerBackend: Int { ciphers.count * (sizes.count * 2 + 2) + 4 }
}

/// The on-device crypto figures for one backend. Generic, and called with a concrete backend
/// type, so each workload runs specialised code.
public enum CryptoBench<Backend: CryptoBackend> {
    /// Measures throughput (seal, open; MB/s), X25519 (operations/s), the IK handshake
    /// (handshakes/s, and its X25519 + hash floor) and the chat record path. `step` is called
    /// before each figure with its key, for progress.
    public static func run(_ plan: BenchPlan, step: (String) -> Void) throws -> [BenchResult] {
        var results = [BenchResult]()
        func measure<W: Workload>(_ measure: String, cipher: CipherKind? = nil, size: Int? = nil, unit: String,
                                  scale: Double = 1, _ workload: () throws -> W) throws {
            var result = BenchResult(measure, backend: Backend.name, cipher: cipher, size: size, value: 0, unit: unit)
            step(result.key)
            var instance = try workload()
            result.value = try operationsPerSecond(&instance, seconds: plan.seconds) * scale
            results.append(result)
        }
        for cipher in plan.ciphers {
            for size in plan.sizes {
                let megabytes = Double(size) / 1e6
                try measure("seal", cipher: cipher, size: size, unit: "MB/s", scale: megabytes) {
                    try SealWorkload<Backend>(cipher, size: size)
                }
                try measure("open", cipher: cipher, size: size, unit: "MB/s", scale: megabytes) {
                    try OpenWorkload<Backend>(cipher, size: size)
                }
            }
        }
        try measure("x25519-keygen", unit: "ops/s") { KeyGenerationWorkload<Backend>() }
        try measure("x25519-dh", unit: "ops/s") { try DiffieHellmanWorkload<Backend>() }
        try measure("sha256-64", unit: "ops/s") { HashWorkload<Backend>(.mixHash) }
        try measure("hmac-sha256-33", unit: "ops/s") { HashWorkload<Backend>(.hkdfHMAC) }
        for cipher in plan.ciphers {
            try measure("ik-handshake", cipher: cipher, unit: "handshakes/s") { try HandshakeWorkload<Backend>(cipher) }
            try measure("chat-record", cipher: cipher, size: 64, unit: "records/s") { try ChatRecordWorkload<Backend>(cipher, size: 64) }
        }
        return results
    }
}
