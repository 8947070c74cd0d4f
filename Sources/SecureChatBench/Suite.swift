import SecureChatCore
import SecureChatCrypto

/// One measured figure. `key` names it the same way in the JSON, in the C baseline's output and
/// in scripts/bench-crypto.sh: "seal openssl aesgcm 1024", "x25519-dh gcrypt", "connect direct p50".
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
}

/// One figure to measure: its key, known before it runs (for progress), and the measurement.
public struct BenchFigure {
    public let key: String
    private let template: BenchResult
    private let rate: () throws -> Double
    private let repeated: (Int) throws -> Void

    init<W: Workload>(_ template: BenchResult, seconds: Double, scale: Double, _ workload: @escaping () throws -> W) {
        key = template.key
        self.template = template
        rate = {
            var instance = try workload()
            return try operationsPerSecond(seconds: seconds) { try instance.run(times: $0) } * scale
        }
        repeated = { count in
            var instance = try workload()
            try instance.run(times: count)
        }
    }

    /// Runs the operation exactly `count` times, untimed: for instruction counts under callgrind,
    /// where the difference between two counts cancels the set-up (scripts/bench-instructions.sh).
    public func run(times count: Int) throws { try repeated(count) }

    public func measure() throws -> BenchResult {
        var result = template
        result.value = try rate()
        return result
    }
}

/// The on-device crypto figures for one backend. Generic, and called with a concrete backend
/// type, so each workload (and the closure that times it) runs specialised code.
public enum CryptoBench<Backend: CryptoBackend> {
    /// Throughput (seal, open; MB/s), X25519 and hashing (operations/s), the IK handshake and the
    /// chat record path, in the order they run.
    public static func figures(_ plan: BenchPlan) -> [BenchFigure] {
        var figures = [BenchFigure]()
        func add<W: Workload>(_ measure: String, cipher: CipherKind? = nil, size: Int? = nil, unit: String,
                              scale: Double = 1, _ workload: @escaping () throws -> W) {
            let template = BenchResult(measure, backend: Backend.name, cipher: cipher, size: size, value: 0, unit: unit)
            figures.append(BenchFigure(template, seconds: plan.seconds, scale: scale, workload))
        }
        for cipher in plan.ciphers {
            for size in plan.sizes {
                let megabytes = Double(size) / 1e6
                add("seal", cipher: cipher, size: size, unit: "MB/s", scale: megabytes) { try SealWorkload<Backend>(cipher, size: size) }
                add("open", cipher: cipher, size: size, unit: "MB/s", scale: megabytes) { try OpenWorkload<Backend>(cipher, size: size) }
            }
        }
        add("x25519-keygen", unit: "ops/s") { KeyGenerationWorkload<Backend>() }
        add("x25519-dh", unit: "ops/s") { try DiffieHellmanWorkload<Backend>() }
        add("sha256-64", unit: "ops/s") { HashWorkload<Backend>(.mixHash) }
        add("hmac-sha256-33", unit: "ops/s") { HashWorkload<Backend>(.hkdfHMAC) }
        for cipher in plan.ciphers {
            add("ik-handshake", cipher: cipher, unit: "handshakes/s") { try HandshakeWorkload<Backend>(cipher) }
            add("chat-record", cipher: cipher, size: 64, unit: "records/s") { try ChatRecordWorkload<Backend>(cipher, size: 64) }
        }
        return figures
    }
}
