#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// Turns a network error into one plain sentence with the likely fix. Every network failure the
/// program reports (server, peer, tools) goes through here, so no library's error text reaches a
/// user: NIO's descriptions ("Connection errors: SingleConnectionFailure(…)") are for developers.
public enum NetworkWords {
    /// What the program was doing when the error came.
    public enum Activity: Sendable {
        /// Opening a connection to `what` ("the server", "bianca") at `address`.
        case connecting(to: String, at: HostPort)
        /// Listening on `address` for `purpose` ("peers", "calls").
        case listening(on: HostPort, for: String)
        /// An open connection with `what` failing.
        case talking(with: String)
    }

    public static func describe(_ error: any Error, while activity: Activity) -> String {
        switch activity {
        case let .connecting(what, address):
            if let host = unresolvedHost(error) {
                return "cannot find the host \(host): the name does not resolve (check its spelling, or use an IP address)"
            }
            if isTimeout(error) {
                return "no answer from \(address): the host may be down or unreachable, or a firewall drops the connection"
            }
            switch errno(of: error) {
            case ECONNREFUSED?:
                return "nothing is listening at \(address) (connection refused): is \(what) running there, and is the port right?"
            case EHOSTUNREACH?, ENETUNREACH?:
                return "\(address) cannot be reached from this machine (no route): check the address and this machine's network"
            case ECONNRESET?:
                return "\(address) reset the connection at once: a firewall may refuse it, or it is not a securechat \(what == "the server" ? "server" : "peer")"
            case EACCES?, EPERM?:
                return "this machine refused to connect to \(address) (a local firewall rule?)"
            case EADDRNOTAVAIL?, EADDRINUSE?:
                return "cannot open a connection to \(address) from this machine's port (it is busy): try again in a moment"
            case let code?:
                return "cannot connect to \(address): \(systemText(code))"
            case nil:
                return "cannot connect to \(address): \(unknown(error))"
            }
        case let .listening(address, purpose):
            if let host = unresolvedHost(error) {
                return "cannot listen for \(purpose) on \(address): the host name \(host) does not resolve"
            }
            switch errno(of: error) {
            case EADDRINUSE?:
                return "cannot listen for \(purpose) on \(address): the port is already in use (another program, or another securechat, listens there); choose another port"
            case EADDRNOTAVAIL?:
                return "cannot listen for \(purpose) on \(address): \(address.host) is not an address of this machine (use one of its addresses, or :\(address.port) for all of them)"
            case EACCES?, EPERM?:
                return "cannot listen for \(purpose) on \(address): ports below 1024 need privileges; use a port from 1024 up (e.g. :7400)"
            case EAFNOSUPPORT?:
                return "cannot listen for \(purpose) on \(address): this machine has no \(address.host.contains(":") ? "IPv6" : "IPv4") networking"
            case let code?:
                return "cannot listen for \(purpose) on \(address): \(systemText(code))"
            case nil:
                return "cannot listen for \(purpose) on \(address): \(unknown(error))"
            }
        case let .talking(what):
            if isTimeout(error) { return "the connection with \(what) timed out (no answer)" }
            switch errno(of: error) {
            case ECONNRESET?: return "\(what) reset the connection"
            case EPIPE?: return "\(what) closed the connection"
            case ETIMEDOUT?: return "the connection with \(what) timed out (no answer)"
            case EHOSTUNREACH?, ENETUNREACH?: return "\(what) can no longer be reached (no route)"
            case let code?: return "the connection with \(what) failed: \(systemText(code))"
            case nil: return "the connection with \(what) failed: \(unknown(error))"
            }
        }
    }

    /// Whether a connect failed because the local address and port are taken (an earlier
    /// connection from the same port to the same place still in TIME_WAIT).
    public static func isPortBusy(_ error: any Error) -> Bool {
        switch errno(of: error) {
        case EADDRNOTAVAIL?, EADDRINUSE?: return true
        default: return false
        }
    }

    /// The errno behind `error`, looking inside NIO's wrappers (one per address tried: the
    /// most telling one wins, a refusal over a timeout over anything else).
    static func errno(of error: any Error) -> Int32? {
        if let error = error as? IOError { return error.errnoCode }
        if let error = error as? NIOConnectionError {
            let codes = error.connectionErrors.compactMap { errno(of: $0.error) }
            for preferred in [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ECONNRESET] where codes.contains(preferred) {
                return preferred
            }
            return codes.first
        }
        if let error = error as? ChannelError, case .writeHostUnreachable = error { return EHOSTUNREACH }
        return nil
    }

    private static func isTimeout(_ error: any Error) -> Bool {
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? NIOConnectionError {
            return !error.connectionErrors.isEmpty && error.connectionErrors.allSatisfy { isTimeout($0.error) }
        }
        return errno(of: error) == ETIMEDOUT
    }

    /// The host name that did not resolve, if that is what went wrong.
    private static func unresolvedHost(_ error: any Error) -> String? {
        if let error = error as? NIOConnectionError, error.connectionErrors.isEmpty,
           error.dnsAError != nil || error.dnsAAAAError != nil {
            return error.host
        }
        if let error = error as? SocketAddressError, case let .unknown(host, _) = error { return host }
        if let error = error as? SocketAddressError.UnknownHost { return error.host }
        return nil
    }

    private static func systemText(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }

    /// Anything else: named by its kind only, never by the library's description.
    private static func unknown(_ error: any Error) -> String {
        if let error = error as? ChannelError {
            switch error {
            case .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed, .eof: return "the connection was closed"
            default: break
            }
        }
        return "an unexpected network error"
    }
}

/// Reports why an accepted connection could not be set up (a socket option refused, a handler
/// that failed): NIO closes the connection and tells only the listening channel, after its own
/// accept handler, so this goes at the end of the listener's pipeline once it is bound.
final class AcceptFailureHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any

    private let report: @Sendable (String) -> Void

    init(_ report: @escaping @Sendable (String) -> Void) { self.report = report }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        report(NetworkWords.describe(error, while: .talking(with: "a new connection")))
    }
}

/// Binding a listener, with `:PORT` (every address) falling back to every IPv4 address on a
/// machine without IPv6, and failures in words.
enum Listener {
    /// On `eventLoop`, the bootstrap's own (the peer binds from its one loop).
    static func bind(_ bootstrap: ServerBootstrap, to address: HostPort, for purpose: String,
                     on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        bootstrap.bind(host: address.host, port: address.port).assumeIsolated().flatMapError { error in
            switch fallback(after: error, address, purpose) {
            case let .success(other): return bind(bootstrap, to: other, for: purpose, on: eventLoop)
            case let .failure(failure): return eventLoop.makeFailedFuture(failure)
            }
        }.nonisolated()
    }

    static func bind(_ bootstrap: ServerBootstrap, to address: HostPort, for purpose: String) async throws -> any Channel {
        do {
            return try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch {
            return try await bind(bootstrap, to: try fallback(after: error, address, purpose).get(), for: purpose)
        }
    }

    /// After a failed bind: the address to try instead, or the failure in words.
    private static func fallback(after error: any Error, _ address: HostPort, _ purpose: String) -> Result<HostPort, FileError> {
        if address.host == HostPort.everyAddress, NetworkWords.errno(of: error) == EAFNOSUPPORT {
            return .success(HostPort(host: "0.0.0.0", port: address.port))
        }
        return .failure(FileError(NetworkWords.describe(error, while: .listening(on: address, for: purpose))))
    }
}
