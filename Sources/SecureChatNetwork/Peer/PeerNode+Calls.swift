import NIOCore
import NIOPosix
import SecureChatCore
import SecureChatCrypto

/// Calls: the set-up races (`CallSetup`) and the connections on them (`PeerConnection`).
extension PeerNode {
    // MARK: Starting a call

    /// The server told us how to reach the one we call, or offers us a call: a `CallSetup`
    /// races every path to the other side.
    func startCall(_ plan: CallPlan, role: CallSetup.Role, record: CallerRecord? = nil, decision: Decision = .accept) {
        let networks = CallSetup.Networks(peerObserved: plan.peerNetwork?.observed,
                                          peerBehindRouter: plan.peerNetwork?.behindRouter ?? false,
                                          selfBehindRouter: session?.ownNetwork?.behindRouter ?? false,
                                          selfObserved: session?.ownNetwork?.observed)
        let (setup, actions) = CallSetup.start(role: role, candidates: plan.candidates, relayToken: plan.relayToken,
                                               relayRefusal: plan.relayRefusal, networks: networks,
                                               configuration: configuration.options.callSetup, firstAttempt: 0, now: Self.now())
        nextCallGeneration += 1
        calls[plan.peer] = Call(role: role, generation: nextCallGeneration, setup: setup, plan: plan, record: record, decision: decision)
        if role == .caller {
            emit(.info("calling \(plan.peer)…"))
            adoptEarlyDials(plan)
        }
        perform(actions, call: plan.peer)
        if role == .caller { spareCall = nil }  // written for this call, if its first connection did not take it
        scheduleCallTimer(plan.peer)
    }

    /// CALLOFFER: the server vouches that `plan.peer` calls us with `plan.key` (§9.3). Each
    /// connection is still checked against it; here the call is raced, and in `answer = ask`
    /// the user is asked (the name is the server's, checked against the pinned key first).
    func callOffered(_ plan: CallPlan) {
        let caller = plan.peer
        // The caller's first record overtook this offer and the chat is on already: it is this
        // call's offer, come late; nothing to race.
        if let chat, chat.peer == caller, pinnedKeys[caller] == plan.key { return }
        var carried = [LinkID]()
        if var existing = calls[caller], existing.role == .callee {
            // The caller's dial reached us, and we checked it with the server (§5), before this
            // offer for the same call came: that connection carries it, nothing to race.
            if existing.setup == nil, existing.record?.key == plan.key { return }
            // A new offer from the same caller: the earlier call is over (the caller gave it up).
            // But the caller may already be on one of its connections (it adopts a quiet dial
            // of ours, and its message 1 can overtake this offer): the direct connections that
            // heard from the caller join the new race; quiet dials and the old relay leg do not.
            if existing.record?.key == plan.key {
                carried = existing.links.values.filter { id in
                    guard let link = links[id] else { return false }
                    return link.route != .relay && !link.connection.isQuietAnswer && !link.connection.isClosed
                }.sorted()
                existing.links = existing.links.filter { !carried.contains($0.value) }
                calls[caller] = existing
            }
            endCall(caller)
        }
        guard calls[caller] == nil else { return }
        var addresses = Set(plan.candidates.map(\.address))
        if let observed = plan.peerNetwork?.observed { addresses.insert(observed.address) }
        let record = CallerRecord(user: caller, key: plan.key, addresses: addresses)
        var decision = Decision.accept
        if let pinned = pinnedKeys[caller], pinned != plan.key {
            decision = .decline(.pinnedKeyChanged)
        } else if isBusy(besides: caller) {
            decision = .decline(.busy)
        } else if configuration.options.askBeforeAnswering {
            decision = .asking
            askUser(caller, key: plan.key)
        }
        // A refusal is raced too, so that the caller hears it at once rather than a timeout.
        startCall(plan, role: .callee, record: record, decision: decision)
        for id in carried { rejoin(id, caller) }
        prepareEphemeral(towards: plan.key)
    }

    /// Makes `spareEphemeral` once the events at hand are handled (the request just sent, the
    /// dials just started, a CALLREPLY that came with an offer), while the other side works;
    /// for a callee with its DH to the caller's key, `caller` (the `se` of message 2).
    func prepareEphemeral(towards caller: X25519PublicKey? = nil) {
        let bound = loopBound
        eventLoop.execute {
            let node = bound.value
            guard !node.stopping else { return }
            var spare = node.spareEphemeral ?? (try? Backend.generateEphemeralX25519KeyPair())
            // A low-order key fails here and again in the handshake, which refuses the call.
            if let key = spare, let caller { spare = (try? Backend.computingAhead(key, with: caller)) ?? key }
            node.spareEphemeral = spare
        }
    }

    /// For a call to `callee`: its whole message 1 while the server answers CALLREQ if the
    /// callee's key is pinned (the server must offer that key, or the call is refused), else
    /// the ephemeral key only.
    func prepareCall(to callee: UserID) {
        guard let key = pinnedKeys[callee] else { return prepareEphemeral() }
        let bound = loopBound
        eventLoop.execute {
            let node = bound.value
            guard !node.stopping else { return }
            node.spareCall = try? PeerConnection<Backend>.prepareCall(from: node.configuration.user, identity: node.configuration.identity,
                                                                       to: callee, calleeKey: key, cipher: node.configuration.options.cipher,
                                                                       ephemeral: node.takeEphemeral())
        }
    }

    /// The spare ephemeral key, if one is ready; nobody else gets it.
    private func takeEphemeral() -> X25519KeyPair? {
        defer { spareEphemeral = nil }
        return spareEphemeral
    }

    /// A connection of an earlier offer from `caller` becomes an attempt of the current one,
    /// checked again (one already answered waits on for the caller's first record).
    private func rejoin(_ id: LinkID, _ caller: UserID) {
        let endpoint: Endpoint
        switch links[id]?.route {
        case let .dialled(target)?: endpoint = target
        case let .accepted(source)?: endpoint = source
        case .relay?, nil: return dropLink(id)
        }
        guard var setup = calls[caller]?.setup, let attempt = setup.incoming(from: endpoint, now: Self.now()) else { return dropLink(id) }
        calls[caller]?.setup = setup
        calls[caller]?.links[attempt] = id
        links[id]?.attempt = attempt
        decide(caller, nil, link: id)
    }

    /// Asks the user about a call that passed the checks so far; unanswered, it is declined.
    private func askUser(_ caller: UserID, key: X25519PublicKey) {
        emit(.info("\(caller) is calling (fingerprint \(fingerprint(key))): /accept or /reject"))
        let bound = loopBound
        let timer = eventLoop.scheduleTask(in: TimeAmount(configuration.options.answerTimeout)) {
            let node = bound.value
            guard node.calls[caller]?.decision == .asking else { return }
            node.emit(.info("missed call from \(caller) (not answered)"))
            node.decide(caller, .decline(.declined))
        }
        calls[caller]?.askTimer = timer
        if calls[caller] == nil { timer.cancel() }
    }

    // MARK: Incoming connections

    /// Our listener accepted a connection. If it comes from the one we are calling (its dial to
    /// us, §9.4), we are the initiator on it; otherwise it is a caller's, and we answer.
    func accept(_ channel: any Channel) throws {
        guard !stopping, let source = channel.remoteAddress?.endpoint else { return channel.close(promise: nil) }
        if let callee = calls.first(where: { $0.value.role == .caller && Self.matches(source, $0.value.plan) })?.key,
           let plan = calls[callee]?.plan, var setup = calls[callee]?.setup, let attempt = setup.incoming(from: source, now: Self.now()) {
            calls[callee]?.setup = setup
            let (connection, first) = try callerConnection(to: callee, key: plan.key)
            let id = try addLink(connection, channel: channel, outgoing: true, route: .accepted(source), call: callee, attempt: attempt)
            calls[callee]?.links[attempt] = id
            channel.writeAndFlush(ByteBuffer(bytes: first), promise: nil)
            return
        }
        let unchecked = links.values.filter { !$0.outgoing && $0.call == nil }.count
        guard unchecked < configuration.options.maximumPendingIncoming else {
            emit(.info("dropped an incoming connection from \(source): too many not yet checked"))
            return channel.close(promise: nil)
        }
        let connection = PeerConnection<Backend>(answeringWith: configuration.identity, allowed: configuration.options.allowedCiphers,
                                                 origin: .accepted(from: source.address), timeouts: configuration.options.timeouts,
                                                 now: Self.now())
        _ = try addLink(connection, channel: channel, outgoing: false, route: .accepted(source), call: nil, attempt: nil)
    }

    /// The server sends CALLREPLY and CALLOFFER at once, so the callee's dial to us can arrive
    /// before our CALLREPLY: it was taken as someone calling us, and waits for a HELLO that its
    /// side never sends (the caller is always the initiator), holding the one address pair both
    /// sides' dials need. Now that we know where the callee is, such a quiet connection from there
    /// joins our race as an accepted one.
    private func adoptEarlyDials(_ plan: CallPlan) {
        for (id, link) in links where link.call == nil && link.connection.isQuietAnswer {
            guard case let .accepted(source) = link.route, Self.matches(source, plan),
                  var setup = calls[plan.peer]?.setup, let attempt = setup.incoming(from: source, now: Self.now()),
                  let (connection, first) = try? callerConnection(to: plan.peer, key: plan.key) else { continue }
            calls[plan.peer]?.setup = setup
            calls[plan.peer]?.links[attempt] = id
            link.timer?.cancel()
            links[id] = Link(connection: connection, channel: link.channel, outgoing: true, route: link.route,
                             call: plan.peer, attempt: attempt)
            scheduleLinkTimer(id)
            link.channel.writeAndFlush(ByteBuffer(bytes: first), promise: nil)
        }
    }

    /// Whether `source` is where the one we call might dial us from.
    private static func matches(_ source: Endpoint, _ plan: CallPlan?) -> Bool {
        guard let plan else { return false }
        return plan.candidates.contains { $0.address == source.address } || plan.peerNetwork?.observed.address == source.address
    }

    /// Message 1 named `user` as the caller (its key is in the handshake): check the call.
    private func checkCaller(_ id: LinkID, _ user: UserID, key: X25519PublicKey) {
        links[id]?.call = user
        if let call = calls[user] { return join(id, call, of: user) }
        // No CALLOFFER (yet): a §5 caller, or the offer is still on its way. Ask the server
        // about them (§5.2); an offer that comes meanwhile takes this connection in.
        guard session?.isSignedIn == true else { return answer(id, .notVerified) }
        sessionDo { $0.checkIncoming(from: user, token: id) }
        prepareEphemeral(towards: key)
    }

    /// A connection whose message 1 named `user`, with whom a call is known: it joins that call.
    private func join(_ id: LinkID, _ call: Call, of user: UserID) {
        guard call.role == .callee, call.record != nil else {
            // We are calling them as they call us: one of the two calls has to give way.
            return answer(id, .busy)
        }
        if links[id]?.attempt == nil, case let .accepted(source)? = links[id]?.route, var setup = call.setup {
            // A connection the race does not want (it is over, or direct paths are off).
            guard let attempt = setup.incoming(from: source, now: Self.now()) else { return dropLink(id) }
            calls[user]?.setup = setup
            calls[user]?.links[attempt] = id
            links[id]?.attempt = attempt
        }
        decide(user, nil, link: id)
    }

    /// The server's answer about a §5 caller: the call is checked like an offered one.
    func incomingLookedUp(_ id: LinkID, _ reply: ControlMessage.LookupReply) {
        guard let user = links[id]?.call else { return }
        // The CALLOFFER came while we asked: the connection joins the offered call.
        if let call = calls[user] { return join(id, call, of: user) }
        let record = CallerRecord(lookup: reply, for: user)
        var decision = Decision.accept
        if record != nil, configuration.options.askBeforeAnswering, links[id]?.connection.check(record, pinnedKey: pinnedKeys[user], busy: isBusy(besides: user)) == nil {
            decision = .asking
        }
        nextCallGeneration += 1
        calls[user] = Call(role: .callee, generation: nextCallGeneration, setup: nil, plan: nil, record: record, decision: decision)
        calls[user]?.links[0] = id
        links[id]?.attempt = 0
        if decision == .asking, let record { askUser(user, key: record.key) }
        decide(user, nil, link: id)
    }

    /// The callee's answer for `user`'s call: for one connection (`link`) as it is checked, or for
    /// every held one when the user decides (`decision`). A connection that fails the checks
    /// is refused whatever the user said; of those that pass, the first carries the call.
    func decide(_ user: UserID, _ decision: Decision?, link: LinkID? = nil) {
        guard var call = calls[user], call.role == .callee else { return }
        if let decision {
            call.decision = decision
            call.askTimer?.cancel()
            calls[user] = call
        }
        let candidates = link.map { [$0] } ?? call.links.values.sorted { relayLast($0, $1) }
        for id in candidates {
            guard let connection = links[id]?.connection, !connection.isClosed, !connection.holdsCall else { continue }
            if let refusal = connection.check(call.record, pinnedKey: pinnedKeys[user], busy: isBusy(besides: user)) {
                // A stranger's connection that claims to be the caller is refused, not the call.
                if refusal == .notVerified, call.setup != nil { answer(id, refusal); continue }
                return answer(id, refusal)
            }
            switch calls[user]?.decision ?? .asking {
            case .asking: continue  // held until the user decides
            case let .decline(refusal): answer(id, refusal)
            case .accept:
                // One connection answers; any other of the same call is not needed.
                if calls[user]?.links.values.contains(where: { $0 != id && links[$0]?.connection.holdsCall == true }) == true {
                    dropLink(id)
                } else {
                    answer(id, nil)
                }
            }
        }
    }

    /// Direct paths before the relay when the user accepts with several connections held.
    private func relayLast(_ a: LinkID, _ b: LinkID) -> Bool {
        let isRelay = { (id: LinkID) in self.links[id]?.route == .relay }
        return !isRelay(a) && isRelay(b) || (isRelay(a) == isRelay(b) && a < b)
    }

    private func answer(_ id: LinkID, _ refusal: CallRefusal?) {
        linkDo(id) { $0.answer(refusal: refusal, ephemeral: takeEphemeral(), now: Self.now()) }
    }

    /// `/accept` or `/reject` for the call the user was asked about.
    func answerAsked(accept: Bool) {
        guard let user = calls.first(where: { $0.value.decision == .asking })?.key else { return emit(.info("nobody is calling")) }
        if accept, isBusy(besides: user) { return decide(user, .decline(.busy)) }
        decide(user, accept ? .accept : .decline(.declined))
        if !accept { emit(.info("declined the call from \(user)")) }
    }

    /// Whether a call other than `user`'s holds us: the chat, our own call, or a call answered.
    func isBusy(besides user: UserID) -> Bool {
        chat != nil || calls.contains { $0.key != user && ($0.value.role == .caller || $0.value.links.values.contains { links[$0]?.connection.holdsCall == true }) }
    }

    // MARK: Links

    private func callerConnection(to callee: UserID, key: X25519PublicKey) throws -> (PeerConnection<Backend>, [UInt8]) {
        if let prepared = spareCall.take(), prepared.callee == callee, prepared.calleeKey == key {
            return PeerConnection<Backend>.call(prepared, timeouts: configuration.options.timeouts, now: Self.now())
        }
        return try PeerConnection<Backend>.call(from: configuration.user, identity: configuration.identity, to: callee, calleeKey: key,
                                                cipher: configuration.options.cipher, ephemeral: takeEphemeral(),
                                                timeouts: configuration.options.timeouts, now: Self.now())
    }

    @discardableResult
    private func addLink(_ connection: PeerConnection<Backend>, channel: any Channel, outgoing: Bool, route: CallSetup.Route,
                         call: UserID?, attempt: CallSetup.Attempt?) throws -> LinkID {
        let id = nextLink
        nextLink += 1
        links[id] = Link(connection: connection, channel: channel, outgoing: outgoing, route: route, call: call, attempt: attempt)
        let bound = loopBound
        try channel.pipeline.syncOperations.addHandler(StreamHandler(
            onBytes: { buffer in bound.value.linkDo(id) { $0.receive(buffer.readableBytesView, now: Self.now()) } },
            onEnd: { bound.value.linkDo(id) { $0.endOfStream() } }))
        scheduleLinkTimer(id)
        return id
    }

    /// Runs an event on link `id`'s connection and carries out its actions.
    func linkDo(_ id: LinkID, _ event: (inout PeerConnection<Backend>) -> [PeerConnection<Backend>.Action]) {
        guard var connection = links[id]?.connection else { return }
        let actions = event(&connection)
        links[id]?.connection = connection
        for action in actions {
            guard let link = links[id] else { return }
            switch action {
            case let .send(bytes):
                link.channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
            case let .checkCaller(user, key):
                checkCaller(id, user, key: key)
            case let .connected(user):
                linkConnected(id, user)
            case let .received(text):
                guard let chat, chat.link == id else { break }
                emit(.received(from: chat.peer, text: text))
                if backlog.shouldPause() { link.channel.setOption(.autoRead, value: false).whenFailure { _ in } }
            case let .close(reason):
                linkClosed(id, reason)
            }
        }
        scheduleLinkTimer(id)
    }

    private func scheduleLinkTimer(_ id: LinkID) {
        links[id]?.timer?.cancel()
        guard let deadline = links[id]?.connection.nextDeadline else { return }
        let bound = loopBound
        links[id]?.timer = eventLoop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(deadline.nanoseconds)) {
            bound.value.linkDo(id) { $0.tick(now: Self.now()) }
        }
    }

    /// The call was accepted on this link (the caller got ACCEPTED, the callee the caller's first record).
    private func linkConnected(_ id: LinkID, _ user: UserID) {
        guard let attempt = links[id]?.attempt, calls[user]?.setup != nil else {
            // A §5 call: its one connection carries it.
            return becomeChat(id, user, path: Self.path(of: links[id]?.route))
        }
        setupDo(user) { $0.accepted(attempt, now: Self.now()) }
    }

    private static func path(of route: CallSetup.Route?) -> String {
        switch route {
        case let .dialled(endpoint)?, let .accepted(endpoint)?: return CallSetup.Path.direct(endpoint).description
        case .relay?: return CallSetup.Path.relayed.description
        case nil: return "direct"
        }
    }

    /// `id` carries the chat with `user` now; the set-up is over.
    private func becomeChat(_ id: LinkID, _ user: UserID, path: String) {
        let record = calls[user]?.record
        if let call = calls.removeValue(forKey: user) {
            call.timer?.cancel()
            call.askTimer?.cancel()
            for other in call.links.values where other != id { dropLink(other) }
        }
        links[id]?.call = nil
        chat = (id, user, path)
        if let record { sessionDo { $0.pinCaller(user, key: record.key) } }
        if session != nil { sessionDo { $0.chatConnected(with: user) } } else { emit(.connected(user, path: path)) }
    }

    private func linkClosed(_ id: LinkID, _ reason: PeerCloseReason) {
        guard let link = links.removeValue(forKey: id) else { return }
        link.timer?.cancel()
        if case .hungUpThere = reason, let sockets = link.channel as? any SocketOptionProvider {
            // Both peers use their one port, so every call between them is the same address pair.
            // Closed with FIN, the side that hung up would hold that pair in TIME_WAIT for a
            // minute and could not dial it again (a call back through a router would need the
            // relay). Its HANGUP is read and nothing more is to be said: close with a reset.
            let channel = link.channel
            sockets.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            link.channel.close(promise: nil)
        }
        if let chat, chat.link == id {
            self.chat = nil
            _ = session?.chatEnded(with: chat.peer)
            switch reason {
            case .hungUpHere: emit(.hangUp(.you))
            case .hungUpThere: emit(.hangUp(.them(chat.peer)))
            default:
                emit(.info("chat with \(chat.peer) ended: \(reason)"))
                emit(.hangUp(.lost(chat.peer)))
            }
            return
        }
        guard let user = link.call, let call = calls[user], let attempt = link.attempt else { return }
        switch reason {
        case let .refusedThere(why):
            setupDo(user) { $0.refused(attempt, reason: why) }
        case .refusedHere(.notVerified) where call.setup != nil:
            // A connection that claimed to carry this call but could not be verified: not the call's end.
            emit(.info("refused a connection that could not be verified with the server"))
            setupDo(user) { $0.closed(attempt, now: Self.now()) }
        case let .refusedHere(refusal):
            refusedCall(user, refusal, callerKey: call.record?.key)
        case .abandoned:
            break
        default:
            if call.setup == nil { return endCall(user) }  // a §5 call has no other path
            setupDo(user) { $0.closed(attempt, now: Self.now()) }
        }
    }

    /// We refused a call (callee): tell the user, in the words for their side.
    private func refusedCall(_ user: UserID, _ refusal: CallRefusal, callerKey: X25519PublicKey?) {
        switch refusal {
        case .busy:
            emit(.info("missed call from \(user): you were in a call"))
        case .declined:
            break  // said when the user declined, or the question timed out
        case .pinnedKeyChanged:
            if let key = callerKey, let pinned = pinnedKeys[user] {
                session?.noteOfferedKey(user, key: key)
                emit(.info("refused a call from \(user): their key changed. Pinned: \(fingerprint(pinned)); theirs now: \(fingerprint(key)). "
                           + "Compare fingerprints with \(user) in person or by voice; if theirs is the new one: "
                           + "/trust \(user) \(fingerprint(key).replacingSpaces)"))
            }
        case .addressMismatch:
            emit(.info("refused a call from \(user): it came from an address the server does not know for \(user)"))
        case .notVerified:
            emit(.info("refused a call that could not be verified with the server"))
        }
        endCall(user)
    }

    func dropLink(_ id: LinkID) {
        guard let link = links.removeValue(forKey: id) else { return }
        link.timer?.cancel()
        link.channel.close(promise: nil)
    }

    // MARK: The set-up race

    func setupDo(_ user: UserID, _ event: (inout CallSetup) -> [CallSetup.Action]) {
        guard var setup = calls[user]?.setup else { return }
        let actions = event(&setup)
        calls[user]?.setup = setup
        perform(actions, call: user)
        scheduleCallTimer(user)
    }

    private func scheduleCallTimer(_ user: UserID) {
        calls[user]?.timer?.cancel()
        guard let deadline = calls[user]?.setup?.nextDeadline else { return }
        let bound = loopBound
        calls[user]?.timer = eventLoop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(deadline.nanoseconds)) {
            bound.value.setupDo(user) { $0.tick(now: Self.now()) }
        }
    }

    private func perform(_ actions: [CallSetup.Action], call user: UserID) {
        for action in actions {
            guard calls[user] != nil else { return }
            switch action {
            case let .dial(attempt, endpoint):
                dial(user, attempt, endpoint)
            case let .openRelay(attempt, token):
                openRelay(user, attempt, token)
            case let .close(attempt):
                if let id = calls[user]?.links.removeValue(forKey: attempt) { dropLink(id) }
            case let .won(attempt, path):
                if configuration.options.traceSetup, let setup = calls[user]?.setup { showTrace(of: setup, with: user) }
                if let id = calls[user]?.links[attempt] { becomeChat(id, user, path: path.description) }
            case .tryingRelay:
                emit(.info("\(user) could not be reached directly yet; trying the relay…"))
            case let .failed(failure):
                callFailed(user, failure)
            }
        }
    }

    /// `trace = setup`: the race as it happened, one line per step, then the round trips.
    private func showTrace(of setup: CallSetup, with user: UserID) {
        for entry in setup.trace { emit(.info("trace \(user) \(entry.description)")) }
        emit(.info("trace \(user) \(setup.role == .caller ? "caller" : "callee"): \(setup.roundTrips ?? 0) round trips"))
    }

    private func callFailed(_ user: UserID, _ failure: CallSetup.Failure) {
        let role = calls[user]?.role
        endCall(user)
        guard role == .caller else {
            if case .timedOut = failure { emit(.info("missed call from \(user): no connection could be made")) }
            return
        }
        sessionDo { $0.callFailed(to: user) }
        switch failure {
        case let .refused(reason):
            emit(.info(refusalWords(user, reason)))
        case let .unreachable(relayRefusal):
            // The server's reason ("this server does not relay calls", a limit) says which.
            emit(.info("\(user) is online but could not be reached directly, and the server will not relay the call ("
                       + (relayRefusal ?? "it gave no relay") + "); \(user) cannot be reached from here"))
        case .timedOut:
            emit(.info("no connection to \(user) within \(configuration.options.callSetup.callTimeout.components.seconds) s: "
                       + "\(user) could not be reached from here"))
        }
    }

    /// The caller's words for the callee's refusal reason.
    private func refusalWords(_ callee: UserID, _ reason: String) -> String {
        let mine = fingerprint(configuration.identity.publicKey)
        switch CallRefusal(rawValue: reason) {
        case .busy?: return "refused: \(callee): busy (in another call)"
        case .declined?: return "refused: \(callee): declined"
        case .pinnedKeyChanged?:
            return "refused: \(callee) has a different key pinned for you: your key changed (a new device or key file?). "
                + "Your fingerprint: \(mine). Ask \(callee) to compare it with you and then /trust \(configuration.user) \(mine.replacingSpaces)"
        case .notVerified?: return "refused: \(callee) could not verify you with the server"
        case .addressMismatch?: return "refused: \(callee) saw the call come from an address the server does not know for you"
        case nil: return "refused: \(callee): \(reason)"
        }
    }

    private func dial(_ user: UserID, _ attempt: CallSetup.Attempt, _ endpoint: Endpoint) {
        guard let call = calls[user], let plan = call.plan,
              let address = try? SocketAddress(ipAddress: endpoint.address.description, port: endpoint.port) else {
            return setupDo(user) { $0.closed(attempt, now: Self.now()) }
        }
        let first: [UInt8]
        let connection: PeerConnection<Backend>
        do {
            if call.role == .caller {
                (connection, first) = try callerConnection(to: user, key: plan.key)
            } else {
                connection = PeerConnection(answeringWith: configuration.identity, allowed: configuration.options.allowedCiphers,
                                            origin: .dialled, timeouts: configuration.options.timeouts, now: Self.now())
                first = []
            }
        } catch {
            return setupDo(user) { $0.closed(attempt, now: Self.now()) }
        }
        open(bootstrapOnOurPort(family: address.protocol), to: address, user: user, attempt: attempt, connection: connection,
             outgoing: call.role == .caller, route: .dialled(endpoint), first: first)
    }

    /// The relay leg (§9.5): its own connection to the server, RELAY first, then the call's
    /// handshake through it as on a direct connection.
    private func openRelay(_ user: UserID, _ attempt: CallSetup.Attempt, _ token: String) {
        guard let call = calls[user], let plan = call.plan,
              let relay = try? Framing.frame(ControlMessage.relay(token: token).encoded()) else {
            return setupDo(user) { $0.closed(attempt, now: Self.now()) }
        }
        var first = relay
        let connection: PeerConnection<Backend>
        do {
            if call.role == .caller {
                let (caller, bytes) = try callerConnection(to: user, key: plan.key)
                connection = caller
                first += bytes
            } else {
                connection = PeerConnection(answeringWith: configuration.identity, allowed: configuration.options.allowedCiphers,
                                            origin: .relay, timeouts: configuration.options.timeouts, now: Self.now())
            }
        } catch {
            return setupDo(user) { $0.closed(attempt, now: Self.now()) }
        }
        // A callee on another node than the caller's opens its leg where the caller's node pairs it.
        let server = plan.relayServer.flatMap { HostPort($0) } ?? self.server
        let bound = loopBound
        let generation = call.generation
        let resolved = IPAddress(server.host).flatMap { try? SocketAddress(ipAddress: $0.description, port: server.port) }
        let target = resolved.map { eventLoop.makeSucceededFuture($0) } ?? NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            try SocketAddress.makeAddressResolvingHost(server.host, port: server.port)
        }
        target.assumeIsolated().whenComplete { result in
            let node = bound.value
            guard node.calls[user]?.generation == generation else { return }
            guard case let .success(address) = result else { return node.setupDo(user) { $0.closed(attempt, now: Self.now()) } }
            node.open(ClientBootstrap(group: node.eventLoop).connectTimeout(.seconds(10)), to: address, user: user, attempt: attempt,
                      connection: connection, outgoing: call.role == .caller, route: .relay, first: first)
        }
    }

    /// Opens an attempt's connection; once open, the set-up hears of it and `first` goes out.
    private func open(_ bootstrap: ClientBootstrap, to address: SocketAddress, user: UserID, attempt: CallSetup.Attempt,
                      connection: PeerConnection<Backend>, outgoing: Bool, route: CallSetup.Route, first: [UInt8]) {
        let bound = loopBound
        let connection = NIOLoopBound(connection, eventLoop: eventLoop)
        let generation = calls[user]?.generation
        let future = bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let node = bound.value
                guard node.calls[user]?.generation == generation else { throw ChannelError.ioOnClosedChannel }
                let id = try node.addLink(connection.value, channel: channel, outgoing: outgoing, route: route, call: user, attempt: attempt)
                node.calls[user]?.links[attempt] = id
            }
        }.connect(to: address)
        track(future)
        future.assumeIsolated().whenComplete { result in
            let node = bound.value
            guard node.calls[user]?.generation == generation else {
                // An earlier call's dial: its links went with that call.
                if case let .success(channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case let .success(channel):
                guard node.calls[user]?.setup?.owns(attempt) == true else {
                    node.dropLink(node.calls[user]?.links[attempt] ?? -1)
                    return channel.close(promise: nil)
                }
                if !first.isEmpty { channel.writeAndFlush(ByteBuffer(bytes: first), promise: nil) }
                node.setupDo(user) { $0.connected(attempt, now: Self.now()) }
            case .failure:
                if let id = node.calls[user]?.links.removeValue(forKey: attempt) { node.dropLink(id) }
                node.setupDo(user) { $0.closed(attempt, now: Self.now()) }
            }
        }
    }

    /// Ends the set-up of `user`'s call: its timers and every connection of it.
    func endCall(_ user: UserID) {
        guard let call = calls.removeValue(forKey: user) else { return }
        call.timer?.cancel()
        call.askTimer?.cancel()
        for id in call.links.values where chat?.link != id { dropLink(id) }
    }

    /// Hangs up the chat, or gives up the call being placed; false when there is neither.
    func hangUpCurrent() -> Bool {
        if let chat {
            linkDo(chat.link) { $0.hangUp(now: Self.now()) }
            return true
        }
        guard let callee = calls.first(where: { $0.value.role == .caller })?.key else { return false }
        setupDo(callee) { $0.cancel() }
        endCall(callee)
        sessionDo { $0.callFailed(to: callee) }
        emit(.info("call to \(callee) cancelled"))
        return true
    }

    /// The user caught up with the chat's lines: read them again.
    func resumeChatReads() {
        guard let chat, let link = links[chat.link] else { return }
        link.channel.setOption(.autoRead, value: true).whenFailure { _ in }
    }

    /// What `/info` shows.
    var callInfo: String {
        guard let chat, let link = links[chat.link] else {
            if let callee = calls.first(where: { $0.value.role == .caller })?.key { return "calling \(callee)…" }
            return "not in a call; you listen on port \(port), your fingerprint: \(fingerprint(configuration.identity.publicKey))"
        }
        let local = link.channel.localAddress?.endpoint.map(\.description) ?? "?"
        let remote = link.channel.remoteAddress?.endpoint.map(\.description) ?? "?"
        let theirs = pinnedKeys[chat.peer].map(fingerprint) ?? "(not pinned)"
        return "in a call with \(chat.peer) (\(chat.path)); this end \(local), other end \(remote)"
            + (link.route == .relay ? " (the server)" : "")
            + "; \(chat.peer)'s fingerprint \(theirs), yours \(fingerprint(configuration.identity.publicKey))"
    }
}

