/// A man page (roff, `man 1`) made from the command table: the root's overview, then every
/// command with its options and notes.
public enum ManualPage {
    public static func render(_ root: CommandSpec, version: String, date: String) -> String {
        let name = root.name
        var page = ".TH \(name.uppercased()) 1 \"\(date)\" \"\(name) \(version)\" \"User Commands\"\n"
        page += ".SH NAME\n\(escaped(name)) \\- \(escaped(root.abstract))\n"
        page += ".SH SYNOPSIS\n"
        for (path, command) in CompletionScript.commands(root) where command.subcommands.isEmpty {
            page += ".B \(escaped(HelpText.usage(root, path: path)))\n.br\n"
        }
        if !root.discussion.isEmpty { page += ".SH DESCRIPTION\n" + paragraphs(root.discussion) }
        page += ".SH COMMANDS\n"
        for (path, command) in CompletionScript.commands(root).dropFirst() {
            page += ".SS \(escaped(([name] + path).joined(separator: " ")))\n\(escaped(command.abstract))\n"
            for argument in command.arguments {
                page += ".TP\n.I \(escaped(argument.name))\n\(escaped(argument.help))\n"
            }
            for option in command.options {
                page += ".TP\n.B \(escaped(option.synopsis))\n\(escaped(option.help + (option.isRequired ? " (required)" : "")))\n"
            }
            if !command.discussion.isEmpty { page += ".PP\n" + paragraphs(command.discussion) }
        }
        return page
    }

    /// Text lines as roff: blank lines split paragraphs, indented lines (examples) are kept as written.
    private static func paragraphs(_ text: String) -> String {
        var roff = ""
        var inExample = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(" ") {
                if !inExample { roff += ".RS\n.nf\n"; inExample = true }
                roff += escaped(String(line.drop { $0 == " " })) + "\n"
                continue
            }
            if inExample { roff += ".fi\n.RE\n"; inExample = false }
            if line.isEmpty {
                roff += ".PP\n"
            } else if line.hasSuffix(":"), line.allSatisfy({ $0.isUppercase || $0 == " " || $0 == ":" }) {
                roff += ".PP\n.B \(escaped(String(line.dropLast())))\n"  // a heading such as EXAMPLES:
            } else {
                roff += escaped(String(line)) + "\n"
            }
        }
        if inExample { roff += ".fi\n.RE\n" }
        return roff
    }

    /// Backslashes as `\e`, dashes as `\-`, anything beyond ASCII as groff's `\[uXXXX]`, and a
    /// line that would start a request made plain.
    static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\e"
            case "-": result += "\\-"
            case _ where !scalar.isASCII: result += "\\[u" + hex(scalar.value) + "]"
            default: result.unicodeScalars.append(scalar)
            }
        }
        if result.hasPrefix(".") || result.hasPrefix("'") { result = "\\&" + result }
        return result
    }

    /// At least four upper-case hex digits, as groff wants them.
    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
