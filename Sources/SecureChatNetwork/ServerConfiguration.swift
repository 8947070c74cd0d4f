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
    /// Connections from one host (an IPv4 address or an IPv6 /64) at once…
    public var maximumConnectionsPerHost = 64
    /// …and of those, ones not signed in yet (a handshake costs the server work).
    public var maximumUnsignedPerHost = 16
    /// A client whose unread replies pass this many bytes is not reading: it is closed.
    public var maximumPendingOutput = 256 * 1024
    /// Hashing jobs (sign-in, sign-up, passcode change) waiting at once; more are refused as busy.
    public var maximumQueuedHashes = 256
    /// Ciphers, sign-in deadline, idle timeout, sign-up: what each connection's session enforces.
    public var session = ServerSessionConfiguration()
    public var relay = RelayBook.Configuration()
    /// Threads that run scrypt and store writes, off the event loops (0: one per core).
    public var hashingThreads = 0
    /// Event-loop threads that serve connections (0: one per core).
    public var networkThreads = 0
    /// Static–static DH secrets kept, one per account key recently seen (see `StaticSecretCache`).
    public var staticSecretsKept = 16_384

    public init() {}

    public var keyPath: String { dataDirectory + "/server.key" }
    public var accountsPath: String { dataDirectory + "/accounts" }
    public var lockPath: String { dataDirectory + "/lock" }
}
