import Glibc
import Logging
import NIOCore
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
#if ScaleOut
import SecureChatCluster
#endif

/// A scale-out node's settings (docs/DEPLOYING.md): `database` and the `node-…` keys of the
/// server config. Read in every build, so that a build without scale-out says so plainly.
struct ScaleOutSettings {
    var database: String
    var passwordFile: String?
    /// Names this node in logs and in the database; a random suffix is added at every start.
    var nodeName: String
    /// Where peers reach this node for the relay leg of a call it pairs.
    var nodeAddress: HostPort?
    var lease: Duration = .seconds(15)

    static let leaseRange = 3...3600

    /// The `database…` and `node-…` keys, or nil when `database` is absent (a standalone server).
    static func read(_ file: inout ConfigFile) throws -> ScaleOutSettings? {
        let passwordFile = try file.path("database-password-file")
        let nodeName = try file.take("node-name", expected: "1 to 48 of A-Z a-z 0-9 . _ -") { $0.utf8.count <= 48 ? NodeName($0)?.rawValue : nil }
        let nodeAddress = try file.serverAddress("node-address")
        let lease = try file.duration("node-lease")
        guard let database = try file.string("database") else {
            if passwordFile != nil || nodeName != nil || nodeAddress != nil || lease != nil {
                throw CLIError("\(file.path): the database-password-file and node-… settings need `database = postgres://…`")
            }
            return nil
        }
        var settings = ScaleOutSettings(database: database, passwordFile: passwordFile, nodeName: nodeName ?? Self.hostName(),
                                        nodeAddress: nodeAddress)
        if let lease {
            guard Self.leaseRange.contains(Int(lease.components.seconds)) else {
                throw CLIError("\(file.path): node-lease must be between 3 s and 1 h")
            }
            settings.lease = lease
        }
        return settings
    }

    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map(UInt8.init(bitPattern:)), as: UTF8.self)
        return NodeName(name).map { String($0.rawValue.prefix(48)) } ?? "node"
    }

    /// The database password: `database-password-file`, else SECURECHAT_DATABASE_PASSWORD, else none.
    func password() throws -> String? {
        if let passwordFile {
            if let mode = Files.permissions(passwordFile), mode & 0o077 != 0 {
                throw CLIError("database-password-file \(passwordFile) can be read by other users (mode \(String(mode, radix: 8))); "
                               + "run: chmod 600 \(passwordFile)")
            }
            let bytes: [UInt8]
            do { bytes = try Files.read(passwordFile) } catch { throw CLIError("database-password-file: \(error)") }
            return String(Substring(String(decoding: bytes, as: UTF8.self)).trimmed)
        }
        return getenv("SECURECHAT_DATABASE_PASSWORD").map { String(cString: $0) }
    }
}

/// What a server needs to run as a node of a scale-out deployment, or to run alone.
struct ServerMembership {
    var storage: (any AccountStorage)?
    var nodes: any ServerNodes = StandaloneNode()
    /// Applies the other nodes' notices once the server runs.
    var attach: (NodeInbox) -> Void = { _ in }
    var leave: () async -> Void = {}

    static func join<Backend: CryptoBackend>(_ settings: ServerSettings, eventLoop: any EventLoop, logger: Logger,
                                             backend: Backend.Type) async throws -> ServerMembership {
        guard let scaleOut = settings.scaleOut else { return ServerMembership() }
        #if ScaleOut
        let listening = settings.server
        let address = scaleOut.nodeAddress
            ?? ([HostPort.everyAddress, "0.0.0.0"].contains(listening.host) || listening.port == 0
                ? nil : HostPort(host: listening.host, port: listening.port))
        guard let address else {
            throw CLIError("node-address is required when listening on every address or on port 0: the HOST:PORT peers reach "
                           + "this node at (callees on other nodes open their relay legs there)")
        }
        let suffix = try Backend.randomBytes(count: 4).hexString
        guard let name = NodeName("\(scaleOut.nodeName).\(suffix)") else { throw CLIError("node-name is not a valid name") }
        let database = try scaleOut.databaseSettings()
        let cluster: PostgresCluster
        do {
            cluster = try await PostgresCluster.start(settings: database, name: name, relayAddress: "\(address)",
                                                      lease: TimeAmount(scaleOut.lease), eventLoop: eventLoop, logger: logger)
        } catch {
            throw CLIError("\(error)")
        }
        return ServerMembership(storage: cluster.storage, nodes: cluster, attach: { cluster.attach($0) }, leave: { await cluster.stop() })
        #else
        _ = scaleOut
        throw CLIError(ScaleOutSettings.notBuiltIn)
        #endif
    }
}

extension ScaleOutSettings {
    static let notBuiltIn = "this securechat was built without scale-out support, so it cannot use `database =`; "
        + "build it with scripts/build-static.sh --scale-out (docs/DEPLOYING.md)"

    /// The deployment's accounts table, for `securechat user`: `body` gets it and a way to read
    /// every account.
    func withAccounts<Result>(_ body: (any AccountStorage, () throws -> AccountBook) throws -> Result) throws -> Result {
        #if ScaleOut
        let settings = try databaseSettings()
        do { return try ClusterAccounts.with(settings, body) } catch let error as CLIError { throw error } catch {
            throw CLIError("\(error)")
        }
        #else
        throw CLIError(Self.notBuiltIn)
        #endif
    }

    #if ScaleOut
    /// The URL parsed and the password read, with errors in the command line's words.
    func databaseSettings() throws -> DatabaseSettings {
        do { return try DatabaseSettings(url: database, password: try password()) } catch let error as ClusterError {
            throw CLIError("\(error)")
        }
    }
    #endif
}
