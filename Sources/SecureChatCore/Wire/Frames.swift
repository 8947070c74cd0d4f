/// The 2-byte big-endian length framing of every securechat stream (PROTOCOL.md §2).
public enum FrameError: Error, Equatable, Sendable {
    case zeroLength
    /// The stream ended inside a frame.
    case truncated(expected: Int, available: Int)
    /// A payload over 65535 bytes cannot be framed, or a frame is over what this stream allows.
    case payloadTooLarge(Int)
}

public enum Framing {
    public static let headerSize = 2
    public static let maximumPayload = 65535

    /// The frame for `payload`: length header then payload.
    public static func frame(_ payload: [UInt8]) throws(FrameError) -> [UInt8] {
        guard !payload.isEmpty else { throw .zeroLength }
        guard payload.count <= maximumPayload else { throw .payloadTooLarge(payload.count) }
        return [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload
    }

    /// Writes the header for a payload of `count` bytes into the first two bytes of `output`.
    public static func writeHeader(count: Int, into output: UnsafeMutableRawBufferPointer) {
        output[0] = UInt8(count >> 8)
        output[1] = UInt8(count & 0xFF)
    }
}

/// An incremental decoder: feed bytes as they arrive, in any chunking, and take whole frames out.
/// It holds at most one partial frame (≤ 65537 bytes) beyond what the caller has not yet taken.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// A frame announcing more than this is an error as soon as its header arrives: nothing
    /// is buffered for it.
    public var maximumPayload: Int

    public init(maximumPayload: Int = Framing.maximumPayload) { self.maximumPayload = maximumPayload }

    public mutating func append<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame's payload, nil when more bytes are needed; a zero length is an error.
    public mutating func nextFrame() throws(FrameError) -> [UInt8]? {
        try nextFrameRange().map(payload)
    }

    /// Where the next complete frame's payload is held (read it with `withPayload`; valid until
    /// the next call), nil when more bytes are needed: a frame read in place, not copied out.
    public mutating func nextFrameRange() throws(FrameError) -> Range<Int>? {
        let available = buffer.count - readIndex
        guard available >= Framing.headerSize else { compact(); return nil }
        let length = Int(buffer[readIndex]) << 8 | Int(buffer[readIndex + 1])
        guard length > 0 else { throw .zeroLength }
        guard length <= maximumPayload else { throw .payloadTooLarge(length) }
        guard available >= Framing.headerSize + length else { compact(); return nil }
        let start = readIndex + Framing.headerSize
        readIndex = start + length
        return start..<readIndex
    }

    /// A payload `nextFrameRange` returned, copied out.
    public func payload(_ range: Range<Int>) -> [UInt8] { Array(buffer[range]) }

    /// A payload `nextFrameRange` returned, read in place.
    public func withPayload<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeBytes { (bytes) in try body(UnsafeRawBufferPointer(rebasing: bytes[range])) }
    }

    /// The stream has ended: an error if a frame was left unfinished.
    public func finish() throws(FrameError) {
        let available = buffer.count - readIndex
        guard available > 0 else { return }
        let expected = available >= Framing.headerSize
            ? Framing.headerSize + (Int(buffer[readIndex]) << 8 | Int(buffer[readIndex + 1]))
            : Framing.headerSize
        throw .truncated(expected: expected, available: available)
    }

    /// Bytes received but not yet returned as frames.
    public var bufferedCount: Int { buffer.count - readIndex }

    private mutating func compact() {
        guard readIndex > 0 else { return }
        buffer.removeFirst(readIndex)
        readIndex = 0
    }
}
