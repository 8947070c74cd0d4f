import SecureChatTerminal
import Testing

@Suite("Line editor")
struct LineEditorTests {
    /// Types `bytes` and returns the editor and what was submitted.
    private func typed(_ text: String, into editor: inout LineEditor) -> [LineEditor.Event] { editor.feed(Array(text.utf8)) }

    @Test("arrows, Home/End and Ctrl-A/E move; escape sequences never become text")
    func movement() {
        var editor = LineEditor()
        _ = typed("helo", into: &editor)
        _ = typed("\u{1B}[D", into: &editor)          // ←
        _ = typed("l", into: &editor)
        #expect(String(editor.line) == "hello")
        _ = typed("\u{01}>", into: &editor)             // Ctrl-A, then text at the start
        _ = typed("\u{1B}[F!", into: &editor)           // End
        _ = typed("\u{1B}OH", into: &editor)            // Home (SS3 form)
        _ = typed("\u{1B}[3~", into: &editor)           // Delete
        _ = typed("\u{1B}[1;5C\u{05}\u{1B}[15~\u{1B}[200~", into: &editor)  // Ctrl-→, Ctrl-E, F5, paste bracket
        #expect(String(editor.line) == "hello!")
        #expect(editor.cursor == 6)
        #expect(typed("\r", into: &editor) == [.submitted("hello!")])
    }

    @Test("Ctrl-W, Ctrl-K, Ctrl-U and Ctrl-Y kill and yank; backspace removes whole characters")
    func killing() {
        var editor = LineEditor()
        _ = typed("one two three", into: &editor)
        _ = typed("\u{17}", into: &editor)
        #expect(String(editor.line) == "one two ")
        _ = typed("\u{01}\u{1B}f\u{0B}", into: &editor)   // start, a word right, kill the rest
        #expect(String(editor.line) == "one")
        _ = typed("\u{19}", into: &editor)
        #expect(String(editor.line) == "one two ")
        _ = typed("\u{15}", into: &editor)
        #expect(editor.line.isEmpty)
        _ = typed("né🇫🇷\u{7F}", into: &editor)
        #expect(String(editor.line) == "né", "one backspace removes a whole flag")
    }

    @Test("history: ↑ and ↓ go through earlier lines and back to the one being typed")
    func history() {
        var editor = LineEditor()
        _ = typed("first\rsecond\rdraft", into: &editor)
        _ = typed("\u{1B}[A", into: &editor)
        #expect(String(editor.line) == "second")
        _ = typed("\u{1B}[A\u{1B}[A", into: &editor)
        #expect(String(editor.line) == "first", "stops at the oldest")
        _ = typed("\u{1B}[B\u{1B}[B", into: &editor)
        #expect(String(editor.line) == "draft", "back to what was being typed")
        #expect(typed("\u{04}", into: &editor) == [], "Ctrl-D on a line deletes, it does not end the input")
        _ = typed("\u{15}", into: &editor)
        #expect(typed("\u{04}", into: &editor) == [.endOfInput])
    }

    @Test("a line wider than the terminal scrolls sideways in one row, the cursor always visible")
    func wideLines() {
        var editor = LineEditor()
        let long = String(repeating: "abcdefghij", count: 15)  // 150 characters
        _ = typed(long, into: &editor)
        let row = editor.render(prompt: "> ", width: 100)
        #expect(!row.contains("\n"), "one row, never a wrap")
        let visible = row.split(separator: "\u{1B}")[0].dropFirst(3)  // after "\r> "
        #expect(visible.count == 97, "the width minus the prompt and the last column")
        #expect(long.hasSuffix(visible), "the end of the line, where the cursor is")
        #expect(row.hasSuffix("\u{1B}[99C"), "the cursor after the last character shown")
        _ = typed("\u{01}", into: &editor)
        #expect(editor.render(prompt: "> ", width: 100).hasPrefix("\r> abcdefghij"), "Home shows the start")
        var paste = LineEditor()
        _ = paste.feed(Array(String(repeating: "x", count: 10_000).utf8))
        #expect(paste.line.count == 10_000 && paste.render(prompt: "> ", width: 80).count < 100)
    }

    @Test("wide characters take two columns")
    func widths() {
        #expect(DisplayWidth.of("a") == 1 && DisplayWidth.of("界") == 2 && DisplayWidth.of("😀") == 2 && DisplayWidth.of("e\u{301}") == 1)
        var editor = LineEditor()
        _ = typed("界界", into: &editor)
        #expect(editor.render(prompt: "> ", width: 80).hasSuffix("\u{1B}[6C"))
    }
}
