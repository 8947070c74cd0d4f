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
    case listReply(ListReply)
    case presence(Presence)
    case logoutRequest(userID: UserID)
    case passwordRequest(PasswordRequest)
    case passwordReply(PasswordReply)
    case keepAlive
    case error(reason: String)
    case connectRequest(initiator: UserID)
    case connectReply(ConnectReply)
    // PROTOCOL.md §9: call set-up through the server.
    case callRequest(CallRequest)
    case callReply(CallReply)
    case callOffer(CallOffer)
    /// The plaintext first frame of a relay leg (§9.5).
    case relay(token: String)

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
        /// §9.2: the peer's own addresses with its port, at most `Endpoint.maximumAdvertised`.
        public var addresses: [Endpoint]
        /// Ext: what this peer does beyond §4–5 (`ClientExtension`), so the server sends it only
        /// what it understands.
        public var extensions: [String]
        public init(userID: UserID, passcode: String, port: Int?, addresses: [Endpoint] = [], extensions: [String] = []) {
            self.userID = userID; self.passcode = passcode; self.port = port; self.addresses = addresses
            self.extensions = extensions
        }
    }

    public enum Verdict: String, Sendable { case granted = "GRANTED", refused = "REFUSED" }

    public struct AuthReply: Equatable, Sendable {
        /// The seed's Listing 2 omits it, so it is optional when read.
        public var userID: UserID?
        public var status: Verdict
        public var reason: String?
        /// Ext: what this server does beyond §4–5 (`ServerExtension`), so a peer uses it only then.
        public var extensions: [String]
        /// Ext, on GRANTED: the account's identity key before this sign-in replaced it (a new
        /// device), base64, so the user learns that others will see a changed key.
        public var previousKey: String?
        /// Ext, on GRANTED: where the server sees this peer, and whether that is a router in front of it.
        public var network: PeerNetwork?
        public init(userID: UserID?, status: Verdict, reason: String? = nil, extensions: [String] = [], previousKey: String? = nil,
                    network: PeerNetwork? = nil) {
            self.userID = userID; self.status = status; self.reason = reason; self.extensions = extensions; self.previousKey = previousKey
            self.network = network
        }
    }

    /// Ext fields `observed` ("IP:port", the source of the peer's server connection) and `nat`
    /// (true when that is not one of the peer's own addresses: a router is in front of it), so a
    /// peer can tell the user how a call connected.
    public struct PeerNetwork: Equatable, Sendable {
        public var observed: Endpoint
        public var behindRouter: Bool
        public init(observed: Endpoint, behindRouter: Bool) { self.observed = observed; self.behindRouter = behindRouter }
    }

    /// What a peer announces in AUTHREQ's `extensions`.
    public enum ClientExtension: String, Sendable, CaseIterable {
        /// It takes CALLOFFER (§9.3); a peer without it is offered nothing and checks callers by lookup (§5.2).
        case calls
        /// It answers the server's KEEPALIVE with one: silence after a probe means it froze or vanished.
        case keepAlive = "keepalive"
    }

    /// What a server announces in AUTHREPLY's `extensions`.
    public enum ServerExtension: String, Sendable, CaseIterable {
        /// CALLREQ, CALLREPLY and CALLOFFER (§9.3).
        case calls
        /// LISTREPLY in pages (`more`), so any number of users fits the 4096-byte limit.
        case listPages = "listpages"
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
            /// §9.2: where the user may be reached, best first.
            public var candidates: [Endpoint]
            public init(answer: UserID, address: String, encryptionKey: String, port: Int?, candidates: [Endpoint] = []) {
                self.answer = answer; self.address = address; self.encryptionKey = encryptionKey; self.port = port
                self.candidates = candidates
            }
        }
        /// nil is NOTFOUND, sent with every information field empty (the seed's Listing 6).
        public var found: Found?
        public init(found: Found?) { self.found = found }
        public static let notFound = LookupReply(found: nil)
    }

    /// A LOOKUPREPLY encoded once and sent as often as it is asked for: every lookup of a user
    /// gets the same reply until the user signs in again, so the server's directory keeps one per
    /// signed-in user, made at sign-in, and a lookup costs no encoding.
    public struct EncodedLookupReply: Sendable {
        public let plaintext: [UInt8]
        public init(_ reply: LookupReply) { plaintext = ControlMessage.lookupReply(reply).encoded() }
        public static let notFound = EncodedLookupReply(.notFound)
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

    public struct ListReply: Equatable, Sendable {
        public var users: [UserID]
        /// Ext: another page follows (a long list is sent in pages under the size limit).
        public var more: Bool
        public init(users: [UserID], more: Bool = false) { self.users = users; self.more = more }
    }

    public struct PasswordRequest: Equatable, Sendable {
        public var userID: UserID
        /// Both as wire digests (`PasscodeDigest`).
        public var passcode: String
        public var newPasscode: String
        public init(userID: UserID, passcode: String, newPasscode: String) {
            self.userID = userID; self.passcode = passcode; self.newPasscode = newPasscode
        }
    }

    public struct PasswordReply: Equatable, Sendable {
        public enum Status: String, Sendable { case changed = "CHANGED", refused = "REFUSED" }
        public var status: Status
        public var reason: String
        public init(status: Status, reason: String) { self.status = status; self.reason = reason }
    }

    public struct CallRequest: Equatable, Sendable {
        public var userID: UserID
        public var callee: UserID
        public init(userID: UserID, callee: UserID) { self.userID = userID; self.callee = callee }
    }

    public struct CallReply: Equatable, Sendable {
        public enum Status: String, Sendable { case success = "SUCCESS", notFound = "NOTFOUND", refused = "REFUSED" }
        public struct Found: Equatable, Sendable {
            public var callee: UserID
            public var encryptionKey: String
            public var candidates: [Endpoint]
            /// The caller's relay token; empty when the server relays nothing (then `reason` says why).
            public var relay: String
            /// Ext: the callee's network as the server sees it.
            public var network: PeerNetwork?
            public init(callee: UserID, encryptionKey: String, candidates: [Endpoint], relay: String, network: PeerNetwork? = nil) {
                self.callee = callee; self.encryptionKey = encryptionKey; self.candidates = candidates; self.relay = relay
                self.network = network
            }
        }
        public var status: Status
        public var reason: String?
        /// Set exactly when `status` is SUCCESS.
        public var found: Found?
        public init(status: Status, reason: String? = nil, found: Found? = nil) {
            self.status = status; self.reason = reason; self.found = found
        }
    }

    public struct CallOffer: Equatable, Sendable {
        public var caller: UserID
        public var encryptionKey: String
        public var candidates: [Endpoint]
        /// The callee's own relay token; empty when the server relays nothing.
        public var relay: String
        /// Ext: the caller's network as the server sees it.
        public var network: PeerNetwork?
        /// Ext `relayserver` ("HOST:PORT"): where the callee opens its relay leg when that is not
        /// the server it is signed in to (a scale-out node pairs both legs of a call on the
        /// caller's node). Absent: the callee's own server.
        public var relayServer: String?
        public init(caller: UserID, encryptionKey: String, candidates: [Endpoint], relay: String, network: PeerNetwork? = nil,
                    relayServer: String? = nil) {
            self.caller = caller; self.encryptionKey = encryptionKey; self.candidates = candidates; self.relay = relay
            self.network = network; self.relayServer = relayServer
        }
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
        case .passwordRequest: return "PASSWDREQ"
        case .passwordReply: return "PASSWDREPLY"
        case .callRequest: return "CALLREQ"
        case .callReply: return "CALLREPLY"
        case .callOffer: return "CALLOFFER"
        case .relay: return "RELAY"
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(MessageError) -> ControlMessage {
        guard bytes.count <= maximumSize else { throw .tooLarge(bytes.count) }
        guard isValidUTF8(bytes) else { throw .invalidUTF8 }
        let value: JSONValue
        do { value = try JSONValue.parse(validatedUTF8: bytes) } catch { throw .invalidJSON("\(error)") }
        guard case .object = value else { throw .notAnObject }
        let fields = Fields(value: value)
        let type = try fields.string("msgtype")
        switch type {
        case "HELLO":
            return .hello(Hello(version: try fields.integer("version"), noise: try fields.string("noise")))
        case "AUTHREQ":
            return .authRequest(AuthRequest(userID: try fields.userID("userid"), passcode: try fields.string("passcode"),
                                            port: try fields.optionalPort("port"),
                                            addresses: try fields.endpoints("addresses", atMost: Endpoint.maximumAdvertised),
                                            extensions: try fields.optionalStrings("extensions") ?? []))
        case "AUTHREPLY":
            return .authReply(AuthReply(userID: try fields.optionalUserID("userid"), status: try fields.enumeration("status"),
                                        reason: try fields.optionalString("reason"),
                                        extensions: try fields.optionalStrings("extensions") ?? [],
                                        previousKey: try fields.optionalString("previouskey"), network: try fields.network()))
        case "LOOKUPREQ":
            return .lookupRequest(LookupRequest(userID: try fields.userID("userid"), lookup: try fields.userID("lookup")))
        case "LOOKUPREPLY":
            let status = try fields.string("status")
            switch status {
            case "SUCCESS":
                return .lookupReply(LookupReply(found: .init(answer: try fields.userID("answer"), address: try fields.string("address"),
                                                             encryptionKey: try fields.string("encryptionkey"),
                                                             port: try fields.optionalPort("port"),
                                                             candidates: try fields.endpoints("candidates", atMost: Endpoint.maximumCandidates))))
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
            return .listReply(ListReply(users: try fields.userIDs("users"), more: try fields.optionalBool("more") ?? false))
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
        case "PASSWDREQ":
            return .passwordRequest(PasswordRequest(userID: try fields.userID("userid"), passcode: try fields.string("passcode"),
                                                    newPasscode: try fields.string("newpasscode")))
        case "PASSWDREPLY":
            return .passwordReply(PasswordReply(status: try fields.enumeration("status"), reason: try fields.optionalString("reason") ?? ""))
        case "CALLREQ":
            return .callRequest(CallRequest(userID: try fields.userID("userid"), callee: try fields.userID("callee")))
        case "CALLREPLY":
            let status: CallReply.Status = try fields.enumeration("status")
            guard status == .success else { return .callReply(CallReply(status: status, reason: try fields.optionalString("reason"))) }
            return .callReply(CallReply(status: status, reason: try fields.optionalString("reason"), found: .init(
                callee: try fields.userID("callee"), encryptionKey: try fields.string("encryptionkey"),
                candidates: try fields.endpoints("candidates", atMost: Endpoint.maximumCandidates), relay: try fields.string("relay"),
                network: try fields.network())))
        case "CALLOFFER":
            return .callOffer(CallOffer(caller: try fields.userID("caller"), encryptionKey: try fields.string("encryptionkey"),
                                        candidates: try fields.endpoints("candidates", atMost: Endpoint.maximumCandidates),
                                        relay: try fields.string("relay"), network: try fields.network(),
                                        relayServer: try fields.optionalString("relayserver")))
        case "RELAY":
            return .relay(token: try fields.string("token"))
        default:
            throw .unknownMessageType(type)
        }
    }

    /// Compact JSON: `msgtype` first, then the seed's fields, then extensions.
    public func encoded() -> [UInt8] {
        var json = JSONObjectWriter(capacity: 256)
        func add(_ key: StaticString, _ value: String?) { if let value { json.string(key, value) } }
        func add(_ key: StaticString, number: Int?) { if let number { json.number(key, number) } }
        func add(_ key: StaticString, strings: [String]) { if !strings.isEmpty { json.array(key, strings, JSONText.write) } }
        // Digits, hex, dots, colons and brackets: nothing to escape.
        func quoted(_ endpoint: Endpoint, _ bytes: inout [UInt8]) {
            bytes.append(UInt8(ascii: "\""))
            endpoint.write(into: &bytes)
            bytes.append(UInt8(ascii: "\""))
        }
        func add(_ key: StaticString, endpoints: [Endpoint], always: Bool = false) {
            if always || !endpoints.isEmpty { json.array(key, endpoints, quoted) }
        }
        func add(_ network: PeerNetwork?) {
            guard let network else { return }
            json.value("observed") { quoted(network.observed, &$0) }
            json.bool("nat", network.behindRouter)
        }
        json.string("msgtype", messageType)
        switch self {
        case let .hello(hello):
            add("version", number: hello.version); add("noise", hello.noise)
        case let .authRequest(request):
            add("userid", request.userID.rawValue); add("passcode", request.passcode); add("port", number: request.port)
            add("addresses", endpoints: request.addresses)
            add("extensions", strings: request.extensions)
        case let .authReply(reply):
            add("userid", reply.userID?.rawValue); add("status", reply.status.rawValue); add("reason", reply.reason)
            add("extensions", strings: reply.extensions); add("previouskey", reply.previousKey); add(reply.network)
        case let .lookupRequest(request):
            add("userid", request.userID.rawValue); add("lookup", request.lookup.rawValue)
        case let .lookupReply(reply):
            if let found = reply.found {
                add("status", "SUCCESS"); add("answer", found.answer.rawValue); add("address", found.address)
                add("encryptionkey", found.encryptionKey); add("port", number: found.port)
                add("candidates", endpoints: found.candidates)
            } else {
                add("status", "NOTFOUND"); add("answer", ""); add("address", ""); add("location", ""); add("encryptionkey", "")
            }
        case let .signUpRequest(request):
            add("userid", request.userID.rawValue); add("passcode", request.passcode)
        case let .signUpReply(reply):
            add("status", reply.status.rawValue); add("reason", reply.reason)
        case let .listRequest(userID), let .logoutRequest(userID):
            add("userid", userID.rawValue)
        case let .listReply(reply):
            json.array("users", reply.users) { JSONText.write($0.rawValue, into: &$1) }
            if reply.more { json.bool("more", true) }
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
        case let .passwordRequest(request):
            add("userid", request.userID.rawValue); add("passcode", request.passcode); add("newpasscode", request.newPasscode)
        case let .passwordReply(reply):
            add("status", reply.status.rawValue); add("reason", reply.reason)
        case let .callRequest(request):
            add("userid", request.userID.rawValue); add("callee", request.callee.rawValue)
        case let .callReply(reply):
            add("status", reply.status.rawValue); add("reason", reply.reason)
            if let found = reply.found {
                add("callee", found.callee.rawValue); add("encryptionkey", found.encryptionKey)
                add("candidates", endpoints: found.candidates, always: true)
                add("relay", found.relay); add(found.network)
            }
        case let .callOffer(offer):
            add("caller", offer.caller.rawValue); add("encryptionkey", offer.encryptionKey)
            add("candidates", endpoints: offer.candidates, always: true)
            add("relay", offer.relay); add(offer.network); add("relayserver", offer.relayServer)
        case let .relay(token):
            add("token", token)
        }
        return json.finish()
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

    func optionalBool(_ key: String) throws(MessageError) -> Bool? {
        guard let field = value[key] else { return nil }
        guard case let .bool(flag) = field else { throw .wrongType(field: key, expected: "true or false") }
        return flag
    }

    func optionalStrings(_ key: String) throws(MessageError) -> [String]? {
        guard let field = value[key] else { return nil }
        guard case let .array(elements) = field else { throw .wrongType(field: key, expected: "array of strings") }
        var strings = [String]()
        for element in elements {
            guard case let .string(text) = element else { throw .wrongType(field: key, expected: "array of strings") }
            strings.append(text)
        }
        return strings
    }

    /// `"IP:port"` strings (§9.2); absent is empty. More than `atMost`, or one that does not
    /// parse, is an error naming the field.
    func endpoints(_ key: String, atMost limit: Int) throws(MessageError) -> [Endpoint] {
        let texts = try optionalStrings(key) ?? []
        guard texts.count <= limit else { throw .invalidValue(field: key, reason: "at most \(limit) addresses") }
        var endpoints = [Endpoint]()
        for text in texts {
            guard let endpoint = Endpoint(text) else {
                throw .invalidValue(field: key, reason: "every element must be \"IP:port\" (IPv6 as \"[IP]:port\")")
            }
            endpoints.append(endpoint)
        }
        return endpoints
    }

    /// The ext pair `observed` and `nat`, present together or not at all.
    func network() throws(MessageError) -> ControlMessage.PeerNetwork? {
        guard let text = try optionalString("observed") else { return nil }
        guard let observed = Endpoint(text) else { throw .invalidValue(field: "observed", reason: "must be \"IP:port\"") }
        return .init(observed: observed, behindRouter: try optionalBool("nat") ?? false)
    }

    func enumeration<Value: RawRepresentable<String>>(_ key: String) throws(MessageError) -> Value {
        let text = try string(key)
        guard let parsed = Value(rawValue: text) else { throw .invalidValue(field: key, reason: "unknown value \"\(text)\"") }
        return parsed
    }
}
