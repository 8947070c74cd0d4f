#if canImport(Glibc)
import Glibc
#endif
import SecureChatCore

/// This machine's own addresses, for the peer's candidates (§9.2): every address of every
/// interface that is up, IPv4 and IPv6, except loopback (unless the server itself is reached on
/// loopback: then the other peer is on this machine too), link-local ones (they need an
/// interface name) and unusable ones.
enum LocalAddresses {
    /// The candidates for a peer listening on `listening`: that address alone when it is one
    /// address (nothing else reaches the listener), else the interfaces' addresses.
    static func candidates(listening: HostPort, port: Int, includingLoopback: Bool) -> [Endpoint] {
        if !listening.isEveryAddress, let address = IPAddress(listening.host) { return [Endpoint(address: address, port: port)] }
        return candidates(port: port, includingLoopback: includingLoopback)
    }

    static func candidates(port: Int, includingLoopback: Bool) -> [Endpoint] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var addresses = [IPAddress]()
        var next: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = next {
            next = entry.pointee.ifa_next
            guard entry.pointee.ifa_flags & UInt32(IFF_UP) != 0, let socketAddress = entry.pointee.ifa_addr,
                  let address = ipAddress(socketAddress) else { continue }
            guard !address.isLinkLocal, !address.isUnusable, includingLoopback || !address.isLoopback,
                  !addresses.contains(address) else { continue }
            addresses.append(address)
        }
        // IPv4 first (it crosses more networks), then IPv6; loopback last.
        addresses.sort { ($0.isLoopback ? 2 : $0.isIPv6 ? 1 : 0) < ($1.isLoopback ? 2 : $1.isIPv6 ? 1 : 0) }
        return addresses.prefix(Endpoint.maximumAdvertised).map { Endpoint(address: $0, port: port) }
    }

    private static func ipAddress(_ pointer: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                var raw = address.pointee.sin_addr
                guard inet_ntop(AF_INET, &raw, &text, socklen_t(text.count)) != nil else { return nil }
                return IPAddress(text.asString)
            }
        case AF_INET6:
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                var raw = address.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count)) != nil else { return nil }
                return IPAddress(text.asString)
            }
        default:
            return nil
        }
    }
}

extension [CChar] {
    /// The C string in this buffer, up to its terminating zero.
    fileprivate var asString: String { String(decoding: prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
}
