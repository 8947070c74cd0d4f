import NIOCore
import SecureChatCore

/// `HOST:PORT` as flags and config files write it (`[::1]:7400` for IPv6; `:7400` to listen on
/// every address).
public struct HostPort: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// Every address of the machine, IPv6 and IPv4 (one dual-stack socket): what `:PORT` means.
    public static let everyAddress = "::"

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; an empty host (`:7400`) is `everyAddress`, for addresses to listen on.
    public init?(_ text: String, allowingEmptyHost: Bool = false) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = Substring(text[..<colon])
        if host.first == "[", host.last == "]" { host = host.dropFirst().dropLast() }
        if host.isEmpty, allowingEmptyHost { host = Substring(Self.everyAddress) }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "[" || $0 == "]" }),
              host.contains(":") == text.hasPrefix("[") || host == Substring(Self.everyAddress) else { return nil }
        self.init(host: String(host), port: port)
    }

    /// Parses an address to listen on, with an error that shows what to write instead.
    public static func listening(_ text: String) throws(FileError) -> HostPort {
        guard let address = HostPort(text, allowingEmptyHost: true) else {
            throw FileError("\"\(text)\" is not an address to listen on: use HOST:PORT, e.g. 0.0.0.0:7400, or :7400 for every address")
        }
        return address
    }

    /// Parses an address to connect to, with an error that shows what to write instead.
    public static func connecting(_ text: String) throws(FileError) -> HostPort {
        guard let address = HostPort(text) else {
            let example = text.contains(":") || text.isEmpty ? "127.0.0.1:7400" : "\(text):7400"
            throw FileError("\"\(text)\" is not a server address: use HOST:PORT, e.g. \(example) ([::1]:7400 for IPv6)")
        }
        return address
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether this names every address rather than one.
    public var isEveryAddress: Bool { host == Self.everyAddress || host == "0.0.0.0" }
}

extension SocketAddress {
    /// The IP address as people write it: an IPv4 client of a dual-stack socket arrives as
    /// `::ffff:a.b.c.d`, which is shown, recorded and compared as `a.b.c.d`.
    public var plainIPAddress: String? {
        guard let address = ipAddress else { return nil }
        let mapped = "::ffff:"
        if address.hasPrefix(mapped), address.dropFirst(mapped.count).contains(".") {
            return String(address.dropFirst(mapped.count))
        }
        return address
    }

    /// The address and port, IPv4-mapped addresses unmapped.
    public var endpoint: Endpoint? {
        guard let address = ipAddress.flatMap({ IPAddress($0) }), let port, port > 0 else { return nil }
        return Endpoint(address: address, port: port)
    }
}
