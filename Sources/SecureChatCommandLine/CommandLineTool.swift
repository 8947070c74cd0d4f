/// One subcommand: its spec (options, help) and what it does with what was given.
public protocol Command: SendableMetatype {
    static var spec: CommandSpec { get }
    init(_ arguments: ParsedArguments) throws
    func run() async throws
}

/// The command tree: a command, or a group of them (`user add`, `key show`).
public enum CommandNode: Sendable {
    case command(any Command.Type)
    case group(CommandSpec, [CommandNode])

    public var spec: CommandSpec {
        switch self {
        case let .command(type): return type.spec
        case let .group(spec, children):
            var spec = spec
            spec.subcommands = children.map(\.spec)
            return spec
        }
    }

    /// The command at `path`, nil for a group (which only shows its help).
    func command(at path: ArraySlice<String>) -> (any Command.Type)? {
        switch self {
        case let .command(type): return path.isEmpty ? type : nil
        case let .group(_, children):
            guard let name = path.first, let child = children.first(where: { $0.spec.name == name }) else { return nil }
            return child.command(at: path.dropFirst())
        }
    }
}

/// A failure status without a message of its own (what went wrong was printed already).
public struct ExitStatus: Error {
    public let code: Int32
    public init(code: Int32) { self.code = code }
    public static let failure = ExitStatus(code: 1)
}

public enum CommandLineTool {
    public enum Stream: Sendable { case output, error }

    /// Parses `words`, runs the command they name and returns the exit status: 0, 1 for a
    /// failure (printed as "Error: …"), 64 (EX_USAGE) for a mistake in the words. What is
    /// printed goes through `write`; every message passes `visible` first (it may quote what
    /// was typed, or what a file or the network said).
    public static func run(_ tree: CommandNode, _ words: [String], visible: @Sendable (String) -> String,
                           write: @Sendable (Stream, String) -> Void) async -> Int32 {
        let root = tree.spec
        do {
            switch try ArgumentParsing.parse(words, root: root) {
            case let .help(path):
                write(.output, HelpText.render(root, path: path))
            case let .run(arguments):
                // A group alone (`securechat`, `securechat user`): its help, and a failure status (nothing was done).
                guard let command = tree.command(at: arguments.command[...]) else {
                    write(.error, HelpText.render(root, path: arguments.command))
                    return 1
                }
                try await command.init(arguments).run()
            }
        } catch let error as ArgumentError {
            let command = ([root.name] + error.command).joined(separator: " ")
            let usage = "Usage: \(HelpText.usage(root, path: error.command))\n  See '\(command) --help'.\n"
            write(.error, "Error: \(visible(error.description))\n" + (error.showsUsage ? usage : ""))
            return 64
        } catch let status as ExitStatus {
            return status.code
        } catch {
            write(.error, "Error: \(visible("\(error)"))\n")
            return 1
        }
        return 0
    }
}
