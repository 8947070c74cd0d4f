import Glibc
import SecureChatCrypto
import Synchronization

/// The peer's terminal. In a terminal, the line being typed is kept and redrawn under every
/// incoming line, so arriving messages never garble it. Otherwise (a script), one line in is one
/// command, and every event is one line out.
final class Console: Sendable {
    let interactive: Bool
    private static let prompt = "> "

    /// The line editor's state, shared by the thread reading keys and the threads showing events.
    private struct Editor {
        /// Whether the editor is running (and so owns the last line of the screen).
        var running = false
        /// The line being typed, as UTF-8 bytes.
        var typed: [UInt8] = []
        /// Set while a passcode is asked for: the next line goes here, never echoed or shown.
        var secretWaiter: (@Sendable (SecretBytes?) -> Void)?

        var isSecret: Bool { secretWaiter != nil }

        mutating func clear() {
            typed.withUnsafeMutableBytes(secureWipe)
            typed.removeAll()
        }

        /// The bottom line as it should look now.
        var bottomLine: String { isSecret ? "" : Console.prompt + String(decoding: typed, as: UTF8.self) }
    }

    private let editor = Mutex(Editor())
    private let saved = Mutex<termios?>(nil)

    init() { interactive = Terminal.isInteractive }

    /// Shows one event line.
    func show(_ line: String) {
        editor.withLock { editor in
            guard interactive, editor.running, !editor.isSecret else { return Output.line(line) }
            Output.write(STDOUT_FILENO, "\r\u{1B}[K" + line + "\n" + editor.bottomLine)
        }
    }

    /// Asks for a passcode again while the editor may be reading keys: the next line typed is
    /// taken without echo. Before the editor runs, reads it directly.
    func readSecret(prompt: String) async -> SecretBytes? {
        await withCheckedContinuation { continuation in
            editor.withLock { editor in
                editor.clear()
                editor.secretWaiter = { continuation.resume(returning: $0) }
                Output.write(STDOUT_FILENO, "\r\u{1B}[K" + prompt)
            }
        }
    }

    /// Reads lines until the end of input, calling `line` for each; blocks, so run it on its own thread.
    func readLines(_ line: (String) -> Void) {
        interactive ? readTyped(line) : readPiped(line)
    }

    /// Puts the terminal back as it was (echo, line editing).
    func restore() {
        let waiter = editor.withLock { editor in
            editor.running = false
            editor.clear()
            defer { editor.secretWaiter = nil }
            return editor.secretWaiter
        }
        waiter?(nil)
        saved.withLock { saved in
            guard var original = saved else { return }
            tcsetattr(STDIN_FILENO, TCSANOW, &original)
            saved = nil
            Output.write(STDOUT_FILENO, "\r\u{1B}[K")
        }
    }

    private func readPiped(_ line: (String) -> Void) {
        var pending = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            pending += chunk.prefix(count)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                var text = Array(pending[..<newline])
                if text.last == UInt8(ascii: "\r") { text.removeLast() }
                pending.removeSubrange(...newline)
                line(String(decoding: text, as: UTF8.self))
            }
        }
        if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
    }

    /// Character at a time, no echo: we draw the line ourselves. Ctrl-C still raises SIGINT.
    private func readTyped(_ line: (String) -> Void) {
        var original = termios()
        tcgetattr(STDIN_FILENO, &original)
        saved.withLock { $0 = original }
        var raw = original
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
        defer { restore() }
        editor.withLock { editor in
            editor.running = true
            Output.write(STDOUT_FILENO, editor.bottomLine)
        }
        while true {
            var byte: UInt8 = 0
            let count = read(STDIN_FILENO, &byte, 1)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            switch byte {
            case 0x0A, 0x0D:  // Enter
                if let secret = takeSecret() {
                    secret.waiter(secret.bytes)
                    continue
                }
                let text = editor.withLock { editor in
                    defer { editor.clear() }
                    Output.write(STDOUT_FILENO, "\r\u{1B}[K")
                    return String(decoding: editor.typed, as: UTF8.self)
                }
                show(Self.prompt + text)
                line(text)
            case 0x04:  // Ctrl-D: end of input on an empty line
                if editor.withLock({ $0.typed.isEmpty }) { return }
            case 0x7F, 0x08:  // Backspace: remove one character (all its UTF-8 bytes)
                edit { typed in while let last = typed.popLast(), last & 0xC0 == 0x80 {} }
            case 0x15:  // Ctrl-U: clear the line
                edit { typed in typed.withUnsafeMutableBytes(secureWipe); typed.removeAll() }
            case 0x20..., 0x09:
                edit { typed in typed.append(byte) }
            default:
                break
            }
        }
    }

    /// Changes the typed line and redraws it (nothing is drawn while a secret is typed).
    private func edit(_ change: (inout [UInt8]) -> Void) {
        editor.withLock { editor in
            change(&editor.typed)
            guard !editor.isSecret, isWholeCharacters(editor.typed) else { return }
            Output.write(STDOUT_FILENO, "\r\u{1B}[K" + editor.bottomLine)
        }
    }

    /// At Enter while a passcode is asked for: the typed bytes, wiped from the editor.
    private func takeSecret() -> (waiter: @Sendable (SecretBytes?) -> Void, bytes: SecretBytes)? {
        editor.withLock { editor in
            guard let waiter = editor.secretWaiter else { return nil }
            let secret = SecretBytes(editor.typed)
            editor.clear()
            editor.secretWaiter = nil
            Output.write(STDOUT_FILENO, "\n" + editor.bottomLine)
            return (waiter, secret)
        }
    }

    /// Whether `bytes` ends on a character boundary (a UTF-8 sequence shows when complete).
    private func isWholeCharacters(_ bytes: [UInt8]) -> Bool {
        guard let start = bytes.lastIndex(where: { $0 & 0xC0 != 0x80 }) else { return bytes.isEmpty }
        let lead = bytes[start]
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return bytes.count - start == length
    }
}
