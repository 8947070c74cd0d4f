import Glibc
import Synchronization

/// The peer's terminal. In a terminal, the line being typed is kept and redrawn under every
/// incoming line, so arriving messages never garble it. Otherwise (a script), one line in is one
/// command, and every event is one line out.
final class Console: Sendable {
    let interactive: Bool
    private static let prompt = "> "
    /// The line being typed (terminal only), as UTF-8 bytes.
    private let typing = Mutex<[UInt8]>([])
    /// Whether the line editor is running (and so owns the last line of the screen).
    private let editing = Atomic<Bool>(false)
    private let saved = Mutex<termios?>(nil)

    init() { interactive = Terminal.isInteractive }

    /// Shows one event line.
    func show(_ line: String) {
        guard interactive, editing.load(ordering: .relaxed) else { return Output.line(line) }
        typing.withLock { typed in
            Output.write(STDOUT_FILENO, "\r\u{1B}[K" + line + "\n" + Self.prompt + String(decoding: typed, as: UTF8.self))
        }
    }

    /// Reads lines until the end of input, calling `line` for each; blocks, so run it on its own thread.
    func readLines(_ line: (String) -> Void) {
        interactive ? readTyped(line) : readPiped(line)
    }

    /// Puts the terminal back as it was (echo, line editing).
    func restore() {
        editing.store(false, ordering: .relaxed)
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
        typing.withLock { _ in
            editing.store(true, ordering: .relaxed)
            Output.write(STDOUT_FILENO, Self.prompt)
        }
        while true {
            var byte: UInt8 = 0
            let count = read(STDIN_FILENO, &byte, 1)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            switch byte {
            case 0x0A, 0x0D:  // Enter
                let text = typing.withLock { typed in
                    defer { typed.removeAll() }
                    Output.write(STDOUT_FILENO, "\r\u{1B}[K")
                    return String(decoding: typed, as: UTF8.self)
                }
                show(Self.prompt + text)
                line(text)
            case 0x04:  // Ctrl-D: end of input on an empty line
                if typing.withLock({ $0.isEmpty }) { return }
            case 0x7F, 0x08:  // Backspace: remove one character (all its UTF-8 bytes)
                typing.withLock { typed in
                    while let last = typed.popLast(), last & 0xC0 == 0x80 {}
                    Output.write(STDOUT_FILENO, "\r\u{1B}[K" + Self.prompt + String(decoding: typed, as: UTF8.self))
                }
            case 0x15:  // Ctrl-U: clear the line
                typing.withLock { typed in
                    typed.removeAll()
                    Output.write(STDOUT_FILENO, "\r\u{1B}[K" + Self.prompt)
                }
            case 0x20..., 0x09:
                typing.withLock { typed in
                    typed.append(byte)
                    // Echo whole characters only: a UTF-8 sequence shows when complete.
                    if byte < 0x80 || byte & 0xC0 == 0x80 && isComplete(typed) {
                        Output.write(STDOUT_FILENO, "\r\u{1B}[K" + Self.prompt + String(decoding: typed, as: UTF8.self))
                    }
                }
            default:
                break
            }
        }
    }

    private func isComplete(_ bytes: [UInt8]) -> Bool {
        guard let start = bytes.lastIndex(where: { $0 & 0xC0 != 0x80 }) else { return false }
        let lead = bytes[start]
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return bytes.count - start == length
    }
}
