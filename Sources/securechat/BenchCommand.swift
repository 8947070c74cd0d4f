import ArgumentParser
import Glibc
import SecureChatBackends
import SecureChatBench
import SecureChatCrypto
import SecureChatGcrypt
import SecureChatNetwork
import SecureChatOpenSSL

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure this device: seal/open throughput, X25519, IK handshakes, peer-to-peer connect latency.",
        discussion: """
            Every figure is the median of three timed slices. Throughput is for each backend × \
            cipher × size; handshakes are both sides in-process, compared with the sum of their \
            X25519 and hash costs ("vs floor"); the connect latency runs a throwaway server and two \
            peers in this process over loopback and times /chat until both sides are chatting. \
            About 30 seconds with the defaults. Progress goes to standard error.
            """
    )

    @Option(help: "Which backend to measure: openssl, gcrypt or all.")
    var backend: BackendSelection = .all

    @Option(help: "Which cipher to measure: chachapoly, aesgcm or all.")
    var cipher: CipherSelection = .all

    @Option(help: ArgumentHelp("Message sizes in bytes, comma-separated (1 to 65519).", valueName: "SIZES"))
    var sizes = "16,64,1024,16384,65519"

    @Option(help: ArgumentHelp("Time for each figure, in seconds.", valueName: "S"))
    var seconds = 0.4

    @Option(help: ArgumentHelp("Peer-to-peer calls to time (0: skip the connect latency).", valueName: "N"))
    var calls = 40

    @Flag(help: "Print the results as JSON instead of a table.")
    var json = false

    func validate() throws {
        guard parsedSizes != nil else { throw ValidationError("--sizes wants whole numbers from 1 to 65519, e.g. 16,64,1024") }
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds wants a number above 0 and at most 60") }
        guard (0...10_000).contains(calls) else { throw ValidationError("--calls wants 0 to 10000") }
    }

    private var parsedSizes: [Int]? {
        let values = sizes.split(separator: ",").map { Int($0.trimmed) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 65519 }) else { return nil }
        return values.compactMap { $0 }
    }

    func run() async throws {
        let plan = BenchPlan(ciphers: cipher.ciphers, sizes: parsedSizes ?? [], seconds: seconds)
        var figures = [BenchFigure]()
        for name in backend.backends {
            // Concrete types, so that every workload runs code specialised for the backend.
            switch name {
            case .openssl: figures += CryptoBench<OpenSSLBackend>.figures(plan)
            case .gcrypt: figures += CryptoBench<GcryptBackend>.figures(plan)
            }
        }
        let progress = Progress(total: figures.count + (calls > 0 ? 1 : 0))
        var results = [BenchResult]()
        do {
            for figure in figures {
                progress.step(figure.key)
                results.append(try figure.measure())
            }
            if calls > 0 {
                progress.step("peer-to-peer connect latency")
                results += try await measureConnectLatency(BackendName.openssl.implementation, calls: calls)
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
enum CipherSelection: String, ExpressibleByArgument, CaseIterable {
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
