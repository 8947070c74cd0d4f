/// The JSON control messages of PROTOCOL.md §3–5 with the seed's field names, field for field.
/// Unknown fields are ignored; a missing or mistyped field is an error naming it.
public enum ControlMessage: Equatable, Sendable {
    case hello(Hello)
    case authRequest(AuthRequest)
    case authReply(AuthReply)
    case lookupRequest(LookupRequest)
    case lookupReply(LookupReply)
    case signUpRequest(SignUpRequest)
    case signUpReply(SignUpReply)
    case listRequest(userID: UserID)
    case listReply(users: [UserID])
    case presence(Presence)
    case logoutRequest(userID: UserID)
    case keepAlive
    case error(reason: String)
    case connectRequest(initiator: UserID)
    case connectReply(ConnectReply)

    /// A JSON control message may be at most this long (PROTOCOL.md §8).
    public static let maximumSize = 4096

    public struct Hello: Equatable, Sendable {
        public var version: Int
        public var noise: String
        public init(version: Int = 1, noise: String) { self.version = version; self.noise = noise }
    }

    public struct AuthRequest: Equatable, Sendable {
        public var userID: UserID
        /// The wire digest (`PasscodeDigest`), never the passcode itself.
        public var passcode: String
        /// The peer's listening port; 0 = not reachable. Absent in the seed's listing.
        public var port: Int?
        public init(userID: UserID, passcode: String, port: Int?) { self.userID = userID; self.passcode = passcode; self.port = port }
    }

    public enum Verdict: String, Sendable { case granted = "GRANTED", refused = "REFUSED" }

    public struct AuthReply: Equatable, Sendable {
        /// The seed's Listing 2 omits it, so it is optional when read.
        public var userID: UserID?
        public var status: Verdict
        public var reason: String?
        public init(userID: UserID?, status: Verdict, reason: String? = nil) { self.userID = userID; self.status = status; self.reason = reason }
    }

    public struct LookupRequest: Equatable, Sendable {
        public var userID: UserID
        public var lookup: UserID
        public init(userID: UserID, lookup: UserID) { self.userID = userID; self.lookup = lookup }
    }

    public struct LookupReply: Equatable, Sendable {
        public struct Found: Equatable, Sendable {
            public var answer: UserID
            public var address: String
            /// The sought user's static key, base64.
            public var encryptionKey: String
            public var port: Int?
            public init(answer: UserID, address: String, encryptionKey: String, port: Int?) {
                self.answer = answer; self.address = address; self.encryptionKey = encryptionKey; self.port = port
            }
        }
        /// nil is NOTFOUND, sent with every information field empty (the seed's Listing 6).
        public var found: Found?
        public init(found: Found?) { self.found = found }
        public static let notFound = LookupReply(found: nil)
    }

    public struct SignUpRequest: Equatable, Sendable {
        public var userID: UserID
        public var passcode: String
        public init(userID: UserID, passcode: String) { self.userID = userID; self.passcode = passcode }
    }

    public struct SignUpReply: Equatable, Sendable {
        public enum Status: String, Sendable { case created = "CREATED", exists = "EXISTS", refused = "REFUSED" }
        public var status: Status
        public var reason: String
        public init(status: Status, reason: String) { self.status = status; self.reason = reason }
    }

    public struct Presence: Equatable, Sendable {
        public enum Status: String, Sendable { case online = "ONLINE", offline = "OFFLINE" }
        public var userID: UserID
        public var status: Status
        public init(userID: UserID, status: Status) { self.userID = userID; self.status = status }
    }

    public struct ConnectReply: Equatable, Sendable {
        public enum Status: String, Sendable { case accepted = "ACCEPTED", refused = "REFUSED" }
        public var status: Status
        public var reason: String?
        public init(status: Status, reason: String? = nil) { self.status = status; self.reason = reason }
    }
}

/// Why a control message was refused; each case names the field at fault.
public enum MessageError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooLarge(Int)
    case invalidUTF8
    case invalidJSON(String)
    case notAnObject
    case missingField(String)
    case wrongType(field: String, expected: String)
    case invalidValue(field: String, reason: String)
    case unknownMessageType(String)

    public var description: String {
        switch self {
        case let .tooLarge(size): return "control message of \(size) bytes is over the \(ControlMessage.maximumSize)-byte limit"
        case .invalidUTF8: return "control message is not valid UTF-8"
        case let .invalidJSON(problem): return problem
        case .notAnObject: return "control message is not a JSON object"
        case let .missingField(field): return "missing field \"\(field)\""
        case let .wrongType(field, expected): return "field \"\(field)\" must be a \(expected)"
        case let .invalidValue(field, reason): return "field \"\(field)\": \(reason)"
        case let .unknownMessageType(type): return "unknown msgtype \"\(type)\""
        }
    }
}

extension ControlMessage {
    public var messageType: String {
        switch self {
        case .hello: return "HELLO"
        case .authRequest: return "AUTHREQ"
        case .authReply: return "AUTHREPLY"
        case .lookupRequest: return "LOOKUPREQ"
        case .lookupReply: return "LOOKUPREPLY"
        case .signUpRequest: return "SIGNUPREQ"
        case .signUpReply: return "SIGNUPREPLY"
        case .listRequest: return "LISTREQ"
        case .listReply: return "LISTREPLY"
        case .presence: return "PRESENCE"
        case .logoutRequest: return "LOGOUTREQ"
        case .keepAlive: return "KEEPALIVE"
        case .error: return "ERROR"
        case .connectRequest: return "CONNECTREQ"
        case .connectReply: return "CONNECTREPLY"
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(MessageError) -> ControlMessage {
        guard bytes.count <= maximumSize else { throw .tooLarge(bytes.count) }
        guard isValidUTF8(bytes) else { throw .invalidUTF8 }
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw .invalidJSON("\(error)") }
        guard case .object = value else { throw .notAnObject }
        let fields = Fields(value: value)
        let type = try fields.string("msgtype")
        switch type {
        case "HELLO":
            return .hello(Hello(version: try fields.integer("version"), noise: try fields.string("noise")))
        case "AUTHREQ":
            return .authRequest(AuthRequest(userID: try fields.userID("userid"), passcode: try fields.string("passcode"),
                                            port: try fields.optionalPort("port")))
        case "AUTHREPLY":
            return .authReply(AuthReply(userID: try fields.optionalUserID("userid"), status: try fields.enumeration("status"),
                                        reason: try fields.optionalString("reason")))
        case "LOOKUPREQ":
            return .lookupRequest(LookupRequest(userID: try fields.userID("userid"), lookup: try fields.userID("lookup")))
        case "LOOKUPREPLY":
            let status = try fields.string("status")
            switch status {
            case "SUCCESS":
                return .lookupReply(LookupReply(found: .init(answer: try fields.userID("answer"), address: try fields.string("address"),
                                                             encryptionKey: try fields.string("encryptionkey"),
                                                             port: try fields.optionalPort("port"))))
            case "NOTFOUND":
                return .lookupReply(.notFound)
            default:
                throw .invalidValue(field: "status", reason: "must be SUCCESS or NOTFOUND")
            }
        case "SIGNUPREQ":
            return .signUpRequest(SignUpRequest(userID: try fields.userID("userid"), passcode: try fields.string("passcode")))
        case "SIGNUPREPLY":
            return .signUpReply(SignUpReply(status: try fields.enumeration("status"), reason: try fields.optionalString("reason") ?? ""))
        case "LISTREQ":
            return .listRequest(userID: try fields.userID("userid"))
        case "LISTREPLY":
            return .listReply(users: try fields.userIDs("users"))
        case "PRESENCE":
            return .presence(Presence(userID: try fields.userID("userid"), status: try fields.enumeration("status")))
        case "LOGOUTREQ":
            return .logoutRequest(userID: try fields.userID("userid"))
        case "KEEPALIVE":
            return .keepAlive
        case "ERROR":
            return .error(reason: try fields.string("reason"))
        case "CONNECTREQ":
            return .connectRequest(initiator: try fields.userID("initiator"))
        case "CONNECTREPLY":
            return .connectReply(ConnectReply(status: try fields.enumeration("status"), reason: try fields.optionalString("reason")))
        default:
            throw .unknownMessageType(type)
        }
    }

    /// Compact JSON: `msgtype` first, then the seed's fields, then extensions.
    public func encoded() -> [UInt8] {
        var members: [(key: String, value: JSONValue)] = [("msgtype", .string(messageType))]
        func add(_ key: String, _ value: String?) { if let value { members.append((key, .string(value))) } }
        func add(_ key: String, number: Int?) { if let number { members.append((key, .number(String(number)))) } }
        switch self {
        case let .hello(hello):
            add("version", number: hello.version); add("noise", hello.noise)
        case let .authRequest(request):
            add("userid", request.userID.rawValue); add("passcode", request.passcode); add("port", number: request.port)
        case let .authReply(reply):
            add("userid", reply.userID?.rawValue); add("status", reply.status.rawValue); add("reason", reply.reason)
        case let .lookupRequest(request):
            add("userid", request.userID.rawValue); add("lookup", request.lookup.rawValue)
        case let .lookupReply(reply):
            if let found = reply.found {
                add("status", "SUCCESS"); add("answer", found.answer.rawValue); add("address", found.address)
                add("encryptionkey", found.encryptionKey); add("port", number: found.port)
            } else {
                add("status", "NOTFOUND"); add("answer", ""); add("address", ""); add("location", ""); add("encryptionkey", "")
            }
        case let .signUpRequest(request):
            add("userid", request.userID.rawValue); add("passcode", request.passcode)
        case let .signUpReply(reply):
            add("status", reply.status.rawValue); add("reason", reply.reason)
        case let .listRequest(userID), let .logoutRequest(userID):
            add("userid", userID.rawValue)
        case let .listReply(users):
            members.append(("users", .array(users.map { .string($0.rawValue) })))
        case let .presence(presence):
            add("userid", presence.userID.rawValue); add("status", presence.status.rawValue)
        case .keepAlive:
            break
        case let .error(reason):
            add("reason", reason)
        case let .connectRequest(initiator):
            add("initiator", initiator.rawValue)
        case let .connectReply(reply):
            add("status", reply.status.rawValue); add("reason", reply.reason)
        }
        return JSONValue.object(members).serialized
    }
}

/// Typed access to an object's fields, with errors that name the field.
private struct Fields {
    let value: JSONValue

    func string(_ key: String) throws(MessageError) -> String {
        guard let field = value[key] else { throw .missingField(key) }
        guard case let .string(text) = field else { throw .wrongType(field: key, expected: "string") }
        return text
    }

    func optionalString(_ key: String) throws(MessageError) -> String? {
        guard value[key] != nil else { return nil }
        return try string(key)
    }

    func integer(_ key: String) throws(MessageError) -> Int {
        guard let field = value[key] else { throw .missingField(key) }
        guard let number = field.integer else { throw .wrongType(field: key, expected: "whole number") }
        return number
    }

    func optionalPort(_ key: String) throws(MessageError) -> Int? {
        guard value[key] != nil else { return nil }
        let port = try integer(key)
        guard (0...65535).contains(port) else { throw .invalidValue(field: key, reason: "must be 0–65535") }
        return port
    }

    func userID(_ key: String) throws(MessageError) -> UserID {
        let text = try string(key)
        guard let userID = UserID(text) else {
            throw .invalidValue(field: key, reason: "a user ID is 1–32 of a-z 0-9 . _ - starting with a letter or digit")
        }
        return userID
    }

    func optionalUserID(_ key: String) throws(MessageError) -> UserID? {
        guard value[key] != nil else { return nil }
        return try userID(key)
    }

    func userIDs(_ key: String) throws(MessageError) -> [UserID] {
        guard let field = value[key] else { throw .missingField(key) }
        guard case let .array(elements) = field else { throw .wrongType(field: key, expected: "array of user IDs") }
        var users = [UserID]()
        for element in elements {
            guard case let .string(text) = element, let user = UserID(text) else {
                throw .invalidValue(field: key, reason: "every element must be a user ID")
            }
            users.append(user)
        }
        return users
    }

    func enumeration<Value: RawRepresentable<String>>(_ key: String) throws(MessageError) -> Value {
        let text = try string(key)
        guard let parsed = Value(rawValue: text) else { throw .invalidValue(field: key, reason: "unknown value \"\(text)\"") }
        return parsed
    }
}
