import Glibc
import SecureChatCrypto

/// Standard input as a person or a script gives it.
enum Terminal {
    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 }

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
