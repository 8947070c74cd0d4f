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
        var shown = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar, style) else {
                shown.append(scalar)
                continue
            }
            shown.append(contentsOf: escaped(scalar, style).unicodeScalars)
        }
        return String(shown)
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

    private static func escaped(_ scalar: Unicode.Scalar, _ style: Style) -> String {
        let value = scalar.value
        switch style {
        case .terminal:
            if value < 0x20 { return "^" + String(Character(Unicode.Scalar(UInt8(value + 0x40)))) }
            if value == 0x7F { return "^?" }
            return "<U+" + hex(value, digits: 4) + ">"
        case .log:
            switch value {
            case 0x0A: return "\\n"
            case 0x0D: return "\\r"
            case 0x09: return "\\t"
            case 0x22: return "\\\""
            case 0x5C: return "\\\\"
            default: return "\\u{" + hex(value, digits: 2) + "}"
            }
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
