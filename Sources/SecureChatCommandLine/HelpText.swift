/// `--help` as people read it: what the command does, how to call it, each option, then the
/// notes and examples. Wrapped to 80 columns.
public enum HelpText {
    static let width = 80
    /// Where option help starts.
    static let column = 28

    /// The help of the command at `path` below `root`.
    public static func render(_ root: CommandSpec, path: [String]) -> String {
        guard let command = root.descendant(path) else { return render(root, path: []) }
        var sections = [wrap("OVERVIEW: " + command.abstract), "USAGE: " + usage(root, path: path)]
        if !command.arguments.isEmpty {
            sections.append("ARGUMENTS:\n" + command.arguments.map {
                row($0.name, $0.help + ($0.isOptional ? " (optional)" : ""))
            }.joined(separator: "\n"))
        }
        let help = OptionSpec.flag("help", short: "h", help: "Show this help.")
        sections.append("OPTIONS:\n" + (command.options + [help]).map {
            row($0.synopsis, $0.help + ($0.isRequired ? " (required)" : ""))
        }.joined(separator: "\n"))
        if !command.subcommands.isEmpty {
            let invocation = (["\(root.name) help"] + path + ["COMMAND"]).joined(separator: " ")
            sections.append("COMMANDS:\n" + command.subcommands.map { row($0.name, $0.abstract) }.joined(separator: "\n")
                            + "\n\n  See '\(invocation)' for the help of each.")
        }
        if !command.discussion.isEmpty { sections.append(wrap(command.discussion)) }
        return sections.joined(separator: "\n\n") + "\n"
    }

    /// One line: `securechat user add NAME [OPTIONS]`, required options spelled out.
    public static func usage(_ root: CommandSpec, path: [String]) -> String {
        guard let command = root.descendant(path) else { return root.name }
        var parts = [root.name] + path
        if !command.subcommands.isEmpty { parts.append("COMMAND") }
        parts += command.options.filter(\.isRequired).map(\.synopsis)
        parts += command.arguments.map { $0.isOptional ? "[\($0.name)]" : $0.name }
        if command.options.contains(where: { !$0.isRequired }) { parts.append("[OPTIONS]") }
        return parts.joined(separator: " ")
    }

    /// "  --user NAME      Your user ID…", the help wrapped under its column.
    static func row(_ name: String, _ help: String) -> String {
        let lead = "  " + name
        let lines = wrapLine(help, width: width - column)
        let indent = String(repeating: " ", count: column)
        var text: String
        var rest = lines[...]
        if lead.count <= column - 2 {
            text = lead + String(repeating: " ", count: column - lead.count) + (rest.popFirst() ?? "")
        } else {
            text = lead
        }
        for line in rest { text += "\n" + indent + line }
        return text
    }

    /// Each line of `text` wrapped to the width; lines that start with spaces (examples) are kept as written.
    static func wrap(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix(" ") ? String(line) : wrapLine(String(line), width: width).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    static func wrapLine(_ line: String, width: Int) -> [String] {
        var lines = [String]()
        var current = ""
        for word in line.split(separator: " ") {
            if !current.isEmpty, current.count + 1 + word.count > width {
                lines.append(current)
                current = ""
            }
            current += (current.isEmpty ? "" : " ") + word
        }
        return lines + [current]
    }
}
