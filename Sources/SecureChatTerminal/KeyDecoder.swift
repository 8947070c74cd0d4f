/// A key as the line editor understands it.
public enum Key: Equatable, Sendable {
    /// Characters to insert (a whole UTF-8 sequence; a paste arrives as many).
    case text(String)
    case enter
    case backspace, delete
    case left, right, wordLeft, wordRight, home, end
    case up, down
    /// Ctrl-K, Ctrl-U, Ctrl-W (and Alt-Backspace), Ctrl-Y.
    case killToEnd, killToStart, killWordBack, yank
    /// Ctrl-D: end of input on an empty line, else delete under the cursor.
    case endOfInput
    /// Ctrl-L.
    case redraw
    /// Anything else: swallowed, never inserted (an unknown escape sequence, a function key).
    case ignored
}

/// Turns the bytes a terminal sends into keys: UTF-8 is assembled, escape sequences (CSI
/// `ESC [ … final`, SS3 `ESC O x`, Alt `ESC x`) are read whole, so an arrow key never arrives
/// as `[D` in the text. Pure: no terminal I/O.
public struct KeyDecoder: Sendable {
    private enum State: Sendable {
        case ground
        /// After ESC.
        case escape
        /// Inside `ESC [`, collecting parameter bytes.
        case csi([UInt8])
        /// After `ESC O`.
        case ss3
        /// Inside a multi-byte UTF-8 character: the bytes so far and how many it needs.
        case utf8([UInt8], Int)
    }

    private var state = State.ground

    public init() {}

    /// Feeds one byte; a key when one is complete.
    public mutating func feed(_ byte: UInt8) -> Key? {
        switch state {
        case .ground:
            return ground(byte)
        case .escape:
            state = .ground
            switch byte {
            case UInt8(ascii: "["): state = .csi([]); return nil
            case UInt8(ascii: "O"): state = .ss3; return nil
            case UInt8(ascii: "b"): return .wordLeft
            case UInt8(ascii: "f"): return .wordRight
            case 0x7F, 0x08: return .killWordBack
            case 0x1B: state = .escape; return .ignored
            default: return .ignored
            }
        case var .csi(parameters):
            // Parameter and intermediate bytes, then one final byte (ECMA-48).
            guard (0x40...0x7E).contains(byte) else {
                guard (0x20...0x3F).contains(byte), parameters.count < 16 else { state = .ground; return .ignored }
                parameters.append(byte)
                state = .csi(parameters)
                return nil
            }
            state = .ground
            return Self.csi(parameters, final: byte)
        case .ss3:
            state = .ground
            switch byte {
            case UInt8(ascii: "A"): return .up
            case UInt8(ascii: "B"): return .down
            case UInt8(ascii: "C"): return .right
            case UInt8(ascii: "D"): return .left
            case UInt8(ascii: "H"): return .home
            case UInt8(ascii: "F"): return .end
            default: return .ignored
            }
        case .utf8(var bytes, let needed):
            guard byte & 0xC0 == 0x80 else {
                state = .ground
                return ground(byte) ?? .ignored
            }
            bytes.append(byte)
            guard bytes.count == needed else {
                state = .utf8(bytes, needed)
                return nil
            }
            state = .ground
            // Overlong forms and surrogates are not text.
            let text = String(validating: bytes, as: UTF8.self)
            return text.map { .text($0) } ?? .ignored
        }
    }

    private mutating func ground(_ byte: UInt8) -> Key? {
        switch byte {
        case 0x1B: state = .escape; return nil
        case 0x0D, 0x0A: return .enter
        case 0x7F, 0x08: return .backspace
        case 0x01: return .home
        case 0x02: return .left
        case 0x04: return .endOfInput
        case 0x05: return .end
        case 0x06: return .right
        case 0x09: return .text(" ")
        case 0x0B: return .killToEnd
        case 0x0C: return .redraw
        case 0x0E: return .down
        case 0x10: return .up
        case 0x15: return .killToStart
        case 0x17: return .killWordBack
        case 0x19: return .yank
        case 0x00...0x1F: return .ignored
        case 0x20...0x7E: return .text(String(UnicodeScalar(byte)))
        case 0xC2...0xDF: state = .utf8([byte], 2); return nil
        case 0xE0...0xEF: state = .utf8([byte], 3); return nil
        case 0xF0...0xF4: state = .utf8([byte], 4); return nil
        default: return .ignored
        }
    }

    private static func csi(_ parameters: [UInt8], final: UInt8) -> Key {
        let number = Int(String(decoding: parameters.prefix { $0 != UInt8(ascii: ";") }, as: UTF8.self))
        // Modifiers (`1;5C` is Ctrl-Right): Ctrl or Alt with an arrow moves by words.
        let modified = parameters.contains(UInt8(ascii: ";"))
        switch final {
        case UInt8(ascii: "A"): return .up
        case UInt8(ascii: "B"): return .down
        case UInt8(ascii: "C"): return modified ? .wordRight : .right
        case UInt8(ascii: "D"): return modified ? .wordLeft : .left
        case UInt8(ascii: "H"): return .home
        case UInt8(ascii: "F"): return .end
        case UInt8(ascii: "~"):
            switch number {
            case 1?, 7?: return .home
            case 4?, 8?: return .end
            case 3?: return .delete
            default: return .ignored  // insert, page up/down, function keys, paste brackets
            }
        default: return .ignored
        }
    }
}
