/// Every request code the roles send or answer, under RocketMQ's names (`RequestCode.java`; the C client's
/// `MQProtos.h` has the same numbers). No other file spells a code as a number.
public enum RequestCode {
    public static let sendMessage: Int32 = 10
    public static let pullMessage: Int32 = 11
    public static let queryMessage: Int32 = 12
    public static let queryConsumerOffset: Int32 = 14
    public static let updateConsumerOffset: Int32 = 15
    public static let updateAndCreateTopic: Int32 = 17
    public static let updateBrokerConfig: Int32 = 25
    public static let getBrokerConfig: Int32 = 26
    public static let getAllTopicConfig: Int32 = 21
    public static let getBrokerRuntimeInfo: Int32 = 28
    public static let searchOffsetByTimestamp: Int32 = 29
    public static let getMaxOffset: Int32 = 30
    public static let getMinOffset: Int32 = 31
    public static let getEarliestMsgStoretime: Int32 = 32
    public static let viewMessageByID: Int32 = 33
    public static let heartBeat: Int32 = 34
    public static let unregisterClient: Int32 = 35
    public static let consumerSendMsgBack: Int32 = 36
    public static let endTransaction: Int32 = 37
    public static let getConsumerListByGroup: Int32 = 38
    public static let checkTransactionState: Int32 = 39
    public static let notifyConsumerIdsChanged: Int32 = 40
    public static let lockBatchMQ: Int32 = 41
    public static let unlockBatchMQ: Int32 = 42
    public static let getAllConsumerOffset: Int32 = 43
    public static let getAllDelayOffset: Int32 = 45
    public static let checkClientConfig: Int32 = 46
    /// Plain ACL (RocketMQ 4.9's codes): create or update an account, delete one, a broker's ACL file versions,
    /// replace the global white addresses, and the whole configuration.
    public static let updateAndCreateAclConfig: Int32 = 50
    public static let deleteAclConfig: Int32 = 51
    public static let getBrokerClusterAclInfo: Int32 = 52
    public static let updateGlobalWhiteAddrsConfig: Int32 = 53
    public static let getBrokerClusterAclConfig: Int32 = 54
    public static let putKVConfig: Int32 = 100
    public static let getKVConfig: Int32 = 101
    public static let deleteKVConfig: Int32 = 102
    public static let registerBroker: Int32 = 103
    public static let unregisterBroker: Int32 = 104
    public static let getRouteInfoByTopic: Int32 = 105
    public static let getBrokerClusterInfo: Int32 = 106
    public static let updateAndCreateSubscriptionGroup: Int32 = 200
    public static let getAllSubscriptionGroupConfig: Int32 = 201
    public static let getTopicStatsInfo: Int32 = 202
    public static let getConsumerConnectionList: Int32 = 203
    public static let getProducerConnectionList: Int32 = 204
    public static let wipeWritePermOfBroker: Int32 = 205
    public static let getAllTopicListFromNameServer: Int32 = 206
    public static let getConsumeStats: Int32 = 208
    public static let deleteSubscriptionGroup: Int32 = 207
    public static let deleteTopicInBroker: Int32 = 215
    public static let deleteTopicInNamesrv: Int32 = 216
    public static let getKVListByNamespace: Int32 = 219
    public static let resetConsumerClientOffset: Int32 = 220
    public static let getConsumerStatusFromClient: Int32 = 221
    public static let invokeBrokerToResetOffset: Int32 = 222
    public static let getTopicsByCluster: Int32 = 224
    /// QUERY_TOPIC_CONSUME_BY_WHO: the groups consuming a topic on one broker (online, or with a committed offset).
    public static let queryTopicConsumeByWho: Int32 = 300
    public static let cleanExpiredConsumeQueue: Int32 = 306
    public static let getConsumerRunningInfo: Int32 = 307
    public static let consumeMessageDirectly: Int32 = 309
    public static let sendMessageV2: Int32 = 310
    public static let cloneGroupOffset: Int32 = 314
    /// VIEW_BROKER_STATS_DATA: one statistic (`statsName`, `statsKey`) over the last minute, hour and day.
    public static let viewBrokerStatsData: Int32 = 315
    public static let cleanUnusedTopic: Int32 = 316
    public static let getBrokerConsumeStats: Int32 = 317
    public static let updateNamesrvConfig: Int32 = 318
    public static let getNamesrvConfig: Int32 = 319
    public static let sendBatchMessage: Int32 = 320
    /// QUERY_CONSUME_QUEUE: units of one consume queue from an index (`mqadmin queryCq`).
    public static let queryConsumeQueue: Int32 = 321
    public static let queryDataVersion: Int32 = 322
    public static let addWritePermOfBroker: Int32 = 327
    /// RocketMQ 5's `GET_BROKER_HA_STATUS`: a master's slave connections, or a slave's link to its master.
    public static let getBrokerHAStatus: Int32 = 907
    /// Ours, in a private range below 32768 (the binary header carries the code in 16 bits; RocketMQ's DLedger
    /// used 50000-51005 for its Java protocol, which we do not speak): a batch of Raft messages between the
    /// members of a DLedger group, one-way, on the DLedger port.
    public static let dledgerRaftMessages: Int32 = 30001
    /// Ours: a DLedger member's role, term, indexes and (on the leader) each member's lag (`mqadmin dledgerStatus`).
    public static let getDLedgerStatus: Int32 = 30002
    /// Ours: hand a DLedger group's leadership to the member named in `transfereeId` (`mqadmin leadershipTransfer`).
    public static let dledgerLeadershipTransfer: Int32 = 30003

    /// The codes that carry a message to store (one, or a batch).
    public static func isSend(_ code: Int32) -> Bool {
        code == sendMessage || code == sendMessageV2 || code == sendBatchMessage
    }
}

/// Every response code, under RocketMQ's names (`ResponseCode.java` for 0-4, `ResponseCode.java`
/// for the rest).
public enum ResponseCode {
    public static let success: Int32 = 0
    public static let systemError: Int32 = 1
    public static let systemBusy: Int32 = 2
    public static let requestCodeNotSupported: Int32 = 3
    public static let transactionFailed: Int32 = 4
    public static let flushDiskTimeout: Int32 = 10
    public static let slaveNotAvailable: Int32 = 11
    public static let flushSlaveTimeout: Int32 = 12
    public static let messageIllegal: Int32 = 13
    public static let serviceNotAvailable: Int32 = 14
    public static let versionNotSupported: Int32 = 15
    public static let noPermission: Int32 = 16
    public static let topicNotExist: Int32 = 17
    public static let topicExistAlready: Int32 = 18
    public static let pullNotFound: Int32 = 19
    public static let pullRetryImmediately: Int32 = 20
    public static let pullOffsetMoved: Int32 = 21
    public static let queryNotFound: Int32 = 22
    public static let subscriptionParseFailed: Int32 = 23
    public static let subscriptionNotExist: Int32 = 24
    public static let subscriptionNotLatest: Int32 = 25
    public static let subscriptionGroupNotExist: Int32 = 26
    public static let consumerNotOnline: Int32 = 206
    public static let updateAndCreateAclConfigFailed: Int32 = 209
    public static let deleteAclConfigFailed: Int32 = 210
    public static let updateGlobalWhiteAddrsConfigFailed: Int32 = 211
    public static let consumeMsgTimeout: Int32 = 207
}
