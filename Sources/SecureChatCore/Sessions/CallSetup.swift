/// The race that sets up one call (PROTOCOL.md §9.4–9.5), for the caller or the callee, as
/// decisions only: which candidate to dial and when, when to open the relay leg, which
/// connection carries the call, when to give up. Each TCP connection that might carry the call
/// is an attempt; the network layer opens them, runs a `PeerConnection` on each (the caller is
/// always the initiator), carries out the actions and reports back. Time comes in as `Instant`s.
///
/// Like wormhole's transit and libp2p's DCUtR: every path at once, the first that completes its
/// handshake wins, every other one is closed. Unlike them, TCP only: a simultaneous open through
/// two routers comes from both sides dialling each other's observed endpoint from their one port.
public struct CallSetup: Sendable {
    public enum Role: Equatable, Sendable { case caller, callee }

    public struct Configuration: Equatable, Sendable {
        /// One new dial per this interval, over the candidates in order, round and round.
        public var dialInterval: Duration = .milliseconds(100)
        /// No accepted connection this long after the start: open the relay leg.
        public var relayDelay: Duration = .seconds(1)
        /// A dial still not connected after this is dropped (and tried again on the next round).
        public var attemptTimeout: Duration = .seconds(3)
        /// Without a relay, give up on direct paths this long after the start.
        public var directTimeout: Duration = .seconds(5)
        /// The whole set-up, whatever happens.
        public var callTimeout: Duration = .seconds(30)
        /// false: relay only (the other side never learns our address), and at once.
        public var directPaths = true

        public init() {}
    }

    public typealias Attempt = Int

    /// How an attempt's connection came to be.
    public enum Route: Equatable, Sendable {
        /// We dialled this candidate of the other side (a simultaneous open looks the same).
        case dialled(Endpoint)
        /// Our listener accepted it from this endpoint of the other side.
        case accepted(Endpoint)
        /// Our relay leg through the server.
        case relay
    }

    /// How the call connected, as the user is told.
    public enum Path: Equatable, Sendable, CustomStringConvertible {
        case direct(Endpoint)
        /// Both sides are behind routers (NAT) and connected to each other's public mapping.
        case directThroughRouters(Endpoint)
        case relayed

        public var description: String {
            switch self {
            case let .direct(endpoint): return "direct, \(endpoint)"
            case .directThroughRouters: return "direct through both routers"
            case .relayed: return "relayed by the server"
            }
        }
    }

    public enum Failure: Equatable, Sendable {
        /// No direct path, and the server relays nothing (`reason`: the server's why, if it said).
        case unreachable(relayRefusal: String?)
        /// Nothing completed within the call timeout.
        case timedOut
        /// The other side refused the call on an attempt.
        case refused(String)
    }

    public enum Action: Equatable, Sendable {
        /// Open a TCP connection from our one port to `endpoint`.
        case dial(Attempt, Endpoint)
        /// Open the relay leg with our token (its own connection to the server).
        case openRelay(Attempt, token: String)
        /// Drop this attempt: a loser, or a dial that took too long.
        case close(Attempt)
        /// This attempt carries the call (every other one was closed).
        case won(Attempt, Path)
        /// For the user: no direct path yet; the relay leg is open.
        case tryingRelay
        case failed(Failure)
    }

    /// What is known about the two sides' networks, to order the dials and to say how the call
    /// connected.
    public struct Networks: Equatable, Sendable {
        /// The other side's address as the server saw it, and whether it is behind a router.
        public var peerObserved: Endpoint?
        public var peerBehindRouter: Bool
        public var selfBehindRouter: Bool
        /// Our own address as the server saw it.
        public var selfObserved: Endpoint?

        public init(peerObserved: Endpoint? = nil, peerBehindRouter: Bool = false, selfBehindRouter: Bool = false,
                    selfObserved: Endpoint? = nil) {
            self.peerObserved = peerObserved
            self.peerBehindRouter = peerBehindRouter
            self.selfBehindRouter = selfBehindRouter
            self.selfObserved = selfObserved
        }

        /// Both sides reach the server from one public address: behind one router, most likely
        /// on one LAN, where that address is no way to each other (few routers loop back).
        var shareRouter: Bool {
            guard peerBehindRouter, selfBehindRouter, let peer = peerObserved, let own = selfObserved else { return false }
            return peer.address == own.address
        }
    }

    /// One step of the race, when it happened (since the start): the call set-up's trace, for
    /// `trace = setup` and scripts/bench-paths.sh, which count round trips from it.
    public struct TraceEntry: Equatable, Sendable {
        public enum Step: Equatable, Sendable {
            case dialled(Attempt, Endpoint)
            case incoming(Attempt, Endpoint)
            case relayOpened(Attempt)
            /// The attempt's TCP connection (or relay leg) is open.
            case connected(Attempt)
            case closed(Attempt)
            /// The call was accepted on the attempt: the handshake's answer came (caller), or
            /// the caller's first record (callee).
            case accepted(Attempt)
        }

        public let after: Duration
        public let step: Step

        /// "+1.234 ms dialled #0 203.0.113.21:7500", as `trace = setup` shows it.
        public var description: String {
            let what: String
            switch step {
            case let .dialled(attempt, endpoint): what = "dialled #\(attempt) \(endpoint)"
            case let .incoming(attempt, endpoint): what = "incoming #\(attempt) \(endpoint)"
            case let .relayOpened(attempt): what = "relay #\(attempt)"
            case let .connected(attempt): what = "connected #\(attempt)"
            case let .closed(attempt): what = "closed #\(attempt)"
            case let .accepted(attempt): what = "accepted #\(attempt)"
            }
            return "+\(fixedPoint(after.seconds * 1000, decimals: 3)) ms \(what)"
        }
    }

    /// At most this many entries are kept (a dial per 100 ms for the 30 s of a call time-out).
    public static let traceLimit = 400

    private struct Live: Sendable {
        let route: Route
        let started: Instant
        var connected: Bool
    }

    public let role: Role
    public let configuration: Configuration
    private let candidates: [Endpoint]
    private let relayToken: String
    private let relayRefusal: String?
    private let networks: Networks
    private let started: Instant
    private var live: [Attempt: Live] = [:]
    private var nextAttempt: Attempt
    /// The candidate the next dial goes to, round and round.
    private var nextCandidate = 0
    private var nextDialAt: Instant
    private var relayOpened = false
    private var outcome: Outcome?
    public private(set) var trace: [TraceEntry] = []

    private enum Outcome: Equatable, Sendable { case won(Attempt), failed }

    /// Starts the race: the first actions (dials, or the relay at once when there is no candidate).
    /// Attempt numbers start at `firstAttempt` so that the network layer can keep one numbering.
    public static func start(role: Role, candidates: [Endpoint], relayToken: String, relayRefusal: String? = nil,
                             networks: Networks = Networks(), configuration: Configuration = Configuration(),
                             firstAttempt: Attempt, now: Instant) -> (CallSetup, [Action]) {
        // Behind one router: the other side's own (LAN) addresses first, the shared public one last.
        let ordered = networks.shareRouter
            ? candidates.filter { $0.address != networks.peerObserved?.address } + candidates.filter { $0.address == networks.peerObserved?.address }
            : candidates
        var setup = CallSetup(role: role, configuration: configuration, candidates: configuration.directPaths ? ordered : [],
                              relayToken: relayToken,
                              relayRefusal: relayRefusal, networks: networks, started: now, nextAttempt: firstAttempt)
        let actions = setup.tick(now: now)
        return (setup, actions)
    }

    private init(role: Role, configuration: Configuration, candidates: [Endpoint], relayToken: String, relayRefusal: String?,
                 networks: Networks, started: Instant, nextAttempt: Attempt) {
        self.role = role
        self.configuration = configuration
        self.candidates = candidates
        self.relayToken = relayToken
        self.relayRefusal = relayRefusal
        self.networks = networks
        self.started = started
        self.nextAttempt = nextAttempt
        nextDialAt = started
    }

    public var isFinished: Bool { outcome != nil }
    /// The attempt that carries the call, once won.
    public var winner: Attempt? { if case let .won(attempt)? = outcome { attempt } else { nil } }
    /// The attempt numbers in use, for the network layer to number its own after them.
    public var attemptsUsed: Attempt { nextAttempt }
    public func owns(_ attempt: Attempt) -> Bool { live[attempt] != nil || winner == attempt }
    public func route(of attempt: Attempt) -> Route? { live[attempt]?.route }

    /// When `tick` next has something to do.
    public var nextDeadline: Instant? {
        guard outcome == nil else { return nil }
        var times = [started.advanced(by: configuration.callTimeout)]
        if !candidates.isEmpty { times.append(nextDialAt) }
        if !relayOpened { times.append(started.advanced(by: relayToken.isEmpty ? configuration.directTimeout : configuration.relayDelay)) }
        for attempt in live.values where !attempt.connected {
            times.append(attempt.started.advanced(by: configuration.attemptTimeout))
        }
        return times.min()
    }

    /// The network round trips this side waited for, one after another, from `/chat` until
    /// the call was accepted, counted from the trace (nil before the race is won):
    ///   1. CALLREQ → CALLREPLY (the callee: the same CALLREQ, passed on as CALLOFFER), which
    ///      started the race;
    ///   2. the winning connection's TCP open (our dial, or theirs that reached us, or the relay
    ///      leg), plus one more for every earlier attempt at the same place that failed first
    ///      (a reset SYN that a retry had to follow);
    ///   3. the handshake (message 1 → message 2);
    ///   4. for the callee, the caller's first record after message 2 (key confirmation).
    /// Timer waits (the 100 ms between dials, the relay delay) are not round trips: they are
    /// in the trace's times.
    public var roundTrips: Int? {
        guard let winner else { return nil }
        var opened: TraceEntry.Step?
        for entry in trace {
            switch entry.step {
            case let .dialled(attempt, _), let .incoming(attempt, _), let .relayOpened(attempt):
                if attempt == winner { opened = entry.step }
            case .connected, .closed, .accepted: continue
            }
        }
        let failedBefore = trace.filter { entry in
            guard case let .closed(attempt) = entry.step, attempt < winner else { return false }
            return sameTarget(trace, attempt, as: opened)
        }.count
        return 1 + (1 + failedBefore) + 1 + (role == .callee ? 1 : 0)
    }

    /// Whether `attempt` was opened the same way as `step` (a dial to the same endpoint, the relay).
    private func sameTarget(_ trace: [TraceEntry], _ attempt: Attempt, as step: TraceEntry.Step?) -> Bool {
        trace.contains { entry in
            switch (entry.step, step) {
            case let (.dialled(other, endpoint), .dialled(_, winning)?): return other == attempt && endpoint == winning
            case let (.relayOpened(other), .relayOpened?): return other == attempt
            default: return false
            }
        }
    }

    // MARK: Events

    public mutating func tick(now: Instant) -> [Action] {
        guard outcome == nil else { return [] }
        if now >= started.advanced(by: configuration.callTimeout) { return fail(.timedOut) }
        var actions = [Action]()
        // Dials that never connected are dropped, so the next round can try that candidate again.
        // Only those are sorted (for a stable order): sorting every attempt on every tick made a
        // call with many connections cost O(n log n) a tick (found by FuzzSignalling's replay).
        let overdue = live.compactMap { attempt, state in
            !state.connected && now >= state.started.advanced(by: configuration.attemptTimeout) ? attempt : nil
        }
        for attempt in overdue.sorted() {
            live[attempt] = nil
            actions.append(.close(attempt))
        }
        if !relayOpened {
            if relayToken.isEmpty {
                if now >= started.advanced(by: configuration.directTimeout) || candidates.isEmpty, !live.values.contains(where: \.connected) {
                    return actions + fail(.unreachable(relayRefusal: relayRefusal))
                }
            } else if now >= started.advanced(by: configuration.relayDelay) || candidates.isEmpty {
                relayOpened = true
                let attempt = newAttempt(.relay, now: now)
                record(.relayOpened(attempt), now: now)
                actions += [.openRelay(attempt, token: relayToken), .tryingRelay]
            }
        }
        if !candidates.isEmpty, now >= nextDialAt {
            actions += dialNext(now: now)
            nextDialAt = now.advanced(by: configuration.dialInterval)
        }
        return actions
    }

    /// The network layer accepted a connection from `endpoint` that belongs to this call
    /// (nil: not wanted, the race is over or direct paths are off).
    public mutating func incoming(from endpoint: Endpoint, now: Instant) -> Attempt? {
        guard outcome == nil, configuration.directPaths else { return nil }
        let attempt = newAttempt(.accepted(endpoint), now: now)
        live[attempt]?.connected = true
        record(.incoming(attempt, endpoint), now: now)
        return attempt
    }

    /// The attempt's TCP connection (or relay leg) is open: its handshake starts.
    public mutating func connected(_ attempt: Attempt, now: Instant) -> [Action] {
        // Late (the race is over, or this dial was already given up): not needed.
        guard outcome == nil, live[attempt] != nil else { return winner == attempt ? [] : [.close(attempt)] }
        live[attempt]?.connected = true
        record(.connected(attempt), now: now)
        return []
    }

    /// The attempt's connection failed or closed before the call was accepted on it: its
    /// candidate is tried again on a later round (the relay leg is not).
    public mutating func closed(_ attempt: Attempt, now: Instant) -> [Action] {
        guard live.removeValue(forKey: attempt) != nil, outcome == nil else { return [] }
        record(.closed(attempt), now: now)
        // The relay was the only way, and it is gone.
        if relayOpened, live.isEmpty, candidates.isEmpty { return fail(.unreachable(relayRefusal: relayRefusal)) }
        return []
    }

    /// The other side refused the call on this attempt (CONNECTREPLY REFUSED): the call is over.
    public mutating func refused(_ attempt: Attempt, reason: String) -> [Action] {
        guard live.removeValue(forKey: attempt) != nil, outcome == nil else { return [] }
        return fail(.refused(reason))
    }

    /// The call was accepted on this attempt (the caller got ACCEPTED; the callee got the
    /// caller's first record): it wins, every other attempt is closed.
    public mutating func accepted(_ attempt: Attempt, now: Instant) -> [Action] {
        guard outcome == nil, let winning = live.removeValue(forKey: attempt) else { return [.close(attempt)] }
        outcome = .won(attempt)
        record(.accepted(attempt), now: now)
        let losers = live.keys.sorted().map { Action.close($0) }
        live = [:]
        return losers + [.won(attempt, path(of: winning.route))]
    }

    /// Gives the call up (hung up before it connected): every attempt is closed.
    public mutating func cancel() -> [Action] {
        guard outcome == nil else { return [] }
        outcome = .failed
        defer { live = [:] }
        return live.keys.sorted().map { .close($0) }
    }

    // MARK: Inside

    private mutating func dialNext(now: Instant) -> [Action] {
        // The next candidate in order without a connection in progress; none free: wait a round.
        for step in 0..<candidates.count {
            let index = (nextCandidate + step) % candidates.count
            let endpoint = candidates[index]
            guard !live.values.contains(where: { $0.route == .dialled(endpoint) }) else { continue }
            nextCandidate = (index + 1) % candidates.count
            let attempt = newAttempt(.dialled(endpoint), now: now)
            record(.dialled(attempt, endpoint), now: now)
            return [.dial(attempt, endpoint)]
        }
        return []
    }

    private mutating func newAttempt(_ route: Route, now: Instant) -> Attempt {
        let attempt = nextAttempt
        nextAttempt += 1
        live[attempt] = Live(route: route, started: now, connected: false)
        return attempt
    }

    private mutating func record(_ step: TraceEntry.Step, now: Instant) {
        guard trace.count < Self.traceLimit else { return }
        trace.append(TraceEntry(after: now.duration(since: started), step: step))
    }

    private func path(of route: Route) -> Path {
        switch route {
        case .relay: return .relayed
        case let .dialled(endpoint), let .accepted(endpoint):
            let toTheirRouter = networks.peerObserved.map { $0.address == endpoint.address } ?? false
            if toTheirRouter, networks.peerBehindRouter, networks.selfBehindRouter { return .directThroughRouters(endpoint) }
            return .direct(endpoint)
        }
    }

    private mutating func fail(_ failure: Failure) -> [Action] {
        outcome = .failed
        defer { live = [:] }
        return live.keys.sorted().map { .close($0) } + [.failed(failure)]
    }
}
