/// A point on the caller's monotonic clock. The core never reads a clock: time comes in as values.
public struct Instant: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Saturates at the end of time rather than wrapping or trapping (a configured duration of
    /// years is "never", not a crash).
    public func advanced(by duration: Duration) -> Instant {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = UInt64(max(seconds, 0)).multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, carry) = nanoseconds.addingReportingOverflow(whole)
        let (total, carry2) = sum.addingReportingOverflow(UInt64(max(attoseconds, 0) / 1_000_000_000))
        return Instant(nanoseconds: overflow || carry || carry2 ? .max : total)
    }
}

extension Instant {
    /// How long after `earlier` this is (zero if it is not after it).
    public func duration(since earlier: Instant) -> Duration {
        guard nanoseconds > earlier.nanoseconds else { return .zero }
        return .nanoseconds(Int64(clamping: nanoseconds - earlier.nanoseconds))
    }
}

extension Duration {
    /// This duration in seconds, as a floating-point number.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}

/// `value` with exactly `decimals` digits after the point, rounded, without Foundation.
public func fixedPoint(_ value: Double, decimals: Int) -> String {
    var scale = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int((value * Double(scale)).rounded())
    guard decimals > 0 else { return String(scaled) }
    let fraction = String(scaled % scale)
    return "\(scaled / scale)." + String(repeating: "0", count: decimals - fraction.count) + fraction
}
