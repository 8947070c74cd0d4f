import SecureChatBackends
import SecureChatCommandLine
import SecureChatCore
import SecureChatNetwork

struct SelfTestCommand: Command {
    static let spec = CommandSpec(
        "selftest",
        abstract: "Run known-answer tests of every primitive on the chosen backends and check they agree.",
        discussion: """
            With --noise-vectors, also plays every vector of a cacophony-format file whose protocol \
            securechat's Noise engine speaks (25519, ChaChaPoly or AESGCM, SHA256) on each backend. \
            Exit status 0 only when every check passes.

            EXAMPLES:
              securechat selftest
              securechat selftest --backend gcrypt --noise-vectors cacophony.txt
            """,
        options: [
            .backends("test"),
            .value("noise-vectors", "FILE", help: "A cacophony-format Noise vector file.", completion: .files),
        ])

    let backend: BackendSelection
    let noiseVectors: String?

    init(_ arguments: ParsedArguments) throws {
        backend = try arguments.choice("backend", BackendSelection.self) ?? .all
        noiseVectors = arguments.value("noise-vectors")
    }

    func run() throws {
        let vectorDocument: [UInt8]?
        do { vectorDocument = try noiseVectors.map { try Files.read($0) } } catch { throw CLIError("\(error)") }
        let results = SelfTest.run(backends: backend.backends)
        for result in results {
            let verdict = result.failure == nil ? "ok  " : "FAIL"
            print("\(verdict) \(result.subject): \(result.check)" + (result.failure.map { " — \($0)" } ?? ""))
        }
        var failed = results.filter { $0.failure != nil }.count
        var passed = results.count - failed
        if let noiseVectors, let vectorDocument {
            for backend in backend.backends {
                let report: NoiseVectorReport
                do {
                    report = try NoiseVectors.run(vectorDocument, backend: backend.implementation)
                } catch {
                    throw CLIError("\(noiseVectors) is not a cacophony vector file: \(error)")
                }
                for failure in report.failed { print("FAIL \(backend): Noise vector \(failure.name) — \(failure.reason)") }
                print("noise vectors on \(backend): \(report.passed.count) passed, \(report.failed.count) failed, "
                      + "\(report.skippedCount) skipped")
                for (reason, count) in report.skipped.sorted(by: { $0.key < $1.key }) { print("  skipped \(count): \(reason)") }
                passed += report.passed.count
                failed += report.failed.count
            }
        }
        print("selftest: \(passed) passed, \(failed) failed")
        if failed > 0 { throw ExitStatus.failure }
    }
}
