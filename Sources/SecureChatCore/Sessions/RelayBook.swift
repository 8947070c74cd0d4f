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
        var inUse: Bool { legs.values.contains { $0 != nil } }
        var paired: Bool { legs.values.allSatisfy { $0 != nil } }
    }

    public let configuration: Configuration
    private var calls: [Int: Call] = [:]
    private var tokens: [String: Int] = [:]
    private var callOfLeg: [Leg: Int] = [:]
    private var nextCall = 0
    /// Ids are handed out in order and every call gets the same token lifetime, so ids below this
    /// one are gone or paired, and the calls from here on expire in id order: no scan. (Clocks
    /// read on two threads may come in out of order by microseconds: a call then expires that late.)
    private var oldestUnpaired = 0
    /// Ids below this one are gone or in use: where `dropOldestUnused` looks next.
    private var nextToDrop = 0
    /// Calls in use (a leg has come), in all and per user: the limits, counted as they change.
    private var inUseCount = 0
    private var inUseByUser: [UserID: Int] = [:]

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    /// Tokens of calls not (yet) relayed that are kept. Most calls connect directly and never use
    /// theirs; past this many, the oldest is dropped to make room, so that a busy server still
    /// offers every new call a relay and its memory stays bounded.
    private var unusedCallsKept: Int { 4 * configuration.callsInAll }

    /// A relay for a call from `caller` to `callee`, with their two fresh tokens; nil when
    /// allowed, else why not. Only relays in use count against the limits.
    public mutating func offer(caller: UserID, callee: UserID, tokens pair: (caller: String, callee: String),
                               now: Instant) -> Refusal? {
        guard configuration.enabled else { return .disabled }
        _ = expire(now: now)
        guard inUseCount < configuration.callsInAll else { return .serverLimit }
        guard relayedCalls(of: caller) < configuration.callsPerUser, relayedCalls(of: callee) < configuration.callsPerUser else {
            return .userLimit
        }
        if calls.count - inUseCount >= unusedCallsKept { dropOldestUnused() }
        let id = nextCall
        nextCall += 1
        calls[id] = Call(users: (caller, callee), expires: now.advanced(by: configuration.tokenLifetime),
                         legs: [pair.caller: nil, pair.callee: nil])
        tokens[pair.caller] = id
        tokens[pair.callee] = id
        return nil
    }

    private func relayedCalls(of user: UserID) -> Int { inUseByUser[user, default: 0] }

    /// A leg's first frame named `token`.
    public mutating func arrive(token: String, leg: Leg, now: Instant) -> Arrival {
        _ = expire(now: now)
        // A token is good once: taken out of the table as it is used.
        guard let id = tokens.removeValue(forKey: token), var call = calls[id], call.legs[token] == .some(nil) else {
            return .refused("unknown, used or expired relay token")
        }
        // The first leg puts the relay in use: the limits are checked again, now that they count it.
        if !call.inUse {
            guard inUseCount < configuration.callsInAll else { return abandon(id, Refusal.serverLimit.rawValue) }
            guard relayedCalls(of: call.users.0) < configuration.callsPerUser,
                  relayedCalls(of: call.users.1) < configuration.callsPerUser else { return abandon(id, Refusal.userLimit.rawValue) }
            countInUse(call, by: 1)
        }
        call.legs[token] = leg
        calls[id] = call
        callOfLeg[leg] = id
        guard call.paired, let other = call.legs.values.compactMap({ $0 }).first(where: { $0 != leg }) else { return .waiting }
        return .paired(with: other)
    }

    private mutating func countInUse(_ call: Call, by change: Int) {
        inUseCount += change
        inUseByUser.adjustCount(of: call.users.0, by: change)
        inUseByUser.adjustCount(of: call.users.1, by: change)
    }

    /// Takes a call out of the book with its tokens and legs, and out of the counts.
    private mutating func remove(_ id: Int) -> Call? {
        guard let call = calls.removeValue(forKey: id) else { return nil }
        for (token, leg) in call.legs {
            tokens[token] = nil
            if let leg { callOfLeg[leg] = nil }
        }
        if call.inUse { countInUse(call, by: -1) }
        return call
    }

    /// Drops a call whose first leg breaks a limit.
    private mutating func abandon(_ id: Int, _ why: String) -> Arrival {
        _ = remove(id)
        return .refused(why)
    }

    /// Makes room for a new call: the oldest call no leg came for goes. A call in use is never
    /// dropped and never unused again, so the search goes on from where it stopped.
    private mutating func dropOldestUnused() {
        while nextToDrop < nextCall {
            let id = nextToDrop
            nextToDrop += 1
            if let call = calls[id], !call.inUse {
                _ = remove(id)
                return
            }
        }
    }

    /// A leg closed (or was closed): its call is over; the other leg, if any, must close too.
    public mutating func legClosed(_ leg: Leg) -> Leg? {
        guard let id = callOfLeg[leg], let call = remove(id) else { return nil }
        return call.legs.values.compactMap { $0 }.first { $0 != leg }
    }

    /// Calls whose tokens expired before both legs came: their waiting legs, to close.
    @discardableResult
    public mutating func expire(now: Instant) -> [Leg] {
        var closing = [Leg]()
        while oldestUnpaired < nextCall {
            if let call = calls[oldestUnpaired], !call.paired {
                guard now >= call.expires else { break }
                _ = remove(oldestUnpaired)
                closing += call.legs.values.compactMap { $0 }
            }
            oldestUnpaired += 1
        }
        return closing
    }

    /// Relayed calls being set up or carried now.
    public var activeCalls: Int { calls.count }
}
