import Common
import Observability

extension BrokerConfig {
    /// Every `broker.conf` key this broker reads, with its effective value, in `broker.conf`'s spelling: what
    /// `mqbroker -p` prints as `key=value` lines (RocketMQ prints its whole configuration the same way).
    public var properties: [(key: String, value: String)] {
        let log = store.commitLog
        var entries: [(key: String, value: String)] = [
            ("brokerClusterName", brokerClusterName), ("brokerName", brokerName), ("brokerId", "\(brokerID)"),
            ("brokerRole", brokerRole.rawValue), ("brokerPermission", "\(brokerPermission.rawValue)"), ("brokerIP1", brokerIP1),
            ("brokerIP2", brokerIP2 ?? brokerIP1), ("listenPort", "\(listenPort)"), ("namesrvAddr", namesrvAddr.joined(separator: ";")),
            ("autoCreateTopicEnable", "\(autoCreateTopicEnable)"), ("defaultTopicQueueNums", "\(defaultTopicQueueNums)"),
            ("maxReconsumeTimes", "\(maxReconsumeTimes)"), ("registerNameServerPeriod", "\(registerNameServerPeriodMillis)"),
            ("serverChannelMaxIdleTimeSeconds", "\(connectionLimits.idleTimeoutMillis / 1000)"),
            ("serverFrameReadTimeoutMillis", "\(connectionLimits.frameReadTimeoutMillis)"),
            ("serverPendingFrameBytesMax", "\(connectionLimits.pendingFrameBytesMax)"),
            ("storePathRootDir", store.storePathRootDir), ("storePathCommitLog", log.storePathCommitLog),
            ("flushDiskType", log.flushDiskType.rawValue), ("ioPath", log.ioPath.rawValue),
            ("mappedFileSizeCommitLog", "\(log.mappedFileSizeCommitLog)"), ("mappedFileSizeConsumeQueue", "\(store.mappedFileSizeConsumeQueue)"),
            ("maxMessageSize", "\(log.maxMessageSize)"), ("syncFlushTimeout", "\(log.syncFlushTimeoutMillis)"),
            ("flushIntervalCommitLog", "\(log.flushIntervalCommitLogMillis)"), ("warmMapedFileEnable", "\(log.warmMapedFileEnable)"),
            ("transientStorePoolEnable", "\(log.usesWriteBuffer)"), ("groupCommitLanes", "\(log.groupCommitLanes)"),
            ("groupCommitLingerMicros", "\(log.groupCommitLingerMicros)"),
            ("commitCommitLogLeastPages", "\(log.commitCommitLogLeastPages)"),
            ("commitIntervalCommitLog", "\(log.commitIntervalCommitLogMillis)"),
            ("deleteWhen", log.deleteWhen.map { $0 < 10 ? "0\($0)" : "\($0)" }.joined(separator: ";")),
            ("fileReservedTime", "\(log.fileReservedTimeHours)"), ("diskMaxUsedSpaceRatio", "\(log.diskMaxUsedSpaceRatio)"),
            ("messageIndexEnable", "\(store.messageIndexEnable)"), ("eventLoopSliceMicros", "\(eventLoopSliceMicros)"),
        ]
        entries += replicationProperties
        entries += [
            ("transactionTimeOut", "\(transaction.transactionTimeOutMillis)"),
            ("transactionCheckInterval", "\(transaction.transactionCheckIntervalMillis)"),
            ("transactionCheckMax", "\(transaction.transactionCheckMax)"),
            ("rejectTransactionMessage", "\(transaction.rejectTransactionMessage)"),
            ("aclEnable", "\(acl.aclEnable)"), ("plainAclFile", acl.plainAclFile ?? ""),
        ]
        entries += [
            ("metricsExporterType", metrics.enabled ? "PROM" : "DISABLE"), ("metricsPromExporterHost", metrics.host),
            ("metricsPromExporterPort", "\(metrics.port)"),
        ]
        return entries
    }

    /// The HA and DLedger keys, for `properties`.
    var replicationProperties: [(key: String, value: String)] {
        [
            ("haListenPort", "\(ha.haListenPort)"), ("haMasterAddress", haMasterAddress ?? ""),
            ("haTransferBatchSize", "\(ha.haTransferBatchSize)"), ("haSendHeartbeatInterval", "\(ha.haSendHeartbeatIntervalMillis)"),
            ("haHousekeepingInterval", "\(ha.haHousekeepingIntervalMillis)"), ("haMaxGapNotInSync", "\(ha.haMaxGapNotInSync)"),
            ("slaveTimeout", "\(ha.slaveTimeoutMillis)"), ("slaveReadEnable", "\(slaveReadEnable)"),
            ("accessMessageInMemoryMaxRatio", "\(accessMessageInMemoryMaxRatio)"),
            ("slaveSynchronizeInterval", "\(slaveSynchronizeIntervalMillis)"),
            ("enableDLegerCommitLog", "\(dledgerEnabled)"), ("dLegerGroup", dledger.group),
            ("dLegerPeers", dledger.peers.map { "\($0.name)-\($0.address)" }.joined(separator: ";")),
            ("dLegerSelfId", dledger.selfName), ("preferredLeaderId", dledger.preferredLeaderName ?? ""),
            ("dLegerTickMillis", "\(dledger.tickMillis)"), ("dLegerElectionTicks", "\(dledger.electionTicks)"),
            ("dLegerHeartbeatTicks", "\(dledger.heartbeatTicks)"), ("dLegerCommitTimeoutMillis", "\(dledger.commitTimeoutMillis)"),
        ]
    }

    /// The keys UPDATE_BROKER_CONFIG applies at once; every other known key is written to the config file and takes
    /// effect at the next start.
    public static let runtimeKeys: Set<String> = ["brokerPermission"]
}
