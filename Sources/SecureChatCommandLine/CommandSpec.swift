/// What a command accepts, as data: the parser, `--help`, the shell completions and the man page
/// are all made from it, so they cannot disagree.
///
/// Our own, not swift-argument-parser: that one brings FoundationEssentials and the regex
/// libraries into the binary (about 6 MB of a static build, a quarter of its budget) for JSON
/// help dumps and `LocalizedError`. Pure: no I/O here.
public struct CommandSpec: Sendable {
    public var name: String
    public var abstract: String
    /// Paragraphs after the options: notes, config-only settings, EXAMPLES.
    public var discussion: String
    public var options: [OptionSpec]
    public var arguments: [ArgumentSpec]
    public var subcommands: [CommandSpec]

    public init(_ name: String, abstract: String, discussion: String = "", options: [OptionSpec] = [],
                arguments: [ArgumentSpec] = [], subcommands: [CommandSpec] = []) {
        self.name = name
        self.abstract = abstract
        self.discussion = discussion
        self.options = options
        self.arguments = arguments
        self.subcommands = subcommands
    }

    public func subcommand(_ name: String) -> CommandSpec? { subcommands.first { $0.name == name } }

    /// The command at `path` below this one (`["user", "add"]`).
    public func descendant(_ path: [String]) -> CommandSpec? {
        path.reduce(Optional(self)) { command, name in command?.subcommand(name) }
    }
}

/// One `--name` option.
public struct OptionSpec: Sendable {
    public enum Kind: Equatable, Sendable {
        /// `--signup`: present or not.
        case flag
        /// `--relay` / `--no-relay`: on, off, or not given.
        case toggle
        /// `--user NAME` or `--user=NAME`.
        case value(String)
    }

    /// What a shell offers after a value option.
    public enum Completion: Equatable, Sendable {
        case none
        case files
        case directories
        case choices([String])
    }

    public var name: String
    public var short: Character?
    public var kind: Kind
    public var help: String
    public var isRequired: Bool
    /// May be given more than once (each value kept, in order); otherwise twice is a mistake.
    public var repeats: Bool
    public var completion: Completion

    public init(_ name: String, short: Character? = nil, _ kind: Kind, help: String, required: Bool = false,
                repeats: Bool = false, completion: Completion = .none) {
        self.name = name
        self.short = short
        self.kind = kind
        self.help = help
        self.isRequired = required
        self.repeats = repeats
        self.completion = completion
    }

    public static func flag(_ name: String, short: Character? = nil, help: String) -> OptionSpec {
        OptionSpec(name, short: short, .flag, help: help)
    }

    public static func toggle(_ name: String, help: String) -> OptionSpec { OptionSpec(name, .toggle, help: help) }

    public static func value(_ name: String, _ valueName: String, help: String, required: Bool = false, repeats: Bool = false,
                             completion: Completion = .none) -> OptionSpec {
        OptionSpec(name, .value(valueName), help: help, required: required, repeats: repeats, completion: completion)
    }

    /// How it is shown in usage and help: `--user NAME`, `--[no-]relay`, `-h, --help`.
    var synopsis: String {
        let long: String
        switch kind {
        case .flag: long = "--\(name)"
        case .toggle: long = "--[no-]\(name)"
        case let .value(valueName): long = "--\(name) \(valueName)"
        }
        return short.map { "-\($0), " + long } ?? long
    }
}

/// One positional argument (`securechat user add NAME`).
public struct ArgumentSpec: Sendable {
    public var name: String
    public var help: String
    public var isOptional: Bool
    public var completion: OptionSpec.Completion

    public init(_ name: String, help: String, optional: Bool = false, completion: OptionSpec.Completion = .none) {
        self.name = name
        self.help = help
        self.isOptional = optional
        self.completion = completion
    }
}
