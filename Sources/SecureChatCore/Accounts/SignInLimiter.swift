/// Failed sign-ins, limited per user and per source address (PROTOCOL.md §4). A limited attempt
/// is refused before any hashing, so guessing costs the attacker time and the server nothing.
/// Fixed windows: a key that failed `limit` times within `window` is limited until that window
/// ends. Time comes in as values; the table is bounded.
public struct SignInLimiter: Sendable {
    public struct Configuration: Equatable, Sendable {
        public var failuresPerUser: Int
        public var failuresPerAddress: Int
        public var window: Duration
        /// Keys tracked at most; past it, expired windows go first, then the oldest.
        public var maximumTracked: Int

        public init(failuresPerUser: Int = 5, failuresPerAddress: Int = 20, window: Duration = .seconds(300),
                    maximumTracked: Int = 100_000) {
            self.failuresPerUser = failuresPerUser
            self.failuresPerAddress = failuresPerAddress
            self.window = window
            self.maximumTracked = maximumTracked
        }
    }

    private enum Key: Hashable, Sendable { case user(UserID), address(String) }
    private struct Window: Sendable { var start: Instant; var failures: Int }

    public let configuration: Configuration
    private var windows: [Key: Window] = [:]

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    public func isLimited(user: UserID, address: String, now: Instant) -> Bool {
        failures(.user(user), now) >= configuration.failuresPerUser
            || failures(.address(address), now) >= configuration.failuresPerAddress
    }

    public mutating func recordFailure(user: UserID, address: String, now: Instant) {
        for key in [Key.user(user), .address(address)] {
            var window = current(key, now) ?? Window(start: now, failures: 0)
            window.failures += 1
            if windows[key] == nil, windows.count >= configuration.maximumTracked { makeRoom(now) }
            windows[key] = window
        }
    }

    /// A granted sign-in clears that user's failures (not the address's: one good account must
    /// not reset the count for guesses at others).
    public mutating func recordSuccess(user: UserID) { windows[.user(user)] = nil }

    private func failures(_ key: Key, _ now: Instant) -> Int { current(key, now)?.failures ?? 0 }

    private func current(_ key: Key, _ now: Instant) -> Window? {
        guard let window = windows[key], now < window.start.advanced(by: configuration.window) else { return nil }
        return window
    }

    private mutating func makeRoom(_ now: Instant) {
        windows = windows.filter { now < $0.value.start.advanced(by: configuration.window) }
        if windows.count >= configuration.maximumTracked, let oldest = windows.min(by: { $0.value.start < $1.value.start }) {
            windows[oldest.key] = nil
        }
    }
}
