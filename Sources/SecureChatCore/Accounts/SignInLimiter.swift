/// Sign-in and sign-up budgets (PROTOCOL.md §4 and docs/PROTOCOL.md's decisions): a pure value,
/// time coming in as `Instant`s, every table bounded.
///
/// - An attempt is counted as failed when it is admitted, before its hash runs, and refunded if
///   it succeeds: guesses sent all at once are counted all at once.
/// - The budget that limits guessing at one user is kept per user × source host, with a
///   back-off that doubles after a few free failures: a stranger elsewhere cannot spend it, so
///   cannot lock the user out of her own passcode.
/// - One host guessing at many users has a budget of its own, high enough that a home router
///   with several users behind it is not locked out as one.
/// - A user guessed at from very many hosts accepts sign-ins only from hosts she signed in from
///   before, until it calms down.
/// - Hashes in progress are bounded per user and per host.
/// Hosts are IPv4 addresses or IPv6 /64s (`IPAddress.hostKey`).
public struct SignInLimiter: Sendable {
    public struct Configuration: Equatable, Sendable {
        /// Failures per user × host before the back-off starts.
        public var freeFailures: Int
        /// The first wait after them; it doubles with each failure, up to `maximumBackOff`.
        public var firstBackOff: Duration
        public var maximumBackOff: Duration
        /// Failures from one host (any users) per `window`.
        public var failuresPerHost: Int
        /// Failures against one user (any hosts) per `window`, past which only hosts she signed
        /// in from before may try.
        public var failuresPerUser: Int
        public var window: Duration
        public var inFlightPerUser: Int
        public var inFlightPerHost: Int
        /// Accounts created per host per `signUpWindow`.
        public var signUpsPerHost: Int
        public var signUpWindow: Duration
        /// Entries kept at most in each table; past it, expired ones go first, then the oldest.
        public var maximumTracked: Int

        public init(freeFailures: Int = 3, firstBackOff: Duration = .seconds(2), maximumBackOff: Duration = .seconds(15 * 60),
                    failuresPerHost: Int = 100, failuresPerUser: Int = 200, window: Duration = .seconds(600),
                    inFlightPerUser: Int = 2, inFlightPerHost: Int = 4, signUpsPerHost: Int = 5,
                    signUpWindow: Duration = .seconds(3600), maximumTracked: Int = 100_000) {
            self.freeFailures = freeFailures
            self.firstBackOff = firstBackOff
            self.maximumBackOff = maximumBackOff
            self.failuresPerHost = failuresPerHost
            self.failuresPerUser = failuresPerUser
            self.window = window
            self.inFlightPerUser = inFlightPerUser
            self.inFlightPerHost = inFlightPerHost
            self.signUpsPerHost = signUpsPerHost
            self.signUpWindow = signUpWindow
            self.maximumTracked = maximumTracked
        }
    }

    /// An admitted attempt; give it back to `finish` exactly once.
    public struct Ticket: Hashable, Sendable {
        public let user: UserID
        public let host: IPAddress
    }

    public enum Admission: Equatable, Sendable {
        case admitted(Ticket)
        /// Refused without hashing; try again after this long.
        case lockedOut(retryAfter: Duration)
        /// Too many checks in progress for this user or host.
        case busy
    }

    public enum Outcome: Sendable {
        case granted
        case wrongPasscode
        /// The check did not happen (store error, client gone): not the client's failure.
        case notChecked
    }

    private struct Pair: Hashable, Sendable { let user: UserID; let host: IPAddress }
    private struct Backoff: Sendable { var failures: Int; var until: Instant; var last: Instant }
    private struct Window: Sendable { var start: Instant; var count: Int }

    public let configuration: Configuration
    private var pairs: [Pair: Backoff] = [:]
    private var hostFailures: [IPAddress: Window] = [:]
    private var userFailures: [UserID: Window] = [:]
    private var knownHosts: [UserID: [IPAddress]] = [:]
    private var inFlightUsers: [UserID: Int] = [:]
    private var inFlightHosts: [IPAddress: Int] = [:]
    private var signUps: [IPAddress: Window] = [:]
    /// Hosts remembered per user as ones she signed in from.
    private static var knownHostsPerUser: Int { 8 }

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    public mutating func admit(user: UserID, address: IPAddress, now: Instant) -> Admission {
        let host = address.hostKey
        guard inFlightUsers[user, default: 0] < configuration.inFlightPerUser,
              inFlightHosts[host, default: 0] < configuration.inFlightPerHost else { return .busy }
        let pair = Pair(user: user, host: host)
        if let backoff = pairs[pair], now < backoff.until { return .lockedOut(retryAfter: backoff.until.duration(since: now)) }
        if let window = current(hostFailures[host], now), window.count >= configuration.failuresPerHost {
            return .lockedOut(retryAfter: windowEnd(window).duration(since: now))
        }
        if let window = current(userFailures[user], now), window.count >= configuration.failuresPerUser,
           !(knownHosts[user]?.contains(host) ?? false) {
            return .lockedOut(retryAfter: windowEnd(window).duration(since: now))
        }
        // Counted as a failure now; refunded by `finish` if it was not one.
        var backoff = pairs[pair] ?? Backoff(failures: 0, until: now, last: now)
        backoff.failures += 1
        backoff.last = now
        backoff.until = now.advanced(by: wait(afterFailures: backoff.failures))
        insert(&pairs, pair, backoff, now: now) { $0.last.advanced(by: configuration.maximumBackOff) }
        count(&hostFailures, host, by: 1, now: now)
        count(&userFailures, user, by: 1, now: now)
        inFlightUsers.adjustCount(of: user, by: 1)
        inFlightHosts.adjustCount(of: host, by: 1)
        return .admitted(Ticket(user: user, host: host))
    }

    public mutating func finish(_ ticket: Ticket, _ outcome: Outcome, now: Instant) {
        inFlightUsers.adjustCount(of: ticket.user, by: -1)
        inFlightHosts.adjustCount(of: ticket.host, by: -1)
        let pair = Pair(user: ticket.user, host: ticket.host)
        switch outcome {
        case .wrongPasscode:
            return
        case .granted:
            pairs[pair] = nil
            var hosts = knownHosts[ticket.user] ?? []
            if !hosts.contains(ticket.host) {
                hosts.append(ticket.host)
                if hosts.count > Self.knownHostsPerUser { hosts.removeFirst() }
                if knownHosts[ticket.user] == nil { makeRoom(&knownHosts) }
                knownHosts[ticket.user] = hosts
            }
        case .notChecked:
            if var backoff = pairs[pair] {
                backoff.failures -= 1
                backoff.until = backoff.failures > 0 ? backoff.last.advanced(by: wait(afterFailures: backoff.failures)) : now
                pairs[pair] = backoff.failures > 0 ? backoff : nil
            }
        }
        count(&hostFailures, ticket.host, by: -1, now: now)
        count(&userFailures, ticket.user, by: -1, now: now)
    }

    /// Whether `address` may create another account now (counted if so).
    public mutating func admitSignUp(address: IPAddress, now: Instant) -> Bool {
        let host = address.hostKey
        if let window = signUps[host], now < window.start.advanced(by: configuration.signUpWindow) {
            guard window.count < configuration.signUpsPerHost else { return false }
            signUps[host]?.count += 1
            return true
        }
        insert(&signUps, host, Window(start: now, count: 1), now: now) { $0.start.advanced(by: configuration.signUpWindow) }
        return true
    }

    // MARK: Inside

    /// Nothing until `freeFailures` failures; then `firstBackOff`, doubling with each one more.
    private func wait(afterFailures failures: Int) -> Duration {
        let beyond = failures - configuration.freeFailures + 1
        guard beyond > 0 else { return .zero }
        var wait = configuration.firstBackOff
        for _ in 1..<min(beyond, 40) where wait < configuration.maximumBackOff { wait *= 2 }
        return min(wait, configuration.maximumBackOff)
    }

    private func current(_ window: Window?, _ now: Instant) -> Window? {
        guard let window, now < windowEnd(window) else { return nil }
        return window
    }

    private func windowEnd(_ window: Window) -> Instant { window.start.advanced(by: configuration.window) }

    private func count<Key: Hashable>(_ table: inout [Key: Window], _ key: Key, by change: Int, now: Instant) {
        if var window = current(table[key], now) {
            window.count = max(0, window.count + change)
            table[key] = window
        } else if change > 0 {
            insert(&table, key, Window(start: now, count: change), now: now) { windowEnd($0) }
        }
    }

    /// Adds an entry, making room first when the table is full: expired entries go, then the oldest.
    private func insert<Key: Hashable, Value>(_ table: inout [Key: Value], _ key: Key, _ value: Value, now: Instant,
                                              expiry: (Value) -> Instant) {
        if table[key] == nil, table.count >= configuration.maximumTracked {
            table = table.filter { now < expiry($0.value) }
            if table.count >= configuration.maximumTracked, let oldest = table.min(by: { expiry($0.value) < expiry($1.value) }) {
                table[oldest.key] = nil
            }
        }
        table[key] = value
    }

    private func makeRoom<Key: Hashable, Value>(_ table: inout [Key: Value]) {
        if table.count >= configuration.maximumTracked, let any = table.first { table[any.key] = nil }
    }
}
