#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import NIOCore
import Synchronization

/// One consumer group as heartbeats describe it.
struct ConsumerGroupInfo {
    var clients: [String: Channel] = [:]
    var subscriptions: [String: Set<Int32>?] = [:]   // topic -> tag codes (nil: all)
    var messageModel = 1
}

/// A queue named in lock requests.
struct LockedQueue: Hashable {
    var topic: String
    var brokerName: String
    var queueID: Int32
}

/// A pull waiting for messages (long polling).
struct HeldPull {
    var request: RemotingCommand
    var channel: Channel
    var offset: Int64
    var promise: EventLoopPromise<RemotingCommand?>
    var timeout: Scheduled<Void>
}

/// The broker's state over the MessageStore: topics, consumer offsets, groups, held pulls.
public final class Broker: @unchecked Sendable {
    public let config: BrokerConfig
    public let store: MessageStore
    let lock = Mutex(())
    var topics: TopicConfigFile
    var offsets: ConsumerOffsetFile
    var groups: [String: ConsumerGroupInfo] = [:]
    var held: [String: [UInt64: HeldPull]] = [:]
    /// Orderly consumption: (group, queue) -> owner and when it last locked (expires after 60 s).
    var locks: [String: [LockedQueue: (clientID: String, lastMillis: Int64)]] = [:]
    static let lockMaxLiveMillis: Int64 = 60_000
    var nextHoldID: UInt64 = 0
    let durability = Mutex<[UInt64: EventLoopPromise<DurabilityStatus>]>([:])
    let nextToken = Atomic<UInt64>(1)
    /// Messages stored and delivered since start (GET_BROKER_RUNTIME_INFO's msgPutTotalTodayNow / msgGetTotalTodayNow).
    let putTotal = Atomic<Int64>(0)
    let getTotal = Atomic<Int64>(0)
    let log: @Sendable (String) -> Void
    let storeHost: HostAddress
    let schedule: ScheduleService

    public init(config: BrokerConfig, log: @escaping @Sendable (String) -> Void) throws {
        var config = config
        storeHost = parseHost(config.brokerIP1, port: config.listenPort)
        config.store.commitLog.storeHost = storeHost
        self.config = config
        self.log = log
        store = try MessageStore(config: config.store, log: log)
        schedule = ScheduleService(store: store, log: log)
        topics = TopicConfigFile(storePathRootDir: config.store.storePathRootDir, log: log)
        offsets = ConsumerOffsetFile(storePathRootDir: config.store.storePathRootDir, log: log)
        if config.autoCreateTopicEnable && topics.topics["TBW102"] == nil {
            topics.topics["TBW102"] = TopicConfig(topicName: "TBW102", readQueueNums: config.defaultTopicQueueNums,
                                                  writeQueueNums: config.defaultTopicQueueNums, perm: 7)
            try topics.persist()
        }
        store.onDurable { [weak self] token, status in
            let promise = self?.durability.withLock { $0.removeValue(forKey: token) }
            promise?.succeed(status)
        }
        store.onMessageArriving { [weak self] topic, queueID, _ in self?.wakeHeldPulls(topic: topic, queueID: queueID) }
    }

    /// Persists offsets and closes the store.
    public func close() {
        schedule.stop()
        lock.withLock { _ in
            try? offsets.persist()
            for (_, pulls) in held { for (_, pull) in pulls { pull.timeout.cancel() } }
        }
        store.close()
    }

    func persistOffsets() {
        lock.withLock { _ in
            do { try offsets.persist() } catch { log("broker: cannot persist consumerOffset.json: \(error)") }
        }
    }

    // MARK: Topics

    func topicConfig(_ name: String) -> TopicConfig? { lock.withLock { _ in topics.topics[name] } }

    /// Creates `name` (auto-create from a template, a retry topic, or an admin request). Returns true
    /// when it was new (the caller re-registers with the NameServers).
    @discardableResult
    func createTopic(_ config: TopicConfig) -> Bool {
        lock.withLock { _ in
            guard topics.topics[config.topicName] == nil else { return false }
            topics.topics[config.topicName] = config
            do { try topics.persist() } catch { log("broker: cannot persist topics.json: \(error)") }
            return true
        }
    }

    /// RegisterBrokerBody JSON of every topic.
    func registrationBody() -> String {
        "{\"filterServerList\":[],\"topicConfigSerializeWrapper\":\(topicConfigWrapper())}"
    }

    /// TopicConfigSerializeWrapper JSON (also GET_ALL_TOPIC_CONFIG's body).
    func topicConfigWrapper() -> String {
        lock.withLock { _ in
            let table = topics.topics.keys.sorted().map { name -> String in
                let t = topics.topics[name]!
                return "\(jsonString(name)):{\"order\":\(t.order),\"perm\":\(t.perm),\"readQueueNums\":\(t.readQueueNums),\"topicFilterType\":\(jsonString(t.topicFilterType)),\"topicName\":\(jsonString(name)),\"topicSysFlag\":\(t.topicSysFlag),\"writeQueueNums\":\(t.writeQueueNums)}"
            }
            return "{\"dataVersion\":{\"counter\":\(topics.dataVersion.counter),\"timestamp\":\(topics.dataVersion.timestamp)},\"topicConfigTable\":{\(table.joined(separator: ","))}}"
        }
    }

    // MARK: Consumers

    /// Registers a heartbeat's consumer groups; returns the groups whose membership or subscriptions changed.
    func heartbeat(clientID: String, channel: Channel, consumers: [(group: String, model: Int, subscriptions: [String: Set<Int32>?])]) -> [String] {
        lock.withLock { _ in
            var changed: [String] = []
            for consumer in consumers {
                var info = groups[consumer.group] ?? ConsumerGroupInfo()
                let isNew = info.clients[clientID] == nil || info.subscriptions.keys.sorted() != consumer.subscriptions.keys.sorted()
                info.clients[clientID] = channel
                info.messageModel = consumer.model
                // The newest heartbeat's set wins: a topic no longer subscribed is dropped (as RocketMQ's updateSubscription).
                info.subscriptions = consumer.subscriptions
                groups[consumer.group] = info
                if isNew { changed.append(consumer.group) }
            }
            return changed
        }
    }

    func unregister(clientID: String, group: String) -> Bool {
        lock.withLock { _ in groups[group]?.clients.removeValue(forKey: clientID) != nil }
    }

    /// Removes every client on `channel`; returns the groups that lost one.
    func channelClosed(_ channel: Channel) -> [String] {
        lock.withLock { _ in
            var changed: [String] = []
            for (name, info) in groups {
                let remaining = info.clients.filter { $0.value !== channel }
                if remaining.count != info.clients.count {
                    groups[name]!.clients = remaining
                    changed.append(name)
                }
            }
            return changed
        }
    }

    func consumerIDs(group: String) -> [String] { lock.withLock { _ in groups[group]?.clients.keys.sorted() ?? [] } }
    func channels(group: String) -> [Channel] { lock.withLock { _ in groups[group].map { Array($0.clients.values) } ?? [] } }
    func subscription(group: String, topic: String) -> Set<Int32>?? { lock.withLock { _ in groups[group]?.subscriptions[topic] } }

    // MARK: Locks (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ)

    /// Locks or renews every queue that is free, expired or already the caller's; returns those.
    func tryLock(group: String, clientID: String, queues: [LockedQueue], now: Int64) -> [LockedQueue] {
        lock.withLock { _ in
            var table = locks[group] ?? [:]
            var granted: [LockedQueue] = []
            for queue in queues {
                if let owner = table[queue], owner.clientID != clientID, now - owner.lastMillis < Broker.lockMaxLiveMillis { continue }
                table[queue] = (clientID, now)
                granted.append(queue)
            }
            locks[group] = table
            return granted
        }
    }

    func unlock(group: String, clientID: String, queues: [LockedQueue]) {
        lock.withLock { _ in
            for queue in queues where locks[group]?[queue]?.clientID == clientID { locks[group]![queue] = nil }
        }
    }

    // MARK: Admin

    func upsertTopic(_ config: TopicConfig) {
        lock.withLock { _ in
            topics.topics[config.topicName] = config
            do { try topics.persist() } catch { log("broker: cannot persist topics.json: \(error)") }
        }
    }

    func deleteTopic(_ name: String) {
        lock.withLock { _ in
            topics.topics[name] = nil
            do { try topics.persist() } catch { log("broker: cannot persist topics.json: \(error)") }
        }
        store.deleteTopic(name)
    }


    /// The queues a group has committed offsets for (optionally of one topic).
    func consumedQueues(group: String, topic: String?) -> [(String, Int32, Int64)] {
        lock.withLock { _ in
            offsets.offsets.flatMap { key, queues -> [(String, Int32, Int64)] in
                guard key.hasSuffix("@" + group) else { return [] }
                let name = String(key.dropLast(group.count + 1))
                guard topic == nil || topic == name else { return [] }
                return queues.sorted { $0.key < $1.key }.map { (name, $0.key, $0.value) }
            }
        }
    }

    /// GET_BROKER_RUNTIME_INFO keys (a subset of RocketMQ's, with the store's positions).
    func runtimeInfo() -> [String: String] {
        let log = store.commitLog
        return [
            "brokerVersionDesc": "V4_9_7", "brokerVersion": "407",
            "dispatchBehindBytes": "\(store.dispatchBehindBytes)",
            "commitLogMinOffset": "\(log.minOffset)", "commitLogMaxOffset": "\(log.wroteOffset)",
            "remainHowManyDataToFlush": "\(log.wroteOffset - log.flushedOffset)",
            "earliestMessageTimeStamp": "0", "pageCacheLockTimeMills": "0",
            "msgPutTotalTodayNow": "\(putTotal.load(ordering: .relaxed))", "msgGetTotalTodayNow": "\(getTotal.load(ordering: .relaxed))",
        ]
    }

    // MARK: Offsets

    func committedOffset(group: String, topic: String, queueID: Int32) -> Int64? {
        lock.withLock { _ in offsets.offsets["\(topic)@\(group)"]?[queueID] }
    }

    func commitOffset(group: String, topic: String, queueID: Int32, offset: Int64) {
        lock.withLock { _ in offsets.offsets["\(topic)@\(group)", default: [:]][queueID] = offset }
    }

    // MARK: Durability and long polling

    /// A token whose durability answer completes `promise` (SYNC_FLUSH puts).
    func durabilityToken(_ promise: EventLoopPromise<DurabilityStatus>) -> UInt64 {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        durability.withLock { $0[token] = promise }
        return token
    }

    func forgetToken(_ token: UInt64) { _ = durability.withLock { $0.removeValue(forKey: token) } }

    /// Answers a held pull again (without suspending); set once by the processor.
    nonisolated(unsafe) var pullRerun: (@Sendable (RemotingCommand, Channel) -> RemotingCommand)?

    /// Parks a pull until a message arrives for its queue past `offset`, or `millis` pass.
    func hold(_ pull: (RemotingCommand, Channel, Int64, EventLoopPromise<RemotingCommand?>), key: String, millis: Int64) {
        let (request, channel, offset, promise) = pull
        lock.withLock { _ in
            let id = nextHoldID
            nextHoldID += 1
            let timeout = channel.eventLoop.scheduleTask(in: .milliseconds(millis)) { [weak self] () -> Void in
                guard let self, let pull = self.lock.withLock({ _ -> HeldPull? in
                    defer { if self.held[key]?.isEmpty == true { self.held[key] = nil } }
                    return self.held[key]?.removeValue(forKey: id)
                }) else { return }
                pull.promise.succeed(self.pullRerun?(pull.request, pull.channel))
            }
            held[key, default: [:]][id] = HeldPull(request: request, channel: channel, offset: offset, promise: promise, timeout: timeout)
        }
    }

    func wakeHeldPulls(topic: String, queueID: Int32) {
        // Runs on the dispatch thread for every message: nothing to do (and nothing to build) when no
        // pull is parked.
        guard lock.withLock({ _ in !held.isEmpty }) else { return }
        let key = "\(topic)@\(queueID)"
        let maxOffset = store.maxOffset(topic: topic, queueID: queueID)
        let ready: [HeldPull] = lock.withLock { _ in
            guard let pulls = held[key] else { return [] }
            let due = pulls.filter { $0.value.offset < maxOffset }
            for id in due.keys { held[key]!.removeValue(forKey: id) }
            if held[key]!.isEmpty { held[key] = nil }
            return Array(due.values)
        }
        guard let rerun = pullRerun else { return }
        for pull in ready {
            pull.timeout.cancel()
            pull.channel.eventLoop.execute { pull.promise.succeed(rerun(pull.request, pull.channel)) }
        }
    }
}

/// `a.b.c.d` and a port as a HostAddress (0.0.0.0 when it does not parse).
func parseHost(_ text: String, port: Int) -> HostAddress {
    let parts = text.split(separator: ".").compactMap { UInt8($0) }
    guard parts.count == 4 else { return HostAddress(ipv4: 0, 0, 0, 0, port: Int32(port)) }
    return HostAddress(ipv4: parts[0], parts[1], parts[2], parts[3], port: Int32(port))
}
