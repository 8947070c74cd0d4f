/// Text that came from the network (a chat line, a reason, a name) made safe to show, in one
/// place. Control characters would move the cursor, erase lines, set the window title or the
/// clipboard (OSC 52), or start a new line that looks like one of ours; bidirectional overrides
/// reorder what is shown. They are all shown visibly instead, as `less` and `cat -v` do, so one
/// event is always exactly one line and what is shown is what was sent.
public enum VisibleText {
    public enum Style: Sendable {
        /// For a terminal: C0 controls as `^X` (`^[` for ESC), DEL as `^?`, C1 controls, bidi
        /// controls and line separators as `<U+202E>`.
        case terminal
        /// For a log line: `\n`, `\r`, `\t`, `\\`, `\"` and `\u{1b}` for the rest.
        case log
    }

    public static func make(_ text: String, _ style: Style) -> String {
        // Most text needs nothing: keep it as it is, without a copy.
        guard text.unicodeScalars.contains(where: { needsEscape($0, style) }) else { return text }
        // Written as UTF-8 bytes: appending scalars and small strings to a String was most of
        // the cost of a 4 KiB message full of escapes (found by the fuzz replay).
        var shown = [UInt8]()
        shown.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            if needsEscape(scalar, style) {
                appendEscape(of: scalar.value, style, to: &shown)
            } else {
                UTF8.encode(scalar) { shown.append($0) }
            }
        }
        return String(decoding: shown, as: UTF8.self)
    }

    private static func needsEscape(_ scalar: Unicode.Scalar, _ style: Style) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidi controls
        case 0x2028, 0x2029: return true  // line and paragraph separators
        case 0x22, 0x5C: return style == .log  // quote and backslash delimit log values
        default: return false
        }
    }

    private static func appendEscape(of value: UInt32, _ style: Style, to shown: inout [UInt8]) {
        switch style {
        case .terminal:
            if value < 0x20 {
                shown.append(UInt8(ascii: "^"))
                shown.append(UInt8(value + 0x40))
            } else if value == 0x7F {
                shown.append(literal: "^?")
            } else {
                shown.append(literal: "<U+")
                shown.appendHex(value, minimumDigits: 4, uppercase: true)
                shown.append(UInt8(ascii: ">"))
            }
        case .log:
            switch value {
            case 0x0A: shown.append(literal: "\\n")
            case 0x0D: shown.append(literal: "\\r")
            case 0x09: shown.append(literal: "\\t")
            case 0x22: shown.append(literal: "\\\"")
            case 0x5C: shown.append(literal: "\\\\")
            default:
                shown.append(literal: "\\u{")
                shown.appendHex(value, minimumDigits: 2, uppercase: true)
                shown.append(UInt8(ascii: "}"))
            }
        }
    }
}
