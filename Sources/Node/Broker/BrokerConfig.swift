import CommitLog
import Common
import IndexFile
import Observability
import Remoting
import Replication

/// `broker.conf`: RocketMQ's keys (and ours for the io path), validated with file:line:key errors.
public struct BrokerConfig: Sendable {
    public var brokerClusterName = "DefaultCluster"
    public var brokerName = "broker-a"
    public var brokerID: Int64 = 0
    public var brokerRole = BrokerRole.asyncMaster
    /// The broker's own permission (`brokerPermission`): without WRITE it refuses sends, without READ pulls.
    public var brokerPermission = Permission.readWrite
    public var brokerIP1 = "127.0.0.1"
    public var listenPort = 10911
    public var namesrvAddr: [String] = []
    public var autoCreateTopicEnable = true
    public var defaultTopicQueueNums = 8
    public var maxReconsumeTimes = 16
    public var registerNameServerPeriodMillis: Int64 = 30_000
    /// The client port's limits: idle timeout (`serverChannelMaxIdleTimeSeconds`), frame size and deadlines.
    public var connectionLimits = ConnectionLimits()
    /// Master/slave replication: the HA port and stream settings (`haListenPort`, `haTransferBatchSize`, ...).
    public var ha = HASettings()
    /// Whether `haListenPort` was set (else it follows `listenPort + 1`, as RocketMQ's).
    var haListenPortSet = false
    /// A slave's fixed master HA address (`haMasterAddress`); without it the NameServer tells it.
    public var haMasterAddress: String?
    /// The address slaves reach the HA port at (`brokerIP2`, default `brokerIP1`).
    public var brokerIP2: String?
    /// Whether consumers may be sent to a slave (`slaveReadEnable`).
    public var slaveReadEnable = false
    /// A pull reading further than this share of memory behind the log's end is pointed at a slave
    /// (`accessMessageInMemoryMaxRatio`, percent, with `slaveReadEnable`).
    public var accessMessageInMemoryMaxRatio = 40
    /// How often a slave copies its master's tables (`ours`; RocketMQ 4.x fixes it at 10 s).
    public var slaveSynchronizeIntervalMillis: Int64 = 10_000
    /// DLedger mode (`enableDLegerCommitLog`): the group's Raft leader serves as master, the others as slaves.
    public var dledgerEnabled = false
    /// The group, its members and our timers (`dLegerGroup`, `dLegerPeers`, `dLegerSelfId`, `preferredLeaderId`, ...).
    public var dledger = DLedgerSettings()
    public var store: MessageStoreConfig
    /// The Prometheus endpoint (`metricsExporterType`, `metricsPromExporterHost`, `metricsPromExporterPort`).
    public var metrics = MetricsSettings()
    /// Transactional messages: the check service's timing (`transactionTimeOut`, `transactionCheckInterval`, ...).
    public var transaction = TransactionSettings()
    /// The file this configuration came from (UPDATE_BROKER_CONFIG writes accepted keys back into it).
    public var configFilePath: String?
    /// Plain ACL (`aclEnable`, `plainAclFile`).
    public var acl = AclSettings()
    /// Ours: the scheduler slice of the broker's event loops in microseconds (`eventLoopSliceMicros`; 0: the kernel's
    /// default). Linux 6.12 or later; `ThreadSlice` says why a short one shortens the event loops' wake-up delay.
    /// 250 us: at 80k msgs/s open loop on two cores it halved that delay (p99.9 1.16 -> 0.57 ms under `perf sched`)
    /// and beat 100 us; send RT p99.9 moved within the noise (README, sixth round).
    public var eventLoopSliceMicros = BrokerConfig.eventLoopSliceMicrosDefault
    public static let eventLoopSliceMicrosDefault = 250

    public init(storePathRootDir: String) {
        store = MessageStoreConfig(storePathRootDir: storePathRootDir)
    }

    /// Reads a `broker.conf`. Unknown keys, and RocketMQ keys this broker does not support, are warned about with
    /// file and line; a bad value throws naming file, line, key and the allowed values.
    public static func load(_ path: String, warn: (String) -> Void) throws(PropertiesFile.ConfigError) -> BrokerConfig {
        let file = try PropertiesFile.load(path)
        var root = "/tmp/rmqstore"
        for entry in file.entries where entry.key == "storePathRootDir" { root = entry.value }
        var config = BrokerConfig(storePathRootDir: root)
        config.configFilePath = path
        try file.apply(warn: warn, unsupported: unsupportedKeys(storePathRootDir: root)) { key, value throws(PropertiesFile.ConfigError) in
            try config.set(key, value)
        }
        do { try config.settle() } catch { throw PropertiesFile.ConfigError(description: "\(path): \(error)") }
        config.acl.settle(confPath: path)
        return config
    }

    /// Applies one key; false when the key is unknown.
    public mutating func set(_ key: String, _ value: String) throws(PropertiesFile.ConfigError) -> Bool {
        func choice(_ allowed: [String]) throws(PropertiesFile.ConfigError) -> String {
            guard allowed.contains(value) else {
                throw PropertiesFile.ConfigError(description: "must be \(allowed.joined(separator: " or ")), not \"\(value)\"")
            }
            return value
        }
        func boolean() throws(PropertiesFile.ConfigError) -> Bool { try choice(["true", "false"]) == "true" }
        func integer(_ range: ClosedRange<Int64>) throws(PropertiesFile.ConfigError) -> Int64 { try PropertiesFile.integer(value, in: range) }
        switch key {
        case "brokerClusterName": brokerClusterName = value
        case "brokerName": brokerName = value
        case "brokerId": brokerID = try integer(0...1024)
        case "brokerRole": brokerRole = BrokerRole(rawValue: try choice(BrokerRole.allCases.map(\.rawValue)))!
        case "brokerPermission": brokerPermission = Permission(rawValue: Int(try integer(0...15)))
        case "brokerIP1": brokerIP1 = value
        case "listenPort": listenPort = Int(try integer(0...65_535))
        case "namesrvAddr": namesrvAddr = value.split(separator: ";").map { String($0).trimmingSuffix(while: { $0 == " " }) }.filter { !$0.isEmpty }
        case "autoCreateTopicEnable": autoCreateTopicEnable = try boolean()
        case "defaultTopicQueueNums": defaultTopicQueueNums = Int(try integer(1...1024))
        case "maxReconsumeTimes": maxReconsumeTimes = Int(try integer(0...1000))
        // RocketMQ clamps it to 10-60 s; shorter periods let a NameServer drop a cut-off broker sooner.
        case "registerNameServerPeriod": registerNameServerPeriodMillis = try integer(100...3_600_000)
        case "serverChannelMaxIdleTimeSeconds": connectionLimits.idleTimeoutMillis = try integer(1...86_400) * 1000
        case "serverFrameReadTimeoutMillis": connectionLimits.frameReadTimeoutMillis = try integer(1...3_600_000)
        case "serverPendingFrameBytesMax": connectionLimits.pendingFrameBytesMax = Int(try integer(1 << 20...(1 << 40)))
        case "storePathRootDir":
            store.commitLog.storePathRootDir = value
            if store.commitLog.storePathCommitLog.hasSuffix("/commitlog") { store.commitLog.storePathCommitLog = value + "/commitlog" }
        case "storePathCommitLog": store.commitLog.storePathCommitLog = value
        case "flushDiskType": store.commitLog.flushDiskType = FlushDiskType(rawValue: try choice(["ASYNC_FLUSH", "SYNC_FLUSH"]))!
        case "ioPath": store.commitLog.ioPath = IOPath(rawValue: try choice(["mmap", "io_uring"]))!
        case "mappedFileSizeCommitLog": store.commitLog.mappedFileSizeCommitLog = Int(try integer(65_536...(1 << 34)))
        case "mappedFileSizeConsumeQueue": store.mappedFileSizeConsumeQueue = Int(try integer(20...(1 << 30)))
        case "maxMessageSize": store.commitLog.maxMessageSize = Int(try integer(1...(64 << 20)))
        case "syncFlushTimeout": store.commitLog.syncFlushTimeoutMillis = Int(try integer(1...600_000))
        case "flushIntervalCommitLog": store.commitLog.flushIntervalCommitLogMillis = Int(try integer(1...600_000))
        // ioPath=io_uring under ASYNC_FLUSH: the ring writes once this many pages wait, or after this interval.
        case "commitCommitLogLeastPages": store.commitLog.commitCommitLogLeastPages = Int(try integer(0...1024))
        case "commitIntervalCommitLog": store.commitLog.commitIntervalCommitLogMillis = Int(try integer(1...600_000))
        case "warmMapedFileEnable": store.commitLog.warmMapedFileEnable = try boolean()
        case "transientStorePoolEnable": store.commitLog.writeBuffer = try boolean()
        // Ours: the mmap group commit's threads under SYNC_FLUSH (FlushEngine+GroupCommit.swift).
        case "groupCommitLanes": store.commitLog.groupCommitLanes = Int(try integer(1...2))
        // Ours: how long a SYNC_FLUSH group-commit round waits for the puts the last one answered (FlushEngine.linger).
        case "groupCommitLingerMicros":
            store.commitLog.groupCommitLingerMicros = Int(try integer(0...Int64(CommitLogSettings.groupCommitLingerMicrosMax)))
        case "deleteWhen":
            let hours = value.split(separator: ";").compactMap { Int($0) }
            guard !hours.isEmpty, hours.allSatisfy({ (0...23).contains($0) }) else {
                throw PropertiesFile.ConfigError(description: "must be hours 00-23 separated by ';', not \"\(value)\"")
            }
            store.commitLog.deleteWhen = hours
        case "fileReservedTime": store.commitLog.fileReservedTimeHours = Int(try integer(1...100_000))
        case "diskMaxUsedSpaceRatio": store.commitLog.diskMaxUsedSpaceRatio = Int(try integer(10...95))
        case "messageIndexEnable": store.messageIndexEnable = try boolean()
        case "eventLoopSliceMicros": eventLoopSliceMicros = try Self.sliceMicros(value)
        default:
            if try acl.set(key, value) { return true }
            return try setTransactionKey(key, value)
        }
        return true
    }

    /// `eventLoopSliceMicros`: 0, or what the kernel accepts without clamping.
    static func sliceMicros(_ value: String) throws(PropertiesFile.ConfigError) -> Int {
        guard let micros = Int64(value), micros == 0 || ThreadSlice.microsRange.contains(micros) else {
            let range = ThreadSlice.microsRange
            throw PropertiesFile.ConfigError(
                description: "must be 0 (the kernel's default) or microseconds in \(range.lowerBound)...\(range.upperBound), not \"\(value)\"")
        }
        return Int(micros)
    }
}
