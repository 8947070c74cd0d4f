import Dispatch
import Glibc

/// Signals handled as events instead of killing the process, while the value lives.
final class Signals {
    private let sources: [any DispatchSourceSignal]

    init(_ numbers: [Int32], _ action: @escaping @Sendable (Int32) -> Void) {
        sources = numbers.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { action(number) }
            source.resume()
            return source
        }
    }

    deinit { sources.forEach { $0.cancel() } }

    /// Waits for the first of `numbers` (the server's SIGINT/SIGTERM: stop cleanly).
    static func first(of numbers: [Int32]) async -> Int32 {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let signals = Signals(numbers) { continuation.yield($0) }
        defer { withExtendedLifetime(signals) {} }
        for await number in stream { return number }
        return numbers[0]
    }
}
