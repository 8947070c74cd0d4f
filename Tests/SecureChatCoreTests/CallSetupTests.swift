import SecureChatCore
import Testing

/// The call set-up race (PROTOCOL.md §9.4–9.5) without sockets: every order of events, decided
/// by the state machine alone, with time as values.
@Suite("Call set-up race")
struct CallSetupTests {
    let a = Endpoint("203.0.113.5:7500")!, b = Endpoint("203.0.113.5:40001")!, lan = Endpoint("192.168.1.5:7500")!
    let t0 = Instant(nanoseconds: 1_000_000_000)

    func at(_ milliseconds: Int64) -> Instant { t0.advanced(by: .milliseconds(milliseconds)) }

    func start(_ candidates: [Endpoint], relay: String = "token", networks: CallSetup.Networks = .init(),
               configuration: CallSetup.Configuration = .init()) -> (CallSetup, [CallSetup.Action]) {
        CallSetup.start(role: .caller, candidates: candidates, relayToken: relay, networks: networks,
                        configuration: configuration, firstAttempt: 0, now: t0)
    }

    @Test("one new dial every 100 ms in the order given, round and round, never two to one candidate")
    func dialPace() {
        var (setup, first) = start([a, b, lan])
        #expect(first == [.dial(0, a)])
        #expect(setup.tick(now: at(50)) == [], "not before the interval")
        #expect(setup.tick(now: at(100)) == [.dial(1, b)])
        #expect(setup.tick(now: at(200)) == [.dial(2, lan)])
        #expect(setup.tick(now: at(300)) == [], "every candidate has a dial in progress")
        // A refused dial is tried again on the next round.
        #expect(setup.closed(1, now: at(310)) == [])
        #expect(setup.tick(now: at(400)) == [.dial(3, b)])
        #expect(setup.nextDeadline == at(500))
    }

    @Test("the first accepted attempt wins; every other one is closed; a loser that completes late is closed too")
    func firstAcceptedWins() {
        var (setup, _) = start([a, b])
        _ = setup.tick(now: at(100))
        #expect(setup.connected(0, now: at(20)) == [] && setup.connected(1, now: at(20)) == [])
        #expect(setup.accepted(1, now: at(40)) == [.close(0), .won(1, .direct(b))])
        #expect(setup.isFinished && setup.winner == 1)
        #expect(setup.accepted(0, now: at(40)) == [.close(0)], "a late ACCEPTED on a loser closes it")
        #expect(setup.connected(7, now: at(20)) == [.close(7)], "a dial that connects after the race is closed")
        #expect(setup.tick(now: at(5000)) == [])
    }

    @Test("no direct path within the relay delay: the relay leg, and the relay can win")
    func relayWins() {
        var (setup, _) = start([a])
        #expect(setup.tick(now: at(999)) == [], "a dial still in progress, no relay yet")
        let actions = setup.tick(now: at(1000))
        #expect(actions.contains(.openRelay(1, token: "token")) && actions.contains(.tryingRelay))
        #expect(setup.route(of: 1) == .relay)
        _ = setup.connected(1, now: at(20))
        #expect(setup.accepted(1, now: at(40)) == [.close(0), .won(1, .relayed)])
    }

    @Test("no candidates at all: the relay at once; no relay either: a clear failure")
    func nothingToDial() {
        let (_, relayAtOnce) = start([])
        #expect(relayAtOnce == [.openRelay(0, token: "token"), .tryingRelay])
        let (_, nothing) = CallSetup.start(role: .caller, candidates: [], relayToken: "", relayRefusal: "this server does not relay calls",
                                           firstAttempt: 0, now: t0)
        #expect(nothing == [.failed(.unreachable(relayRefusal: "this server does not relay calls"))])
    }

    @Test("without a relay, direct paths are given up after their time, unless a connection is open")
    func directTimeout() {
        var (setup, _) = start([a], relay: "")
        _ = setup.closed(0, now: at(10))
        for step in 1..<50 { _ = setup.tick(now: at(Int64(step) * 100)); _ = setup.closed(step, now: at(Int64(step) * 100 + 10)) }
        #expect(setup.tick(now: at(5000)).last == .failed(.unreachable(relayRefusal: nil)))

        var (held, _) = start([a], relay: "")
        _ = held.connected(0, now: at(20))  // the callee is asking its user: the connection stays
        #expect(held.tick(now: at(5000)) == [], "an open connection keeps the call alive")
        #expect(held.tick(now: at(30_000)) == [.close(0), .failed(.timedOut)])
    }

    @Test("a dial that never connects is dropped after its timeout and tried again")
    func attemptTimeout() {
        var (setup, _) = start([a], relay: "")
        let actions = setup.tick(now: at(3000))
        #expect(actions == [.close(0), .dial(1, a)], "dropped, and tried again in the same round")
    }

    @Test("a refusal on any attempt ends the call")
    func refusalEnds() {
        var (setup, _) = start([a, b])
        _ = setup.tick(now: at(100))
        #expect(setup.refused(0, reason: "busy") == [.close(1), .failed(.refused("busy"))])
        #expect(setup.isFinished)
    }

    @Test("an accepted connection from the other side joins the race; cancelling closes everything")
    func incomingAndCancel() {
        var (setup, _) = start([a])
        let incoming = setup.incoming(from: b, now: at(20))
        #expect(incoming == 1 && setup.route(of: 1) == .accepted(b))
        #expect(setup.cancel() == [.close(0), .close(1)])
        #expect(setup.incoming(from: b, now: at(30)) == nil)
    }

    @Test("the trace counts the round trips waited for: 3 for the caller, 4 for the callee, one more per failed try first")
    func roundTrips() {
        var (caller, _) = start([a, b])
        #expect(caller.roundTrips == nil, "not won yet")
        _ = caller.closed(0, now: at(5))        // a reset SYN to a
        _ = caller.tick(now: at(100))           // dial 1 to b
        _ = caller.tick(now: at(200))           // dial 2 to a again
        _ = caller.connected(2, now: at(201))
        _ = caller.accepted(2, now: at(203))
        #expect(caller.roundTrips == 4, "CALLREPLY, the failed try, the TCP open, the handshake")
        #expect(caller.trace.map(\.step) == [.dialled(0, a), .closed(0), .dialled(1, b), .dialled(2, a), .connected(2), .accepted(2)])
        #expect(caller.trace.last?.after == .milliseconds(203))

        var (callee, _) = CallSetup.start(role: .callee, candidates: [a], relayToken: "token", firstAttempt: 0, now: t0)
        let theirs = callee.incoming(from: b, now: at(2))
        _ = callee.accepted(theirs ?? -1, now: at(4))
        #expect(callee.roundTrips == 4, "CALLOFFER, their TCP open, the handshake, the caller's first record")
    }

    @Test("behind one router with the other side: its LAN addresses are dialled before the shared public one")
    func sameRouterDialsTheLANFirst() {
        let shared = CallSetup.Networks(peerObserved: a, peerBehindRouter: true, selfBehindRouter: true,
                                        selfObserved: Endpoint("203.0.113.5:7501")!)
        var (setup, first) = start([a, lan], networks: shared)
        #expect(first == [.dial(0, lan)])
        #expect(setup.tick(now: at(100)) == [.dial(1, a)])
        let elsewhere = CallSetup.Networks(peerObserved: a, peerBehindRouter: true, selfBehindRouter: true,
                                           selfObserved: Endpoint("198.51.100.7:7500")!)
        #expect(start([a, lan], networks: elsewhere).1 == [.dial(0, a)], "different routers: the order given")
        let onePublicHost = CallSetup.Networks(peerObserved: a, selfObserved: Endpoint("203.0.113.5:7501")!)
        #expect(start([a, lan], networks: onePublicHost).1 == [.dial(0, a)], "one host, no router: its address works")
    }

    @Test("how it connected, as the user is told")
    func paths() {
        let networks = CallSetup.Networks(peerObserved: b, peerBehindRouter: true, selfBehindRouter: true)
        var (throughRouters, _) = start([a, b, lan], networks: networks)
        _ = throughRouters.tick(now: at(100))
        #expect(throughRouters.accepted(1, now: at(40)).last == .won(1, .directThroughRouters(b)))
        var (overLAN, _) = start([lan, a], networks: networks)
        #expect(overLAN.accepted(0, now: at(40)).last == .won(0, .direct(lan)))
        #expect(CallSetup.Path.directThroughRouters(b).description == "direct through both routers")
        #expect(CallSetup.Path.direct(lan).description == "direct, 192.168.1.5:7500")
        #expect(CallSetup.Path.relayed.description == "relayed by the server")
    }

    @Test("relay only (direct = no): no dial, the relay at once, incoming connections refused")
    func relayOnly() {
        var configuration = CallSetup.Configuration()
        configuration.directPaths = false
        var (setup, first) = start([a, b], configuration: configuration)
        #expect(first == [.openRelay(0, token: "token"), .tryingRelay])
        #expect(setup.incoming(from: a, now: at(10)) == nil)
    }
}

@Suite("Relay book")
struct RelayBookTests {
    let ali = UserID("ali")!, bianca = UserID("bianca")!, carol = UserID("carol")!
    let t0 = Instant(nanoseconds: 1)

    @Test("two legs with the tokens of one call are paired; a token is good once")
    func pairing() {
        var book = RelayBook()
        #expect(book.offer(caller: ali, callee: bianca, tokens: ("A", "B"), now: t0) == nil)
        #expect(book.arrive(token: "A", leg: 1, now: t0) == .waiting)
        #expect(book.arrive(token: "A", leg: 3, now: t0) == .refused("unknown, used or expired relay token"), "used twice")
        #expect(book.arrive(token: "nope", leg: 4, now: t0) == .refused("unknown, used or expired relay token"))
        #expect(book.arrive(token: "B", leg: 2, now: t0) == .paired(with: 1))
        #expect(book.legClosed(2) == 1, "one leg ends: its partner is closed too")
        #expect(book.activeCalls == 0)
    }

    @Test("tokens expire 30 s after the call; a leg left waiting is closed then")
    func expiry() {
        var book = RelayBook()
        _ = book.offer(caller: ali, callee: bianca, tokens: ("A", "B"), now: t0)
        #expect(book.arrive(token: "A", leg: 1, now: t0) == .waiting)
        #expect(book.expire(now: t0.advanced(by: .seconds(29))) == [])
        #expect(book.expire(now: t0.advanced(by: .seconds(30))) == [1])
        #expect(book.arrive(token: "B", leg: 2, now: t0.advanced(by: .seconds(31))) == .refused("unknown, used or expired relay token"))
    }

    @Test("limits: relays in use per user and in all; unused reservations do not count; relaying off")
    func limits() {
        var book = RelayBook(configuration: .init(callsPerUser: 1, callsInAll: 2))
        #expect(book.offer(caller: ali, callee: bianca, tokens: ("A1", "B1"), now: t0) == nil)
        #expect(book.offer(caller: ali, callee: carol, tokens: ("A2", "C2"), now: t0) == nil, "not in use yet: allowed")
        #expect(book.arrive(token: "A1", leg: 1, now: t0) == .waiting)
        #expect(book.offer(caller: ali, callee: carol, tokens: ("A3", "C3"), now: t0) == .userLimit)
        #expect(book.arrive(token: "A2", leg: 2, now: t0) == .refused(RelayBook.Refusal.userLimit.rawValue),
                "a leg that breaks a limit is closed")
        #expect(RelayBook(configuration: .init(enabled: false)).activeCalls == 0)
        var off = RelayBook(configuration: .init(enabled: false))
        #expect(off.offer(caller: ali, callee: bianca, tokens: ("x", "y"), now: t0) == .disabled)
    }

    @Test("a relay that ends frees its place: the limits count only relays in use now")
    func limitsFreed() {
        var book = RelayBook(configuration: .init(callsPerUser: 1, callsInAll: 1))
        _ = book.offer(caller: ali, callee: bianca, tokens: ("A1", "B1"), now: t0)
        _ = book.offer(caller: carol, callee: ali, tokens: ("C2", "A2"), now: t0)
        #expect(book.arrive(token: "A1", leg: 1, now: t0) == .waiting)
        #expect(book.arrive(token: "B1", leg: 2, now: t0) == .paired(with: 1))
        #expect(book.arrive(token: "C2", leg: 3, now: t0) == .refused(RelayBook.Refusal.serverLimit.rawValue))
        #expect(book.legClosed(1) == 2)
        #expect(book.offer(caller: carol, callee: ali, tokens: ("C3", "A3"), now: t0) == nil)
        #expect(book.arrive(token: "C3", leg: 4, now: t0) == .waiting, "the ended relay no longer counts")
        // The waiting leg's tokens expire: its place is free again.
        let later = t0.advanced(by: .seconds(30))
        #expect(book.expire(now: later) == [4])
        #expect(book.offer(caller: ali, callee: bianca, tokens: ("A4", "B4"), now: later) == nil)
        #expect(book.arrive(token: "A4", leg: 5, now: later) == .waiting)
    }

    @Test("a busy server keeps offering relays: past its bound, the oldest unused tokens give way")
    func unusedTokensBounded() {
        var book = RelayBook(configuration: .init(callsInAll: 2))  // keeps 8 unused calls
        _ = book.offer(caller: ali, callee: bianca, tokens: ("waiting", "partner"), now: t0)
        #expect(book.arrive(token: "waiting", leg: 1, now: t0) == .waiting)
        for n in 0..<20 {
            #expect(book.offer(caller: carol, callee: bianca, tokens: ("c\(n)", "b\(n)"), now: t0) == nil)
        }
        #expect(book.activeCalls == 9, "the call in use and the 8 newest unused ones")
        #expect(book.arrive(token: "c11", leg: 2, now: t0) == .refused("unknown, used or expired relay token"))
        #expect(book.arrive(token: "c12", leg: 3, now: t0) == .waiting)
        #expect(book.arrive(token: "partner", leg: 4, now: t0) == .paired(with: 1), "a call in use is never dropped")
        // Expiry passes over paired calls and still closes later waiting legs.
        #expect(book.expire(now: t0.advanced(by: .seconds(30))) == [3])
        #expect(book.activeCalls == 1)
    }
}
