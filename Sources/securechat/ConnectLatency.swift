import Glibc
import Logging
import NIOPosix
import SecureChatBench
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork

/// The peer-to-peer connect latency of `securechat bench`: a throwaway server and peers in this
/// process over loopback, in a temporary directory removed afterwards. Each call is timed from
/// `/chat` until both sides report the chat connected, then hung up: once for each path the
/// loopback can build, direct and relayed by the server (peers with `direct = no`). A peer's
/// report is timed where it is made, on its event loop, so the bench's own wake-ups to read the
/// reports are not counted; the command still hops to the caller's loop as a typed one does.
enum ConnectLatency<Backend: CryptoBackend> {
    enum Path: String, CaseIterable { case direct, relayed }

    static func measure(calls: Int) async throws -> [BenchResult] {
        guard let directory = makeTemporaryDirectory() else { throw CLIError("cannot create a temporary directory") }
        var server = ServerConfiguration()
        server.host = "127.0.0.1"
        server.port = 0
        server.dataDirectory = directory + "/server"
        server.scrypt = ScryptParameters(n: 1 << 10, r: 8, p: 1)  // throwaway accounts: cheap to hash
        server.presenceBroadcast = false
        server.session.callsPerMinute = calls + 1  // one pair of peers makes every call
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let silent = Logger(label: "securechat.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        var results = [BenchResult]()
        var failure: (any Error)?
        do {
            let rendezvous = try await RendezvousServer<Backend>.start(configuration: server, group: group, logger: silent)
            do {
                let address = HostPort(host: "127.0.0.1", port: rendezvous.localAddress.port ?? 0)
                for path in Path.allCases {
                    let start = { (name: String) in
                        try await BenchPeer<Backend>.start("\(name)-\(path)", server: address, key: rendezvous.publicKey, group: group,
                                                           directory: directory, directPaths: path == .direct)
                    }
                    let latencies = try await time(calls, from: try await start("ali"), to: try await start("bianca"))
                    let percentile = { (fraction: Double) in
                        latencies[min(latencies.count - 1, Int((Double(latencies.count) * fraction).rounded(.up)) - 1)]
                    }
                    results += [BenchResult("connect \(path) p50", value: percentile(0.5), unit: "ms"),
                                BenchResult("connect \(path) p99", value: percentile(0.99), unit: "ms")]
                }
                results.append(BenchResult("connect trials", value: Double(calls), unit: "calls"))
            } catch {
                failure = error
            }
            await rendezvous.stop()
        } catch {
            failure = error
        }
        try? await group.shutdownGracefully()
        removeTree(directory)
        if let failure { throw failure }
        return results
    }

    /// `calls` calls from `caller` to `callee`, each hung up, then both quit: the sorted latencies in ms.
    private static func time(_ calls: Int, from caller: BenchPeer<Backend>, to callee: BenchPeer<Backend>) async throws -> [Double] {
        var latencies = [Double]()
        for _ in 0..<calls {
            // A call that does not connect (refused, lost) stops both peers instead of waiting forever.
            let watchdog = Task { [handles = [caller.handle, callee.handle]] in
                try await Task.sleep(for: .seconds(10))
                handles.forEach { $0.submit(.quit) }
            }
            defer { watchdog.cancel() }
            let start = ContinuousClock.now
            caller.handle.submit(.chat(callee.user))
            let callerConnected = try await caller.await { if case .connected(callee.user, _) = $0 { true } else { false } }
            let calleeConnected = try await callee.await { if case .connected(caller.user, _) = $0 { true } else { false } }
            latencies.append((max(callerConnected, calleeConnected) - start).seconds * 1000)
            caller.handle.submit(.hangUp)
            try await caller.await { if case .hangUp = $0 { true } else { false } }
            try await callee.await { if case .hangUp = $0 { true } else { false } }
        }
        for peer in [caller, callee] {
            peer.handle.submit(.quit)
            try await peer.await { $0 == .stopped }
        }
        return latencies.sorted()
    }

    private static func makeTemporaryDirectory() -> String? {
        var template = Array("/tmp/securechat-bench-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) }
    }

    /// Removes what the throwaway server and peers wrote (files one level down at most).
    private static func removeTree(_ path: String) {
        guard let directory = opendir(path) else { return }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name != ".", name != ".." else { continue }
            let child = path + "/" + name
            if unlink(child) != 0 { removeTree(child) }
        }
        closedir(directory)
        rmdir(path)
    }
}

/// One in-process peer of the connect benchmark, signed up and signed in, with its events.
private struct BenchPeer<Backend: CryptoBackend> {
    let user: UserID
    let handle: PeerNode<Backend>.Handle
    /// What the peer reported, each with when it did.
    private let events: AsyncStream<(PeerEvent, ContinuousClock.Instant)>.Iterator.Box

    static func start(_ name: String, server: HostPort, key: X25519PublicKey, group: MultiThreadedEventLoopGroup,
                      directory: String, directPaths: Bool) async throws -> BenchPeer {
        let user = UserID(name)!
        let passcode = SecretBytes(Array("bench passcode of \(name)".utf8))
        var options = PeerConfiguration.Options()
        options.signUp = true
        options.listen = HostPort(host: "127.0.0.1", port: 0)
        options.callSetup.directPaths = directPaths
        let configuration = PeerConfiguration(
            user: user, passcodeDigest: try PasscodeDigest.wire(userID: user, passcode: passcode, backend: Backend.self),
            servers: [server], serverKey: key, identity: try Backend.generateX25519KeyPair(),
            knownPeersPath: directory + "/\(name).known_peers", options: options)
        let (stream, sink) = AsyncStream.makeStream(of: (PeerEvent, ContinuousClock.Instant).self)
        let handle = try await PeerNode<Backend>.start(configuration: configuration, eventLoop: group.next(),
                                                       emit: { sink.yield(($0, .now)) }).get()
        let peer = BenchPeer(user: user, handle: handle, events: .init(stream.makeAsyncIterator()))
        try await peer.await { if case .signedIn = $0 { true } else { false } }
        return peer
    }

    /// Waits for the first event that matches and says when the peer reported it; a fatal event
    /// or a refused sign-in is an error.
    @discardableResult
    func await(_ matches: (PeerEvent) -> Bool) async throws -> ContinuousClock.Instant {
        var lastInfo = ""
        while let (event, reported) = await events.next() {
            handle.eventShown()
            if matches(event) { return reported }
            switch event {
            case let .fatal(why): throw CLIError("the benchmark peer \(user) stopped: \(why)")
            case let .signInRefused(why): throw CLIError("the benchmark peer \(user) could not sign in: \(why)")
            case .stopped: throw CLIError("the benchmark peer \(user) stopped: a call did not connect within 10 s\(lastInfo)")
            case let .info(line): lastInfo = " (last said: \(line))"
            case .signedIn, .connected, .received, .hangUp: continue
            }
        }
        throw CLIError("the benchmark peer \(user) ended")
    }
}

extension AsyncStream.Iterator {
    /// A reference to an iterator, so a value type can advance it.
    final class Box {
        private var iterator: AsyncStream.Iterator
        init(_ iterator: AsyncStream.Iterator) { self.iterator = iterator }
        func next() async -> Element? { await iterator.next() }
    }
}
