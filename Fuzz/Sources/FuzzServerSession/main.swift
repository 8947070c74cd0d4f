import FuzzSupport

/// The server session (PROTOCOL.md §3–4, §9), three ways by the first byte: the input as the
/// very first bytes of a connection (HELLO, RELAY, garbage); as ciphertext after a real
/// handshake; and sealed properly as one plaintext after a real handshake and a sign-in, so that
/// the JSON and the state machine behind decryption are reached. The handshake is done once:
/// the state machines are values, copied for each input.
private struct Ready {
    var session: ServerSession<FuzzBackend>
    var client: SecureChannel<FuzzBackend>
}

nonisolated(unsafe) private let ready: Ready = {
    let identity = try! FuzzBackend.generateX25519KeyPair()
    var session = ServerSession<FuzzBackend>(configuration: .init(), localStatic: identity, acceptedAt: t0)
    var (client, hello) = try! SecureChannel<FuzzBackend>.initiator(cipher: .chaChaPoly, localStatic: try! FuzzBackend.generateX25519KeyPair(),
                                                                    remoteStatic: identity.publicKey, payload: [])
    guard case let .send(reply)? = session.receive(hello, now: t0).first else { fatalError("no handshake") }
    _ = client.receive(reply)
    let request = ControlMessage.authRequest(.init(userID: UserID("ali")!, passcode: String(repeating: "a", count: 64), port: 7,
                                                   extensions: ["calls", "keepalive"]))
    _ = session.receive(try! client.seal(request.encoded()), now: t0)
    guard case .send? = session.signInAnswered(.granted(previousKey: nil)).first else { fatalError("not signed in") }
    return Ready(session: session, client: client)
}()

nonisolated(unsafe) private let fresh = ServerSession<FuzzBackend>(configuration: .init(),
                                                                   localStatic: try! FuzzBackend.generateX25519KeyPair(), acceptedAt: t0)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    guard let mode = input.first else { return 0 }
    let body = Array(input.dropFirst())
    switch mode % 3 {
    case 0:
        var session = fresh
        for chunk in chunks(body) { _ = session.receive(chunk, now: t0) }
        _ = session.tick(now: t0.advanced(by: .seconds(11)))
        _ = session.endOfStream()
    case 1:
        var session = ready.session
        _ = session.receive(body, now: t0)
        _ = session.endOfStream()
    default:
        var session = ready.session, client = ready.client
        guard body.count <= 65519, let sealed = try? client.seal(body) else { return 0 }
        var actions = session.receive(sealed, now: t0)
        // Answer whatever it asked, as the network layer would.
        for action in actions {
            switch action {
            case .lookup: actions = session.lookupAnswered(.notFound)
            case .list: actions = session.listAnswered([UserID("ali")!, UserID("bianca")!])
            case .call: actions = session.callAnswered(.init(status: .notFound))
            case .changePasscode: actions = session.passwordAnswered(.wrongPasscode)
            case .createAccount: actions = session.signUpAnswered(.exists, reason: "taken")
            case .verifySignIn: actions = session.signInAnswered(.lockedOut(retryAfter: 60))
            case .send, .close, .relay, .signedOut: continue
            }
        }
        _ = session.tick(now: t0.advanced(by: .seconds(30)))
        _ = session.presenceChanged(.init(userID: UserID("bianca")!, status: .online))
    }
    return 0
}

#if FUZZ_REPLAY
// A declaration, not a statement: the fuzzer build parses this file as a library.
let replayed: Void = replayFiles(fuzz)
#endif
