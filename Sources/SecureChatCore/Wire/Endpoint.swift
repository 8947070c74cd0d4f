/// An IP address, parsed strictly and held in one canonical form, so that two spellings of one
/// address compare equal (the callee's address check) and an IPv4 client of a dual-stack socket
/// (`::ffff:a.b.c.d`) is the IPv4 address it is.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    /// Sixteen bytes, in network order, as two words.
    case v6(UInt64, UInt64)

    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        if let value = Self.parseIPv4(bytes[...]) {
            self = .v4(value)
        } else if let (high, low) = Self.parseIPv6(bytes[...]) {
            // ::ffff:a.b.c.d is IPv4 (RFC 4291 §2.5.5.2).
            if high == 0, low >> 32 == 0xFFFF { self = .v4(UInt32(truncatingIfNeeded: low)) } else { self = .v6(high, low) }
        } else {
            return nil
        }
    }

    public var isIPv6: Bool { if case .v6 = self { true } else { false } }

    /// 127/8 and ::1.
    public var isLoopback: Bool {
        switch self {
        case let .v4(value): return value >> 24 == 127
        case let .v6(high, low): return high == 0 && low == 1
        }
    }

    /// 169.254/16 and fe80::/10: valid on one link only (an IPv6 one also needs a zone).
    public var isLinkLocal: Bool {
        switch self {
        case let .v4(value): return value >> 16 == 0xA9FE
        case let .v6(high, _): return high >> 54 == 0x3FA
        }
    }

    /// 0.0.0.0, ::, multicast and broadcast: never an address to reach a peer at.
    public var isUnusable: Bool {
        switch self {
        case let .v4(value): return value == 0 || value >> 28 == 0xE || value == .max
        case let .v6(high, low): return (high == 0 && low == 0) || high >> 56 == 0xFF
        }
    }

    /// What one host most likely controls as a whole: an IPv4 address, or an IPv6 /64 (a host
    /// is given a whole /64 and may use any address in it). Limits are kept per this.
    public var hostKey: IPAddress {
        switch self {
        case .v4: return self
        case let .v6(high, _): return .v6(high, 0)
        }
    }

    public var description: String {
        var text = [UInt8]()
        write(into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// The text form (RFC 5952 for IPv6) appended to `bytes`, without building Strings.
    public func write(into bytes: inout [UInt8]) {
        switch self {
        case let .v4(value):
            for shift in stride(from: 24, through: 0, by: -8) {
                if shift != 24 { bytes.append(UInt8(ascii: ".")) }
                bytes.appendDecimal(UInt8(truncatingIfNeeded: value >> shift))
            }
        case let .v6(high, low):
            func group(_ index: Int) -> UInt16 {
                UInt16(truncatingIfNeeded: (index < 4 ? high : low) >> (48 - 16 * UInt64(index % 4)))
            }
            // The longest run of two or more zero groups (the first of equals) becomes "::".
            var best = 0..<0, start: Int?
            for index in 0...8 {
                if index < 8, group(index) == 0 {
                    if start == nil { start = index }
                } else if let runStart = start {
                    if index - runStart >= 2, index - runStart > best.count { best = runStart..<index }
                    start = nil
                }
            }
            func hex(_ range: Range<Int>) {
                for index in range {
                    if index != range.lowerBound { bytes.append(UInt8(ascii: ":")) }
                    bytes.appendHex(UInt32(group(index)), minimumDigits: 1)
                }
            }
            if best.isEmpty {
                hex(0..<8)
            } else {
                hex(0..<best.lowerBound)
                bytes.append(UInt8(ascii: ":"))
                bytes.append(UInt8(ascii: ":"))
                hex(best.upperBound..<8)
            }
        }
    }

    private static func parseIPv4(_ text: ArraySlice<UInt8>) -> UInt32? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            // 1–3 digits, no leading zero (0127 is octal to some parsers: refused, never guessed).
            guard (1...3).contains(part.count), part.allSatisfy({ (0x30...0x39).contains($0) }),
                  part.count == 1 || part.first != UInt8(ascii: "0") else { return nil }
            let number = part.reduce(UInt32(0)) { $0 * 10 + UInt32($1 - 0x30) }
            guard number <= 255 else { return nil }
            value = value << 8 | number
        }
        return value
    }

    private static func parseIPv6(_ text: ArraySlice<UInt8>) -> (UInt64, UInt64)? {
        guard text.count >= 2, text.count <= 45 else { return nil }
        // Split at "::" (at most once) into the groups before and after it.
        var head = text, tail: ArraySlice<UInt8>? = nil
        if let index = text.indices.first(where: { text[$0] == UInt8(ascii: ":") && $0 + 1 < text.endIndex && text[$0 + 1] == UInt8(ascii: ":") }) {
            head = text[..<index]
            let rest = text[(index + 2)...]
            guard !rest.indices.contains(where: { rest[$0] == UInt8(ascii: ":") && $0 + 1 < rest.endIndex && rest[$0 + 1] == UInt8(ascii: ":") })
            else { return nil }
            tail = rest
        }
        func groups(_ part: ArraySlice<UInt8>, allowIPv4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let fields = part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            var result = [UInt16]()
            for (index, field) in fields.enumerated() {
                if allowIPv4, index == fields.count - 1, field.contains(UInt8(ascii: ".")) {
                    guard let v4 = parseIPv4(field) else { return nil }
                    result += [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
                    continue
                }
                guard (1...4).contains(field.count) else { return nil }
                var number: UInt16 = 0
                for byte in field {
                    guard let digit = hexDigit(byte) else { return nil }
                    number = number << 4 | UInt16(digit)
                }
                result.append(number)
            }
            return result
        }
        guard let before = groups(head, allowIPv4: tail == nil) else { return nil }
        var all: [UInt16]
        if let tail {
            guard let after = groups(tail, allowIPv4: true), before.count + after.count <= 7 else { return nil }
            all = before + [UInt16](repeating: 0, count: 8 - before.count - after.count) + after
        } else {
            guard before.count == 8 else { return nil }
            all = before
        }
        let word = { (range: Range<Int>) in all[range].reduce(UInt64(0)) { $0 << 16 | UInt64($1) } }
        return (word(0..<4), word(4..<8))
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x61...0x66: return byte - 0x61 + 10
        case 0x41...0x46: return byte - 0x41 + 10
        default: return nil
        }
    }
}

/// An address and port as PROTOCOL.md §9 writes them: `IP:port`, IPv6 as `[IP]:port`.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// AUTHREQ `addresses`: a peer's own addresses (§9.2).
    public static let maximumAdvertised = 8
    /// LOOKUPREPLY / CALLREPLY / CALLOFFER `candidates`.
    public static let maximumCandidates = 10

    public let address: IPAddress
    public let port: Int

    public init(address: IPAddress, port: Int) {
        self.address = address
        self.port = port
    }

    /// Strict: a port 1–65535, brackets exactly around an IPv6 address.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let portText = text[text.index(after: colon)...]
        guard (1...5).contains(portText.utf8.count), portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let port = Int(portText), (1...65535).contains(port) else { return nil }
        var host = text[..<colon]
        let bracketed = host.first == "[" && host.last == "]"
        if bracketed { host = host.dropFirst().dropLast() }
        // IPv6 text must be in brackets, IPv4 text must not.
        guard host.contains(":") == bracketed, let address = IPAddress(host) else { return nil }
        self.init(address: address, port: port)
    }

    public var description: String {
        var text = [UInt8]()
        write(into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// `IP:port`, IPv6 in brackets, appended to `bytes`.
    public func write(into bytes: inout [UInt8]) {
        if address.isIPv6 { bytes.append(UInt8(ascii: "[")) }
        address.write(into: &bytes)
        if address.isIPv6 { bytes.append(UInt8(ascii: "]")) }
        bytes.append(UInt8(ascii: ":"))
        bytes.appendDecimal(port)
    }
}

extension Endpoint {
    /// A peer's candidates as the server lists them (§9.2): the observed IP with the peer's
    /// port (what §5 dials), then the observed endpoint when it differs (the router's mapping of
    /// that port), then the peer's own addresses; no duplicates, at most `maximumCandidates`.
    /// A peer not listening (port 0) has none.
    public static func candidates(observed: Endpoint, port: Int, advertised: [Endpoint]) -> [Endpoint] {
        guard port > 0 else { return [] }
        var list = [Endpoint]()
        for endpoint in [Endpoint(address: observed.address, port: port), observed] + advertised
        where !list.contains(endpoint) && !endpoint.address.isUnusable && list.count < maximumCandidates {
            list.append(endpoint)
        }
        return list
    }
}
