import SecureChatCrypto

/// A server node of a scale-out deployment (docs/DEPLOYING.md), named at its start: a restarted
/// node is a new node, so nothing of its earlier life is taken for its own.
public struct NodeName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String

    /// 1 to 64 characters of `[A-Za-z0-9._-]`.
    public init?(_ text: String) {
        guard (1...64).contains(text.utf8.count),
              text.utf8.allSatisfy({ Self.allowed($0) }) else { return nil }
        rawValue = text
    }

    private static func allowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    /// The one node of a server that is not part of a scale-out deployment.
    public static let standalone = NodeName("standalone")!

    public var description: String { rawValue }
    public static func < (lhs: NodeName, rhs: NodeName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Orders the sign-ins of one user across nodes: the later one holds the user, the same on every
/// node whatever order the notices arrive in (ties, which need the same nanosecond on two nodes,
/// go to the greater node name). Clocks of different nodes only need to agree roughly: two
/// sign-ins of one user that close together race, and one of them wins everywhere.
public struct SessionStamp: Comparable, Hashable, Sendable {
    /// Nanoseconds since 1970 on the node that took the sign-in.
    public let time: UInt64
    public let node: NodeName

    public init(time: UInt64, node: NodeName) { self.time = time; self.node = node }

    public static func < (lhs: SessionStamp, rhs: SessionStamp) -> Bool {
        (lhs.time, lhs.node) < (rhs.time, rhs.node)
    }
}

/// A signed-in session as the other nodes learn it: what the directory needs to answer lookups
/// about the user and to reach the session.
public struct SessionRecord: Equatable, Sendable {
    public var user: UserID
    public var stamp: SessionStamp
    /// The connection's number on its node.
    public var connection: UInt64
    public var observed: Endpoint
    public var port: Int
    public var advertised: [Endpoint]
    public var identityKey: X25519PublicKey
    public var takesCallOffers: Bool

    public init(user: UserID, stamp: SessionStamp, connection: UInt64, observed: Endpoint, port: Int,
                advertised: [Endpoint], identityKey: X25519PublicKey, takesCallOffers: Bool) {
        self.user = user; self.stamp = stamp; self.connection = connection; self.observed = observed
        self.port = port; self.advertised = advertised; self.identityKey = identityKey; self.takesCallOffers = takesCallOffers
    }
}

/// What one node tells the others (through PostgreSQL's NOTIFY, whose payload is text of at most
/// 8000 bytes): a sign-in, a sign-out, or a call offered to a session the receiver holds.
/// Compact JSON, parsed as strictly as a control message: the database is shared by operators'
/// nodes, but a bad notice must be refused, never trusted into a crash.
public enum ClusterNotice: Equatable, Sendable {
    case signedIn(SessionRecord)
    case signedOut(user: UserID, node: NodeName, connection: UInt64)
    /// CALLOFFER for the session `connection` on `node` (its `relayServer` names the caller's
    /// node, where the relay legs of the call are paired).
    case callOffered(callee: UserID, node: NodeName, connection: UInt64, offer: ControlMessage.CallOffer)

    /// NOTIFY's limit, less a margin.
    public static let maximumSize = 7900

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let problem: String
        public var description: String { "invalid cluster notice: \(problem)" }
    }

    public func encoded() -> String {
        let members: [(key: String, value: JSONValue)]
        switch self {
        case let .signedIn(record):
            members = [
                ("kind", .string("signin")), ("user", .string(record.user.rawValue)),
                ("node", .string(record.stamp.node.rawValue)), ("time", .number(String(record.stamp.time))),
                ("connection", .number(String(record.connection))), ("observed", .string(record.observed.description)),
                ("port", .number(String(record.port))),
                ("addresses", .array(record.advertised.map { .string($0.description) })),
                ("key", .string(Base64.encode(record.identityKey.bytes))), ("offers", .bool(record.takesCallOffers)),
            ]
        case let .signedOut(user, node, connection):
            members = [("kind", .string("signout")), ("user", .string(user.rawValue)), ("node", .string(node.rawValue)),
                       ("connection", .number(String(connection)))]
        case let .callOffered(callee, node, connection, offer):
            // The CALLOFFER as its own JSON text: encoded and decoded once, by the control message code.
            let message = String(decoding: ControlMessage.callOffer(offer).encoded(), as: UTF8.self)
            members = [("kind", .string("offer")), ("user", .string(callee.rawValue)), ("node", .string(node.rawValue)),
                       ("connection", .number(String(connection))), ("message", .string(message))]
        }
        return String(decoding: JSONValue.object(members).serialized, as: UTF8.self)
    }

    public init(parsing text: String) throws(Invalid) {
        let bytes = Array(text.utf8)
        guard bytes.count <= Self.maximumSize else { throw Invalid(problem: "\(bytes.count) bytes") }
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw Invalid(problem: "\(error)") }
        let node = try NoticeFields.node(value)
        let connection = try NoticeFields.unsigned(value, "connection")
        switch try NoticeFields.string(value, "kind") {
        case "signin":
            guard case let .array(addresses)? = value["addresses"], addresses.count <= Endpoint.maximumAdvertised else {
                throw Invalid(problem: "addresses")
            }
            let port = try NoticeFields.unsigned(value, "port")
            let keyBytes = Base64.decode(try NoticeFields.string(value, "key"))
            guard port <= 65535, let keyBytes, let key = try? X25519PublicKey(bytes: keyBytes),
                  case let .bool(offers)? = value["offers"] else { throw Invalid(problem: "port, key or offers") }
            self = .signedIn(SessionRecord(
                user: try NoticeFields.user(value), stamp: SessionStamp(time: try NoticeFields.unsigned(value, "time"), node: node),
                connection: connection, observed: try NoticeFields.endpoint(value["observed"]), port: Int(port),
                advertised: try addresses.map { value throws(Invalid) in try NoticeFields.endpoint(value) },
                identityKey: key, takesCallOffers: offers))
        case "signout":
            self = .signedOut(user: try NoticeFields.user(value), node: node, connection: connection)
        case "offer":
            let message = Array(try NoticeFields.string(value, "message").utf8)
            guard case let .callOffer(offer)? = try? ControlMessage.decode(message) else {
                throw Invalid(problem: "message is not a CALLOFFER")
            }
            self = .callOffered(callee: try NoticeFields.user(value), node: node, connection: connection, offer: offer)
        case let other:
            throw Invalid(problem: "unknown kind \(VisibleText.make(other, .log))")
        }
    }
}

/// Reading a notice's members, each with the error naming it.
private enum NoticeFields {
    static func string(_ value: JSONValue, _ key: String) throws(ClusterNotice.Invalid) -> String {
        guard case let .string(text)? = value[key] else { throw .init(problem: "\(key) is not a string") }
        return text
    }

    static func unsigned(_ value: JSONValue, _ key: String) throws(ClusterNotice.Invalid) -> UInt64 {
        guard case let .number(text)? = value[key], let number = UInt64(text) else { throw .init(problem: "\(key) is not a count") }
        return number
    }

    static func user(_ value: JSONValue) throws(ClusterNotice.Invalid) -> UserID {
        guard let user = UserID(try string(value, "user")) else { throw .init(problem: "user is not a user ID") }
        return user
    }

    static func node(_ value: JSONValue) throws(ClusterNotice.Invalid) -> NodeName {
        guard let node = NodeName(try string(value, "node")) else { throw .init(problem: "node is not a node name") }
        return node
    }

    static func endpoint(_ value: JSONValue?) throws(ClusterNotice.Invalid) -> Endpoint {
        guard case let .string(text)? = value, let endpoint = Endpoint(text) else { throw .init(problem: "an address is not IP:port") }
        return endpoint
    }
}
