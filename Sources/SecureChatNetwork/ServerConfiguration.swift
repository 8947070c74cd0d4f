import SecureChatCore
import SecureChatCrypto

/// Everything `securechat serve` can be told (Configs/server.conf documents each key).
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 7400
    public var dataDirectory = "securechat-data"
    public var scrypt = ScryptParameters(n: 1 << 14, r: 8, p: 1)
    /// Send PRESENCE to every signed-in user when someone signs in or out.
    public var presenceBroadcast = true
    public var signInLimits = SignInLimiter.Configuration()
    public var maximumConnections = 20_000
    /// Ciphers, sign-in deadline, idle timeout, sign-up: what each connection's session enforces.
    public var session = ServerSessionConfiguration()
    /// Threads that run scrypt and store writes, off the event loops (0: one per core).
    public var hashingThreads = 0
    /// Event-loop threads that serve connections (0: one per core).
    public var networkThreads = 0

    public init() {}

    public var keyPath: String { dataDirectory + "/server.key" }
    public var accountsPath: String { dataDirectory + "/accounts" }
    public var lockPath: String { dataDirectory + "/lock" }
}
