import Logging
import NIOCore
import SecureChatCore
import SecureChatCrypto

/// The server's relay (PROTOCOL.md §9.5): the `RelayBook` decides, this carries it out. Paired
/// legs copy each other's bytes unchanged — the peers' HELLO, handshake and records, so the
/// server sees only ciphertext — as the `ByteBuffer`s NIO read, never copied or reassembled.
/// Legs accepted on different event loops are glued across them: each leg reads only while its
/// partner can write (backpressure, never an unbounded buffer) and within the byte rate.
@usableFromInline
final class RelayCoordinator: Sendable {
    /// The book and the legs it names change together, under one lock: with two, two legs
    /// arriving at once on two event loops could each be paired in the book yet miss the other
    /// in the table, and both would wait until their tokens expired.
    private struct Relays {
        var book: RelayBook
        var legs: [RelayBook.Leg: RelayLeg] = [:]
    }

    let configuration: RelayBook.Configuration
    private let relays: Locked<Relays>
    private let logger: Logger

    init(configuration: RelayBook.Configuration, logger: Logger) {
        self.configuration = configuration
        relays = Locked(Relays(book: RelayBook(configuration: configuration)))
        self.logger = logger
    }

    var enabled: Bool { configuration.enabled }

    /// A relay for one call; nil when granted, else why not.
    func offer(caller: UserID, callee: UserID, tokens: (caller: String, callee: String), now: Instant) -> RelayBook.Refusal? {
        relays.withLock { $0.book.offer(caller: caller, callee: callee, tokens: tokens, now: now) }
    }

    /// A connection whose first frame was RELAY: it becomes a leg (held until its partner comes)
    /// or is closed. Runs on the leg's event loop; `context` is its server handler's.
    @usableFromInline func arrive(token: String, pending: [UInt8], id: RelayBook.Leg, context: ChannelHandlerContext, logger: Logger, now: Instant) {
        let handler = RelayLegHandler(id: id, coordinator: self, pending: pending, logger: logger)
        let leg = RelayLeg(channel: context.channel, handler: NIOLoopBound(handler, eventLoop: context.eventLoop))
        let (refusal, partner): (String?, RelayLeg?) = relays.withLock { relays in
            switch relays.book.arrive(token: token, leg: id, now: now) {
            case let .refused(why):
                return (why, nil)
            case .waiting:
                relays.legs[id] = leg
                return (nil, nil)
            case let .paired(other):
                relays.legs[id] = leg
                return (nil, relays.legs[other])
            }
        }
        if let refusal {
            logger.warning("relay leg refused", metadata: ["reason": "\(refusal)"])
            return context.close(promise: nil)
        }
        do {
            // The control handler goes: from now on every byte is the relay's.
            try context.pipeline.syncOperations.addHandler(handler, position: .after(context.handler))
            let removed = context.eventLoop.makePromise(of: Void.self)
            let channel = context.channel
            removed.futureResult.whenFailure { _ in channel.close(promise: nil) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: removed)
        } catch {
            return context.close(promise: nil)
        }
        if let partner {
            logger.info("relay paired", metadata: ["with": "\(partner.channel.remoteAddress?.endpoint.map(\.description) ?? "?")"])
            handler.link(to: partner)
            partner.onLoop { $0.link(to: leg) }
        } else {
            logger.debug("relay leg waiting for its partner")
        }
    }

    /// A leg ended: its partner (if any) is closed too, and the relayed call is over.
    func closed(_ id: RelayBook.Leg) {
        let partner = relays.withLock { relays in
            relays.legs[id] = nil
            return relays.book.legClosed(id).flatMap { relays.legs.removeValue(forKey: $0) }
        }
        partner?.channel.close(promise: nil)
    }

    /// Closes legs whose partner did not come before their tokens expired (called every second).
    func expire(now: Instant) {
        let closing = relays.withLock { relays in
            relays.book.expire(now: now).compactMap { relays.legs.removeValue(forKey: $0) }
        }
        for leg in closing {
            logger.info("relay leg closed: its partner never came")
            leg.channel.close(promise: nil)
        }
    }
}

/// How one leg reaches its partner, from any event loop.
struct RelayLeg: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<RelayLegHandler>

    func onLoop(_ body: @escaping @Sendable (RelayLegHandler) -> Void) {
        let handler = self.handler
        handler.eventLoop.execute { body(handler.value) }
    }
}

/// One relay leg in its pipeline: forwards what it reads to the partner, reads only while the
/// partner is writable and the rate allows, closes when idle too long.
final class RelayLegHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes a waiting leg may send before its partner comes (its HELLO and message 1 need ~300).
    static let maximumPending = 16 * 1024

    private let id: RelayBook.Leg
    private let coordinator: RelayCoordinator
    private let logger: Logger
    private var pending: ByteBuffer
    private var partner: RelayLeg?
    private var context: ChannelHandlerContext?
    /// A `read` held back while the partner cannot take more, or the rate is used up.
    private var readHeld = false
    private var partnerWritable = true
    private var throttledUntil: NIODeadline?
    private var budget: Int
    private var budgetRefilled = NIODeadline.now()
    private var lastActivity = NIODeadline.now()
    private var idleCheck: RepeatedTask?

    init(id: RelayBook.Leg, coordinator: RelayCoordinator, pending: [UInt8], logger: Logger) {
        self.id = id
        self.coordinator = coordinator
        self.logger = logger
        self.pending = ByteBuffer(bytes: pending)
        budget = coordinator.configuration.bytesPerSecond
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let interval = TimeAmount.nanoseconds(TimeAmount(coordinator.configuration.idleTimeout).nanoseconds / 4)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in bound.value.checkIdle() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        self.context = nil
    }

    /// The partner is here: what waited goes to it, and reading goes on.
    func link(to partner: RelayLeg) {
        self.partner = partner
        if pending.readableBytes > 0 {
            partner.channel.writeAndFlush(pending, promise: nil)
            pending = ByteBuffer()
        }
        resumeIfHeld()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        lastActivity = .now()
        guard let partner else {
            guard pending.readableBytes + buffer.readableBytes <= Self.maximumPending else {
                logger.warning("relay leg closed: it sent too much before its partner came")
                return context.close(promise: nil)
            }
            var buffer = buffer
            pending.writeBuffer(&buffer)
            return
        }
        spend(buffer.readableBytes)
        partner.channel.writeAndFlush(buffer, promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if mayRead() { context.read() } else { readHeld = true }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        partner?.onLoop { $0.partnerWritabilityChanged(writable) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        coordinator.closed(id)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func partnerWritabilityChanged(_ writable: Bool) {
        partnerWritable = writable
        if writable { resumeIfHeld() }
    }

    /// Before pairing, a leg reads its first bytes only; after, only while the partner takes
    /// more and the rate allows.
    private func mayRead() -> Bool {
        let waiting = partner == nil && pending.readableBytes > 0
        guard !waiting, partnerWritable, throttledUntil == nil else { return false }
        return !throttleIfOverspent()
    }

    private func spend(_ bytes: Int) {
        guard coordinator.configuration.bytesPerSecond > 0 else { return }
        budget -= bytes
    }

    /// The rate limit: a bucket of one second's bytes. Once it is overspent, reading waits until
    /// the bucket has refilled the debt: the sender is slowed, nothing piles up here.
    private func throttleIfOverspent() -> Bool {
        let rate = coordinator.configuration.bytesPerSecond
        guard rate > 0, let context else { return false }
        let now = NIODeadline.now()
        let elapsed = (now - budgetRefilled).nanoseconds
        budget = min(rate, budget + Int(Double(rate) * Double(elapsed) / 1e9))
        budgetRefilled = now
        guard budget < 0 else { return false }
        let wait = TimeAmount.nanoseconds(Int64(Double(-budget) / Double(rate) * 1e9))
        throttledUntil = now + wait
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: wait) {
            let handler = bound.value
            handler.throttledUntil = nil
            handler.resumeIfHeld()
        }
        return true
    }

    private func resumeIfHeld() {
        guard readHeld, let context, mayRead() else { return }
        readHeld = false
        context.read()
    }

    private func checkIdle() {
        guard let context, partner != nil, NIODeadline.now() - lastActivity >= TimeAmount(coordinator.configuration.idleTimeout) else {
            return
        }
        logger.info("relay closed: idle past its timeout")
        context.close(promise: nil)
    }
}
