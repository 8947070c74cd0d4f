import SecureChatCore
import SecureChatCrypto

/// What `securechat peer` runs with (Configs/peer.conf documents each key).
public struct PeerConfiguration: Sendable {
    /// The settings with defaults; the CLI fills them from the config file and flags.
    public struct Options: Sendable {
        public var signUp = false
        /// Where to listen for direct calls; port 0: chosen by the system.
        public var listen = HostPort(host: "0.0.0.0", port: 0)
        /// The cipher of our calls and of our server connection.
        public var cipher = CipherKind.chaChaPoly
        /// Ciphers accepted from callers.
        public var allowedCiphers = CipherKind.allCases
        /// Call this user as soon as signed in.
        public var callOnStart: UserID?
        /// Ask the user (/accept, /reject) before answering a call that passed the checks, instead
        /// of accepting it at once (the seed's behaviour, the default).
        public var askBeforeAnswering = false
        /// How long an asked call waits for the user before it is declined.
        public var answerTimeout: Duration = .seconds(30)
        public var keepAliveInterval: Duration = .seconds(60)
        public var reconnectDelays = ReconnectDelays()

        public init() {}
    }

    public var user: UserID
    /// The passcode's wire digest (`PasscodeDigest.wire`), never the passcode.
    public var passcodeDigest: String
    public var server: HostPort
    public var serverKey: X25519PublicKey
    public var identity: X25519KeyPair
    public var knownPeersPath: String
    public var options: Options

    public init(user: UserID, passcodeDigest: String, server: HostPort, serverKey: X25519PublicKey,
                identity: X25519KeyPair, knownPeersPath: String, options: Options) {
        self.user = user
        self.passcodeDigest = passcodeDigest
        self.server = server
        self.serverKey = serverKey
        self.identity = identity
        self.knownPeersPath = knownPeersPath
        self.options = options
    }
}

/// Exponential backoff between attempts to reach the server: first, doubled each time, at most.
public struct ReconnectDelays: Sendable {
    public var first: Duration = .seconds(1)
    public var maximum: Duration = .seconds(30)
    public init() {}

    public func delay(afterFailures failures: Int) -> Duration {
        var delay = first
        for _ in 0..<max(0, failures - 1) where delay < maximum { delay *= 2 }
        return min(delay, maximum)
    }
}

/// What the peer tells its user. The CLI shows each as one line (`ali> text`, `Hang up`, …).
public enum PeerEvent: Sendable, Equatable {
    /// A status line: refused: reason, NAME is online, …
    case info(String)
    /// Signed in (again after a reconnection too), with the user's own key fingerprint.
    case signedIn(fingerprint: String)
    /// A chat with this user started, whoever called: shown as `connected to NAME`.
    case connected(UserID)
    case received(from: UserID, text: String)
    /// A chat ended, by either side: shown as `Hang up`.
    case hangUp
    /// Wrong user ID or passcode: a terminal asks again (`retrySignIn`), a script stops.
    case signInRefused(String)
    /// Cannot go on (sign-up refused, bad settings): the program ends with this error.
    case fatal(String)
    /// Signed out and closed, after `quit`.
    case stopped
}

/// What the user asks of the peer (typed commands, Ctrl-C, end of input).
public enum PeerRequest: Sendable, Equatable {
    case chat(UserID)
    case list
    case hangUp
    case fingerprint(UserID?)
    case trust(UserID)
    /// Answer the call waiting for the user (config `answer = ask`).
    case accept
    case reject
    case text(String)
    /// Ctrl-C: hang up when chatting, otherwise quit.
    case interrupt
    /// /quit or end of input: hang up if chatting, sign out, stop.
    case quit
}
