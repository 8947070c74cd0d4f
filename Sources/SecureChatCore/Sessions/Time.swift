/// A point on the caller's monotonic clock. The core never reads a clock: time comes in as values.
public struct Instant: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public func advanced(by duration: Duration) -> Instant {
        let (seconds, attoseconds) = duration.components
        return Instant(nanoseconds: nanoseconds &+ UInt64(max(seconds, 0)) * 1_000_000_000 &+ UInt64(max(attoseconds, 0) / 1_000_000_000))
    }
}
