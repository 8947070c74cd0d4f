import SecureChatCommandLine
import Testing

private let root = CommandSpec(
    "tool", abstract: "A tool.",
    discussion: "Notes that are long enough to need wrapping at eighty columns, so the help wraps them at word boundaries.\n\nEXAMPLES:\n  tool run --name ali      an example, kept as written",
    subcommands: [
        CommandSpec("run", abstract: "Run it.",
                    options: [.value("name", "NAME", help: "A name."),
                              .value("server", "HOST:PORT", help: "Servers.", repeats: true),
                              .value("level", "N", help: "A level."),
                              .flag("fast", short: "f", help: "Go fast."),
                              .toggle("relay", help: "Relay."),
                              .value("key", "KEY", help: "The key.", required: true)]),
        CommandSpec("user", abstract: "Users.", subcommands: [
            CommandSpec("add", abstract: "Add one.", arguments: [ArgumentSpec("NAME", help: "Who.")]),
            CommandSpec("show", abstract: "Show.", arguments: [ArgumentSpec("FILE", help: "A file.", optional: true)]),
        ]),
    ])

private func run(_ words: [String]) throws -> ParsedArguments {
    guard case let .run(parsed) = try ArgumentParsing.parse(words, root: root) else {
        throw ArgumentError("not a run: \(words)", command: [])
    }
    return parsed
}

private func failure(_ words: [String]) -> String {
    do {
        _ = try ArgumentParsing.parse(words, root: root)
        return "(no error)"
    } catch {
        return error.description
    }
}

@Suite("Command line")
struct ArgumentParsingTests {
    @Test("options in both spellings, flags, toggles, repeats, -- and subcommands")
    func parses() throws {
        let parsed = try run(["run", "--name", "ali", "--server=a:1", "--server", "b:2", "-f", "--no-relay", "--key", "k", "--level=-3"])
        #expect(parsed.command == ["run"])
        #expect(parsed.value("name") == "ali")
        #expect(parsed.values("server") == ["a:1", "b:2"])
        #expect(parsed.value("level") == "-3", "a value that starts with - needs =")
        #expect(parsed.flag("fast") && !parsed.flag("missing"))
        #expect(parsed.toggle("relay") == false)
        let positional = try run(["user", "add", "--", "--odd-name"])
        #expect(positional.command == ["user", "add"] && positional.argument("NAME") == "--odd-name")
        #expect(try run(["user", "show"]).argument("FILE") == nil)
        #expect(try run([]).command == [], "the root alone runs (and shows its usage)")
    }

    @Test("help from --help, -h and help COMMAND, at any depth")
    func help() throws {
        #expect(try ArgumentParsing.parse(["run", "--name", "x", "--help"], root: root) == .help(["run"]))
        #expect(try ArgumentParsing.parse(["user", "add", "-h"], root: root) == .help(["user", "add"]))
        #expect(try ArgumentParsing.parse(["help", "user", "add"], root: root) == .help(["user", "add"]))
        #expect(failure(["help", "frob"]).hasPrefix("unknown command \"frob\""))
    }

    @Test("every mistake in words, with the nearest right spelling")
    func mistakes() {
        #expect(failure(["run", "--nmae", "x", "--key", "k"]) == "unknown option --nmae for run (did you mean --name?)")
        #expect(failure(["run", "--key"]) == "--key needs a value: --key KEY")
        #expect(failure(["run", "--key", "--fast"]) == "--key needs a value: --key KEY")
        #expect(failure(["run"]) == "--key is required")
        #expect(failure(["run", "--key", "a", "--key", "b"]) == "--key is given twice")
        #expect(failure(["run", "--key", "a", "--fast=yes"]) == "--fast takes no value")
        #expect(failure(["run", "--key", "a", "extra"]) == "unexpected argument \"extra\"")
        #expect(failure(["user", "add"]) == "missing NAME: Who.")
        #expect(failure(["user", "ad", "x"]).hasPrefix("unknown command \"ad\" (did you mean add?); the commands are add or show"))
        #expect(failure(["rn"]).hasPrefix("unknown command \"rn\" (did you mean run?)"))
    }

    @Test("typed values say what they expected")
    func typedValues() throws {
        let parsed = try run(["run", "--key", "k", "--level", "12", "--name", "x"])
        #expect(try parsed.integer("level", in: 1...20) == 12)
        #expect(throws: ArgumentError.badValue("--level: \"12\" is not a whole number from 1 to 5", command: ["run"])) {
            try parsed.integer("level", in: 1...5)
        }
        #expect(try parsed.integer("absent", in: 1...5) == nil)
        enum Colour: String, CaseIterable { case red, green, blue }
        #expect(throws: ArgumentError.badValue("--name: \"x\" is not red, green or blue", command: ["run"])) { try parsed.choice("name", Colour.self) }
    }

    @Test("--help lists every option, marks the required ones, wraps text, keeps examples")
    func helpText() {
        let text = HelpText.render(root, path: ["run"])
        #expect(text.hasPrefix("OVERVIEW: Run it.\n\nUSAGE: tool run --key KEY [OPTIONS]\n"))
        for line in ["  --server HOST:PORT        Servers.", "  -f, --fast                Go fast.", "  --[no-]relay              Relay.",
                     "  --key KEY                 The key. (required)", "  -h, --help                Show this help."] {
            #expect(text.contains(line), "\(line)\n in\n\(text)")
        }
        let top = HelpText.render(root, path: [])
        #expect(top.contains("COMMANDS:\n  run                       Run it.\n  user                      Users."))
        #expect(top.split(separator: "\n").allSatisfy { $0.count <= 80 })
        #expect(top.contains("\n  tool run --name ali      an example, kept as written"))
    }

    @Test("completion scripts name every command and option; the man page every option")
    func scripts() {
        for shell in CompletionScript.Shell.allCases {
            let script = CompletionScript.render(root, for: shell)
            for word in ["run", "user", "add", "server", "relay", "fast"] { #expect(script.contains(word), "\(shell): \(word)") }
        }
        let page = ManualPage.render(root, version: "1.0", date: "2026-12-01")
        #expect(page.hasPrefix(".TH TOOL 1 \"2026-12-01\" \"tool 1.0\""))
        #expect(page.contains(".B \\-\\-server HOST:PORT\nServers.\n"))
        #expect(page.contains(".SS tool user add\n"))
    }
}

extension String {
    fileprivate func contains(_ text: String) -> Bool {
        guard !text.isEmpty else { return true }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(text) { return true }
            index = self.index(after: index)
        }
        return false
    }
}
