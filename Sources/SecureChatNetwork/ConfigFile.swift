/// securechat's config format: one `key = value` per line, `#` starts a comment, values may be
/// "quoted". Small on purpose: a hand-edited file needs no more, and a full TOML or YAML parser
/// would cost binary size (YAML through Foundation: +45 MB). Every error names file, line and key;
/// an unknown key is an error, so a typo never silently falls back to a default.
public struct ConfigFile {
    public struct Entry: Sendable { public var value: String; public var line: Int }

    public let path: String
    private var entries: [String: Entry] = [:]

    public init(path: String, text: String) throws(FileError) {
        self.path = path
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = Self.stripComment(rawLine).trimmed
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw FileError("\(path):\(number): expected key = value")
            }
            let key = String(line[..<equals].trimmed)
            var value = line[line.index(after: equals)...].trimmed
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                throw FileError("\(path):\(number): \"\(key)\" is not a valid key")
            }
            if value.first == "\"" {
                guard value.count >= 2, value.last == "\"" else { throw FileError("\(path):\(number): unterminated quote") }
                value = value.dropFirst().dropLast()
            }
            guard entries[key] == nil else { throw FileError("\(path):\(number): \(key) is set twice") }
            entries[key] = Entry(value: String(value), line: number)
        }
    }

    /// Reads and parses `path`.
    public static func load(_ path: String) throws(FileError) -> ConfigFile {
        try ConfigFile(path: path, text: String(decoding: try Files.read(path), as: UTF8.self))
    }

    /// A value, converted by `parse` (nil: invalid, reported with the line and `expected`).
    /// Each key read is removed, so that `requireAllUsed` finds the unknown ones.
    public mutating func take<T>(_ key: String, expected: String, _ parse: (String) -> T?) throws(FileError) -> T? {
        guard let entry = entries.removeValue(forKey: key) else { return nil }
        guard let value = parse(entry.value) else {
            throw FileError("\(path):\(entry.line): \(key) must be \(expected), not \"\(entry.value)\"")
        }
        return value
    }

    public mutating func string(_ key: String) throws(FileError) -> String? {
        try take(key, expected: "a value") { $0.isEmpty ? nil : $0 }
    }

    public mutating func integer(_ key: String, in range: ClosedRange<Int>) throws(FileError) -> Int? {
        try take(key, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)") { text in
            Int(text).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    public mutating func boolean(_ key: String) throws(FileError) -> Bool? {
        try take(key, expected: "yes or no") { text in
            switch text { case "yes", "true", "on": true; case "no", "false", "off": false; default: nil }
        }
    }

    /// A duration: a number and a unit, ms, s, m or h (`10s`, `30m`).
    public mutating func duration(_ key: String) throws(FileError) -> Duration? {
        try take(key, expected: "a duration such as 500ms, 10s, 30m or 2h", Self.parseDuration)
    }

    public static func parseDuration(_ text: String) -> Duration? {
        let digits = text.prefix { $0.isNumber }
        guard let amount = Int64(digits), amount > 0 else { return nil }
        switch text.dropFirst(digits.count) {
        case "ms": return .milliseconds(amount)
        case "s": return .seconds(amount)
        case "m": return .seconds(amount * 60)
        case "h": return .seconds(amount * 3600)
        default: return nil
        }
    }

    /// Fails on the first key nobody read: a typo or an option this version does not have.
    public func requireAllUsed() throws(FileError) {
        if let (key, entry) = entries.min(by: { $0.value.line < $1.value.line }) {
            throw FileError("\(path):\(entry.line): unknown key \(key)")
        }
    }

    private static func stripComment(_ line: Substring) -> Substring {
        var quoted = false
        for index in line.indices {
            if line[index] == "\"" { quoted.toggle() }
            if line[index] == "#", !quoted { return line[..<index] }
        }
        return line
    }
}

extension Substring {
    /// Without leading and trailing whitespace.
    public var trimmed: Substring {
        var text = self
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return text
    }
}
