import Foundation
import SecureChatCore
import SecureChatCrypto
import Testing

@Suite("Frames")
struct FrameTests {
    static let payloads: [[UInt8]] = [[1], Array(repeating: 7, count: 300), Array(0...255), Array(repeating: 9, count: 65535), [42, 43]]

    static func stream() throws -> [UInt8] { try payloads.flatMap { try Framing.frame($0) } }

    static func decode(_ chunks: [[UInt8]]) throws -> [[UInt8]] {
        var decoder = FrameDecoder()
        var frames = [[UInt8]]()
        for chunk in chunks {
            decoder.append(chunk)
            while let frame = try decoder.nextFrame() { frames.append(frame) }
        }
        try decoder.finish()
        return frames
    }

    @Test func sameFramesWhateverTheChunking() throws {
        let stream = try Self.stream()
        #expect(try Self.decode([stream]) == Self.payloads)
        #expect(try Self.decode(stream.map { [$0] }) == Self.payloads)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            var chunks = [[UInt8]](), index = 0
            while index < stream.count {
                let size = Int.random(in: 1...3000, using: &generator)
                chunks.append(Array(stream[index..<min(index + size, stream.count)]))
                index += size
            }
            #expect(try Self.decode(chunks) == Self.payloads)
        }
    }

    @Test func zeroLengthIsAnError() {
        #expect(throws: FrameError.zeroLength) { try Self.decode([[0, 1, 5, 0, 0]]) }
        #expect(throws: FrameError.zeroLength) { _ = try Framing.frame([]) }
    }

    @Test func streamEndingInsideAFrameIsAnError() throws {
        let frame = try Framing.frame([1, 2, 3])
        #expect(throws: FrameError.truncated(expected: 5, available: 4)) { try Self.decode([Array(frame.prefix(4))]) }
        #expect(throws: FrameError.truncated(expected: 2, available: 1)) { try Self.decode([[0]]) }
    }

    @Test func oversizedPayloadCannotBeFramed() {
        #expect(throws: FrameError.payloadTooLarge(65536)) { _ = try Framing.frame([UInt8](repeating: 0, count: 65536)) }
    }
}

@Suite("Control messages")
struct MessageTests {
    /// The JSON blocks of the seed document, in order (Listing 1 appears twice there).
    /// The JSON blocks of the seed document, in order (Listing 1 appears twice there); nil
    /// when ../shared is not beside this clone.
    static func seedListings() throws -> [String]? {
        let seeds = URL(fileURLWithPath: VectorPaths.seeds)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: seeds.path) else { return nil }
        let name = names.first { $0.hasPrefix("000_") }
        let text = try String(contentsOf: seeds.appendingPathComponent(try #require(name)), encoding: .utf8)
        var blocks = [String](), depth = 0, current = ""
        for character in text {
            if character == "{" { depth += 1 }
            if depth > 0 { current.append(character) }
            if character == "}" {
                depth -= 1
                if depth == 0 { blocks.append(current); current = "" }
            }
        }
        return blocks
    }

    @Test func seedListingsParse() throws {
        guard let listings = try Self.seedListings() else {
            if VectorPaths.sharedRequired { Issue.record("the seeds are missing at \(VectorPaths.seeds)") }
            print("vectors: NOT RUN — the seed listings (\(VectorPaths.seeds) is not here: it comes with ../shared)")
            return
        }
        let types = try listings.map { try ControlMessage.decode(Array($0.utf8)).messageType }
        #expect(types == ["AUTHREQ", "AUTHREQ", "AUTHREPLY", "AUTHREPLY", "LOOKUPREQ", "LOOKUPREPLY", "LOOKUPREPLY",
                          "CONNECTREQ", "CONNECTREPLY", "CONNECTREPLY"])
        let lookupReply = try ControlMessage.decode(Array(listings[5].utf8))
        #expect(lookupReply == .lookupReply(.init(found: .init(answer: UserID("bianca")!, address: "192.168.1.23",
                                                                 encryptionKey: "1234", port: nil))))
        #expect(try ControlMessage.decode(Array(listings[6].utf8)) == .lookupReply(.notFound))
        #expect(try ControlMessage.decode(Array(listings[2].utf8)) == .authReply(.init(userID: nil, status: .granted)))
        #expect(try ControlMessage.decode(Array(listings[9].utf8)) == .connectReply(.init(status: .refused)))
    }

    static let everyMessage: [ControlMessage] = {
        let ali = UserID("ali")!, bianca = UserID("bianca")!
        return [
            .hello(.init(noise: "Noise_IK_25519_ChaChaPoly_SHA256")),
            .authRequest(.init(userID: ali, passcode: String(repeating: "ab", count: 32), port: 7401)),
            .authReply(.init(userID: ali, status: .refused, reason: "wrong user ID or passcode")),
            .lookupRequest(.init(userID: ali, lookup: bianca)),
            .lookupReply(.init(found: .init(answer: bianca, address: "127.0.0.1", encryptionKey: "a2V5", port: 9000))),
            .lookupReply(.notFound),
            .signUpRequest(.init(userID: ali, passcode: String(repeating: "0", count: 64))),
            .signUpReply(.init(status: .exists, reason: "that user ID is taken")),
            .listRequest(userID: ali), .listReply(.init(users: [ali, bianca], more: true)), .listReply(.init(users: [])),
            .authRequest(.init(userID: ali, passcode: String(repeating: "ab", count: 32), port: 7401,
                               addresses: [Endpoint("192.168.1.10:7401")!, Endpoint("[2001:db8::10]:7401")!])),
            .authReply(.init(userID: ali, status: .granted, extensions: ["calls"], previousKey: "a2V5",
                             network: .init(observed: Endpoint("203.0.113.7:40000")!, behindRouter: true))),
            .lookupReply(.init(found: .init(answer: bianca, address: "203.0.113.8", encryptionKey: "a2V5", port: 7402,
                                            candidates: [Endpoint("203.0.113.8:7402")!, Endpoint("10.0.0.2:7402")!]))),
            .passwordRequest(.init(userID: ali, passcode: String(repeating: "1", count: 64), newPasscode: String(repeating: "2", count: 64))),
            .passwordReply(.init(status: .changed, reason: "")), .passwordReply(.init(status: .refused, reason: "the current passcode is wrong")),
            .callRequest(.init(userID: ali, callee: bianca)),
            .callReply(.init(status: .success, found: .init(callee: bianca, encryptionKey: "a2V5", candidates: [Endpoint("203.0.113.8:7402")!],
                                                          relay: "dG9rZW4=", network: .init(observed: Endpoint("203.0.113.8:7402")!, behindRouter: false)))),
            .callReply(.init(status: .notFound)), .callReply(.init(status: .refused, reason: "too many calls")),
            .callOffer(.init(caller: ali, encryptionKey: "a2V5", candidates: [], relay: "")),
            .relay(token: "dG9rZW4="),
            .presence(.init(userID: bianca, status: .offline)), .logoutRequest(userID: ali), .keepAlive,
            .error(reason: "bad \"quote\"\n"), .connectRequest(initiator: ali),
            .connectReply(.init(status: .refused, reason: "busy")), .connectReply(.init(status: .accepted)),
        ]
    }()

    @Test(arguments: everyMessage)
    func roundTrip(message: ControlMessage) throws {
        #expect(try ControlMessage.decode(message.encoded()) == message)
        // The direct writer makes the same compact JSON as the general one.
        #expect(try JSONValue.parse(message.encoded()).serialized == message.encoded())
    }

    @Test func fieldsAreWrittenExactly() {
        let reply = ControlMessage.callReply(.init(status: .success, reason: "a \"b\"", found: .init(
            callee: UserID("bianca")!, encryptionKey: "a2V5", candidates: [Endpoint("[2001:db8::10]:7402")!, Endpoint("10.0.0.2:65535")!],
            relay: "dG9rZW4=", network: .init(observed: Endpoint("203.0.113.8:7")!, behindRouter: true))))
        #expect(String(decoding: reply.encoded(), as: UTF8.self) == #"{"msgtype":"CALLREPLY","status":"SUCCESS","reason":"a \"b\"","#
                + #""callee":"bianca","encryptionkey":"a2V5","candidates":["[2001:db8::10]:7402","10.0.0.2:65535"],"#
                + #""relay":"dG9rZW4=","observed":"203.0.113.8:7","nat":true}"#)
        #expect(String(decoding: ControlMessage.hello(.init(version: -12, noise: "N")).encoded(), as: UTF8.self)
                == #"{"msgtype":"HELLO","version":-12,"noise":"N"}"#)
    }

    @Test func stringsAreEscapedExactlyAndReadBack() throws {
        let text = "plain \"q\" back\\slash\n\r\t\u{01}\u{1f} é"
        let written = String(decoding: JSONValue.string(text).serialized, as: UTF8.self)
        #expect(written == #""plain \"q\" back\\slash\n\r\t\u0001\u001f é""#)
        #expect(try JSONValue.parse(JSONValue.string(text).serialized) == .string(text))
        #expect(JSONValue.string("bianca").serialized == Array("\"bianca\"".utf8))
    }

    /// Found by FuzzJSON: a message of escapes `\b` near the size limit decoded, but its encoding
    /// (`\u0008`, three times longer) no longer fitted. Nothing is written longer than it is read.
    @Test func aDecodedMessageFitsAgainWhenEncoded() throws {
        let prefix = #"{"msgtype":"PASSWDREQ","userid":"ali","passcode":"#, suffix = #"","newpasscode":"x"}"#
        let escapes = String(repeating: #"\b\f"#, count: (ControlMessage.maximumSize - prefix.utf8.count - suffix.utf8.count - 1) / 4)
        let input = Array((prefix + "\"" + escapes + suffix).utf8)
        #expect(input.count <= ControlMessage.maximumSize)
        let message = try ControlMessage.decode(input)
        #expect(message.encoded().count <= input.count)
        #expect(try ControlMessage.decode(message.encoded()) == message)
        #expect(JSONValue.string("\u{08}\u{0C}").serialized == Array(#""\b\f""#.utf8))
    }

    @Test func notFoundHasEveryInformationFieldEmpty() {
        #expect(String(decoding: ControlMessage.lookupReply(.notFound).encoded(), as: UTF8.self)
                == #"{"msgtype":"LOOKUPREPLY","status":"NOTFOUND","answer":"","address":"","location":"","encryptionkey":""}"#)
    }

    @Test func unknownFieldsAreIgnored() throws {
        let json = #"{"msgtype":"LOOKUPREQ","userid":"ali","lookup":"bianca","extra":{"nested":[1,2,3]},"n":1.5e3}"#
        #expect(try ControlMessage.decode(Array(json.utf8)) == .lookupRequest(.init(userID: UserID("ali")!, lookup: UserID("bianca")!)))
    }

    @Test(arguments: [
        (#"{"msgtype":"AUTHREQ","passcode":"x"}"#, MessageError.missingField("userid")),
        (#"{"msgtype":"AUTHREQ","userid":7,"passcode":"x"}"#, .wrongType(field: "userid", expected: "string")),
        (#"{"msgtype":"AUTHREQ","userid":"Ali","passcode":"x"}"#, .invalidValue(field: "userid", reason: "a user ID is 1–32 of a-z 0-9 . _ - starting with a letter or digit")),
        (#"{"msgtype":"AUTHREQ","userid":"ali","passcode":"x","port":70000}"#, .invalidValue(field: "port", reason: "must be 0–65535")),
        (#"{"msgtype":"AUTHREQ","userid":"ali","passcode":"x","port":"80"}"#, .wrongType(field: "port", expected: "whole number")),
        (#"{"msgtype":"HELLO","version":1.5,"noise":"x"}"#, .wrongType(field: "version", expected: "whole number")),
        (#"{"userid":"ali"}"#, .missingField("msgtype")),
        (#"{"msgtype":"FLY"}"#, .unknownMessageType("FLY")),
        (#"{"msgtype":"PRESENCE","userid":"ali","status":"AWAY"}"#, .invalidValue(field: "status", reason: "unknown value \"AWAY\"")),
        (#"{"msgtype":"LISTREPLY","users":["ali",3]}"#, .invalidValue(field: "users", reason: "every element must be a user ID")),
        (#"["msgtype"]"#, .notAnObject),
    ])
    func badFieldsAreNamed(json: String, expected: MessageError) {
        #expect(throws: expected) { _ = try ControlMessage.decode(Array(json.utf8)) }
    }

    @Test func userIDRules() {
        for good in ["a", "0", "ali", "bianca.rossi", "a_b-c", String(repeating: "z", count: 32)] { #expect(UserID(good) != nil, "\(good)") }
        for bad in ["", "Ali", ".ali", "_a", "-a", "a b", "ali\n", "ålí", String(repeating: "z", count: 33), "a/b"] {
            #expect(UserID(bad) == nil, "\(bad)")
        }
    }

    @Test func garbageIsATypedError() {
        #expect(throws: MessageError.tooLarge(4097)) { _ = try ControlMessage.decode([UInt8](repeating: 0x20, count: 4097)) }
        #expect(throws: MessageError.invalidUTF8) { _ = try ControlMessage.decode([0x7B, 0xC3, 0x28, 0x7D]) }
        for garbage in ["", "{", "{\"msgtype\":}", "{\"a\":1,\"a\":2}", "{\"msgtype\":\"KEEPALIVE\"} x", "nul", "{\"a\":\"\\ud800\"}",
                        String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "{\"a\":01}", "{\"a\":\"\u{01}\"}"] {
            #expect(throws: (any Error).self, "\(garbage)") { _ = try ControlMessage.decode(Array(garbage.utf8)) }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {  // random bytes never crash the decoder
            let bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? ControlMessage.decode(bytes)
        }
    }
}

@Suite("Chat records, base64, passcode digest")
struct RecordTests {
    func decode(_ bytes: [UInt8]) throws -> (ChatRecordType, [UInt8]) {
        try bytes.withUnsafeBytes { raw in
            let (type, body) = try ChatRecord.decode(raw)
            return (type, Array(body))
        }
    }

    @Test func recordsRoundTripAndRefuseBadInput() throws {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try buffer.withUnsafeMutableBytes { out in
            try Array("héllo".utf8).withUnsafeBytes { try ChatRecord.encode(.text, body: $0, into: out) }
        }
        let (type, body) = try decode(Array(buffer.prefix(count)))
        #expect(type == .text && body == Array("héllo".utf8))
        #expect(try decode([2]).0 == .hangUp)
        #expect(try decode([3]).0 == .keepAlive)
        #expect(throws: ChatRecordError.empty) { _ = try decode([]) }
        #expect(throws: ChatRecordError.unknownType(9)) { _ = try decode([9, 1]) }
        #expect(throws: ChatRecordError.invalidUTF8) { _ = try decode([1, 0xFF]) }
        #expect(throws: ChatRecordError.lineBreakInText) { _ = try decode([1, 0x41, 0x0A]) }
        #expect(throws: ChatRecordError.unexpectedBody(.hangUp)) { _ = try decode([2, 0]) }
    }

    @Test func base64IsStandardAndStrict() {
        let key = Array(0..<32).map { UInt8($0) }
        let text = Base64.encode(key)
        #expect(text.count == 44 && text.hasSuffix("="))
        #expect(Base64.decode(text) == key)
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy" && Base64.encode(Array("fo".utf8)) == "Zm8=")
        for bad in ["Zm8", "Zm9=", "Z===", "Zm8=Zm8=", "Zm 8", "Zm8!"] { #expect(Base64.decode(bad) == nil, "\(bad)") }
    }

    @Test func utf8ValidatorMatchesTheStandardLibrary() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20000 {
            let bytes = (0..<Int.random(in: 0...8, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(isValidUTF8(bytes) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
        #expect(!isValidUTF8([0xED, 0xA0, 0x80]))  // a surrogate
        #expect(!isValidUTF8([0xC0, 0x80]))  // overlong
    }
}

@Suite("Addresses, visible text and small traps")
struct AddressAndTextTests {
    @Test("IP addresses: strict, one canonical form, IPv4-mapped is IPv4, IPv6 hosts by /64")
    func ipAddresses() {
        #expect(IPAddress("192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("::ffff:192.0.2.1") == IPAddress("192.0.2.1"), "a dual-stack socket's IPv4 client is that IPv4 address")
        #expect(IPAddress("2001:DB8:0:0:0:0:0:1")?.description == "2001:db8::1")
        #expect(IPAddress("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1", "the first longest zero run")
        #expect(IPAddress("::")?.description == "::" && IPAddress("::1")?.isLoopback == true)
        for bad in ["1.2.3", "1.2.3.256", "01.2.3.4", "1.2.3.4.5", "::1::", "2001:db8::g", "12345::", "", "a.b.c.d", "1:2:3:4:5:6:7:8:9"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        #expect(IPAddress("fe80::1")?.isLinkLocal == true && IPAddress("169.254.0.9")?.isLinkLocal == true)
        #expect(IPAddress("2001:db8:1:2::a")?.hostKey == IPAddress("2001:db8:1:2:ffff::b")?.hostKey)
        #expect(IPAddress("192.0.2.1")?.hostKey != IPAddress("192.0.2.2")?.hostKey)
    }

    @Test("endpoints: IPv6 in brackets, IPv4 without, ports 1–65535; candidates best first, no duplicates")
    func endpoints() {
        #expect(Endpoint("[2001:db8::1]:7400")?.description == "[2001:db8::1]:7400")
        #expect(Endpoint("192.0.2.1:7400")?.port == 7400)
        for bad in ["2001:db8::1:7400", "[192.0.2.1]:80", "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:+80", "host:80", "192.0.2.1"] {
            #expect(Endpoint(bad) == nil, "\(bad)")
        }
        let observed = Endpoint("203.0.113.7:40000")!
        let list = Endpoint.candidates(observed: observed, port: 7500,
                                       advertised: [Endpoint("192.168.1.5:7500")!, Endpoint("203.0.113.7:7500")!, Endpoint("0.0.0.0:7500")!])
        #expect(list == [Endpoint("203.0.113.7:7500")!, observed, Endpoint("192.168.1.5:7500")!])
        #expect(Endpoint.candidates(observed: observed, port: 0, advertised: []) == [], "not listening: no candidates")
        let tooMany = #"{"msgtype":"AUTHREQ","userid":"ali","passcode":"x","addresses":["1.1.1.1:1","1.1.1.1:2","1.1.1.1:3","1.1.1.1:4","1.1.1.1:5","1.1.1.1:6","1.1.1.1:7","1.1.1.1:8","1.1.1.1:9"]}"#
        #expect(throws: MessageError.invalidValue(field: "addresses", reason: "at most 8 addresses")) { try ControlMessage.decode(Array(tooMany.utf8)) }
    }

    @Test("what others send is shown visibly: controls, DEL, C1, bidi overrides, line separators; one line always")
    func visibleText() {
        #expect(VisibleText.make("plain text, é, 界, 😀", .terminal) == "plain text, é, 界, 😀")
        #expect(VisibleText.make("\u{1B}]52;c;eA==\u{07}\u{1B}[2K\r\nfake\u{7F}", .terminal) == "^[]52;c;eA==^G^[[2K^M^Jfake^?")
        #expect(VisibleText.make("\u{9B}31m\u{202E}evil\u{2066}\u{2028}", .terminal) == "<U+009B>31m<U+202E>evil<U+2066><U+2028>")
        #expect(VisibleText.make("a \"quoted\"\nline\u{1B}", .log) == #"a \"quoted\"\nline\u{1B}"#)
    }

    @Test("small traps: \\u+036 is not an escape, big durations saturate, a stored ln that asks for exabytes is refused")
    func traps() throws {
        #expect(throws: (any Error).self) { try JSONValue.parse(Array(#""\u+036""#.utf8)) }
        #expect(try JSONValue.parse(Array(#""\u0036""#.utf8)) == .string("6"))
        #expect(Instant(nanoseconds: 5).advanced(by: .seconds(Int64.max)) == Instant(nanoseconds: .max))
        let salt = Base64.encode([UInt8](repeating: 1, count: 16)), hash = Base64.encode([UInt8](repeating: 2, count: 32))
        #expect(PasscodeHash(encoded: "$scrypt$ln=62,r=8,p=1$\(salt)$\(hash)") == nil)
        #expect(PasscodeHash(encoded: "$scrypt$ln=14,r=4294967295,p=1$\(salt)$\(hash)") == nil)
        #expect(PasscodeHash(encoded: "$scrypt$ln=14,r=8,p=1$\(salt)$\(hash)") != nil)
    }
}
