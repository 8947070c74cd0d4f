import Glibc
import SecureChatCore
import SecureChatCrypto
import SecureChatTerminal

/// The peer's terminal. Every line it shows passes `VisibleText` first: whatever others sent,
/// one event is one line and no escape sequence reaches the terminal. In a terminal, the line
/// being typed (`LineEditor`: arrows, Home/End, Ctrl-A/E/W/K/U/Y, history) keeps the bottom row
/// and is redrawn under every arriving line. Otherwise (a script), one line in is one command,
/// and every event is one line out.
final class Console: Sendable {
    let interactive: Bool
    /// `[14:02] ` before chat lines (on in a terminal, off in line mode unless asked).
    let timestamps: Bool
    private static let prompt = "> "

    private struct State {
        /// Whether the editor is running (and so owns the bottom row of the screen).
        var running = false
        var editor = LineEditor()
        /// A passcode being typed instead of a line: its bytes (wiped) and who waits for it.
        var secret: (prompt: String, bytes: [UInt8], waiter: @Sendable (SecretBytes?) -> Void)?

        mutating func bottomRow() -> String {
            if let secret { return "\r" + secret.prompt + "\u{1B}[K" }
            return editor.render(prompt: Console.prompt, width: Terminal.width)
        }
    }

    private let state = Locked(State())
    private let saved = Locked<termios?>(nil)

    init(timestamps: Bool?) {
        interactive = Terminal.isInteractive
        self.timestamps = timestamps ?? interactive
    }

    /// Shows one event line.
    func show(_ line: String) {
        let safe = VisibleText.make(line, .terminal)
        state.withLock { state in
            guard interactive, state.running else { return Output.line(safe) }
            Output.write(STDOUT_FILENO, "\r\u{1B}[K" + safe + "\n" + state.bottomRow())
        }
    }

    /// Shows a chat line, with the time when asked.
    func showMessage(_ line: String) { show(stamp + line) }

    private var stamp: String {
        guard timestamps else { return "" }
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return "[" + (parts.tm_hour < 10 ? "0" : "") + "\(parts.tm_hour):" + (parts.tm_min < 10 ? "0" : "") + "\(parts.tm_min)] "
    }

    /// Asks for a passcode again while the editor may be reading keys: the next line typed is
    /// taken without echo, into memory that is wiped.
    func readSecret(prompt: String) async -> SecretBytes? {
        await withCheckedContinuation { continuation in
            state.withLock { state in
                state.secret = (prompt, [], { continuation.resume(returning: $0) })
                Output.write(STDOUT_FILENO, state.bottomRow())
            }
        }
    }

    /// Reads lines until the end of input, calling `line` for each; blocks, so run it on its own thread.
    func readLines(_ line: (String) -> Void) {
        interactive ? readTyped(line) : readPiped(line)
    }

    /// Puts the terminal back as it was (echo, line editing).
    func restore() {
        let waiter = state.withLock { state in
            state.running = false
            state.editor.clear()
            defer { state.secret = nil }
            state.secret?.bytes.withUnsafeMutableBytes(secureWipe)
            return state.secret?.waiter
        }
        waiter?(nil)
        saved.withLock { saved in
            guard var original = saved else { return }
            tcsetattr(STDIN_FILENO, TCSANOW, &original)
            saved = nil
            Output.write(STDOUT_FILENO, "\r\u{1B}[K")
        }
    }

    /// Ctrl-Z: the terminal as it was, stop; at `fg`, our mode again and the line redrawn.
    func suspend() {
        if var original = saved.withLock({ $0 }) {
            Output.write(STDOUT_FILENO, "\r\u{1B}[K")
            tcsetattr(STDIN_FILENO, TCSANOW, &original)
        }
        // SIGTSTP is handled (so that the terminal is put back first): stop for real now.
        kill(getpid(), SIGSTOP)
        resume()
    }

    /// After `fg` (SIGCONT) or a resize (SIGWINCH): our terminal mode again, the bottom row redrawn.
    func resume() {
        guard saved.withLock({ $0 }) != nil else { return }
        Terminal.enterCharacterMode()
        state.withLock { state in
            guard state.running else { return }
            Output.write(STDOUT_FILENO, state.bottomRow())
        }
    }

    /// Lines end at LF, CR or CRLF: a carriage return never goes into a chat line (the other
    /// side would end the chat for it).
    private func readPiped(_ line: (String) -> Void) {
        var pending = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        var afterCR = false
        while true {
            let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            for byte in chunk.prefix(count) {
                defer { afterCR = byte == 0x0D }
                guard byte == 0x0A || byte == 0x0D else { pending.append(byte); continue }
                if byte == 0x0A, afterCR { continue }  // the LF of a CRLF
                line(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
            }
        }
        if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
    }

    /// Character at a time, no echo: we draw the line ourselves. Ctrl-C still raises SIGINT,
    /// Ctrl-Z SIGTSTP.
    private func readTyped(_ line: (String) -> Void) {
        var original = termios()
        tcgetattr(STDIN_FILENO, &original)
        saved.withLock { $0 = original }
        Terminal.enterCharacterMode()
        defer { restore() }
        state.withLock { state in
            state.running = true
            Output.write(STDOUT_FILENO, state.bottomRow())
        }
        var chunk = [UInt8](repeating: 0, count: 4096)
        defer { chunk.withUnsafeMutableBytes(secureWipe) }
        while true {
            let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            var typed = ArraySlice(chunk.prefix(count))
            while !typed.isEmpty {
                if let rest = feedSecret(typed) {
                    typed = rest
                    continue
                }
                let (events, rest) = edit(typed)
                typed = rest
                for event in events {
                    switch event {
                    case let .submitted(text):
                        show(text.hasPrefix("/") ? Self.prompt + text : stamp + Self.prompt + text)
                        line(text)
                    case .endOfInput:
                        return
                    }
                }
            }
        }
    }

    /// While a passcode is asked for, takes typed bytes into it, up to Enter; returns the bytes
    /// after it (nil: no passcode is asked for).
    private func feedSecret(_ typed: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var rest = typed
        let finished: (@Sendable (SecretBytes?) -> Void, SecretBytes)?? = state.withLock { state in
            guard state.secret != nil else { return .none }
            while let byte = rest.popFirst() {
                switch byte {
                case 0x0A, 0x0D:
                    guard let secret = state.secret else { return .some(nil) }
                    let bytes = SecretBytes(secret.bytes)
                    state.secret?.bytes.withUnsafeMutableBytes(secureWipe)
                    state.secret = nil
                    Output.write(STDOUT_FILENO, "\r\u{1B}[K" + state.bottomRow())
                    return .some((secret.waiter, bytes))
                case 0x7F, 0x08:
                    // A whole character: its UTF-8 continuation bytes too.
                    while let last = state.secret?.bytes.popLast(), last & 0xC0 == 0x80 {}
                case 0x15:
                    state.secret?.bytes.withUnsafeMutableBytes(secureWipe)
                    state.secret?.bytes.removeAll()
                default:
                    if byte >= 0x20 { state.secret?.bytes.append(byte) }
                }
            }
            return .some(nil)
        }
        guard let finished else { return nil }
        if let (waiter, bytes) = finished { waiter(bytes) }
        return rest
    }

    /// Feeds typed bytes to the editor up to the first submitted line (what follows may be a
    /// passcode), redraws, and returns the events and the bytes not fed yet.
    private func edit(_ typed: ArraySlice<UInt8>) -> ([LineEditor.Event], ArraySlice<UInt8>) {
        state.withLock { state in
            var events = [LineEditor.Event]()
            var rest = typed
            while events.isEmpty, let byte = rest.popFirst() {
                events = state.editor.feed(CollectionOfOne(byte))
            }
            Output.write(STDOUT_FILENO, events.isEmpty ? state.bottomRow() : "\r\u{1B}[K")
            return (events, rest)
        }
    }
}
