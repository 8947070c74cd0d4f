/// A mistake on the command line, in words, with the command whose usage to show.
public struct ArgumentError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The command the words were for (`["peer"]`), to point at its `--help`.
    public let command: [String]
    public let description: String
    /// A wrong word in the wrong place (an unknown option): the usage helps. A known option
    /// with a wrong value: the one line says it all.
    public let showsUsage: Bool

    public init(_ description: String, command: [String], showsUsage: Bool = true) {
        self.description = description
        self.command = command
        self.showsUsage = showsUsage
    }

    /// A known option's value that is not what it should be.
    public static func badValue(_ description: String, command: [String]) -> ArgumentError {
        ArgumentError(description, command: command, showsUsage: false)
    }
}

public enum ParseOutcome: Equatable, Sendable {
    /// Run the command at `arguments.command` (the root's path is `[]`).
    case run(ParsedArguments)
    /// `--help`, `-h` or `help [COMMAND…]`: show the help of the command at this path.
    case help([String])
}

/// What the words said, by option name; read with the typed accessors below.
public struct ParsedArguments: Equatable, Sendable {
    public let command: [String]
    fileprivate(set) var values: [String: [String]] = [:]
    fileprivate(set) var switches: [String: Bool] = [:]
    fileprivate(set) var positional: [String: String] = [:]

    init(command: [String]) { self.command = command }

    /// The option's value (the last one for a repeating option), nil when not given.
    public func value(_ name: String) -> String? { values[name]?.last }

    /// Every value of a repeating option, in the order given.
    public func values(_ name: String) -> [String] { values[name] ?? [] }

    public func flag(_ name: String) -> Bool { switches[name] ?? false }

    /// `--name` true, `--no-name` false, neither nil.
    public func toggle(_ name: String) -> Bool? { switches[name] }

    public func argument(_ name: String) -> String? { positional[name] }

    /// The value made into a `T`, or "--name: "text" is not <expected>".
    public func value<T>(_ name: String, expected: String, _ convert: (String) -> T?) throws(ArgumentError) -> T? {
        guard let text = value(name) else { return nil }
        guard let converted = convert(text) else { throw .badValue("--\(name): \"\(text)\" is not \(expected)", command: command) }
        return converted
    }

    public func integer(_ name: String, in range: ClosedRange<Int>) throws(ArgumentError) -> Int? {
        try value(name, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)") { text in
            Int(text).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    /// One of a fixed set of words (`openssl`, `gcrypt`).
    public func choice<T: RawRepresentable & CaseIterable>(_ name: String, _: T.Type) throws(ArgumentError) -> T?
    where T.RawValue == String {
        let words = T.allCases.map(\.rawValue)
        return try value(name, expected: Self.alternatives(words), T.init(rawValue:))
    }

    /// A required option's converted value. The parser already refused words without it; this
    /// says so in words again rather than trap.
    public func require<T>(_ value: T?, _ name: String) throws(ArgumentError) -> T {
        guard let value else { throw ArgumentError("--\(name) is required", command: command) }
        return value
    }

    /// "a, b or c".
    public static func alternatives(_ words: [String]) -> String {
        guard let last = words.last else { return "" }
        return words.count == 1 ? last : words.dropLast().joined(separator: ", ") + " or " + last
    }
}

public enum ArgumentParsing {
    /// Parses `words` (the arguments after the program's name) against `root`.
    public static func parse(_ words: [String], root: CommandSpec) throws(ArgumentError) -> ParseOutcome {
        var words = words[...]
        if words.first == "help", root.subcommand("help") == nil {
            words.removeFirst()
            return .help(try commandPath(words, root: root, stoppingAtOptions: false).path)
        }
        let (path, command) = try commandPath(words, root: root, stoppingAtOptions: true)
        words.removeFirst(path.count)
        var parser = Parser(command: command, path: path)
        return try parser.parse(words)
    }

    /// The subcommands named at the start of `words`.
    private static func commandPath(_ words: ArraySlice<String>, root: CommandSpec,
                                    stoppingAtOptions: Bool) throws(ArgumentError) -> (path: [String], command: CommandSpec) {
        var path = [String]()
        var command = root
        for word in words {
            if let next = command.subcommand(word) {
                path.append(word)
                command = next
            } else if stoppingAtOptions || command.subcommands.isEmpty {
                break
            } else {
                throw unknownCommand(word, in: command, path: path)
            }
        }
        return (path, command)
    }

    static func unknownCommand(_ word: String, in command: CommandSpec, path: [String]) -> ArgumentError {
        let names = command.subcommands.map(\.name)
        let hint = closest(word, among: names).map { " (did you mean \($0)?)" } ?? ""
        return ArgumentError("unknown command \"\(word)\"\(hint); the commands are \(ParsedArguments.alternatives(names))", command: path)
    }

    /// The candidate within two edits of `word` (a typo), if there is one.
    static func closest(_ word: String, among candidates: [String]) -> String? {
        candidates.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// One command's options and arguments.
private struct Parser {
    let command: CommandSpec
    let path: [String]
    var parsed: ParsedArguments
    var loose = [String]()

    init(command: CommandSpec, path: [String]) {
        self.command = command
        self.path = path
        parsed = ParsedArguments(command: path)
    }

    func error(_ text: String) -> ArgumentError { ArgumentError(text, command: path) }

    mutating func parse(_ words: ArraySlice<String>) throws(ArgumentError) -> ParseOutcome {
        var words = words
        var onlyArguments = false
        while let word = words.popFirst() {
            if onlyArguments || !word.hasPrefix("-") || word == "-" {
                loose.append(word)
            } else if word == "--" {
                onlyArguments = true
            } else if word == "-h" || word == "--help" {
                return .help(path)
            } else {
                try option(word, then: &words)
            }
        }
        try assignArguments()
        for option in command.options where option.isRequired && parsed.values[option.name] == nil {
            throw error("--\(option.name) is required")
        }
        return .run(parsed)
    }

    private mutating func option(_ word: String, then words: inout ArraySlice<String>) throws(ArgumentError) {
        let equals = word.firstIndex(of: "=")
        let written = equals.map { String(word[..<$0]) } ?? word
        let inline = equals.map { String(word[word.index(after: $0)...]) }
        guard let (option, on) = find(written) else {
            let names = command.options.flatMap { $0.kind == .toggle ? ["--\($0.name)", "--no-\($0.name)"] : ["--\($0.name)"] }
            let hint = ArgumentParsing.closest(written, among: names).map { " (did you mean \($0)?)" } ?? ""
            let scope = path.isEmpty ? "" : " for \(path.joined(separator: " "))"
            throw error("unknown option \(written)\(scope)\(hint)")
        }
        let given = parsed.values[option.name] != nil || parsed.switches[option.name] != nil
        if given && !option.repeats { throw error("--\(option.name) is given twice") }
        switch option.kind {
        case .flag, .toggle:
            if inline != nil { throw error("\(written) takes no value") }
            parsed.switches[option.name] = on
        case let .value(valueName):
            let value: String
            if let inline {
                value = inline
            } else if let next = words.first, !(next.hasPrefix("-") && next.count > 1) {
                value = next
                words.removeFirst()
            } else {
                throw error("--\(option.name) needs a value: --\(option.name) \(valueName)")
            }
            parsed.values[option.name, default: []].append(value)
        }
    }

    /// The option `written` names, and whether it is switched on (`--no-…` is off).
    private func find(_ written: String) -> (OptionSpec, Bool)? {
        if written.hasPrefix("--") {
            let name = written.dropFirst(2)
            if let option = command.options.first(where: { $0.name == name }) { return (option, true) }
            if name.hasPrefix("no-"), let option = command.options.first(where: { $0.kind == .toggle && $0.name == name.dropFirst(3) }) {
                return (option, false)
            }
            return nil
        }
        guard written.count == 2, let letter = written.last, let option = command.options.first(where: { $0.short == letter }) else {
            return nil
        }
        return (option, true)
    }

    private mutating func assignArguments() throws(ArgumentError) {
        if !command.subcommands.isEmpty, let first = loose.first {
            throw ArgumentParsing.unknownCommand(first, in: command, path: path)
        }
        for (index, argument) in command.arguments.enumerated() {
            guard index < loose.count else {
                if argument.isOptional { continue }
                throw error("missing \(argument.name): \(argument.help)")
            }
            parsed.positional[argument.name] = loose[index]
        }
        if loose.count > command.arguments.count {
            throw error("unexpected argument \"\(loose[command.arguments.count])\"")
        }
    }
}
