import Common
import Remoting
import Synchronization

/// The NameServer's tables (RocketMQ's `RouteInfoManager`): which brokers live, which topics they serve and
/// with how many queues, and which clusters they form. Stateless across restarts; several NameServers run side
/// by side and every broker registers with each.
///
/// **Thread:** every method may be called from any thread (one lock over the tables).
public final class RouteInfoManager: Sendable {
    struct LiveBroker {
        var lastUpdateMillis: Int64
        var dataVersion: DataVersion?
        var channel: ObjectIdentifier?
        var haServerAddr: String
    }
    struct Tables {
        var topicQueues: [String: [String: QueueData]] = [:]
        var brokers: [String: BrokerData] = [:]
        var clusters: [String: Set<String>] = [:]
        var live: [String: LiveBroker] = [:]
    }

    /// One REGISTER_BROKER request.
    public struct Registration: Sendable {
        public var cluster: String
        public var brokerName: String
        public var brokerAddr: String
        public var brokerID: Int64
        public var haServerAddr: String
        public var topics: TopicConfigSerializeWrapper?
    }

    let tables = Mutex(Tables())

    public init() {}

    /// Registers (or refreshes) a broker and, for a master whose data version changed, its topics.
    /// - Returns: for a slave, the master's address and HA address.
    public func register(_ registration: Registration, channel: ObjectIdentifier?, now: Int64)
        -> (masterAddr: String?, masterHA: String?) {
        tables.withLock { t in
            let name = registration.brokerName
            t.clusters[registration.cluster, default: []].insert(name)
            var broker = t.brokers[name] ?? BrokerData(cluster: registration.cluster, brokerName: name, brokerAddrs: [:])
            // RocketMQ's registerFirst: an address that just became the master (a DLedger member elected, a slave
            // switched) brings its topics even when their data version did not change since it registered as a slave.
            let becameMaster = registration.brokerID == BrokerData.masterID
                && broker.brokerAddrs[BrokerData.masterID] != registration.brokerAddr
            // An address that re-registers under another id replaces its old entry (a slave becoming master).
            for (id, address) in broker.brokerAddrs where address == registration.brokerAddr && id != registration.brokerID {
                broker.brokerAddrs[id] = nil
            }
            broker.brokerAddrs[registration.brokerID] = registration.brokerAddr
            t.brokers[name] = broker
            let previous = t.live[registration.brokerAddr]
            let version = registration.topics?.dataVersion
            if registration.brokerID == BrokerData.masterID, let topics = registration.topics,
               previous == nil || previous!.dataVersion != version || becameMaster {
                for (topic, config) in topics.topicConfigTable {
                    t.topicQueues[topic, default: [:]][name] = QueueData(
                        brokerName: name, readQueueNums: config.readQueueNums, writeQueueNums: config.writeQueueNums,
                        perm: config.perm, topicSysFlag: config.topicSysFlag)
                }
            }
            t.live[registration.brokerAddr] = LiveBroker(lastUpdateMillis: now, dataVersion: version, channel: channel,
                                                         haServerAddr: registration.haServerAddr)
            guard registration.brokerID != BrokerData.masterID, let master = broker.masterAddress else { return (nil, nil) }
            return (master, t.live[master]?.haServerAddr)
        }
    }

    public func unregister(brokerName: String, brokerAddr: String) {
        tables.withLock { t in
            t.live[brokerAddr] = nil
            Self.remove(address: brokerAddr, of: brokerName, &t)
        }
    }

    /// Drops the broker at `address` from every table; the last address of a name takes its topics along.
    private static func remove(address: String, of brokerName: String, _ t: inout Tables) {
        guard var broker = t.brokers[brokerName] else { return }
        broker.brokerAddrs = broker.brokerAddrs.filter { $0.value != address }
        guard broker.brokerAddrs.isEmpty else {
            t.brokers[brokerName] = broker
            return
        }
        t.brokers[brokerName] = nil
        for cluster in t.clusters.keys {
            t.clusters[cluster]!.remove(brokerName)
            if t.clusters[cluster]!.isEmpty { t.clusters[cluster] = nil }
        }
        for topic in t.topicQueues.keys {
            t.topicQueues[topic]![brokerName] = nil
            if t.topicQueues[topic]!.isEmpty { t.topicQueues[topic] = nil }
        }
    }

    /// Drops brokers not heard from within `expiryMillis`, or whose channel is `closedChannel`; returns their addresses.
    public func expire(now: Int64, expiryMillis: Int64, closedChannel: ObjectIdentifier? = nil) -> [String] {
        tables.withLock { t in
            let dead = t.live.filter { entry in
                now - entry.value.lastUpdateMillis > expiryMillis || (entry.value.channel != nil && entry.value.channel == closedChannel)
            }
            for address in dead.keys {
                t.live[address] = nil
                for (name, broker) in t.brokers where broker.brokerAddrs.values.contains(address) {
                    Self.remove(address: address, of: name, &t)
                }
            }
            return Array(dead.keys)
        }
    }

    /// The topic's route, or nil when no live broker serves it.
    public func route(topic: String) -> TopicRouteData? {
        tables.withLock { t in
            guard let queues = t.topicQueues[topic], !queues.isEmpty else { return nil }
            let names = queues.keys.sorted()
            let brokers = names.compactMap { t.brokers[$0] }
            guard !brokers.isEmpty else { return nil }
            return TopicRouteData(queueDatas: names.map { queues[$0]! }, brokerDatas: brokers)
        }
    }

    public func clusterInfo() -> ClusterInfo {
        tables.withLock { t in ClusterInfo(brokerAddrTable: t.brokers, clusterAddrTable: t.clusters) }
    }

    /// Every topic, or those served by a broker of `cluster`.
    public func topics(cluster: String? = nil) -> [String] {
        tables.withLock { t in
            let names = cluster.map { t.clusters[$0] ?? [] }
            return t.topicQueues.filter { entry in names.map { !$0.isDisjoint(with: entry.value.keys) } ?? true }.keys.sorted()
        }
    }

    public func deleteTopic(_ topic: String, cluster: String?) {
        tables.withLock { t in
            guard let cluster, let names = t.clusters[cluster] else {
                t.topicQueues[topic] = nil
                return
            }
            for name in names { t.topicQueues[topic]?[name] = nil }
            if t.topicQueues[topic]?.isEmpty == true { t.topicQueues[topic] = nil }
        }
    }

    public func dataVersion(of brokerAddr: String) -> DataVersion? { tables.withLock { $0.live[brokerAddr]?.dataVersion } }
    public func isLive(_ brokerAddr: String) -> Bool { tables.withLock { $0.live[brokerAddr] != nil } }
    public func touch(_ brokerAddr: String, now: Int64) { tables.withLock { $0.live[brokerAddr]?.lastUpdateMillis = now } }
}
