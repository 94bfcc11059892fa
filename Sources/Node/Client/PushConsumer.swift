import Common
import Remoting
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public enum ConsumeConcurrentlyStatus: Sendable {
    case consumeSuccess
    /// Deliver again later (through the group's retry topic).
    case reconsumeLater
}

public enum ConsumeOrderlyStatus: Sendable {
    case success
    /// Hold the queue and deliver the same messages again after a pause.
    case suspendCurrentQueueAMoment
}

/// A push consumer: subscriptions, rebalance across the group (average allocation, reacting to
/// NOTIFY_CONSUMER_IDS_CHANGED), long-polling pulls per queue, concurrent or orderly listeners, offsets
/// committed to the broker (clustering) or kept in a local file (broadcasting), failed messages sent back
/// for retry, and flow control when the listener falls behind.
public final class PushConsumer: Sendable {
    public struct Settings: Sendable {
        public var group: String
        public var messageModel = MessageModel.clustering
        public var consumeFromWhere = ConsumeFromWhere.lastOffset
        public var pullBatchSize = 32
        public var consumeMessageBatchMaxSize = 1
        /// Flow control: pulls of a queue pause while this many of its messages wait for the listener.
        public var pullThresholdForQueue = 1_000
        public var maxReconsumeTimes = 16
        public var suspendMillis: Int64 = 15_000
        public var rebalanceIntervalMillis: Int64 = 20_000
        public var persistOffsetIntervalMillis: Int64 = 5_000
        public var lockRenewIntervalMillis: Int64 = 20_000
        /// Orderly: the pause after `suspendCurrentQueueAMoment`.
        public var suspendCurrentQueueMillis: Int64 = 1_000
        /// Where broadcasting offsets are kept: `<dir>/<instanceName>/<group>/offsets.json`.
        public var offsetStoreDir: String = (getenv("HOME").map { String(cString: $0) } ?? "/tmp") + "/.rocketmq_offsets"
        public init(group: String) { self.group = group }
    }

    enum Listener {
        case concurrently(@Sendable ([MessageExt]) async -> ConsumeConcurrentlyStatus)
        case orderly(@Sendable ([MessageExt]) async -> ConsumeOrderlyStatus)
    }

    public let client: ClientInstance
    public let settings: Settings
    let state = Mutex<State>(State())

    struct State {
        var subscriptions: [String: Subscription] = [:]
        var listener: Listener?
        var queues: [MessageQueue: ProcessQueue] = [:]
        var offsets: [MessageQueue: Int64] = [:]
        var started = false
        var rebalancing = false
        var rebalanceAgain = false
        var startTimestamp: Int64 = 0
    }

    public init(config: ClientConfig, settings: Settings) {
        client = ClientInstance(config: config)
        self.settings = settings
    }

    public convenience init(group: String, namesrvAddr: String, messageModel: MessageModel = .clustering) {
        var settings = Settings(group: group)
        settings.messageModel = messageModel
        self.init(config: ClientConfig(namesrvAddr: namesrvAddr), settings: settings)
    }

    public func subscribe(_ topic: String, expression: String = "*") {
        state.withLock { $0.subscriptions[topic] = Subscription(topic: topic, expression: expression) }
    }

    public func registerListener(_ listener: @escaping @Sendable ([MessageExt]) async -> ConsumeConcurrentlyStatus) {
        state.withLock { $0.listener = .concurrently(listener) }
    }

    public func registerOrderlyListener(_ listener: @escaping @Sendable ([MessageExt]) async -> ConsumeOrderlyStatus) {
        state.withLock { $0.listener = .orderly(listener) }
    }

    var orderly: Bool { state.withLock { if case .orderly = $0.listener { return true }; return false } }

    /// Messages of `queue` pulled but not yet consumed (what flow control bounds).
    public func cachedMessageCount(_ queue: MessageQueue) -> Int { state.withLock { $0.queues[queue] }?.count ?? 0 }

    /// The queues this consumer holds now.
    public var assignedQueues: [MessageQueue] { state.withLock { $0.queues.keys.sorted() } }

    public func start() async throws {
        guard state.withLock({ $0.listener != nil }) else { throw ClientError.badResponse("register a listener before start") }
        if settings.messageModel == .clustering {
            subscribe(TopicValidator.retryTopic(group: settings.group))
        } else {
            loadLocalOffsets()
        }
        let clientID = client.clientID
        let settings = settings
        client.heartbeatBody.withLock { body in
            body = { [weak self] in
                let subscriptions = self?.state.withLock { $0.subscriptions.values.sorted { $0.topic < $1.topic } } ?? []
                return HeartbeatData(clientID: clientID, consumerDataSet: [
                    ConsumerData(groupName: settings.group, consumeType: "CONSUME_PASSIVELY", messageModel: settings.messageModel,
                                 consumeFromWhere: settings.consumeFromWhere.name, subscriptionDataSet: subscriptions.map(\.data)),
                ])
            }
        }
        installServerRequestHandler()
        state.withLock { state in
            state.started = true
            state.startTimestamp = currentTimeMillis()
        }
        let topics = state.withLock { Array($0.subscriptions.keys) }
        for topic in topics {
            if try await client.route(topic, refresh: true) == nil, !topic.hasPrefix(TopicValidator.retryGroupTopicPrefix) { throw ClientError.noRoute(topic: topic) }
        }
        client.start()
        await client.sendHeartbeats()
        await rebalance()
        client.every(millis: settings.rebalanceIntervalMillis) { [weak self] in await self?.rebalance() }
        client.every(millis: settings.persistOffsetIntervalMillis) { [weak self] in await self?.persistOffsets() }
        if orderly { client.every(millis: settings.lockRenewIntervalMillis) { [weak self] in await self?.renewLocks() } }
    }

    /// Stops pulling, commits offsets, releases locks, leaves the group.
    public func shutdown() async {
        let queues = state.withLock { state -> [MessageQueue: ProcessQueue] in
            state.started = false
            return state.queues
        }
        for (_, queue) in queues { queue.drop() }
        for (_, queue) in queues { await queue.stopped() }
        await persistOffsets()
        if orderly { await client.unlock(Array(queues.keys), group: settings.group) }
        state.withLock { $0.queues.removeAll() }
        await client.unregister(group: settings.group, producer: false)
        await client.shutdown()
    }

    // MARK: Rebalance

    /// Recomputes this consumer's queues (one rebalance at a time; a request during one runs it again after).
    func rebalance() async {
        let proceed = state.withLock { state -> Bool in
            guard state.started else { return false }
            if state.rebalancing { state.rebalanceAgain = true; return false }
            state.rebalancing = true
            return true
        }
        guard proceed else { return }
        repeat {
            await rebalanceOnce()
        } while state.withLock { state -> Bool in
            let again = state.rebalanceAgain && state.started
            state.rebalanceAgain = false
            if !again { state.rebalancing = false }
            return again
        }
    }

    func rebalanceOnce() async {
        let subscriptions = state.withLock { Array($0.subscriptions.values) }
        var wanted = Set<MessageQueue>()
        var failedTopics = Set<String>()
        for subscription in subscriptions {
            guard let route = try? await client.route(subscription.topic) else { failedTopics.insert(subscription.topic); continue }
            let queues = route.subscribeQueues(topic: subscription.topic)
            if settings.messageModel == .broadcasting {
                wanted.formUnion(queues)
                continue
            }
            guard let ids = try? await client.consumerIDs(group: settings.group, topic: subscription.topic) else {
                failedTopics.insert(subscription.topic)
                continue
            }
            wanted.formUnion(Self.allocateAveragely(queues: queues, clients: ids, me: client.clientID))
        }
        let current = state.withLock { $0.queues }
        for (queue, process) in current where !wanted.contains(queue) && !failedTopics.contains(queue.topic) {
            process.drop()
            await process.stopped()
            await commitOffset(queue)
            if orderly { await client.unlock([queue], group: settings.group) }
            state.withLock { state in
                state.queues[queue] = nil
                if settings.messageModel == .clustering { state.offsets[queue] = nil }
            }
        }
        let added = wanted.subtracting(current.keys).sorted()
        if orderly && !added.isEmpty {
            let locked = await client.lock(added, group: settings.group)
            // A queue whose lock is held elsewhere starts unlocked; its pull loop retries the lock.
            for queue in added { await startQueue(queue, locked: locked.contains(queue)) }
        } else {
            for queue in added { await startQueue(queue, locked: false) }
        }
    }

    /// RocketMQ's AllocateMessageQueueAveragely.
    public static func allocateAveragely(queues: [MessageQueue], clients: [String], me: String) -> [MessageQueue] {
        let sortedQueues = queues.sorted()
        let sortedClients = clients.sorted()
        guard let index = sortedClients.firstIndex(of: me), !sortedQueues.isEmpty else { return [] }
        let n = sortedQueues.count, c = sortedClients.count
        let mod = n % c
        let size = n <= c ? 1 : (index < mod ? n / c + 1 : n / c)
        let start = index < mod ? index * size : index * size + mod
        let count = min(size, n - start)
        guard count > 0 else { return [] }
        return Array(sortedQueues[start..<(start + count)])
    }

    private func startQueue(_ queue: MessageQueue, locked: Bool) async {
        guard let offset = await startOffset(queue) else { return }  // not this round
        let process = ProcessQueue()
        process.setLocked(locked)
        let proceed = state.withLock { state -> Bool in
            guard state.started, state.queues[queue] == nil else { return false }
            state.queues[queue] = process
            if state.offsets[queue] == nil || settings.messageModel == .clustering { state.offsets[queue] = offset }
            return true
        }
        guard proceed else { return }
        process.task.withLock { $0 = Task { [weak self] in await self?.pullLoop(queue, process: process, from: offset) } }
    }

    /// Where a newly assigned queue starts: the committed offset, else per `consumeFromWhere`; nil on a transport failure.
    private func startOffset(_ queue: MessageQueue) async -> Int64? {
        if settings.messageModel == .broadcasting, let local = state.withLock({ $0.offsets[queue] }) { return local }
        if settings.messageModel == .clustering {
            // Only the broker's "not found" means a new group; any other failure retries at the next rebalance.
            let committed: Int64?
            do { committed = try await client.queryOffset(queue, group: settings.group) } catch { return nil }
            if let committed, committed >= 0 { return committed }
        }
        if queue.topic.hasPrefix(TopicValidator.retryGroupTopicPrefix) { return 0 }
        switch settings.consumeFromWhere {
        case .firstOffset: return 0
        case .lastOffset: return try? await client.queueOffset(RequestCode.getMaxOffset, queue)
        case .timestamp(let millis): return try? await client.queueOffset(RequestCode.searchOffsetByTimestamp, queue, timestamp: millis)
        }
    }

    private func renewLocks() async {
        let queues = state.withLock { $0.queues }
        guard !queues.isEmpty else { return }
        let locked = await client.lock(Array(queues.keys), group: settings.group)
        for (queue, process) in queues { process.setLocked(locked.contains(queue)) }
    }

    // MARK: Pulling and consuming

    private func pullLoop(_ queue: MessageQueue, process: ProcessQueue, from start: Int64) async {
        var next = start
        let orderly = orderly
        while !process.isDropped && !Task.isCancelled {
            if process.count >= settings.pullThresholdForQueue {
                try? await Task.sleep(for: .milliseconds(50))  // flow control: the listener is behind
                continue
            }
            if orderly && !process.isLocked {
                try? await Task.sleep(for: .milliseconds(500))
                if !process.isDropped, await client.lock([queue], group: settings.group).contains(queue) { process.setLocked(true) }
                continue
            }
            guard let subscription = state.withLock({ $0.subscriptions[queue.topic] }) else { return }
            let committed = settings.messageModel == .clustering ? state.withLock { $0.offsets[queue] } : nil
            let result: PullResult
            do {
                result = try await client.pull(queue, subscription: subscription, group: settings.group, offset: next,
                                               maxNums: settings.pullBatchSize, commitOffset: committed, suspendMillis: settings.suspendMillis)
            } catch {
                if process.isDropped { return }
                // A broker that stopped answering may be gone from the route (a dead master): read the route again,
                // so the next pull goes to whichever member of the broker name is still there.
                if error is RemotingError {
                    client.forgetRoute(queue.topic)
                    client.suggestBroker(BrokerData.masterID, for: queue)
                }
                try? await Task.sleep(for: .milliseconds(1_000))
                continue
            }
            if process.isDropped { return }
            switch result.status {
            case .found:
                next = result.nextBeginOffset
                let messages = result.messages.map(restoreRetryTopic)
                process.put(messages)
                if orderly {
                    await consumeOrderly(queue, process: process, messages: messages)
                } else {
                    for batch in stride(from: 0, to: messages.count, by: max(1, settings.consumeMessageBatchMaxSize)) {
                        let slice = Array(messages[batch..<min(messages.count, batch + max(1, settings.consumeMessageBatchMaxSize))])
                        Task { await self.consumeConcurrently(queue, process: process, messages: slice) }
                    }
                }
            case .noNewMessage, .noMatchedMessage:
                if result.nextBeginOffset > next, process.count == 0 { updateOffset(queue, result.nextBeginOffset) }
                next = result.nextBeginOffset
            case .offsetIllegal:
                next = result.nextBeginOffset
                updateOffset(queue, next, force: true)
                await commitOffset(queue)
            }
        }
    }

    /// A message from the retry topic shows its original topic to the listener.
    private func restoreRetryTopic(_ message: MessageExt) -> MessageExt {
        guard message.topic.hasPrefix(TopicValidator.retryGroupTopicPrefix), let original = message.property(MessageConst.retryTopic) else { return message }
        var restored = message
        restored.topic = original
        return restored
    }

    private func consumeConcurrently(_ queue: MessageQueue, process: ProcessQueue, messages: [MessageExt]) async {
        guard case .concurrently(let listener)? = state.withLock({ $0.listener }) else { return }
        if process.isDropped { return }
        let status = await listener(messages)
        var done = messages
        if status == .reconsumeLater {
            if settings.messageModel == .clustering {
                var failed: [MessageExt] = []
                for message in messages {
                    var stored = message
                    stored.topic = queue.topic  // the broker finds it by offset; originTopic is informational
                    do { try await client.sendBack(stored, group: settings.group, delayLevel: 0, maxReconsumeTimes: settings.maxReconsumeTimes) }
                    catch { failed.append(message) }
                }
                done = messages.filter { message in !failed.contains { $0.queueOffset == message.queueOffset } }
                if !failed.isEmpty {
                    // The broker did not take them back: try them here again shortly.
                    Task {
                        try? await Task.sleep(for: .milliseconds(5_000))
                        await self.consumeConcurrently(queue, process: process, messages: failed.map { var m = $0; m.reconsumeTimes += 1; return m })
                    }
                }
            }
            // Broadcasting: a failed message is not retried (as in RocketMQ).
        }
        if let offset = process.remove(done), !process.isDropped { updateOffset(queue, offset) }
    }

    private func consumeOrderly(_ queue: MessageQueue, process: ProcessQueue, messages: [MessageExt]) async {
        guard case .orderly(let listener)? = state.withLock({ $0.listener }) else { return }
        let size = max(1, settings.consumeMessageBatchMaxSize)
        var index = 0
        var attempts = 0
        while index < messages.count && !process.isDropped {
            guard process.isLocked else {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            var batch = Array(messages[index..<min(messages.count, index + size)])
            for i in batch.indices { batch[i].reconsumeTimes += Int32(attempts) }
            switch await listener(batch) {
            case .success:
                index += batch.count
                attempts = 0
                if let offset = process.remove(batch) { updateOffset(queue, offset) }
            case .suspendCurrentQueueAMoment:
                attempts += 1
                if attempts > settings.maxReconsumeTimes, settings.messageModel == .clustering {
                    // Give up on this batch: to the dead-letter queue, and go on in order — only once the broker
                    // took every message; otherwise hold the queue and try again.
                    var deadLettered = true
                    for message in batch {
                        var stored = message
                        stored.topic = queue.topic
                        do { try await client.sendBack(stored, group: settings.group, delayLevel: -1, maxReconsumeTimes: settings.maxReconsumeTimes) }
                        catch { deadLettered = false; break }
                    }
                    guard deadLettered else {
                        try? await Task.sleep(for: .milliseconds(settings.suspendCurrentQueueMillis))
                        continue
                    }
                    index += batch.count
                    attempts = 0
                    if let offset = process.remove(batch) { updateOffset(queue, offset) }
                } else {
                    try? await Task.sleep(for: .milliseconds(settings.suspendCurrentQueueMillis))
                }
            }
        }
    }
}
