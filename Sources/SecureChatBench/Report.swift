#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SecureChatCore
import SecureChatCrypto

/// The results of one `securechat bench` run, as a table, as JSON, and as a recommendation.
public struct BenchReport: Sendable {
    public var results: [BenchResult]

    /// Adds the derived figures: each IK handshake's time over its X25519 and hash floor.
    public init(results: [BenchResult]) {
        self.results = results
        for result in results where result.measure == "ik-handshake" {
            guard let backend = result.backend, let cipher = result.cipher,
                  let over = handshakeOverFloor(backend: backend, cipher: cipher) else { continue }
            self.results.append(BenchResult("ik-vs-floor", backend: backend, cipher: CipherKind(configName: cipher),
                                            value: over, unit: "×"))
        }
    }

    public func value(_ key: String) -> Double? { results.first { $0.key == key }?.value }

    private var backends: [String] { unique(results.compactMap(\.backend)) }
    private var ciphers: [String] { unique(results.compactMap(\.cipher)) }
    private var sizes: [Int] { unique(results.filter { $0.measure == "seal" }.compactMap(\.size)) }

    /// The IK handshake's time over the sum of its X25519 and hash costs (`HandshakeCost`).
    private func handshakeOverFloor(backend: String, cipher: String) -> Double? {
        guard let rate = value("ik-handshake \(backend) \(cipher)"),
              let keyGenerations = value("x25519-keygen \(backend)"), let diffieHellmans = value("x25519-dh \(backend)"),
              let hashes = value("sha256-64 \(backend)"), let hmacs = value("hmac-sha256-33 \(backend)") else { return nil }
        let floor = HandshakeCost.floor(keyGenerationsPerSecond: keyGenerations, diffieHellmansPerSecond: diffieHellmans,
                                        mixHashesPerSecond: hashes, hmacsPerSecond: hmacs)
        return (1 / rate) / floor
    }

    /// Which backend and cipher move messages fastest here (the geometric mean of seal and open
    /// MB/s over every size measured), and which backend does handshakes fastest.
    public var recommendation: String {
        var best: (backend: String, cipher: String, score: Double)?
        for backend in backends {
            for cipher in ciphers {
                let rates = results.filter { ($0.measure == "seal" || $0.measure == "open") && $0.backend == backend && $0.cipher == cipher }
                    .map(\.value)
                guard !rates.isEmpty, rates.allSatisfy({ $0 > 0 }) else { continue }
                let score = exp(rates.map(log).reduce(0, +) / Double(rates.count))
                if score > best?.score ?? 0 { best = (backend, cipher, score) }
            }
        }
        guard let best else { return "no throughput was measured" }
        var line = "fastest here: \(best.backend) with \(best.cipher) for messages"
        let handshakes = backends.compactMap { backend in
            ciphers.compactMap { value("ik-handshake \(backend) \($0)") }.max().map { (backend, $0) }
        }
        if handshakes.count > 1, let fastest = handshakes.max(by: { $0.1 < $1.1 }) {
            line += ", \(fastest.0) for handshakes (\(Self.format(fastest.1))/s)"
        }
        return line
    }

    // MARK: Table

    public var table: String {
        var lines = [String]()
        if !sizes.isEmpty {
            lines.append("Seal and open throughput, MB/s")
            let header = sizes.map(Self.sizeLabel)
            lines.append(row(["backend", "cipher", "op"], header))
            for backend in backends {
                for cipher in ciphers {
                    for operation in ["seal", "open"] {
                        let cells = sizes.map { value("\(operation) \(backend) \(cipher) \($0)").map { Self.format($0) } ?? "-" }
                        lines.append(row([backend, cipher, operation], cells, under: header))
                    }
                }
            }
            lines.append("")
        }
        let perBackend = backends.filter { value("x25519-dh \($0)") != nil }
        if !perBackend.isEmpty {
            lines.append("Per second (both sides of a handshake in-process; a chat record is 64 bytes sealed and opened)")
            let columns = ["X25519 keygen", "X25519 DH"] + ciphers.flatMap { ["IK \($0)", "vs floor", "records \($0)"] }
            lines.append(row(["backend", "", ""], columns))
            for backend in perBackend {
                var cells = [value("x25519-keygen \(backend)"), value("x25519-dh \(backend)")].map { $0.map { Self.format($0) } ?? "-" }
                for cipher in ciphers {
                    cells.append(value("ik-handshake \(backend) \(cipher)").map { Self.format($0) } ?? "-")
                    cells.append(value("ik-vs-floor \(backend) \(cipher)").map { Self.format($0, digits: 2) + "×" } ?? "-")
                    cells.append(value("chat-record \(backend) \(cipher) 64").map { Self.format($0) } ?? "-")
                }
                lines.append(row([backend, "", ""], cells, under: columns))
            }
            lines.append("")
        }
        if let trials = value("connect trials") {
            lines.append("Peer-to-peer connect over loopback, /chat to both chatting (\(Int(trials)) calls each):")
            for path in ["direct", "relayed"] {
                guard let p50 = value("connect \(path) p50"), let p99 = value("connect \(path) p99") else { continue }
                lines.append("  \(path.padding(to: 8)) p50 \(Self.format(p50, digits: 2)) ms, p99 \(Self.format(p99, digits: 2)) ms")
            }
            lines.append("")
        }
        lines.append(recommendation)
        return lines.joined(separator: "\n")
    }

    /// Labels left-aligned, then cells right-aligned under their column headers (`under`).
    private func row(_ labels: [String], _ cells: [String], under header: [String]? = nil) -> String {
        let left = zip(labels, [8, 11, 5]).map { $0.padding(to: $1) }.joined()
        let widths = (header ?? cells).map { max($0.count, 9) + 2 }
        return left + zip(cells, widths).map { String(repeating: " ", count: max(1, $1 - $0.count)) + $0 }.joined()
    }

    static func sizeLabel(_ size: Int) -> String {
        size >= 1024 && size % 1024 == 0 ? "\(size / 1024) KiB" : "\(size) B"
    }

    /// Three significant digits at most below 1000, whole numbers with thousands separators above.
    static func format(_ value: Double, digits: Int? = nil) -> String {
        let decimals = digits ?? (value >= 100 ? 0 : value >= 10 ? 1 : 2)
        let text = fixedPoint(value, decimals: decimals)
        guard decimals == 0, text.count > 3 else { return text }
        var grouped = ""
        for (index, character) in text.reversed().enumerated() {
            if index > 0 && index % 3 == 0 { grouped.append(",") }
            grouped.append(character)
        }
        return String(grouped.reversed())
    }

    // MARK: JSON

    public var json: JSONValue {
        .object([
            ("results", .array(results.map { result in
                var members: [(key: String, value: JSONValue)] = [("key", .string(result.key)), ("measure", .string(result.measure))]
                if let backend = result.backend { members.append(("backend", .string(backend))) }
                if let cipher = result.cipher { members.append(("cipher", .string(cipher))) }
                if let size = result.size { members.append(("size", .number(String(size)))) }
                members.append(("value", .number(Self.format(result.value, digits: 3))))
                members.append(("unit", .string(result.unit)))
                return .object(members)
            })),
            ("recommendation", .string(recommendation)),
        ])
    }
}

private func unique<T: Equatable>(_ values: [T]) -> [T] {
    var seen = [T]()
    for value in values where !seen.contains(value) { seen.append(value) }
    return seen
}

private extension String {
    func padding(to width: Int) -> String { self + String(repeating: " ", count: max(1, width - count)) }
}
