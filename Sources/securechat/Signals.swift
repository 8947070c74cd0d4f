import Dispatch
import Glibc
import SecureChatCrypto

/// Signals handled as events instead of killing the process, while the value lives.
///
/// The handler is installed with `sigaction` before `init` returns and only writes the signal's
/// number into a pipe, which a dispatch source reads. A dispatch signal source alone arms itself
/// later, on its own thread: a SIGTERM sent right after the server said it listens was lost.
final class Signals: Sendable {
    private let token: Int

    init(_ numbers: [Int32], _ action: @escaping @Sendable (Int32) -> Void) {
        token = SignalPipe.shared.add(numbers, action)
    }

    deinit { SignalPipe.shared.remove(token) }

    /// Catches `numbers` from now on and returns a wait for the first of them.
    static func catching(_ numbers: [Int32]) -> () async -> Int32 {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let signals = Signals(numbers) { continuation.yield($0) }
        return {
            defer { withExtendedLifetime(signals) {} }
            for await number in stream { return number }
            return numbers[0]
        }
    }
}

/// The write end, read by the handler: a plain global so that the handler touches nothing else.
nonisolated(unsafe) private var signalWriteEnd: Int32 = -1

private final class SignalPipe: Sendable {
    static let shared = SignalPipe()

    private struct Handler { var token: Int; var numbers: [Int32]; var action: @Sendable (Int32) -> Void }
    private let handlers = Locked((next: 0, all: [Handler]()))
    /// Set once, kept for the life of the process.
    nonisolated(unsafe) private let reader: any DispatchSourceRead

    private init() {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0, "no pipe for signals")
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        signalWriteEnd = ends[1]
        let readEnd = ends[0]
        reader = DispatchSource.makeReadSource(fileDescriptor: readEnd, queue: .global())
        reader.setEventHandler {
            var numbers = [UInt8](repeating: 0, count: 64)
            let count = read(readEnd, &numbers, numbers.count)
            guard count > 0 else { return }
            numbers.prefix(count).forEach { SignalPipe.shared.deliver(Int32($0)) }
        }
        reader.resume()
    }

    private func deliver(_ number: Int32) {
        let actions = handlers.withLock { $0.all.filter { $0.numbers.contains(number) }.map(\.action) }
        actions.forEach { $0(number) }
    }

    func add(_ numbers: [Int32], _ action: @escaping @Sendable (Int32) -> Void) -> Int {
        let token = handlers.withLock { state in
            state.next += 1
            state.all.append(Handler(token: state.next, numbers: numbers, action: action))
            return state.next
        }
        for number in numbers { install(number, handler: { number in
            let saved = errno
            var byte = UInt8(truncatingIfNeeded: number)
            _ = write(signalWriteEnd, &byte, 1)
            errno = saved
        }) }
        return token
    }

    func remove(_ token: Int) {
        let released = handlers.withLock { state -> [Int32] in
            guard let gone = state.all.first(where: { $0.token == token }) else { return [] }
            state.all.removeAll { $0.token == token }
            return gone.numbers.filter { number in !state.all.contains { $0.numbers.contains(number) } }
        }
        for number in released { install(number, handler: nil) }
    }

    /// `nil` puts the default action back.
    private func install(_ number: Int32, handler: (@convention(c) (Int32) -> Void)?) {
        var action = sigaction()
        if let handler { action.__sigaction_handler.sa_handler = handler } else { action.__sigaction_handler.sa_handler = SIG_DFL }
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(number, &action, nil)
    }
}
