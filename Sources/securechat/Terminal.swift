import Glibc
import SecureChatCrypto

/// Standard input as a person or a script gives it.
enum Terminal {
    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 }

    /// The terminal's width in columns (80 when it does not say).
    static var width: Int {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// Keys one at a time and no echo (the line editor draws the line); signals stay on.
    static func enterCharacterMode() {
        var mode = termios()
        tcgetattr(STDIN_FILENO, &mode)
        mode.c_lflag &= ~tcflag_t(ICANON | ECHO)
        mode.c_cc.6 = 1  // VMIN: a read returns with the first byte…
        mode.c_cc.5 = 0  // VTIME: …and does not wait for more
        tcsetattr(STDIN_FILENO, TCSANOW, &mode)
    }

    /// One line from standard input, echo off when it is a terminal (the prompt goes to
    /// standard error). The bytes live only in wiped memory. Nil at end of input.
    static func readSecret(prompt: String) -> SecretBytes? {
        let interactive = isInteractive
        var saved = termios()
        if interactive {
            Output.error(prompt)
            tcgetattr(STDIN_FILENO, &saved)
            var quiet = saved
            // No echo; Ctrl-C arrives as a byte (cancel) so the terminal is always put back.
            quiet.c_lflag &= ~tcflag_t(ECHO | ISIG)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        }
        defer {
            if interactive {
                tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
                Output.error("\n")
            }
        }
        let buffer = SecretBytes(count: 1024)
        var length = 0
        var ended = false
        buffer.withUnsafeMutableBytes { bytes in
            while length < bytes.count {
                var byte: UInt8 = 0
                let count = Glibc.read(STDIN_FILENO, &byte, 1)
                if count < 0, errno == EINTR { continue }
                if count <= 0 || byte == 0x03 || byte == 0x04 && length == 0 { ended = true; return }
                if byte == UInt8(ascii: "\n") { return }
                bytes[length] = byte
                length += 1
            }
        }
        if ended { return nil }
        if length > 0, buffer.withUnsafeBytes({ $0[length - 1] }) == UInt8(ascii: "\r") { length -= 1 }
        return buffer.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[..<length])) }
    }
}
