import CommitLog
import Common

extension BrokerConfig {
    /// The settings as GET_BROKER_CONFIG reports them: `broker.conf` keys and their effective values, sorted.
    public var properties: [(String, String)] {
        let log = store.commitLog
        var pairs: [(String, String)] = [
            ("accessMessageInMemoryMaxRatio", "\(accessMessageInMemoryMaxRatio)"), ("autoCreateTopicEnable", "\(autoCreateTopicEnable)"),
            ("brokerClusterName", brokerClusterName), ("brokerIP1", brokerIP1), ("brokerIP2", brokerIP2 ?? brokerIP1),
            ("brokerId", "\(brokerID)"), ("brokerName", brokerName), ("brokerPermission", "\(brokerPermission.rawValue)"),
            ("brokerRole", brokerRole.rawValue), ("defaultTopicQueueNums", "\(defaultTopicQueueNums)"),
            ("deleteWhen", log.deleteWhen.map { $0 < 10 ? "0\($0)" : "\($0)" }.joined(separator: ";")),
            ("diskMaxUsedSpaceRatio", "\(log.diskMaxUsedSpaceRatio)"), ("enableDLegerCommitLog", "\(dledgerEnabled)"),
            ("fileReservedTime", "\(log.fileReservedTimeHours)"), ("flushDiskType", log.flushDiskType.rawValue),
            ("flushIntervalCommitLog", "\(log.flushIntervalCommitLogMillis)"), ("haListenPort", "\(ha.haListenPort)"),
            ("ioPath", log.ioPath.rawValue), ("listenPort", "\(listenPort)"), ("mappedFileSizeCommitLog", "\(log.mappedFileSizeCommitLog)"),
            ("mappedFileSizeConsumeQueue", "\(store.mappedFileSizeConsumeQueue)"), ("maxMessageSize", "\(log.maxMessageSize)"),
            ("maxReconsumeTimes", "\(maxReconsumeTimes)"), ("messageIndexEnable", "\(store.messageIndexEnable)"),
            ("namesrvAddr", namesrvAddr.joined(separator: ";")), ("registerNameServerPeriod", "\(registerNameServerPeriodMillis)"),
            ("serverChannelMaxIdleTimeSeconds", "\(connectionLimits.idleTimeoutMillis / 1000)"),
            ("slaveReadEnable", "\(slaveReadEnable)"), ("storePathCommitLog", log.storePathCommitLog),
            ("storePathRootDir", store.storePathRootDir), ("syncFlushTimeout", "\(log.syncFlushTimeoutMillis)"),
            ("warmMapedFileEnable", "\(log.warmMapedFileEnable)"),
        ]
        if let haMasterAddress { pairs.append(("haMasterAddress", haMasterAddress)) }
        return pairs.sorted { $0.0 < $1.0 }
    }

    /// The keys UPDATE_BROKER_CONFIG applies at once; every other known key is written to the config file and takes
    /// effect at the next start.
    public static let runtimeKeys: Set<String> = ["brokerPermission"]
}
