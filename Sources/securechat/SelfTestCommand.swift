import ArgumentParser
import SecureChatBackends

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Run known-answer tests of every primitive on the chosen backends and check they agree.",
        discussion: "Exit status 0 only when every check passes."
    )

    @Option(help: "Which backend to test: openssl, gcrypt or all.")
    var backend: BackendSelection = .all

    func run() throws {
        let results = SelfTest.run(backends: backend.backends)
        for result in results {
            let verdict = result.failure == nil ? "ok  " : "FAIL"
            print("\(verdict) \(result.subject): \(result.check)" + (result.failure.map { " — \($0)" } ?? ""))
        }
        let failed = results.filter { $0.failure != nil }.count
        print("selftest: \(results.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode.failure }
    }
}
