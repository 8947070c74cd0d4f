/// The line being typed, as the peer's terminal edits it: keys in, the line and the cursor
/// out, and how to draw it. Pure: the console does the terminal I/O.
///
/// A line wider than the terminal scrolls sideways within one row (as readline's
/// horizontal-scroll mode and linenoise do) instead of wrapping: the line being typed always
/// takes exactly the bottom row, so lines arriving above it never leave stale rows behind, and a
/// 10,000-character paste redraws one row, not thousands.
public struct LineEditor: Sendable {
    public enum Event: Equatable, Sendable {
        /// Enter: the line as typed (added to the history).
        case submitted(String)
        /// Ctrl-D on an empty line.
        case endOfInput
    }

    /// The line, as characters (a user edits characters, not bytes).
    public private(set) var line: [Character] = []
    /// Where the cursor is, 0…`line.count`.
    public private(set) var cursor = 0
    private var history: [String] = []
    /// While browsing the history: which entry is shown, and the new line being typed before.
    private var browsing: (index: Int, draft: [Character])?
    private var killed: [Character] = []
    private var decoder = KeyDecoder()
    /// The first character shown when the line is wider than the terminal.
    private var scroll = 0

    public static let historyLimit = 500

    public init() {}

    /// Feeds typed bytes (a key, or a whole paste); the lines submitted and end of input, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        var events = [Event]()
        for byte in bytes {
            guard let key = decoder.feed(byte) else { continue }
            if let event = apply(key) { events.append(event) }
        }
        return events
    }

    public mutating func apply(_ key: Key) -> Event? {
        switch key {
        case let .text(text):
            // Joined as a string, so that scalars typed one by one form their character (a
            // flag is two of them, an accent follows its letter).
            let before = String(line[..<cursor]) + text
            line = Array(before + String(line[cursor...]))
            cursor = before.count
        case .enter:
            let text = String(line)
            if !text.isEmpty, history.last != text {
                history.append(text)
                if history.count > Self.historyLimit { history.removeFirst() }
            }
            clear()
            return .submitted(text)
        case .backspace:
            guard cursor > 0 else { break }
            line.remove(at: cursor - 1)
            cursor -= 1
        case .delete:
            if cursor < line.count { line.remove(at: cursor) }
        case .endOfInput:
            if line.isEmpty { return .endOfInput }
            if cursor < line.count { line.remove(at: cursor) }
        case .left: cursor = max(0, cursor - 1)
        case .right: cursor = min(line.count, cursor + 1)
        case .home: cursor = 0
        case .end: cursor = line.count
        case .wordLeft: cursor = wordStart(before: cursor)
        case .wordRight: cursor = wordEnd(after: cursor)
        case .killToEnd:
            killed = Array(line[cursor...])
            line.removeSubrange(cursor...)
        case .killToStart:
            killed = Array(line[..<cursor])
            line.removeSubrange(..<cursor)
            cursor = 0
        case .killWordBack:
            let start = wordStart(before: cursor)
            killed = Array(line[start..<cursor])
            line.removeSubrange(start..<cursor)
            cursor = start
        case .yank:
            line.insert(contentsOf: killed, at: cursor)
            cursor += killed.count
        case .up: browse(by: -1)
        case .down: browse(by: 1)
        case .redraw, .ignored: break
        }
        return nil
    }

    /// Forgets the line being typed.
    public mutating func clear() {
        line.removeAll()
        cursor = 0
        scroll = 0
        browsing = nil
    }

    /// What to write to redraw the bottom row for a terminal `width` columns wide: return to
    /// its start, the prompt and the visible part of the line, erase the rest, put the cursor.
    public mutating func render(prompt: String, width: Int) -> String {
        let promptWidth = DisplayWidth.of(prompt)
        // The last column stays free: writing into it would make some terminals wrap.
        let room = max(1, width - promptWidth - 1)
        if cursor < scroll { scroll = cursor }
        while DisplayWidth.of(line[scroll..<cursor]) > room { scroll += 1 }
        var shown = [Character](), used = 0
        for character in line[scroll...] {
            let columns = DisplayWidth.of(character)
            guard used + columns <= room else { break }
            shown.append(character)
            used += columns
        }
        let column = promptWidth + DisplayWidth.of(line[scroll..<cursor])
        return "\r" + prompt + String(shown) + "\u{1B}[K\r" + (column > 0 ? "\u{1B}[\(column)C" : "")
    }

    private mutating func browse(by step: Int) {
        guard !history.isEmpty else { return }
        let current = browsing?.index ?? history.count
        let next = min(max(0, current + step), history.count)
        guard next != current else { return }
        let draft = browsing?.draft ?? line
        if next == history.count {
            line = draft
            browsing = nil
        } else {
            line = Array(history[next])
            browsing = (next, draft)
        }
        cursor = line.count
    }

    private func wordStart(before index: Int) -> Int {
        var position = index
        while position > 0, line[position - 1].isWhitespace { position -= 1 }
        while position > 0, !line[position - 1].isWhitespace { position -= 1 }
        return position
    }

    private func wordEnd(after index: Int) -> Int {
        var position = index
        while position < line.count, line[position].isWhitespace { position += 1 }
        while position < line.count, !line[position].isWhitespace { position += 1 }
        return position
    }
}
