import Glibc
import Logging
import SecureChatBackends
import SecureChatCommandLine
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork

/// Flag values that explain themselves when wrong, in one line: `--listen 7400` says "use
/// HOST:PORT, e.g. 0.0.0.0:7400", never a bare "is invalid".
extension ParsedArguments {
    func listenAddress() throws -> HostPort? {
        guard let text = value("listen") else { return nil }
        do { return try HostPort.listening(text) } catch { throw ArgumentError.badValue("--listen: \(error)", command: command) }
    }

    /// Every `--server` given, in order (several nodes of one service); empty when none.
    func serverAddresses() throws -> [HostPort] {
        try values("server").map { text in
            do { return try HostPort.connecting(text) } catch { throw ArgumentError.badValue("--server: \(error)", command: command) }
        }
    }

    func cipher() throws(ArgumentError) -> CipherKind? {
        try value("cipher", expected: "chachapoly or aesgcm", CipherKind.init(configName:))
    }

    /// A user ID given as `--name` (or as the argument `name`).
    func user(_ name: String) throws -> UserID? {
        guard let text = value(name) ?? argument(name) else { return nil }
        do { return try Parse.user(text) } catch { throw ArgumentError.badValue("\(error)", command: command) }
    }
}

/// The options several commands share, said once.
extension OptionSpec {
    static func configFile(_ help: String) -> OptionSpec { .value("config", "FILE", help: help, completion: .files) }

    static let backend = OptionSpec.value("backend", "BACKEND", help: "Crypto backend: openssl or gcrypt (default openssl).",
                                          completion: .choices(BackendName.allCases.map(\.rawValue)))

    static func backends(_ what: String) -> OptionSpec {
        .value("backend", "BACKEND", help: "Which backend to \(what): openssl, gcrypt or all (default all).",
               completion: .choices(BackendSelection.allCases.map(\.rawValue)))
    }
}

extension OptionSpec.Completion {
    static let ciphers = OptionSpec.Completion.choices(CipherKind.allCases.map(\.configName))
}

enum Parse {
    /// A user ID as people type it: capitals are folded (user IDs are lowercase on the wire).
    static func user(_ text: String) throws -> UserID {
        guard let user = UserID(text.lowercased()) else {
            throw CLIError("\"\(VisibleText.make(text, .terminal))\" is not a user ID: 1–32 of a-z 0-9 . _ -, starting with a letter or digit")
        }
        return user
    }
}

extension ConfigFile {
    mutating func backend(_ key: String) throws -> BackendName? {
        try take(key, expected: "openssl or gcrypt", BackendName.init(rawValue:))
    }

    mutating func cipher(_ key: String) throws -> CipherKind? {
        try take(key, expected: "chachapoly or aesgcm", CipherKind.init(configName:))
    }

    mutating func listenAddress(_ key: String) throws -> HostPort? {
        try take(key, expected: "HOST:PORT (e.g. 0.0.0.0:7400, or :7400 for every address)") { try? HostPort.listening($0) }
    }

    mutating func serverAddress(_ key: String) throws -> HostPort? {
        try take(key, expected: "HOST:PORT (e.g. 192.0.2.10:7400)") { try? HostPort.connecting($0) }
    }

    /// One or more HOST:PORT, separated by commas or spaces (several nodes of one service).
    mutating func serverAddresses(_ key: String) throws -> [HostPort]? {
        try take(key, expected: "HOST:PORT, or several separated by commas (e.g. 192.0.2.10:7400, 192.0.2.11:7400)") { text in
            let addresses = text.split(whereSeparator: { $0 == "," || $0 == " " }).map { try? HostPort.connecting(String($0)) }
            guard !addresses.isEmpty, !addresses.contains(where: { $0 == nil }) else { return nil }
            return addresses.compactMap { $0 }
        }
    }

    mutating func logLevel(_ key: String) throws -> Logger.Level? {
        try take(key, expected: "trace, debug, info, notice, warning, error or critical", Logger.Level.init(rawValue:))
    }

    /// A path from the file: a relative one is relative to the file's folder, not to wherever
    /// the program was started.
    mutating func path(_ key: String) throws -> String? {
        guard let value = try string(key) else { return nil }
        guard !value.hasPrefix("/"), let slash = path.lastIndex(of: "/") else { return value }
        return String(path[...slash]) + value
    }

    /// Reads `path` if given; an absent optional config is an empty one.
    static func loadIfGiven(_ path: String?) throws -> ConfigFile {
        guard let path else { return try ConfigFile(path: "(none)", text: "") }
        return try load(path)
    }
}

/// Log lines to standard error at `level`, in `LogLine`'s format.
func startLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { _ in
        var handler = LogLine()
        handler.logLevel = level
        return handler
    }
}

/// One log line: time, level, the event, then `key=value` (the connection id first). Values from
/// the network are escaped (`VisibleText`): a newline or ESC in a client's string cannot forge a
/// line. Lines carry events, users and addresses: never a passcode, hash or private key (none is
/// ever put into a log call).
struct LogLine: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = Self.timestamp() + " " + event.level.rawValue + " " + VisibleText.make("\(event.message)", .log)
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { Self.order($0.key) < Self.order($1.key) }) {
            let text = VisibleText.make("\(value)", .log)
            let name = String(key.map { $0 == " " ? "-" : $0 })
            line += " \(name)=" + (text.isEmpty || text.contains(Character(" ")) ? "\"\(text)\"" : text)
        }
        Output.error(line + "\n")
    }

    /// The connection id and the source first, then the rest by name.
    private static func order(_ key: String) -> String {
        switch key {
        case "conn": return "0"
        case "from": return "1"
        default: return "2" + key
        }
    }

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var text = [CChar](repeating: 0, count: 32)
        let count = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: text.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
