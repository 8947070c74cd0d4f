import Glibc
import SecureChatBackends
import SecureChatCommandLine
import SecureChatCore

@main
enum SecureChat {
    static let version = "0.2.0"
    /// When this version was made (the man page's date: fixed, so builds are reproducible).
    static let versionDate = "2026-12-01"

    static let tree = CommandNode.group(
        CommandSpec("securechat",
                    abstract: "End-to-end encrypted chat: a rendezvous server and peers that talk directly (Noise IK).",
                    discussion: """
                        EXAMPLES:
                          securechat serve --listen :7400                 run a server (prints its key)
                          securechat peer --user ali --signup --server 192.0.2.10:7400 --server-key KEY
                          securechat peer --user bianca --chat ali        call ali once signed in
                          securechat bench                                measure this device

                        Shell completions and the man page: securechat completions bash|zsh|fish, \
                        securechat manual (scripts/install.sh installs the binary with both).
                        """),
        [.command(ServeCommand.self), .command(PeerCommand.self), UserCommand.node, .command(PasswdCommand.self),
         KeyCommand.node, .command(BenchCommand.self), .command(SelfTestCommand.self), .command(VersionCommand.self),
         .command(CompletionsCommand.self), .command(ManualCommand.self)])

    /// Not `async` on purpose: an async main ends the main thread in `dispatch_main`, whose
    /// `pthread_exit` unwinds it, and in the static binary the first unwind sorts the frame
    /// tables of the whole program (about 217 million instructions, 10 ms here, at every start;
    /// callgrind). The main thread sleeps instead (waking only for signal handlers) until the
    /// command's task ends the process.
    static func main() {
        Task.detached {
            let status = await CommandLineTool.run(tree, Array(CommandLine.arguments.dropFirst()),
                                                   visible: { VisibleText.make($0, .terminal) }) {
                Output.write($0 == .output ? STDOUT_FILENO : STDERR_FILENO, $1)
            }
            exit(status)
        }
        while true { pause() }
    }
}

/// A backend choice on the command line: one backend or all of them.
enum BackendSelection: String, CaseIterable {
    case openssl, gcrypt, all

    var backends: [BackendName] {
        switch self {
        case .openssl: return [.openssl]
        case .gcrypt: return [.gcrypt]
        case .all: return BackendName.allCases
        }
    }
}

/// `securechat completions SHELL`.
struct CompletionsCommand: Command {
    static let spec = CommandSpec(
        "completions", abstract: "Print the shell completion script for bash, zsh or fish.",
        discussion: """
            EXAMPLES:
              securechat completions bash > /etc/bash_completion.d/securechat
              securechat completions zsh > /usr/local/share/zsh/site-functions/_securechat
              securechat completions fish > ~/.config/fish/completions/securechat.fish
            """,
        arguments: [ArgumentSpec("SHELL", help: "bash, zsh or fish.", completion: .choices(CompletionScript.Shell.allCases.map(\.rawValue)))])

    let shell: CompletionScript.Shell

    init(_ arguments: ParsedArguments) throws {
        let word = arguments.argument("SHELL") ?? ""
        guard let shell = CompletionScript.Shell(rawValue: word) else {
            throw ArgumentError.badValue("\"\(word)\" is not a shell this knows: bash, zsh or fish", command: [Self.spec.name])
        }
        self.shell = shell
    }

    func run() async throws { Output.write(STDOUT_FILENO, CompletionScript.render(SecureChat.tree.spec, for: shell)) }
}

/// `securechat manual`: the man page.
struct ManualCommand: Command {
    static let spec = CommandSpec(
        "manual", abstract: "Print the man page (roff), every command and option in it.",
        discussion: """
            EXAMPLES:
              securechat manual > /usr/local/share/man/man1/securechat.1
              securechat manual | man -l -
            """)

    init(_ arguments: ParsedArguments) {}

    func run() async throws {
        Output.write(STDOUT_FILENO, ManualPage.render(SecureChat.tree.spec, version: SecureChat.version, date: SecureChat.versionDate))
    }
}
