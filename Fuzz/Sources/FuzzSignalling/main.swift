import FuzzSupport

/// Call set-up and relay pairing (PROTOCOL.md §9.3–9.5): every order of events the input
/// chooses, with the invariants the network layer relies on checked each step.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    guard input.count >= 2 else { return 0 }
    let candidates = (0..<Int(input[0] % 5)).map { Endpoint(address: .v4(0xC000_0200 + UInt32($0)), port: 7000 + $0) }
    var (setup, _) = CallSetup.start(role: input[1] % 2 == 0 ? .caller : .callee, candidates: candidates,
                                     relayToken: input[1] & 2 == 0 ? "" : "token", firstAttempt: 0, now: t0)
    var now = t0
    var book = RelayBook(configuration: .init(callsPerUser: 2, callsInAll: 4))
    let users = ["ali", "bianca", "carol"].map { UserID($0)! }
    var won = 0
    for byte in input.dropFirst(2) {
        let attempt = Int(byte >> 4)
        let actions: [CallSetup.Action]
        switch byte & 0x0F {
        case 0: now = now.advanced(by: .milliseconds(Int64(byte) * 7)); actions = setup.tick(now: now)
        case 1: actions = setup.connected(attempt, now: now)
        case 2: actions = setup.closed(attempt, now: now)
        case 3: actions = setup.accepted(attempt, now: now)
        case 4: actions = setup.refused(attempt, reason: "busy")
        case 5: _ = setup.incoming(from: Endpoint(address: .v4(0xC6336407), port: 1 + attempt), now: now); actions = []
        case 6: actions = setup.cancel()
        case 7: _ = book.offer(caller: users[attempt % 3], callee: users[(attempt + 1) % 3], tokens: ("c\(attempt)", "e\(attempt)"), now: now); actions = []
        case 8: _ = book.arrive(token: (attempt % 2 == 0 ? "c" : "e") + "\(attempt / 2)", leg: UInt64(byte), now: now); actions = []
        case 9: _ = book.legClosed(UInt64(byte)); actions = []
        default: now = now.advanced(by: .seconds(Int64(byte & 0x0F))); _ = book.expire(now: now); actions = setup.tick(now: now)
        }
        won += actions.filter { if case .won = $0 { true } else { false } }.count
        precondition(won <= 1, "one connection carries a call")
        if setup.isFinished { precondition(setup.nextDeadline == nil) }
        precondition(book.activeCalls <= 5 * book.configuration.callsInAll, "unused tokens and relays in use are bounded")
    }
    return 0
}

#if FUZZ_REPLAY
// A declaration, not a statement: the fuzzer build parses this file as a library.
let replayed: Void = replayFiles(fuzz)
#endif
