import Remoting

/// GET_BROKER_HA_STATUS's body (RocketMQ 5's `HARuntimeInfo`, with the members this broker measures): a master
/// lists each slave connection, a slave its link to the master.
public struct HARuntimeInfo: Equatable, Sendable, RemotingBody {
    /// One slave as its master sees it.
    public struct Connection: Equatable, Sendable {
        public var addr: String
        /// The slave's last reported offset (-1 before its first report).
        public var slaveAckOffset: Int64
        /// Bytes the slave is behind the master's log end.
        public var diff: Int64
        /// How long ago the slave last had everything the master had (ours).
        public var lagMillis: Int64
        public var inSync: Bool

        public init(addr: String, slaveAckOffset: Int64, diff: Int64, lagMillis: Int64, inSync: Bool) {
            self.addr = addr
            self.slaveAckOffset = slaveAckOffset
            self.diff = diff
            self.lagMillis = lagMillis
            self.inSync = inSync
        }
    }

    /// A slave's link to its master.
    public struct Client: Equatable, Sendable {
        public var masterAddr: String
        public var connected: Bool
        public var maxOffset: Int64
        /// When the master last sent something (0: never).
        public var lastReadTimestamp: Int64

        public init(masterAddr: String, connected: Bool, maxOffset: Int64, lastReadTimestamp: Int64) {
            self.masterAddr = masterAddr
            self.connected = connected
            self.maxOffset = maxOffset
            self.lastReadTimestamp = lastReadTimestamp
        }
    }

    public var master: Bool
    public var masterCommitLogMaxOffset: Int64
    public var inSyncSlaveNums: Int
    public var haConnectionInfo: [Connection]
    public var haClientRuntimeInfo: Client?

    public init(master: Bool, masterCommitLogMaxOffset: Int64, inSyncSlaveNums: Int, haConnectionInfo: [Connection],
                haClientRuntimeInfo: Client?) {
        self.master = master
        self.masterCommitLogMaxOffset = masterCommitLogMaxOffset
        self.inSyncSlaveNums = inSyncSlaveNums
        self.haConnectionInfo = haConnectionInfo
        self.haClientRuntimeInfo = haClientRuntimeInfo
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "HARuntimeInfo")
        try body.requireObject()
        master = body.bool("master", default: false)
        masterCommitLogMaxOffset = body.int64("masterCommitLogMaxOffset", default: 0)
        inSyncSlaveNums = body.int("inSyncSlaveNums", default: 0)
        haConnectionInfo = []
        for item in try body.array("haConnectionInfo") {
            let connection = BodyReader(item, "HAConnectionRuntimeInfo")
            haConnectionInfo.append(Connection(
                addr: try connection.string("addr"), slaveAckOffset: connection.int64("slaveAckOffset", default: -1),
                diff: connection.int64("diff", default: 0), lagMillis: connection.int64("lagMillis", default: 0),
                inSync: connection.bool("inSync", default: false)))
        }
        haClientRuntimeInfo = try json["haClientRuntimeInfo"].map { (value) throws(BodyError) in
            let client = BodyReader(value, "HAClientRuntimeInfo")
            return Client(masterAddr: client.optionalString("masterAddr") ?? "", connected: client.bool("connected", default: false),
                          maxOffset: client.int64("maxOffset", default: 0), lastReadTimestamp: client.int64("lastReadTimestamp", default: 0))
        }
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("haConnectionInfo", .array(haConnectionInfo.map { connection in
                .object([("addr", .string(connection.addr)), ("diff", .integer(connection.diff)), ("inSync", .bool(connection.inSync)),
                         ("lagMillis", .integer(connection.lagMillis)), ("slaveAckOffset", .integer(connection.slaveAckOffset))])
            })),
        ]
        if let client = haClientRuntimeInfo {
            members.append(("haClientRuntimeInfo", .object([
                ("connected", .bool(client.connected)), ("lastReadTimestamp", .integer(client.lastReadTimestamp)),
                ("masterAddr", .string(client.masterAddr)), ("maxOffset", .integer(client.maxOffset))])))
        }
        members += [("inSyncSlaveNums", .integer(Int64(inSyncSlaveNums))), ("master", .bool(master)),
                    ("masterCommitLogMaxOffset", .integer(masterCommitLogMaxOffset))]
        return .object(members)
    }
}
