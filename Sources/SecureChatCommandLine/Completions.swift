/// Shell completion scripts made from the command table: subcommands, options, the choices of
/// an option and file names where a file is wanted. Each script finds where the user is by
/// walking the words typed so far through the known subcommands only.
public enum CompletionScript {
    public enum Shell: String, CaseIterable, Sendable { case bash, zsh, fish }

    public static func render(_ root: CommandSpec, for shell: Shell) -> String {
        switch shell {
        case .bash: return bash(root)
        case .zsh: return zsh(root)
        case .fish: return fish(root)
        }
    }

    /// Every command with its path below the root, the root first.
    static func commands(_ root: CommandSpec) -> [(path: [String], command: CommandSpec)] {
        func walk(_ command: CommandSpec, _ path: [String]) -> [([String], CommandSpec)] {
            [(path, command)] + command.subcommands.flatMap { walk($0, path + [$0.name]) }
        }
        return walk(root, [])
    }

    /// What a shell offers after an option (or for an argument).
    private static func valueCompletion(_ completion: OptionSpec.Completion) -> (bash: String, zsh: String, fish: String) {
        switch completion {
        case .none: return ("COMPREPLY=()", " ", "-r -f")
        case .files: return ("COMPREPLY=($(compgen -f -- \"$cur\")); compopt -o filenames 2>/dev/null", "_files", "-r -F")
        case .directories: return ("COMPREPLY=($(compgen -d -- \"$cur\")); compopt -o filenames 2>/dev/null", "_directories",
                                   "-r -f -a '(__fish_complete_directories)'")
        case let .choices(words):
            let list = words.joined(separator: " ")
            return ("COMPREPLY=($(compgen -W \"\(list)\" -- \"$cur\"))", "(\(list))", "-r -f -a '\(list)'")
        }
    }

    private static func optionWords(_ option: OptionSpec) -> [String] {
        var words = option.kind == .toggle ? ["--\(option.name)", "--no-\(option.name)"] : ["--\(option.name)"]
        if let short = option.short { words.append("-\(short)") }
        return words
    }

    // MARK: bash

    private static func bash(_ root: CommandSpec) -> String {
        let all = commands(root)
        var script = """
            # bash completion for \(root.name) (made by `\(root.name) completions bash`)
            _\(root.name)() {
                local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path="" i
                for ((i = 1; i < COMP_CWORD; i++)); do
                    case "$path:${COMP_WORDS[i]}" in

            """
        let steps = all.dropFirst().map { entry in "\(entry.path.dropLast().joined(separator: " ")):\(entry.path.last!)" }
        script += "            " + steps.map { "\"\($0)\"" }.joined(separator: "|") + ")\n"
        script += "                path=${path:+$path }${COMP_WORDS[i]} ;;\n            esac\n        done\n"
        script += "    case \"$path\" in\n"
        for (path, command) in all {
            script += "    \"\(path.joined(separator: " "))\")\n"
            let valued = command.options.filter { if case .value = $0.kind { true } else { false } }
            if !valued.isEmpty {
                script += "        case \"$prev\" in\n"
                for option in valued { script += "        --\(option.name)) \(valueCompletion(option.completion).bash); return ;;\n" }
                script += "        esac\n"
            }
            let words = command.subcommands.map(\.name) + command.options.flatMap(optionWords) + ["--help"]
            if let argument = command.arguments.first, argument.completion != .none {
                script += "        if [[ $cur != -* ]]; then \(valueCompletion(argument.completion).bash); return; fi\n"
            }
            script += "        COMPREPLY=($(compgen -W \"\(words.joined(separator: " "))\" -- \"$cur\")) ;;\n"
        }
        script += "    esac\n}\ncomplete -F _\(root.name) \(root.name)\n"
        return script
    }

    // MARK: zsh

    private static func zshQuoted(_ text: String) -> String {
        // Inside '…' for _arguments: brackets and colons have meanings there.
        var escaped = ""
        for character in firstSentence(text) {
            switch character {
            case "'": escaped += "'\\''"
            case "[", "]", ":", "\\": escaped += "\\" + String(character)
            default: escaped.append(character)
            }
        }
        return escaped
    }

    private static func zsh(_ root: CommandSpec) -> String {
        var script = "#compdef \(root.name)\n# zsh completion for \(root.name) (made by `\(root.name) completions zsh`)\n\n"
        for (path, command) in commands(root).reversed() {
            let function = "_" + ([root.name] + path).joined(separator: "_").replacingDashes
            script += "\(function)() {\n"
            var specs = [String]()
            for option in command.options {
                let help = zshQuoted(option.help)
                switch option.kind {
                case .flag:
                    specs.append("'--\(option.name)[\(help)]'")
                case .toggle:
                    specs.append("'(--no-\(option.name))--\(option.name)[\(help)]'")
                    specs.append("'(--\(option.name))--no-\(option.name)[not \(help)]'")
                case let .value(valueName):
                    let repeats = option.repeats ? "*" : ""
                    specs.append("'\(repeats)--\(option.name)=[\(help)]:\(zshQuoted(valueName)):\(valueCompletion(option.completion).zsh)'")
                }
            }
            specs.append("'(- *)'{-h,--help}'[Show this help.]'")
            if command.subcommands.isEmpty {
                for argument in command.arguments {
                    let action = valueCompletion(argument.completion).zsh
                    specs.append("'\(argument.isOptional ? "::" : ":")\(zshQuoted(argument.name)):\(action)'")
                }
                script += "    _arguments -s \\\n        " + specs.joined(separator: " \\\n        ") + "\n}\n\n"
            } else {
                let entries = command.subcommands.map { "'\($0.name):\(zshQuoted($0.abstract))'" }.joined(separator: " ")
                script += "    local curcontext=$curcontext state line\n"
                script += "    _arguments -C \\\n        " + (specs + ["'1: :->command'", "'*:: :->argument'"]).joined(separator: " \\\n        ") + "\n"
                script += "    case $state in\n"
                script += "    command) local -a commands=(\(entries)); _describe command commands ;;\n"
                script += "    argument) case $line[1] in\n"
                for sub in command.subcommands {
                    script += "        \(sub.name)) \(function)_\(sub.name.replacingDashes) ;;\n"
                }
                script += "        esac ;;\n    esac\n}\n\n"
            }
        }
        return script + "_\(root.name) \"$@\"\n"
    }

    // MARK: fish

    private static func fishQuoted(_ text: String) -> String {
        "'" + firstSentence(text).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    private static func fish(_ root: CommandSpec) -> String {
        let all = commands(root)
        let name = root.name
        var script = """
            # fish completion for \(name) (made by `\(name) completions fish`)
            function __\(name)_path
                set -l path ''
                for word in (commandline -opc)[2..-1]
                    switch "$path:$word"
                        case \(all.dropFirst().map { "'\($0.path.dropLast().joined(separator: " ")):\($0.path.last!)'" }.joined(separator: " "))
                            set path (string trim -- "$path $word")
                    end
                end
                echo $path
            end
            complete -c \(name) -f

            """
        for (path, command) in all {
            let condition = "-n 'test \"$(__\(name)_path)\" = \"\(path.joined(separator: " "))\"'"
            for sub in command.subcommands {
                script += "complete -c \(name) \(condition) -a \(sub.name) -d \(fishQuoted(sub.abstract))\n"
            }
            for option in command.options {
                let short = option.short.map { " -s \($0)" } ?? ""
                switch option.kind {
                case .flag:
                    script += "complete -c \(name) \(condition) -l \(option.name)\(short) -d \(fishQuoted(option.help))\n"
                case .toggle:
                    script += "complete -c \(name) \(condition) -l \(option.name) -d \(fishQuoted(option.help))\n"
                    script += "complete -c \(name) \(condition) -l no-\(option.name) -d \(fishQuoted("not: " + option.help))\n"
                case .value:
                    script += "complete -c \(name) \(condition) -l \(option.name)\(short) \(valueCompletion(option.completion).fish)"
                        + " -d \(fishQuoted(option.help))\n"
                }
            }
            if let argument = command.arguments.first, argument.completion == .files {
                script += "complete -c \(name) \(condition) -F\n"
            }
            script += "complete -c \(name) \(condition) -s h -l help -d 'Show this help.'\n"
        }
        return script
    }

    /// Up to the first ". ", for one-line descriptions.
    private static func firstSentence(_ text: String) -> String {
        guard let end = text.range(of: ". ") else { return text }
        return String(text[..<end.lowerBound]) + "."
    }
}

extension String {
    fileprivate var replacingDashes: String { String(map { $0 == "-" ? "_" : $0 }) }

    /// Foundation-free replacement of every `target` with `replacement`.
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let found = rest.range(of: target) {
            result += rest[..<found.lowerBound] + replacement
            rest = rest[found.upperBound...]
        }
        return result + rest
    }

    func range(of target: String) -> Range<String.Index>? { self[...].range(of: target) }
}

extension Substring {
    func range(of target: String) -> Range<String.Index>? {
        guard !target.isEmpty else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) { return index..<self.index(index, offsetBy: target.count) }
            index = self.index(after: index)
        }
        return nil
    }
}
