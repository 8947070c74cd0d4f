import Glibc
import SecureChatBackends
import SecureChatBench
import SecureChatCommandLine
import SecureChatCrypto
import SecureChatGcrypt
import SecureChatNetwork
import SecureChatOpenSSL

struct BenchCommand: Command {
    static let spec = CommandSpec(
        "bench",
        abstract: "Measure this device: seal/open throughput, X25519, IK handshakes, peer-to-peer connect latency.",
        discussion: """
            Every figure is the median of three timed slices. Throughput is for each backend × \
            cipher × size; handshakes are both sides in-process, compared with the sum of their \
            X25519 and hash costs ("vs floor"); the connect latency runs a throwaway server and two \
            peers in this process over loopback and times /chat until both sides are chatting. \
            About 30 seconds with the defaults. Progress goes to standard error.

            EXAMPLES:
              securechat bench
              securechat bench --backend openssl --cipher chachapoly --sizes 1024 --json
              securechat bench --sizes 64 --only "open gcrypt aesgcm 64" --seconds 0.1
            """,
        options: [
            .backends("measure"),
            .value("cipher", "CIPHER", help: "Which cipher to measure: chachapoly, aesgcm or all (default all).",
                   completion: .choices(CipherSelection.allCases.map(\.rawValue))),
            .value("sizes", "SIZES", help: "Message sizes in bytes, comma-separated (1 to 65519; default 16,64,1024,16384,65519)."),
            .value("seconds", "S", help: "Time for each figure, in seconds (default 0.4)."),
            .value("calls", "N", help: "Peer-to-peer calls to time (0: skip the connect latency; default 40)."),
            .flag("json", help: "Print the results as JSON instead of a table."),
            .value("only", "KEY", help: "Measure only this figure, named by its key as in --json (e.g. \"x25519-dh openssl\"); no connect latency."),
            .value("count", "N", help: "With --only: run that figure exactly N times, untimed (for instruction counts under valgrind)."),
        ])

    let backend: BackendSelection
    let cipher: CipherSelection
    let sizes: [Int]
    let seconds: Double
    let calls: Int
    let json: Bool
    let count: Int?
    let only: String?

    init(_ arguments: ParsedArguments) throws {
        backend = try arguments.choice("backend", BackendSelection.self) ?? .all
        cipher = try arguments.choice("cipher", CipherSelection.self) ?? .all
        sizes = try arguments.value("sizes", expected: "whole numbers from 1 to 65519, comma-separated, e.g. 16,64,1024") { text in
            let values = text.split(separator: ",").map { Int($0.trimmed) }
            guard !values.isEmpty, values.allSatisfy({ (1...65519).contains($0 ?? 0) }) else { return nil }
            return values.compactMap { $0 }
        } ?? [16, 64, 1024, 16384, 65519]
        seconds = try arguments.value("seconds", expected: "a number above 0 and at most 60") { text in
            Double(text).flatMap { $0 > 0 && $0 <= 60 ? $0 : nil }
        } ?? 0.4
        calls = try arguments.integer("calls", in: 0...10_000) ?? 40
        json = arguments.flag("json")
        count = try arguments.integer("count", in: 1...100_000_000)
        only = arguments.value("only")
        guard count == nil || only != nil else { throw CLIError("--count needs --only, e.g. --count 1000 --only \"x25519-dh openssl\"") }
    }

    func run() async throws {
        let plan = BenchPlan(ciphers: cipher.ciphers, sizes: sizes, seconds: seconds)
        var figures = [BenchFigure]()
        for name in backend.backends {
            // Concrete types, so that every workload runs code specialised for the backend.
            switch name {
            case .openssl: figures += CryptoBench<OpenSSLBackend>.figures(plan)
            case .gcrypt: figures += CryptoBench<GcryptBackend>.figures(plan)
            }
        }
        var connectCalls = calls
        if let only {
            guard let figure = figures.first(where: { $0.key == only }) else {
                throw CLIError("no figure \"\(only)\"; the keys are: \(figures.map(\.key).joined(separator: ", "))")
            }
            if let count {
                try figure.run(times: count)
                return Output.line("\(only) ran \(count) times")
            }
            figures = [figure]
            connectCalls = 0
        }
        let progress = Progress(total: figures.count + (connectCalls > 0 ? 1 : 0))
        var results = [BenchResult]()
        do {
            for figure in figures {
                progress.step(figure.key)
                results.append(try figure.measure())
            }
            if connectCalls > 0 {
                progress.step("peer-to-peer connect latency")
                results += try await measureConnectLatency(BackendName.openssl.implementation, calls: connectCalls)
            }
        } catch {
            progress.finish()
            throw CLIError("bench: \(error)")
        }
        progress.finish()
        let report = BenchReport(results: results)
        if json {
            Output.line(String(decoding: report.json.serialized, as: UTF8.self))
        } else {
            Output.line("securechat bench on \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs, \(seconds) s per figure\n")
            Output.line(report.table)
        }
    }
}

/// Unspecialised, as the peer program runs (`PeerCommand.runPeer`): the latency users get.
private func measureConnectLatency<Backend: CryptoBackend>(_: Backend.Type, calls: Int) async throws -> [BenchResult] {
    try await ConnectLatency<Backend>.measure(calls: calls)
}

/// A cipher choice on the command line: one cipher or both.
enum CipherSelection: String, CaseIterable {
    case chachapoly, aesgcm, all

    var ciphers: [CipherKind] {
        switch self {
        case .chachapoly: return [.chaChaPoly]
        case .aesgcm: return [.aesGCM]
        case .all: return CipherKind.allCases
        }
    }
}

/// "[12/57] seal openssl aesgcm 1024" on one line of standard error, rewritten in place on a
/// terminal, one line per step otherwise.
final class Progress {
    private let total: Int
    private var done = 0
    private let inPlace = isatty(STDERR_FILENO) == 1

    init(total: Int) { self.total = total }

    func step(_ what: String) {
        done += 1
        let line = "[\(done)/\(total)] \(what)"
        Output.error(inPlace ? "\r\u{1B}[K" + line : line + "\n")
    }

    func finish() {
        if inPlace { Output.error("\r\u{1B}[K") }
    }
}
