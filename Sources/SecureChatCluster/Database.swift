#if ScaleOut
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import Synchronization

/// Where a scale-out node finds its PostgreSQL: `database = postgres://USER@HOST[:PORT]/NAME`
/// in the server's config, the password from a file or the environment (never the URL, never an
/// argument).
public struct DatabaseSettings: Sendable {
    public var host: String
    public var port: Int
    public var user: String
    public var name: String
    public var password: String?
    /// `?sslmode=require`: TLS with the certificate checked against the system's roots.
    public var requireTLS: Bool

    /// Parses the URL; the error says what is wrong with it in plain words.
    public init(url: String, password: String?) throws {
        let usage = "expected postgres://USER@HOST[:PORT]/DATABASE[?sslmode=require|disable]"
        guard let rest = url.hasPrefix("postgres://") ? url.dropFirst(11) : url.hasPrefix("postgresql://") ? url.dropFirst(13) : nil,
              let at = rest.firstIndex(of: "@") else { throw ClusterError("database: \(usage)") }
        let userPart = rest[..<at]
        guard !userPart.contains(":") else {
            throw ClusterError("database: the URL must not hold the password; put it in database-password-file or SECURECHAT_DATABASE_PASSWORD")
        }
        var location = rest[rest.index(after: at)...]
        var tls = false
        if let question = location.firstIndex(of: "?") {
            switch location[location.index(after: question)...] {
            case "sslmode=require": tls = true
            case "sslmode=disable": tls = false
            default: throw ClusterError("database: \(usage)")
            }
            location = location[..<question]
        }
        guard let slash = location.firstIndex(of: "/"), !userPart.isEmpty else { throw ClusterError("database: \(usage)") }
        let name = location[location.index(after: slash)...]
        let hostText = String(location[..<slash])
        let bareHost = !hostText.isEmpty && !hostText.contains(where: { $0 == ":" || $0 == "[" || $0.isWhitespace })
        guard let address = HostPort(hostText) ?? (bareHost ? HostPort(host: hostText, port: 5432) : nil), !name.isEmpty else {
            throw ClusterError("database: \(usage)")
        }
        host = address.host
        port = address.port
        user = String(userPart)
        self.name = String(name)
        self.password = password
        requireTLS = tls
    }

    var description: String { "postgres://\(user)@\(HostPort(host: host, port: port))/\(name)" }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One PostgreSQL connection for queries, opened again when it is lost. Queries are pipelined on
/// it in the order they are made (a sign-in's notice is sent before the sign-out that follows).
final class Database: Sendable {
    let settings: DatabaseSettings
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let tls: PostgresConnection.Configuration.TLS
    private let current = Locked<EventLoopFuture<PostgresConnection>?>(nil)
    private let nextID = Atomic<Int>(1)

    init(settings: DatabaseSettings, eventLoop: any EventLoop, logger: Logger) throws {
        self.settings = settings
        self.eventLoop = eventLoop
        self.logger = logger
        tls = settings.requireTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable
    }

    /// A new connection of its own (the listener's).
    func connect() -> EventLoopFuture<PostgresConnection> {
        var configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                             password: settings.password, database: settings.name, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return PostgresConnection.connect(on: eventLoop, configuration: configuration,
                                          id: nextID.add(1, ordering: .relaxed).oldValue, logger: logger)
    }

    /// The shared connection, opened when there is none.
    private func connection() -> EventLoopFuture<PostgresConnection> {
        current.withLock { slot in
            if let future = slot { return future }
            let future = connect()
            slot = future
            let forget: @Sendable () -> Void = { [current] in current.withLock { if $0 === future { $0 = nil } } }
            future.whenComplete { result in
                switch result {
                case let .success(connection): connection.closeFuture.whenComplete { _ in forget() }
                case .failure: forget()
                }
            }
            return future
        }
    }

    func query(_ query: PostgresQuery) -> EventLoopFuture<PostgresQueryResult> {
        connection().flatMap { [logger] in $0.query(query, logger: logger) }
    }

    /// Waits for the answer, at most `answerTimeout`: only off the event loops (the hashing pool,
    /// whose threads a database that stopped answering must not hold for ever).
    func queryWaiting(_ query: PostgresQuery) throws -> PostgresQueryResult {
        let answer = eventLoop.makePromise(of: PostgresQueryResult.self)
        self.query(query).cascade(to: answer)
        let timeout = eventLoop.scheduleTask(in: Self.answerTimeout) {
            answer.fail(ClusterError("it did not answer within \(Self.answerTimeout.nanoseconds / 1_000_000_000) s"))
        }
        defer { timeout.cancel() }
        do { return try answer.futureResult.wait() } catch { throw ClusterError("the database: \(Self.describe(error))") }
    }

    static let answerTimeout = TimeAmount.seconds(10)

    /// `close` for a caller off the event loops (a command that ends).
    func closeWaiting() {
        if let connection = try? takeConnection()?.wait() { try? connection.close().wait() }
    }

    func close() async {
        if let connection = try? await takeConnection()?.get() { try? await connection.close() }
    }

    /// The shared connection, no longer shared: the next query opens a new one.
    private func takeConnection() -> EventLoopFuture<PostgresConnection>? {
        current.withLock { slot in
            defer { slot = nil }
            return slot
        }
    }

    /// A database error in plain words: PostgreSQL's own message when it sent one.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            switch error.code {
            case .connectionError, .uncleanShutdown, .serverClosedConnection: return "the connection to it failed or was lost"
            default: return "\(error.code)"
            }
        }
        if let error = error as? ClusterError { return error.description }
        return NetworkWords.describe(error, while: .talking(with: "the database"))
    }
}
#endif
