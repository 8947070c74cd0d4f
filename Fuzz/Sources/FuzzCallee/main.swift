import FuzzSupport

/// The callee side of a peer connection (PROTOCOL.md §5, §9.6): the input as message 1 (after
/// a real HELLO, or from the first byte on), or — after a real handshake that was answered — as
/// the caller's records, sealed properly so that the record decoder and the chat behind
/// decryption are reached.
private struct Answered {
    var callee: PeerConnection<FuzzBackend>
    var caller: SecureChannel<FuzzBackend>
}

nonisolated(unsafe) private let keys = (ali: try! FuzzBackend.generateX25519KeyPair(), bianca: try! FuzzBackend.generateX25519KeyPair())

nonisolated(unsafe) private let answered: Answered = {
    let request = ControlMessage.connectRequest(initiator: UserID("ali")!).encoded()
    var (caller, bytes) = try! SecureChannel<FuzzBackend>.initiator(cipher: .chaChaPoly, localStatic: keys.ali, remoteStatic: keys.bianca.publicKey,
                                                                    payload: request)
    var callee = PeerConnection<FuzzBackend>(answeringWith: keys.bianca, allowed: CipherKind.allCases, origin: .dialled, now: t0)
    _ = callee.receive(bytes, now: t0)
    guard callee.check(CallerRecord(user: UserID("ali")!, key: keys.ali.publicKey, addresses: []), pinnedKey: nil, busy: false) == nil,
          case let .send(message2)? = callee.answer(refusal: nil, now: t0).first else { fatalError("not answered") }
    _ = caller.receive(message2)
    return Answered(callee: callee, caller: caller)
}()

nonisolated(unsafe) private let hello: [UInt8] = try! Framing.frame(ControlMessage.hello(.init(noise: "Noise_IK_25519_ChaChaPoly_SHA256")).encoded())

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    guard let mode = input.first else { return 0 }
    let body = Array(input.dropFirst())
    switch mode % 3 {
    case 0:
        var callee = PeerConnection<FuzzBackend>(answeringWith: keys.bianca, allowed: CipherKind.allCases,
                                                 origin: .accepted(from: IPAddress("192.0.2.1")!), now: t0)
        for chunk in chunks(body) {
            for action in callee.receive(chunk, now: t0) {
                if case let .checkCaller(user, key) = action {
                    _ = callee.answer(refusal: callee.check(CallerRecord(user: user, key: key, addresses: []), pinnedKey: nil, busy: false), now: t0)
                }
            }
        }
        _ = callee.tick(now: t0.advanced(by: .seconds(11)))
    case 1:
        var callee = PeerConnection<FuzzBackend>(answeringWith: keys.bianca, allowed: CipherKind.allCases, origin: .dialled, now: t0)
        guard !body.isEmpty, let frame = try? Framing.frame(body) else { return 0 }
        _ = callee.receive(hello + frame, now: t0)
    default:
        var callee = answered.callee, caller = answered.caller
        for chunk in chunks(body).prefix(8) {
            guard let sealed = try? caller.seal(chunk) else { return 0 }
            _ = callee.receive(sealed, now: t0)
        }
        _ = callee.tick(now: t0.advanced(by: .seconds(40)))
        _ = callee.sendText("answer", now: t0)
        _ = callee.hangUp(now: t0)
    }
    return 0
}

#if FUZZ_REPLAY
// A declaration, not a statement: the fuzzer build parses this file as a library.
let replayed: Void = replayFiles(fuzz)
#endif
