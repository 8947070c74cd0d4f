import SecureChatCore
import SecureChatCrypto

/// What `securechat peer` runs with (Configs/peer.conf documents each key).
public struct PeerConfiguration: Sendable {
    /// The settings with defaults; the CLI fills them from the config file and flags.
    public struct Options: Sendable {
        public var signUp = false
        /// The one port (§9.1): listening for calls, the server connection and every dial.
        /// Port 0: chosen by the system; `::` (`:PORT`): every address.
        public var listen = HostPort(host: HostPort.everyAddress, port: 0)
        /// The cipher of our calls and of our server connection.
        public var cipher = CipherKind.chaChaPoly
        /// Ciphers accepted from callers.
        public var allowedCiphers = CipherKind.allCases
        /// Call this user as soon as signed in.
        public var callOnStart: UserID?
        /// Ask the user (/accept, /reject) before answering a call that passed the checks, instead
        /// of accepting it at once (the seed's behaviour, the default).
        public var askBeforeAnswering = false
        /// How long an asked call waits for the user before it is declined (under the caller's
        /// call timeout, so the caller hears "declined" rather than nothing).
        public var answerTimeout: Duration = .seconds(25)
        public var keepAliveInterval: Duration = .seconds(60)
        public var reconnectDelays = ReconnectDelays()
        /// The call set-up race: dial pace, relay delay, call timeout.
        public var callSetup = CallSetup.Configuration()
        /// Handshake, answer, confirmation, chat keep-alive and silence limits.
        public var timeouts = PeerTimeouts()
        /// Incoming connections not yet checked, at most (more are closed at once).
        public var maximumPendingIncoming = 16
        /// Show each call set-up's trace and round trips (`trace = setup`: diagnostics, bench-paths).
        public var traceSetup = false

        public init() {}
    }

    public var user: UserID
    /// The passcode's wire digest (`PasscodeDigest.wire`), never the passcode.
    public var passcodeDigest: String
    /// The nodes of the service, tried in turn (one, for a server on its own); all hold `serverKey`.
    public var servers: [HostPort]
    public var serverKey: X25519PublicKey
    public var identity: X25519KeyPair
    public var knownPeersPath: String
    public var options: Options

    public init(user: UserID, passcodeDigest: String, servers: [HostPort], serverKey: X25519PublicKey,
                identity: X25519KeyPair, knownPeersPath: String, options: Options) {
        precondition(!servers.isEmpty, "at least one server")
        self.user = user
        self.passcodeDigest = passcodeDigest
        self.servers = servers
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

/// Who ended a chat, as `Hang up (…)` says.
public enum HangUpBy: Sendable, Equatable {
    case you
    case them(UserID)
    /// The connection to them was lost (they vanished, froze, or a frame was tampered with).
    case lost(UserID)
}

/// What the peer tells its user. The CLI shows each as one line (`ali> text`, `Hang up`, …).
/// Strings in it may hold what others sent: the console shows them through `VisibleText`.
public enum PeerEvent: Sendable, Equatable {
    /// A status line: refused: reason, NAME is online, …
    case info(String)
    /// Signed in (again after a reconnection too), with the user's own key fingerprint, and the
    /// fingerprint of the account's previous key when this device's key replaced it.
    case signedIn(fingerprint: String, replacedFingerprint: String?)
    /// A chat with this user started, whoever called, and how it connected:
    /// shown as `connected to NAME (path)`.
    case connected(UserID, path: String)
    case received(from: UserID, text: String)
    /// A chat ended: shown as `Hang up (…)`.
    case hangUp(HangUpBy)
    /// Wrong passcode, locked out…: a terminal asks again after a wrong passcode, a script stops.
    case signInRefused(SignInRefusal)
    /// Cannot go on (a wrong server key, sign-up refused, the server unreachable at start):
    /// the program ends with this error.
    case fatal(String)
    /// Signed out and closed, after `quit`.
    case stopped
}

/// What the user asks of the peer (typed commands, Ctrl-C, end of input).
public enum PeerRequest: Sendable, Equatable {
    case chat(UserID)
    case list
    case hangUp
    /// Your own fingerprint (nil), or the key known for a user.
    case fingerprint(UserID?)
    /// Pin the key offered for a user, if it has this fingerprint.
    case trust(UserID, fingerprint: String)
    /// Answer the call waiting for the user (config `answer = ask`).
    case accept
    case reject
    /// The current call's path, addresses and fingerprints.
    case info
    /// Sign in again (after another device took over).
    case reconnect
    case text(String)
    /// Ctrl-C: hang up when chatting (or calling), otherwise stop.
    case interrupt
    /// /quit or end of input: hang up if chatting, sign out, stop; before the first sign-in
    /// finished, after it (a script's last line comes before the server answered).
    case quit
    /// Stop now (the program cannot go on).
    case stop
}
