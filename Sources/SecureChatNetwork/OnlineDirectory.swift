import Logging
import SecureChatCore
import SecureChatCrypto

/// What a connection can be told by others: it was replaced by a new sign-in, someone's presence
/// changed, or someone calls its user. Implementations hop to their own event loop.
protocol SessionHandle: Sendable {
    func replacedByNewSignIn()
    func presenceChanged(_ presence: ControlMessage.Presence)
    func callOffered(_ offer: ControlMessage.CallOffer)
}

/// How the nodes of a scale-out deployment tell each other about their sessions. A standalone
/// server has none (`StandaloneNode`); `SecureChatCluster` carries them through PostgreSQL. The
/// calls return at once: what they send goes out in the background.
public protocol ServerNodes: Sendable {
    /// This node.
    var name: NodeName { get }
    /// Where peers reach this node for a relay leg of a call it pairs ("HOST:PORT"), named in
    /// CALLOFFERs that other nodes deliver; nil for a standalone server.
    var relayAddress: String? { get }
    func signedIn(_ record: SessionRecord)
    func signedOut(user: UserID, connection: UInt64)
    /// Delivers a CALLOFFER to the session `connection` of `callee` on `node`.
    func offer(_ offer: ControlMessage.CallOffer, to callee: UserID, node: NodeName, connection: UInt64)
}

/// A server on its own: nobody to tell.
public struct StandaloneNode: ServerNodes {
    public init() {}
    public var name: NodeName { .standalone }
    public var relayAddress: String? { nil }
    public func signedIn(_ record: SessionRecord) {}
    public func signedOut(user: UserID, connection: UInt64) {}
    public func offer(_ offer: ControlMessage.CallOffer, to callee: UserID, node: NodeName, connection: UInt64) {}
}

/// A session held by another node: only a call offer is sent to it; its own node tells it
/// everything else (a replacing sign-in, presence).
struct RemoteSession: SessionHandle {
    let nodes: any ServerNodes
    let user: UserID
    let node: NodeName
    let connection: UInt64

    func replacedByNewSignIn() {}
    func presenceChanged(_ presence: ControlMessage.Presence) {}
    func callOffered(_ offer: ControlMessage.CallOffer) { nodes.offer(offer, to: user, node: node, connection: connection) }
}

/// Who is signed in now, where, and with which key: shared by every event loop, under a lock.
/// In a scale-out deployment every node holds the whole directory, its own sessions and the
/// others' (kept current by their notices), so a lookup never waits for the database.
@usableFromInline
final class OnlineDirectory: Sendable {
    /// A class: a lookup reads one entry under the lock, and a struct of this many strings and
    /// arrays would be copied, field by field, to be read.
    @usableFromInline final class Entry: Sendable {
        /// The sign-in as every node knows it: which one (its stamp), where, with which key.
        let session: SessionRecord
        /// The identity key as replies carry it, encoded once at sign-in rather than per lookup.
        let encodedIdentityKey: String
        /// Where to reach the peer, best first (§9.2), computed once at sign-in.
        let candidates: [Endpoint]
        /// The LOOKUPREPLY for this user, encoded once at sign-in: its address is the observed one,
        /// as §4 records it.
        @usableFromInline let lookupReply: ControlMessage.EncodedLookupReply
        let handle: any SessionHandle

        init(_ session: SessionRecord, handle: any SessionHandle) {
            self.session = session
            encodedIdentityKey = Base64.encode(session.identityKey.bytes)
            candidates = Endpoint.candidates(observed: session.observed, port: session.port, advertised: session.advertised)
            lookupReply = .init(.init(found: .init(answer: session.user, address: session.observed.address.description,
                                                   encryptionKey: encodedIdentityKey, port: session.port, candidates: candidates)))
            self.handle = handle
        }

        /// A session of another node, as its notice describes it.
        convenience init(_ session: SessionRecord, nodes: any ServerNodes) {
            self.init(session, handle: RemoteSession(nodes: nodes, user: session.user, node: session.stamp.node,
                                                     connection: session.connection))
        }

        /// Which sign-in this is: its node and when; the later one of a user holds the user.
        var stamp: SessionStamp { session.stamp }
        /// The connection's number on its node.
        var connection: UInt64 { session.connection }
        /// A §9 peer: it is offered calls (CALLOFFER) and can take a relay leg.
        var takesCallOffers: Bool { session.takesCallOffers }

        /// `observed` and `nat` for replies about this peer; only when it said where it is.
        var network: ControlMessage.PeerNetwork? {
            guard !session.advertised.isEmpty else { return nil }
            return .init(observed: session.observed,
                         behindRouter: !session.advertised.contains { $0.address == session.observed.address })
        }
    }

    private let entries = Locked<[UserID: Entry]>([:])

    /// Records a sign-in unless a later one holds the user already. Returns the session that
    /// must go: the one it replaced, or — when a later sign-in on another node got there first —
    /// the new one itself.
    func signIn(_ user: UserID, _ entry: Entry) -> Entry? {
        entries.withLock { entries in
            if let held = entries[user], held.stamp > entry.stamp { return entry }
            return entries.updateValue(entry, forKey: user)
        }
    }

    /// Removes `user` only if the session (`node`, `connection`) still holds the entry (a replaced
    /// session must not remove its successor). True if it did.
    func signOut(_ user: UserID, node: NodeName, connection: UInt64) -> Bool {
        entries.withLock { entries in
            guard let held = entries[user], held.stamp.node == node, held.connection == connection else { return false }
            entries[user] = nil
            return true
        }
    }

    /// Makes the other nodes' sessions those of `records` (a fresh read of the database), keeping
    /// `local`'s own. Returns who went offline and who came online by it.
    func replaceRemote(with records: [SessionRecord], local: NodeName, nodes: any ServerNodes) -> (gone: [UserID], came: [UserID]) {
        entries.withLock { entries in
            var gone = [UserID]()
            var came = [UserID]()
            let loaded = Dictionary(records.map { ($0.user, $0) }, uniquingKeysWith: { $0.stamp > $1.stamp ? $0 : $1 })
            for (user, entry) in entries where entry.stamp.node != local && loaded[user] == nil {
                entries[user] = nil
                gone.append(user)
            }
            for (user, record) in loaded where record.stamp.node != local {
                if let held = entries[user], held.stamp >= record.stamp { continue }
                if entries[user] == nil { came.append(user) }
                entries[user] = Entry(record, nodes: nodes)
            }
            return (gone.sorted(), came.sorted())
        }
    }

    @usableFromInline func lookup(_ user: UserID) -> Entry? { entries.withLock { $0[user] } }

    /// What a lookup of `user` is answered: the reply made at sign-in, or NOTFOUND.
    @usableFromInline func lookupReply(for user: UserID) -> ControlMessage.EncodedLookupReply {
        lookup(user)?.lookupReply ?? .notFound
    }

    @usableFromInline var users: [UserID] { entries.withLock { $0.keys.sorted() } }

    var count: Int { entries.withLock { $0.count } }

    func records(on node: NodeName) -> [SessionRecord] {
        entries.withLock { $0.compactMap { $0.value.stamp.node == node ? $0.value.session : nil } }
    }

    /// The handles of everyone signed in on `node` except `user`, to tell them about `user`
    /// (the other nodes tell their own).
    func others(than user: UserID, on node: NodeName) -> [any SessionHandle] {
        entries.withLock { $0.compactMap { $0.key == user || $0.value.stamp.node != node ? nil : $0.value.handle } }
    }
}

/// Where a scale-out node applies what the other nodes tell it: their sign-ins and sign-outs
/// (into the directory, with PRESENCE to this node's sessions) and call offers to its sessions.
public struct NodeInbox: Sendable {
    let directory: OnlineDirectory
    let nodes: any ServerNodes
    let broadcast: @Sendable (ControlMessage.Presence) -> Void
    let logger: Logger

    public func apply(_ notice: ClusterNotice) {
        switch notice {
        case let .signedIn(record):
            guard record.stamp.node != nodes.name else { return }  // our own, echoed back
            let entry = OnlineDirectory.Entry(record, nodes: nodes)
            let replaced = directory.signIn(record.user, entry)
            guard replaced?.stamp != record.stamp else { return }  // older than the sign-in we know
            replaced?.handle.replacedByNewSignIn()
            if replaced == nil { broadcast(.init(userID: record.user, status: .online)) }
        case let .signedOut(user, node, connection):
            guard node != nodes.name, directory.signOut(user, node: node, connection: connection) else { return }
            broadcast(.init(userID: user, status: .offline))
        case let .callOffered(callee, node, connection, offer):
            guard node == nodes.name, let entry = directory.lookup(callee), entry.stamp.node == node,
                  entry.connection == connection else { return }  // the callee left meanwhile
            entry.handle.callOffered(offer)
        }
    }

    /// This node's sessions, to publish again after the others dropped them (this node was cut
    /// off from them for longer than its lease).
    public func localRecords() -> [SessionRecord] { directory.records(on: nodes.name) }

    /// The other nodes' sessions as the database holds them now (at start, and after the
    /// notices were interrupted).
    public func reload(_ records: [SessionRecord]) {
        let (gone, came) = directory.replaceRemote(with: records, local: nodes.name, nodes: nodes)
        for user in gone { broadcast(.init(userID: user, status: .offline)) }
        for user in came { broadcast(.init(userID: user, status: .online)) }
        logger.info("directory loaded", metadata: ["other nodes' sessions": "\(records.count)", "went offline": "\(gone.count)"])
    }
}
