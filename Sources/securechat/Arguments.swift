import ArgumentParser
import Logging
import SecureChatBackends
import SecureChatCrypto
import SecureChatNetwork

extension BackendName: ExpressibleByArgument {}

extension CipherKind: ExpressibleByArgument {
    public init?(argument: String) { self.init(configName: argument) }
    public static var allValueStrings: [String] { allCases.map(\.configName) }
}

extension HostPort: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension ConfigFile {
    mutating func backend(_ key: String) throws -> BackendName? {
        try take(key, expected: "openssl or gcrypt", BackendName.init(rawValue:))
    }

    mutating func cipher(_ key: String) throws -> CipherKind? {
        try take(key, expected: "chachapoly or aesgcm", CipherKind.init(configName:))
    }

    mutating func hostPort(_ key: String) throws -> HostPort? {
        try take(key, expected: "HOST:PORT", { HostPort($0) })
    }

    mutating func logLevel(_ key: String) throws -> Logger.Level? {
        try take(key, expected: "trace, debug, info, notice, warning, error or critical", Logger.Level.init(rawValue:))
    }

    /// Reads `path` if given; an absent optional config is an empty one.
    static func loadIfGiven(_ path: String?) throws -> ConfigFile {
        guard let path else { return try ConfigFile(path: "(none)", text: "") }
        return try load(path)
    }
}

/// Log lines to standard error at `level`. Lines carry events, users and addresses: never a
/// passcode, hash or private key (none of them is ever put into a log call).
func startLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
