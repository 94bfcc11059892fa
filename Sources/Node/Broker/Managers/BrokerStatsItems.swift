import CommitLog
import Common
import Synchronization

/// Messages and their bytes counted for one key: a topic's puts (TOPIC_PUT_NUMS, TOPIC_PUT_SIZE) or a group's gets
/// of a topic (GROUP_GET_NUMS, GROUP_GET_SIZE). Made once per key and kept: counting is four relaxed atomic adds.
///
/// **Thread:** any.
final class MessageStats: Sendable {
    let nums: StatsItem
    let size: StatsItem

    init(now: Int64 = currentTimeMillis()) {
        nums = StatsItem(now: now)
        size = StatsItem(now: now)
    }

    @inline(__always)
    func add(messages: Int, bytes: Int) {
        nums.add(Int64(messages))
        size.add(Int64(bytes))
    }

    func sample(now: Int64) {
        nums.sample(now: now)
        size.sample(now: now)
    }
}

/// The statistics VIEW_BROKER_STATS_DATA reads (RocketMQ's `BrokerStatsManager`, the items `mqadmin statsAll` uses):
/// topics' puts, kept by `TopicConfigManager` beside each topic's config so a send finds both in one look-up, and
/// groups' gets by topic, kept here (one look-up per pull, not per message). A `PeriodicThread` samples them all
/// every `StatsWindows.minuteStepMillis`.
///
/// **Thread:** any.
final class BrokerStatsItems: Sendable {
    static let topicPutNums = "TOPIC_PUT_NUMS"
    static let topicPutSize = "TOPIC_PUT_SIZE"
    static let groupGetNums = "GROUP_GET_NUMS"
    static let groupGetSize = "GROUP_GET_SIZE"

    struct TopicGroup: Hashable {
        var topic: String
        var group: String
    }
    private let gets = Mutex<[TopicGroup: MessageStats]>([:])
    private let topics: TopicConfigManager
    /// The most (topic, group) pairs counted (about 2.5 KB each once a day is sampled): a client naming ever new
    /// groups cannot grow the table without bound; pulls of further pairs are served but not counted.
    static let topicGroupsMax = 16_384

    init(topics: TopicConfigManager) { self.topics = topics }

    /// Counts messages `group` pulled from `topic`.
    func countGet(topic: String, group: String, messages: Int, bytes: Int) {
        let key = TopicGroup(topic: topic, group: group)
        let stats = gets.withLock { table -> MessageStats? in
            if let found = table[key] { return found }
            guard table.count < Self.topicGroupsMax else { return nil }
            let created = MessageStats()
            table[key] = created
            return created
        }
        stats?.add(messages: messages, bytes: bytes)
    }

    /// The windows of statistic `name` for `key` (a topic, or `topic@group` for the GROUP_ items); nil when the
    /// name is unknown, the topic does not exist, or the group never pulled from the topic.
    func data(name: String, key: String) -> BrokerStatsData? {
        switch name {
        case Self.topicPutNums: return topics.putStats(key)?.nums.data
        case Self.topicPutSize: return topics.putStats(key)?.size.data
        case Self.groupGetNums, Self.groupGetSize:
            guard let at = key.firstIndex(of: "@") else { return nil }
            let pair = TopicGroup(topic: String(key[..<at]), group: String(key[key.index(after: at)...]))
            guard let stats = gets.withLock({ $0[pair] }) else { return nil }
            return name == Self.groupGetNums ? stats.nums.data : stats.size.data
        default: return nil
        }
    }

    /// Samples every item (the sampler thread).
    func sample(now: Int64 = currentTimeMillis()) {
        for stats in topics.allPutStats { stats.sample(now: now) }
        for stats in gets.withLock({ Array($0.values) }) { stats.sample(now: now) }
    }

    /// Forgets a deleted topic's gets (its puts go with its config).
    func forget(topic: String) { gets.withLock { table in table = table.filter { $0.key.topic != topic } } }
}
