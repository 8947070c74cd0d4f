import NIOCore

/// Hands a connection's bytes and its end to closures on its event loop: the peer keeps all its
/// state in one object on one loop, and each connection only forwards to it.
final class StreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let onBytes: (ByteBuffer) -> Void
    private let onEnd: () -> Void

    init(onBytes: @escaping (ByteBuffer) -> Void, onEnd: @escaping () -> Void) {
        self.onBytes = onBytes
        self.onEnd = onEnd
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { onBytes(unwrapInboundIn(data)) }

    func channelInactive(context: ChannelHandlerContext) {
        onEnd()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
