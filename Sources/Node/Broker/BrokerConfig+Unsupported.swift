import Common

extension BrokerConfig {
    /// RocketMQ 4.9's broker keys (BrokerConfig, MessageStoreConfig, NettyServerConfig, NettyClientConfig fields, and
    /// the store paths `storePathIndex`, `storeCheckpoint`, `abortFile`) that `set` does not take: a `broker.conf`
    /// line with one is warned about as supported by RocketMQ but not here. A key `set` takes is never warned about,
    /// so a key supported later leaves this list by being handled.
    static func unsupportedKeys(storePathRootDir root: String) -> UnsupportedKeys {
        UnsupportedKeys(names: unsupportedKeyNames, harmless: [
            // What this broker does anyway: always long-polling, no TLS, fixed store paths.
            "longPollingEnable": "true", "useTLS": "false",
            "storePathIndex": root + "/index", "storeCheckpoint": root + "/checkpoint", "abortFile": root + "/abort",
        ], role: "broker")
    }

    static let unsupportedKeyNames: Set<String> = [
        "abortFile", "adminBrokerThreadPoolNums", "autoCreateSubscriptionGroup",
        "autoDeleteUnusedStats", "bitMapLengthConsumeQueueExt", "brokerFastFailureEnable", "brokerTopicEnable",
        "channelNotActiveInterval", "checkCRCOnRecover", "cleanFileForciblyEnable", "cleanResourceInterval",
        "clientAsyncSemaphoreValue", "clientCallbackExecutorThreads", "clientChannelMaxIdleTimeSeconds",
        "clientCloseSocketIfTimeout", "clientManageThreadPoolNums", "clientManagerThreadPoolQueueCapacity",
        "clientOnewaySemaphoreValue", "clientPooledByteBufAllocatorEnable", "clientSocketRcvBufSize",
        "clientSocketSndBufSize", "clientWorkerThreads", "clusterTopicEnable", "commercialBaseCount",
        "commercialBigCount", "commercialEnable", "commercialTimerCount", "commercialTransCount",
        "commitCommitLogThoroughInterval",
        "compressedRegister", "connectTimeoutMillis", "consumerFallbehindThreshold", "consumerManageThreadPoolNums",
        "consumerManagerThreadPoolQueueCapacity", "debugLockEnable", "defaultQueryMaxNum",
        "deleteCommitLogFilesInterval", "deleteConsumeQueueFilesInterval", "destroyMapedFileIntervalForcibly",
        "disableConsumeIfConsumerReadSlowly", "diskFallRecorded", "duplicationEnable", "enableCalcFilterBitMap",
        "enableConsumeQueueExt", "enableDetailStat", "enableLmq", "enableMultiDispatch", "enablePropertyFilter",
        "enableScheduleAsyncDeliver", "enableScheduleMessageStats", "endTransactionPoolQueueCapacity",
        "endTransactionThreadPoolNums", "expectConsumerNumUseFilter", "fastFailIfNoBufferInStorePool",
        "fetchNamesrvAddrByAddressServer", "filterDataCleanTimeSpan", "filterServerNums", "filterSupportRetry",
        "flushCommitLogLeastPages", "flushCommitLogThoroughInterval", "flushCommitLogTimed",
        "flushConsumeQueueLeastPages", "flushConsumeQueueThoroughInterval", "flushConsumerOffsetHistoryInterval",
        "flushConsumerOffsetInterval", "flushDelayOffsetInterval", "flushIntervalConsumeQueue",
        "flushLeastPagesWhenWarmMapedFile", "forceRegister", "heartbeatThreadPoolNums",
        "heartbeatThreadPoolQueueCapacity", "highSpeedMode", "isEnableBatchPush", "isolateLogEnable",
        "longPollingEnable", "mappedFileSizeConsumeQueueExt", "maxDelayTime", "maxErrorRateOfBloomFilter",
        "maxHashSlotNum", "maxIndexNum", "maxLmqConsumeQueueNum", "maxMsgsNumBatch",
        "maxTransferBytesOnMessageInDisk", "maxTransferBytesOnMessageInMemory", "maxTransferCountOnMessageInDisk",
        "maxTransferCountOnMessageInMemory", "messageDelayLevel", "messageIndexSafe", "messageStorePlugIn",
        "msgTraceTopicName", "notifyConsumerIdsChangedEnable", "offsetCheckInSlave", "osPageCacheBusyTimeOutMills",
        "processReplyMessageThreadPoolNums", "pullMessageThreadPoolNums", "pullThreadPoolQueueCapacity",
        "putMessageFutureThreadPoolNums", "putMsgIndexHightWater", "putThreadPoolQueueCapacity",
        "queryMessageThreadPoolNums", "queryThreadPoolQueueCapacity", "readOnlyCommitLogStorePaths",
        "redeleteHangedFileInterval", "regionId", "registerBrokerTimeoutMills",
        "replyThreadPoolQueueCapacity", "rocketmqHome", "scheduleAsyncDeliverMaxPendingLimit",
        "scheduleAsyncDeliverMaxResendNum2Blocked", "sendMessageThreadPoolNums", "sendThreadPoolQueueCapacity",
        "serverAsyncSemaphoreValue", "serverCallbackExecutorThreads", "serverOnewaySemaphoreValue",
        "serverPooledByteBufAllocatorEnable", "serverSelectorThreads", "serverSocketBacklog",
        "serverSocketRcvBufSize", "serverSocketSndBufSize", "serverWorkerThreads", "shortPollingTimeMills",
        "startAcceptSendRequestTimeStamp", "storeCheckpoint", "storePathDLedgerCommitLog", "storePathIndex",
        "storeReplyMessageEnable", "traceOn", "traceTopicEnable",
        "transferMsgByHeap", "transientStorePoolSize",
        "useEpollNativeSelector", "useReentrantLockWhenPutMessage", "useTLS", "waitTimeMillsInHeartbeatQueue",
        "waitTimeMillsInPullQueue", "waitTimeMillsInSendQueue", "waitTimeMillsInTransactionQueue",
        "writeBufferHighWaterMark", "writeBufferLowWaterMark",
    ]
}
