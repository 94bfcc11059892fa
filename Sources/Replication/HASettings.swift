import CommitLog

/// Everything the classic master/slave stream needs, as one immutable value. Names keep their
/// `broker.conf` spelling (`haListenPort`, `haTransferBatchSize`, ...) with the unit added where the key
/// has none; the few knobs RocketMQ does not have say so.
public struct HASettings: Sendable {
    /// Port the master accepts slaves on (`haListenPort`; RocketMQ 4.x forces `listenPort + 1`).
    /// 0 lets the system pick one (tests); `HAService.port` tells which.
    public var haListenPort: Int = 10912
    /// Address the master binds (ours: RocketMQ binds every interface).
    public var haListenHost: String = "0.0.0.0"
    /// Most body bytes the master puts in one transfer frame (`haTransferBatchSize`).
    public var haTransferBatchSize: Int = 32_768
    /// Largest frame body a slave accepts (ours; RocketMQ's slave reads into a 4 MiB buffer, so a master's
    /// `haTransferBatchSize` must stay below it). A bigger size announced by a header closes the connection.
    public var haTransferBodySizeMax: Int = 4 << 20
    /// A slave reports its offset at least this often; an idle master sends a size-0 frame this often
    /// (`haSendHeartbeatInterval`).
    public var haSendHeartbeatIntervalMillis: Int = 5_000
    /// A connection silent for this long is closed, on either side (`haHousekeepingInterval`).
    public var haHousekeepingIntervalMillis: Int = 20_000
    /// A slave further behind than this is not in sync, and a SYNC_MASTER put whose end lies further
    /// beyond the best slave gets SLAVE_NOT_AVAILABLE (`haMaxGapNotInSync`, 4.x `haSlaveFallbehindMax`).
    public var haMaxGapNotInSync: UInt64 = 268_435_456
    /// How long a SYNC_MASTER put waits for a slave before FLUSH_SLAVE_TIMEOUT (`slaveTimeout`).
    public var slaveTimeoutMillis: Int = 3_000
    /// SYNC_MASTER puts waiting at once (ours); past it `awaitReplica` answers `.waitersFull`.
    public var replicaWaitersMax: Int = 65_536
    /// A slave retries a lost master after this, doubling up to `haReconnectIntervalMaxMillis` (ours;
    /// RocketMQ retries every 5 s).
    public var haReconnectIntervalMinMillis: Int = 100
    public var haReconnectIntervalMaxMillis: Int = 5_000
    /// How long a slave waits for a TCP connection to its master (ours).
    public var haConnectTimeoutMillis: Int = 3_000

    public init() {}

    /// Checks the combination once, before anything starts.
    /// - Throws: `StoreError` with `.badConfig` naming the key and its allowed values.
    public func validated() throws(StoreError) -> HASettings {
        func bad(_ text: String) -> StoreError { StoreError(.badConfig, text) }
        guard (0...65_535).contains(haListenPort) else { throw bad("haListenPort must be 0-65535") }
        guard haTransferBodySizeMax >= 4096 else { throw bad("haTransferBodySizeMax must be at least 4096") }
        guard (1...haTransferBodySizeMax).contains(haTransferBatchSize) else {
            throw bad("haTransferBatchSize must be 1-\(haTransferBodySizeMax) (haTransferBodySizeMax)")
        }
        guard haSendHeartbeatIntervalMillis > 0 else { throw bad("haSendHeartbeatInterval must be positive") }
        guard haHousekeepingIntervalMillis > haSendHeartbeatIntervalMillis else {
            throw bad("haHousekeepingInterval must exceed haSendHeartbeatInterval (\(haSendHeartbeatIntervalMillis) ms)")
        }
        guard haMaxGapNotInSync > 0 else { throw bad("haMaxGapNotInSync must be positive") }
        guard slaveTimeoutMillis > 0 else { throw bad("slaveTimeout must be positive") }
        guard replicaWaitersMax > 0 else { throw bad("replicaWaitersMax must be positive") }
        guard haReconnectIntervalMinMillis > 0, haReconnectIntervalMaxMillis >= haReconnectIntervalMinMillis else {
            throw bad("haReconnectIntervalMinMillis must be positive and at most haReconnectIntervalMaxMillis")
        }
        guard haConnectTimeoutMillis > 0 else { throw bad("haConnectTimeoutMillis must be positive") }
        return self
    }

    var heartbeatNanos: UInt64 { UInt64(haSendHeartbeatIntervalMillis) * 1_000_000 }
    var housekeepingNanos: UInt64 { UInt64(haHousekeepingIntervalMillis) * 1_000_000 }
    var slaveTimeoutNanos: UInt64 { UInt64(slaveTimeoutMillis) * 1_000_000 }
}
