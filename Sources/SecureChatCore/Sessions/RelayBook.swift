/// The server's relay decisions (PROTOCOL.md §9.5) as a pure value: which calls may be relayed,
/// which token belongs to which leg, when two legs are paired, when a waiting leg or an unused
/// token expires. The network layer copies the bytes of paired legs and reports legs that end.
public struct RelayBook: Sendable {
    public struct Configuration: Equatable, Sendable {
        public var enabled: Bool
        /// Relayed calls a user may be in at once (counted from CALLREQ to the end of the call).
        public var callsPerUser: Int
        public var callsInAll: Int
        /// Bytes per second per relayed call in each direction (0: no limit).
        public var bytesPerSecond: Int
        /// A paired relay with no byte either way for this long is closed.
        public var idleTimeout: Duration
        /// Tokens are good for this long after the CALLREQ, and once.
        public var tokenLifetime: Duration

        public init(enabled: Bool = true, callsPerUser: Int = 2, callsInAll: Int = 200, bytesPerSecond: Int = 1 << 20,
                    idleTimeout: Duration = .seconds(120), tokenLifetime: Duration = .seconds(30)) {
            self.enabled = enabled
            self.callsPerUser = callsPerUser
            self.callsInAll = callsInAll
            self.bytesPerSecond = bytesPerSecond
            self.idleTimeout = idleTimeout
            self.tokenLifetime = tokenLifetime
        }
    }

    /// A relay leg: the network layer's connection id.
    public typealias Leg = UInt64

    public enum Refusal: String, Equatable, Sendable {
        case disabled = "this server does not relay calls"
        case userLimit = "the relay limit for one of you is reached"
        case serverLimit = "the server relays as many calls as it allows"
    }

    public enum Arrival: Equatable, Sendable {
        /// Not a token of a call (never issued, already used, or expired): close the leg.
        case refused(String)
        /// The other leg has not come yet: hold this one (its bytes wait, bounded).
        case waiting
        /// Both legs are here: copy bytes between them.
        case paired(with: Leg)
    }

    private struct Call: Sendable {
        let users: (UserID, UserID)
        let expires: Instant
        /// The leg that arrived with each token, by token.
        var legs: [String: Leg?]
        var paired: Bool { legs.values.allSatisfy { $0 != nil } }
    }

    public let configuration: Configuration
    private var calls: [Int: Call] = [:]
    private var tokens: [String: Int] = [:]
    private var callOfLeg: [Leg: Int] = [:]
    private var nextCall = 0

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    /// A relay for a call from `caller` to `callee`, with their two fresh tokens; nil when
    /// allowed, else why not. Only relays in use count against the limits (most calls connect
    /// directly and never use their tokens); unused ones expire, and are bounded in number.
    public mutating func offer(caller: UserID, callee: UserID, tokens pair: (caller: String, callee: String),
                               now: Instant) -> Refusal? {
        guard configuration.enabled else { return .disabled }
        _ = expire(now: now)
        guard inUse.count < configuration.callsInAll, calls.count < 4 * configuration.callsInAll else { return .serverLimit }
        guard relayedCalls(of: caller) < configuration.callsPerUser, relayedCalls(of: callee) < configuration.callsPerUser else {
            return .userLimit
        }
        let id = nextCall
        nextCall += 1
        calls[id] = Call(users: (caller, callee), expires: now.advanced(by: configuration.tokenLifetime),
                         legs: [pair.caller: nil, pair.callee: nil])
        tokens[pair.caller] = id
        tokens[pair.callee] = id
        return nil
    }

    /// Calls whose relay is in use: a leg has come.
    private var inUse: [Call] { calls.values.filter { $0.legs.values.contains { $0 != nil } } }

    private func relayedCalls(of user: UserID) -> Int {
        inUse.filter { $0.users.0 == user || $0.users.1 == user }.count
    }

    /// A leg's first frame named `token`.
    public mutating func arrive(token: String, leg: Leg, now: Instant) -> Arrival {
        _ = expire(now: now)
        // A token is good once: taken out of the table as it is used.
        guard let id = tokens.removeValue(forKey: token), var call = calls[id], call.legs[token] == .some(nil) else {
            return .refused("unknown, used or expired relay token")
        }
        // The first leg puts the relay in use: the limits are checked again, now that they count it.
        if !call.legs.values.contains(where: { $0 != nil }) {
            guard inUse.count < configuration.callsInAll else { return abandon(id, Refusal.serverLimit.rawValue) }
            guard relayedCalls(of: call.users.0) < configuration.callsPerUser,
                  relayedCalls(of: call.users.1) < configuration.callsPerUser else { return abandon(id, Refusal.userLimit.rawValue) }
        }
        call.legs[token] = leg
        calls[id] = call
        callOfLeg[leg] = id
        guard call.paired, let other = call.legs.values.compactMap({ $0 }).first(where: { $0 != leg }) else { return .waiting }
        return .paired(with: other)
    }

    /// Drops a call whose first leg breaks a limit.
    private mutating func abandon(_ id: Int, _ why: String) -> Arrival {
        if let call = calls.removeValue(forKey: id) { for token in call.legs.keys { tokens[token] = nil } }
        return .refused(why)
    }

    /// A leg closed (or was closed): its call is over; the other leg, if any, must close too.
    public mutating func legClosed(_ leg: Leg) -> Leg? {
        guard let id = callOfLeg.removeValue(forKey: leg), let call = calls.removeValue(forKey: id) else { return nil }
        for token in call.legs.keys { tokens[token] = nil }
        let other = call.legs.values.compactMap { $0 }.first { $0 != leg }
        if let other { callOfLeg[other] = nil }
        return other
    }

    /// Calls whose tokens expired before both legs came: their waiting legs, to close.
    @discardableResult
    public mutating func expire(now: Instant) -> [Leg] {
        var closing = [Leg]()
        for (id, call) in calls where !call.paired && now >= call.expires {
            calls[id] = nil
            for (token, leg) in call.legs {
                tokens[token] = nil
                if let leg {
                    callOfLeg[leg] = nil
                    closing.append(leg)
                }
            }
        }
        return closing.sorted()
    }

    /// When `expire` next has something to do.
    public var nextExpiry: Instant? { calls.values.filter { !$0.paired }.map(\.expires).min() }

    /// Relayed calls being set up or carried now.
    public var activeCalls: Int { calls.count }
}
