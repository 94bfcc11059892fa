import CommitLog
import Common
import IndexFile
import Remoting
import Replication

/// What the processors share: the broker's settings, the store and its one door, and the managers. Each
/// manager owns its state and its lock; this only bundles references.
struct BrokerServices: Sendable {
    let config: BrokerConfig
    let storeHost: HostAddress
    let pipeline: PutPipeline
    var store: MessageStore { pipeline.store }
    let topics: TopicConfigManager
    let offsets: ConsumerOffsetManager
    let consumers: ConsumerManager
    let producers: ProducerManager
    /// Requests the broker sends to its clients and waits for (GET_CONSUMER_RUNNING_INFO).
    let invoker: ServerInvoker
    /// Settings UPDATE_BROKER_CONFIG changes while the broker runs.
    let runtime: BrokerRuntimeSettings
    let subscriptionGroups: SubscriptionGroupManager
    let locks: RebalanceLockManager
    let holds: PullRequestHoldService
    let schedule: ScheduleMessageService
    let transactions: TransactionalMessageService
    let stats: BrokerStats
    /// Per-topic puts and per-group gets over minute, hour and day (VIEW_BROKER_STATS_DATA).
    let statsItems: BrokerStatsItems
    /// Re-registers with every NameServer (after a topic change).
    let topicsChanged: @Sendable () -> Void
    let log: @Sendable (String) -> Void

    /// Creates a broker-made topic (retry, DLQ, schedule) unless it exists; re-registers when it was new.
    func createTopicIfAbsent(_ name: String, queueNums: Int) {
        if topics.createIfAbsent(TopicConfig(topicName: name, readQueueNums: queueNums, writeQueueNums: queueNums)) { topicsChanged() }
    }

    /// Whether puts are refused before they reach the pipeline (a slave; a broker without write permission).
    var isWriteable: Bool { runtime.brokerPermission.isWriteable && brokerRole != .slave }

    /// The topics as registered with the NameServers: each topic's permission limited to the broker's own when that
    /// lacks READ or WRITE (RocketMQ's `registerBrokerAll`), so clients stop sending to (or pulling from) it.
    var registrationTopics: TopicConfigSerializeWrapper { runtime.masked(topics.wrapper) }

    /// The role now: the configured one, or in DLedger mode SYNC_MASTER while this member takes writes, else SLAVE.
    var brokerRole: BrokerRole {
        guard let dledger = pipeline.dledger else { return config.brokerRole }
        return dledger.isWritableNow ? .syncMaster : .slave
    }

    /// The id registered with the NameServers: the configured one, or in DLedger mode 0 while this member takes
    /// writes, else its Raft id + 1 (`n0` → 1).
    var brokerID: Int64 {
        guard let dledger = pipeline.dledger else { return config.brokerID }
        return dledger.isWritableNow ? 0 : dledger.slaveBrokerID
    }

    /// The address clients dial.
    var brokerAddr: String { "\(config.brokerIP1):\(config.listenPort)" }
}
