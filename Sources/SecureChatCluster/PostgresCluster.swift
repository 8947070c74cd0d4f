#if ScaleOut
import Logging
import NIOCore
import PostgresNIO
import SecureChatCore
import SecureChatCrypto
import SecureChatNetwork
import Synchronization

/// One node of a scale-out deployment (docs/DEPLOYING.md): its accounts, its share of the online
/// directory and its signalling to the other nodes, all through one PostgreSQL.
///
/// - Every node keeps the whole directory in memory (lookups never wait for the database): its
///   own sessions, and the others' from the `securechat_sessions` table at start and from
///   NOTIFY on channel `securechat` afterwards (`ClusterNotice`).
/// - A node holds a lease in `securechat_nodes`, renewed every third of `lease`. Every node
///   sweeps every second: a node whose lease ran out (killed, cut off) is removed with its
///   sessions, and a sign-out notice goes out for each, so its users are shown offline everywhere.
/// - A node cut off from the database refuses sign-ins (it cannot check passcodes) and serves
///   what it holds; when it is back, its lease row is made again and its sessions published anew
///   if the others had swept them.
public final class PostgresCluster: ServerNodes {
    public let name: NodeName
    public let relayAddress: String?
    public let storage: any AccountStorage
    private let database: Database
    private let lease: TimeAmount
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let state = Locked<State>(State())

    private struct State {
        var inbox: NodeInbox?
        var listener: PostgresConnection?
        var timers: [RepeatedTask] = []
        var connected = true
        var stopped = false
    }

    static let channel = "securechat"

    /// Connects, creates the tables on first use, and takes this node's lease: throws, in plain
    /// words, when the database cannot be used (the server then does not start).
    public static func start(settings: DatabaseSettings, name: NodeName, relayAddress: String?, lease: TimeAmount,
                             eventLoop: any EventLoop, logger: Logger) async throws -> PostgresCluster {
        let database = try Database(settings: settings, eventLoop: eventLoop, logger: logger)
        let cluster = PostgresCluster(name: name, relayAddress: relayAddress, database: database, lease: lease,
                                      eventLoop: eventLoop, logger: logger)
        do {
            _ = try await database.query(Schema.create).get()
            try await cluster.renewLease().get()
        } catch {
            await database.close()
            throw ClusterError("cannot use the database \(settings.description): \(Database.describe(error))")
        }
        logger.notice("joined the cluster", metadata: ["node": "\(name)", "database": "\(settings.description)"])
        return cluster
    }

    private init(name: NodeName, relayAddress: String?, database: Database, lease: TimeAmount, eventLoop: any EventLoop,
                 logger: Logger) {
        self.name = name
        self.relayAddress = relayAddress
        self.database = database
        self.lease = lease
        self.eventLoop = eventLoop
        self.logger = logger
        storage = PostgresAccounts(database: database)
    }

    /// Starts applying the other nodes' notices to `inbox` (after loading their sessions), and
    /// the lease and sweep timers.
    public func attach(_ inbox: NodeInbox) {
        state.withLock { $0.inbox = inbox }
        listen()
        let third = TimeAmount.nanoseconds(lease.nanoseconds / 3)
        let renewal = eventLoop.scheduleRepeatedTask(initialDelay: third, delay: third) { [self] _ in
            renewLease().whenFailure { [self] in lost($0) }
        }
        let sweep = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
            database.query(Schema.sweep).whenFailure { [self] in lost($0) }
        }
        state.withLock { $0.timers = [renewal, sweep] }
    }

    /// Leaves the cluster: this node's sessions and lease are removed, the others told.
    public func stop() async {
        let (timers, listener) = state.withLock { state in
            state.stopped = true
            return (state.timers, state.listener)
        }
        for timer in timers { timer.cancel() }
        _ = try? await database.query("""
            WITH ended AS (DELETE FROM securechat_sessions WHERE node = \(name.rawValue) RETURNING user_id, node, connection),
            gone AS (DELETE FROM securechat_nodes WHERE node = \(name.rawValue))
            SELECT \(unescaped: Schema.notifySignOut) FROM ended
            """).get()
        try? await listener?.close()
        await database.close()
    }

    // MARK: ServerNodes

    public func signedIn(_ record: SessionRecord) {
        let notice = ClusterNotice.signedIn(record).encoded()
        send("""
            WITH stored AS (
                INSERT INTO securechat_sessions (user_id, node, connection, stamp, record)
                VALUES (\(record.user.rawValue), \(name.rawValue), \(Int64(bitPattern: record.connection)),
                        \(Int64(bitPattern: record.stamp.time)), \(notice))
                ON CONFLICT (user_id) DO UPDATE SET node = excluded.node, connection = excluded.connection,
                    stamp = excluded.stamp, record = excluded.record
                WHERE (securechat_sessions.stamp, securechat_sessions.node COLLATE "C") < (excluded.stamp, excluded.node COLLATE "C"))
            SELECT pg_notify(\(Self.channel), \(notice))
            """)
    }

    public func signedOut(user: UserID, connection: UInt64) {
        let notice = ClusterNotice.signedOut(user: user, node: name, connection: connection).encoded()
        send("""
            WITH ended AS (DELETE FROM securechat_sessions
                           WHERE user_id = \(user.rawValue) AND node = \(name.rawValue) AND connection = \(Int64(bitPattern: connection)))
            SELECT pg_notify(\(Self.channel), \(notice))
            """)
    }

    public func offer(_ offer: ControlMessage.CallOffer, to callee: UserID, node: NodeName, connection: UInt64) {
        let notice = ClusterNotice.callOffered(callee: callee, node: node, connection: connection, offer: offer).encoded()
        send("SELECT pg_notify(\(Self.channel), \(notice))")
    }

    private func send(_ query: PostgresQuery) {
        database.query(query).whenFailure { [self] in lost($0) }
    }

    // MARK: Lease and connection state

    /// Renews the lease. When the row had to be made anew (swept while this node was cut off)
    /// or the database was lost meanwhile, the table is made to match this node's sessions again.
    private func renewLease() -> EventLoopFuture<Void> {
        let seconds = Int64(lease.nanoseconds / 1_000_000_000)
        // The row says the lease ends a third early: a renewal is due every third, and the sweep
        // then has a third of slack, so a dead node is gone within `lease`.
        return database.query("""
            INSERT INTO securechat_nodes (node, address, lease_until)
            VALUES (\(name.rawValue), \(relayAddress ?? ""), now() + make_interval(secs => \(seconds * 2 / 3)))
            ON CONFLICT (node) DO UPDATE SET lease_until = excluded.lease_until
            RETURNING (xmax = 0) AS made
            """).map { [self] result in
            let back = restored()
            let made = (try? result.rows.first?.decode(Bool.self)) == true
            if made || back { republish() }
        }
    }

    /// This node's sessions as they are now: rows of sessions that ended while the database was
    /// away go (with their sign-outs), the live ones are written again (the others ignore what
    /// they knew already).
    private func republish() {
        guard let records = state.withLock({ $0.inbox })?.localRecords() else { return }
        send("""
            WITH ended AS (DELETE FROM securechat_sessions
                           WHERE node = \(name.rawValue) AND NOT (user_id = ANY(\(records.map(\.user.rawValue))))
                           RETURNING user_id, node, connection)
            SELECT \(unescaped: Schema.notifySignOut) FROM ended
            """)
        for record in records { signedIn(record) }
    }

    private func lost(_ error: any Error) {
        let first = state.withLock { state in
            defer { state.connected = false }
            return state.connected && !state.stopped
        }
        guard first else { return }
        logger.error("lost the database: sign-ins and sign-ups are refused until it is back; signed-in users go on",
                     metadata: ["reason": "\(Database.describe(error))"])
    }

    /// True if the database had been lost.
    private func restored() -> Bool {
        let back = state.withLock { state in
            defer { state.connected = true }
            return !state.connected
        }
        if back { logger.notice("the database is back: sign-ins resume") }
        return back
    }

    // MARK: Notices

    /// A connection of its own that LISTENs; when it is lost, it is opened again and the
    /// directory reloaded (notices sent meanwhile were missed).
    private func listen() {
        database.connect().flatMap { [self] connection -> EventLoopFuture<Void> in
            connection.addListener(channel: Self.channel) { [self] _, notification in received(notification.payload) }
            state.withLock { $0.listener = connection }
            connection.closeFuture.whenComplete { [self] _ in
                guard !state.withLock({ $0.stopped }) else { return }
                lost(ClusterError("the listening connection closed"))
                eventLoop.scheduleTask(in: .seconds(1)) { [self] in listen() }
            }
            // Queued after the listener's own LISTEN: nothing sent after this read is missed.
            return connection.query(Schema.liveSessions, logger: logger).map { [self] result in
                let records = result.rows.compactMap { row -> SessionRecord? in
                    guard let text = try? row.decode(String.self),
                          case let .signedIn(record)? = try? ClusterNotice(parsing: text) else { return nil }
                    return record
                }
                state.withLock { $0.inbox }?.reload(records)
            }
        }.whenFailure { [self] error in
            guard !state.withLock({ $0.stopped }) else { return }
            lost(error)
            eventLoop.scheduleTask(in: .seconds(1)) { [self] in listen() }
        }
    }

    private func received(_ payload: String) {
        do {
            let notice = try ClusterNotice(parsing: payload)
            state.withLock { $0.inbox }?.apply(notice)
        } catch {
            logger.warning("cluster notice refused", metadata: ["reason": "\(error)"])
        }
    }
}

/// The tables and the statements that span them.
enum Schema {
    /// Made once, by whichever node starts first (the advisory lock keeps two first starts from
    /// racing on the catalogue).
    static let create: PostgresQuery = """
        DO $$ BEGIN
          PERFORM pg_advisory_xact_lock(7400);
          CREATE TABLE IF NOT EXISTS securechat_accounts (
            user_id text PRIMARY KEY, passcode text NOT NULL, identity_key text);
          CREATE TABLE IF NOT EXISTS securechat_nodes (
            node text PRIMARY KEY, address text NOT NULL, lease_until timestamptz NOT NULL);
          CREATE TABLE IF NOT EXISTS securechat_sessions (
            user_id text PRIMARY KEY, node text NOT NULL, connection bigint NOT NULL, stamp bigint NOT NULL,
            record text NOT NULL);
        END $$
        """

    /// A sign-out notice per row of `ended` (user_id, node, connection).
    static let notifySignOut = """
        pg_notify('securechat', json_build_object('kind', 'signout', 'user', user_id, 'node', node,
                                                  'connection', connection)::text)
        """

    /// Nodes whose lease ran out go, with their sessions (and any session of no node).
    static let sweep: PostgresQuery = """
        WITH gone AS (DELETE FROM securechat_nodes WHERE lease_until < now() RETURNING node),
        ended AS (DELETE FROM securechat_sessions
                  WHERE node IN (SELECT node FROM gone) OR node NOT IN (SELECT node FROM securechat_nodes)
                  RETURNING user_id, node, connection)
        SELECT \(unescaped: notifySignOut) FROM ended
        """

    static let liveSessions: PostgresQuery = """
        SELECT s.record FROM securechat_sessions s JOIN securechat_nodes n ON n.node = s.node WHERE n.lease_until >= now()
        """
}
#endif
