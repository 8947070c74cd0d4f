import Foundation
import Logging
import SecureChatCore
import SecureChatCrypto
@testable import SecureChatNetwork
import Synchronization
import Testing

/// The scale-out directory without a database: the notices of `ClusterNotice` as the wire of
/// PostgreSQL's NOTIFY carries them, and what a node makes of them (`OnlineDirectory`,
/// `NodeInbox`). The real cluster is tested end to end in Tests/interop/test_cluster.py.
@Suite("Cluster directory")
struct ClusterDirectoryTests {
    static let here = NodeName("node1.aa")!
    static let there = NodeName("node2.bb")!

    /// What the inbox and the directory told sessions and the other nodes.
    final class Told: Sendable {
        let events = Mutex<[String]>([])
        func add(_ event: String) { events.withLock { $0.append(event) } }
        var all: [String] { events.withLock { $0 } }
    }

    struct Handle: SessionHandle {
        let name: String
        let told: Told
        func replacedByNewSignIn() { told.add("\(name) replaced") }
        func presenceChanged(_ presence: ControlMessage.Presence) { told.add("\(name) told \(presence.userID) \(presence.status)") }
        func callOffered(_ offer: ControlMessage.CallOffer) { told.add("\(name) offered \(offer.caller)") }
    }

    struct Nodes: ServerNodes {
        let told: Told
        var name: NodeName { ClusterDirectoryTests.here }
        var relayAddress: String? { "192.0.2.1:7400" }
        func signedIn(_ record: SessionRecord) { told.add("published \(record.user)") }
        func signedOut(user: UserID, connection: UInt64) { told.add("published sign-out \(user)") }
        func offer(_ offer: ControlMessage.CallOffer, to callee: UserID, node: NodeName, connection: UInt64) {
            told.add("offer to \(callee) on \(node) #\(connection)")
        }
    }

    static func record(_ name: String, node: NodeName = there, time: UInt64, connection: UInt64 = 7) throws -> SessionRecord {
        SessionRecord(user: user(name), stamp: SessionStamp(time: time, node: node), connection: connection,
                      observed: Endpoint("198.51.100.7:4000")!, port: 4000, advertised: [Endpoint("10.0.0.7:4000")!],
                      identityKey: try TestBackend.generateX25519KeyPair().publicKey, takesCallOffers: true)
    }

    static func local(_ name: String, time: UInt64, connection: UInt64, told: Told) throws -> OnlineDirectory.Entry {
        OnlineDirectory.Entry(try record(name, node: here, time: time, connection: connection),
                              handle: Handle(name: "\(name)#\(connection)", told: told))
    }

    static func inbox(_ directory: OnlineDirectory, _ told: Told) -> NodeInbox {
        NodeInbox(directory: directory, nodes: Nodes(told: told), broadcast: { told.add("broadcast \($0.userID) \($0.status)") },
                  logger: Logger(label: "test"))
    }

    @Test("every notice kind survives the trip through text, CALLOFFER's relayserver included")
    func noticesRoundTrip() throws {
        let offer = ControlMessage.CallOffer(caller: user("ali"), encryptionKey: Base64.encode([UInt8](repeating: 1, count: 32)),
                                             candidates: [Endpoint("[2001:db8::1]:5000")!], relay: "dG9rZW4=",
                                             network: .init(observed: Endpoint("198.51.100.1:5000")!, behindRouter: true),
                                             relayServer: "node1.example.org:7400")
        let notices: [ClusterNotice] = [
            .signedIn(try Self.record("bianca", time: 1_764_000_000_123_456_789)),
            .signedOut(user: user("bianca"), node: Self.there, connection: UInt64(Int64.max)),
            .callOffered(callee: user("bianca"), node: Self.there, connection: 3, offer: offer),
        ]
        for notice in notices {
            #expect(try ClusterNotice(parsing: notice.encoded()) == notice)
        }
        #expect(try ControlMessage.decode(ControlMessage.callOffer(offer).encoded()) == .callOffer(offer))
        // PostgreSQL's json_build_object (the sweep's sign-outs) writes spaces after separators.
        let swept = #"{"kind" : "signout", "user" : "ali", "node" : "node2.bb", "connection" : 12}"#
        #expect(try ClusterNotice(parsing: swept) == .signedOut(user: user("ali"), node: Self.there, connection: 12))
    }

    @Test("a bad notice is refused with what is wrong, never trusted")
    func badNotices() throws {
        let good = ClusterNotice.signedIn(try Self.record("bianca", time: 5)).encoded()
        let cases: [(String, String)] = [
            ("", "invalid JSON"),
            (String(repeating: " ", count: ClusterNotice.maximumSize + 1), "bytes"),
            (#"{"kind":"dance","node":"n","connection":1}"#, "unknown kind"),
            (#"{"kind":"signout","user":"ALI!","node":"n","connection":1}"#, "user is not a user ID"),
            (#"{"kind":"signout","user":"ali","node":"no de","connection":1}"#, "node is not a node name"),
            (#"{"kind":"signout","user":"ali","node":"n","connection":-1}"#, "connection is not a count"),
            (#"{"kind":"offer","user":"ali","node":"n","connection":1,"message":"{\"msgtype\":\"HELLO\"}"}"#, "not a CALLOFFER"),
            (#"{"kind":"offer","user":"ali","node":"n","connection":1,"message":{"msgtype":"CALLOFFER"}}"#, "message is not a string"),
            (good.replacingOccurrences(of: #""port":4000"#, with: #""port":70000"#), "port, key or offers"),
            (good.replacingOccurrences(of: #""observed":"198.51.100.7:4000""#, with: #""observed":"somewhere""#), "IP:port"),
        ]
        for (text, problem) in cases {
            #expect { try ClusterNotice(parsing: text) } throws: { "\($0)".contains(problem) }
        }
    }

    @Test("the later sign-in of a user holds it on every node, whatever order the notices come in")
    func laterSignInWins() throws {
        let told = Told()
        let older = try Self.record("ali", time: 100)
        let newer = try Self.record("ali", node: NodeName("node3.cc")!, time: 200, connection: 9)
        for order in [[older, newer], [newer, older]] {
            let directory = OnlineDirectory()
            let inbox = Self.inbox(directory, told)
            for record in order { inbox.apply(.signedIn(record)) }
            #expect(directory.lookup(user("ali"))?.stamp == newer.stamp)
        }
        // A local sign-in older than one the others already hold is the one that must go.
        let directory = OnlineDirectory()
        Self.inbox(directory, told).apply(.signedIn(newer))
        let late = try Self.local("ali", time: 150, connection: 1, told: told)
        #expect(directory.signIn(user("ali"), late)?.stamp == late.stamp)
        #expect(directory.lookup(user("ali"))?.stamp == newer.stamp)
    }

    @Test("a sign-in on another node closes the session here and tells nobody twice")
    func remoteSignInReplacesLocal() throws {
        let told = Told()
        let directory = OnlineDirectory()
        let inbox = Self.inbox(directory, told)
        _ = directory.signIn(user("ali"), try Self.local("ali", time: 100, connection: 1, told: told))
        inbox.apply(.signedIn(try Self.record("bianca", time: 110)))
        inbox.apply(.signedIn(try Self.record("ali", time: 120, connection: 4)))
        #expect(told.all == ["broadcast bianca online", "ali#1 replaced"])
        // This node's own notice, echoed back by the database, changes nothing.
        inbox.apply(.signedIn(try Self.record("carol", node: Self.here, time: 130)))
        #expect(directory.lookup(user("carol")) == nil)
        // A sign-out names the session: a stale one (an earlier connection) removes nothing.
        inbox.apply(.signedOut(user: user("ali"), node: Self.there, connection: 3))
        #expect(directory.lookup(user("ali")) != nil)
        inbox.apply(.signedOut(user: user("ali"), node: Self.there, connection: 4))
        #expect(directory.lookup(user("ali")) == nil)
        #expect(told.all.last == "broadcast ali offline")
    }

    @Test("a call offer reaches only the session it names; a remote session is offered through its node")
    func offersGoToTheNamedSession() throws {
        let told = Told()
        let directory = OnlineDirectory()
        let inbox = Self.inbox(directory, told)
        _ = directory.signIn(user("bianca"), try Self.local("bianca", time: 100, connection: 2, told: told))
        let offer = ControlMessage.CallOffer(caller: user("ali"), encryptionKey: "", candidates: [], relay: "")
        inbox.apply(.callOffered(callee: user("bianca"), node: Self.here, connection: 1, offer: offer))  // a session that left
        inbox.apply(.callOffered(callee: user("bianca"), node: Self.there, connection: 2, offer: offer))  // another node's
        #expect(told.all.isEmpty)
        inbox.apply(.callOffered(callee: user("bianca"), node: Self.here, connection: 2, offer: offer))
        #expect(told.all == ["bianca#2 offered ali"])
        inbox.apply(.signedIn(try Self.record("dora", time: 120, connection: 5)))
        directory.lookup(user("dora"))?.handle.callOffered(offer)
        #expect(told.all.last == "offer to dora on node2.bb #5")
    }

    @Test("a reload keeps this node's sessions and says who went and came")
    func reloadReplacesOnlyOthers() throws {
        let told = Told()
        let directory = OnlineDirectory()
        let inbox = Self.inbox(directory, told)
        _ = directory.signIn(user("ali"), try Self.local("ali", time: 100, connection: 1, told: told))
        inbox.apply(.signedIn(try Self.record("bianca", time: 110)))
        inbox.reload([try Self.record("carol", time: 120)])
        #expect(directory.users == [user("ali"), user("carol")])
        #expect(told.all.suffix(2) == ["broadcast bianca offline", "broadcast carol online"])
        #expect(inbox.localRecords().map(\.user) == [user("ali")])
    }
}
