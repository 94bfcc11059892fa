import Common
import Remoting
import NIOCore
import Synchronization

/// Where a group with no committed offset starts on a queue.
public enum ConsumeFromWhere: Sendable {
    case lastOffset
    case firstOffset
    /// The first message stored at or after this time (epoch milliseconds).
    case timestamp(Int64)

    var name: String {
        switch self {
        case .lastOffset: "CONSUME_FROM_LAST_OFFSET"
        case .firstOffset: "CONSUME_FROM_FIRST_OFFSET"
        case .timestamp: "CONSUME_FROM_TIMESTAMP"
        }
    }
}

public enum PullStatus: String, Sendable {
    case found = "FOUND"
    case noNewMessage = "NO_NEW_MSG"
    case noMatchedMessage = "NO_MATCHED_MSG"
    case offsetIllegal = "OFFSET_ILLEGAL"
}

public struct PullResult: Sendable {
    public var status: PullStatus
    public var nextBeginOffset: Int64
    public var minOffset: Int64
    public var maxOffset: Int64
    /// Messages whose tags match the subscription (the broker filters by tag hash, the client by tag).
    public var messages: [MessageExt]
    /// The broker id the broker suggests for the next pull.
    public var suggestWhichBrokerId: Int64
}

/// A subscription expression: `*`, or tags joined by `||`.
public struct Subscription: Sendable, Equatable {
    public var topic: String
    public var expression: String
    public var tags: Set<String>?

    public init(topic: String, expression: String) {
        self.topic = topic
        self.expression = expression.isEmpty ? "*" : expression
        tags = SubscriptionData.tags(of: self.expression).map { Set($0) }
    }

    func matches(_ message: MessageExt) -> Bool {
        guard let tags else { return true }
        return message.tags.map { tags.contains($0) } ?? false
    }

    /// The heartbeat's form.
    var data: SubscriptionData { SubscriptionData(topic: topic, subString: expression) }
}

/// The broker calls every consumer role needs: pull, offsets, send-back, consumer list, locks.
extension ClientInstance {
    /// Where to read `queue`: the broker id its last pull suggested, the master otherwise, and any live member of
    /// the broker name when that one is gone from the route (a slave keeps serving while its master is down).
    func readAddress(_ queue: MessageQueue) async throws -> String {
        let suggested = suggestedBroker(queue)
        if let address = try await route(queue.topic)?.readAddress(queue.brokerName, suggested: suggested) { return address }
        if let address = try await route(queue.topic, refresh: true)?.readAddress(queue.brokerName, suggested: suggested) { return address }
        throw ClientError.noRoute(topic: queue.topic)
    }

    func masterAddress(_ queue: MessageQueue) async throws -> String {
        if let address = try await route(queue.topic)?.masterAddress(queue.brokerName) { return address }
        return try await readAddress(queue)
    }

    /// PULL_MESSAGE. `suspendMillis` > 0 lets the broker hold the pull until a message arrives.
    func pull(_ queue: MessageQueue, subscription: Subscription, group: String, offset: Int64, maxNums: Int,
              commitOffset: Int64?, suspendMillis: Int64) async throws -> PullResult {
        let address = try await readAddress(queue)
        var sysFlag: PullSysFlag = .subscription  // the subscription travels with each pull
        if suspendMillis > 0 { sysFlag.insert(.suspend) }
        if commitOffset != nil { sysFlag.insert(.commitOffset) }
        var fields = HeaderFields.Writer(capacity: 192)
        fields.append("consumerGroup", group)
        fields.append("topic", queue.topic)
        fields.append("queueId", queue.queueID)
        fields.append("queueOffset", offset)
        fields.append("maxMsgNums", maxNums)
        fields.append("sysFlag", sysFlag.rawValue)
        fields.append("commitOffset", commitOffset ?? 0)
        fields.append("suspendTimeoutMillis", suspendMillis)
        fields.append("subscription", subscription.expression)
        fields.append("subVersion", 0)
        fields.append("expressionType", "TAG")
        var request = RemotingCommand(code: RequestCode.pullMessage, fields: fields.fields, serializeType: config.serializeType)
        request.language = .other
        let response = try await remoting.invoke(address, request, timeoutMillis: suspendMillis + config.timeoutMillis)
        let header = response.fields
        let next = header?["nextBeginOffset"]?.int64 ?? offset
        let minOffset = header?["minOffset"]?.int64 ?? 0
        let maxOffset = header?["maxOffset"]?.int64 ?? 0
        let suggested = header?["suggestWhichBrokerId"]?.int64 ?? BrokerData.masterID
        suggestBroker(suggested, for: queue)
        switch response.code {
        case ResponseCode.success:
            var messages = try response.body.map { try MessageDecoder.decodeAll($0) } ?? []
            for index in messages.indices { messages[index].brokerName = queue.brokerName }
            let matched = messages.filter { subscription.matches($0) }
            return PullResult(status: matched.isEmpty ? .noMatchedMessage : .found, nextBeginOffset: next, minOffset: minOffset,
                              maxOffset: maxOffset, messages: matched, suggestWhichBrokerId: suggested)
        case ResponseCode.pullNotFound:
            return PullResult(status: .noNewMessage, nextBeginOffset: next, minOffset: minOffset, maxOffset: maxOffset, messages: [],
                              suggestWhichBrokerId: suggested)
        case ResponseCode.pullRetryImmediately:
            return PullResult(status: .noMatchedMessage, nextBeginOffset: next, minOffset: minOffset, maxOffset: maxOffset, messages: [],
                              suggestWhichBrokerId: suggested)
        case ResponseCode.pullOffsetMoved:
            return PullResult(status: .offsetIllegal, nextBeginOffset: next, minOffset: minOffset, maxOffset: maxOffset, messages: [],
                              suggestWhichBrokerId: suggested)
        default:
            throw ClientError.broker(code: response.code, remark: response.remark ?? "", address: address)
        }
    }

    /// The group's committed offset of `queue`, or nil when the broker has none.
    func queryOffset(_ queue: MessageQueue, group: String) async throws -> Int64? {
        let address = try await masterAddress(queue)
        let response = try await invoke(address, code: RequestCode.queryConsumerOffset,
                                        fields: ["consumerGroup": group, "topic": queue.topic, "queueId": "\(queue.queueID)"])
        if response.code == ResponseCode.queryNotFound { return nil }
        guard response.code == ResponseCode.success else {
            throw ClientError.broker(code: response.code, remark: response.remark ?? "", address: address)
        }
        guard let offset = response.fields?["offset"]?.int64 ?? Int64(response.extFields["offset"] ?? "") else {
            throw ClientError.badResponse("QUERY_CONSUMER_OFFSET answer without an offset")
        }
        return offset
    }

    func updateOffset(_ queue: MessageQueue, group: String, offset: Int64) async throws {
        let address = try await masterAddress(queue)
        _ = try await call(address, code: RequestCode.updateConsumerOffset,
                           fields: ["consumerGroup": group, "topic": queue.topic, "queueId": "\(queue.queueID)", "commitOffset": "\(offset)"])
    }

    func queueOffset(_ code: Int32, _ queue: MessageQueue, timestamp: Int64? = nil) async throws -> Int64 {
        var fields = ["topic": queue.topic, "queueId": "\(queue.queueID)"]
        if let timestamp { fields["timestamp"] = "\(timestamp)" }
        let response = try await call(try await readAddress(queue), code: code, fields: fields)
        return response.fields?["offset"]?.int64 ?? 0
    }

    /// CONSUMER_SEND_MSG_BACK: the broker re-delivers `message` later through the group's retry topic
    /// (`delayLevel` 0: the broker's growing delay; -1: straight to the dead-letter queue).
    func sendBack(_ message: MessageExt, group: String, delayLevel: Int, maxReconsumeTimes: Int) async throws {
        let address = try await masterAddress(MessageQueue(topic: message.topic, brokerName: message.brokerName, queueID: message.queueID))
        _ = try await call(address, code: RequestCode.consumerSendMsgBack, fields: [
            "offset": "\(message.commitLogOffset)", "group": group, "delayLevel": "\(delayLevel)",
            "originMsgId": message.msgID, "originTopic": message.topic, "unitMode": "false",
            "maxReconsumeTimes": "\(maxReconsumeTimes)",
        ])
    }

    func consumerIDs(group: String, topic: String) async throws -> [String] {
        guard let route = try await route(topic), let broker = route.brokerDatas.first,
              let address = route.readAddress(broker.brokerName) else { return [] }
        let response = try await call(address, code: RequestCode.getConsumerListByGroup, fields: ["consumerGroup": group])
        return try ConsumerListBody.decode(from: response.body).consumerIdList.sorted()
    }

    /// LOCK_BATCH_MQ on each queue's master; returns the queues now locked by us.
    func lock(_ queues: [MessageQueue], group: String) async -> Set<MessageQueue> {
        var locked = Set<MessageQueue>()
        for (brokerName, members) in Dictionary(grouping: queues, by: \.brokerName) {
            guard let address = try? await masterAddress(members[0]) else { continue }
            let body = LockBatchRequestBody(consumerGroup: group, clientId: clientID, mqSet: members).encode()
            guard let response = try? await call(address, code: RequestCode.lockBatchMQ, body: body),
                  let answer = try? LockBatchResponseBody.decode(from: response.body) else { continue }
            for queue in answer.lockOKMQSet where queue.brokerName == brokerName { locked.insert(queue) }
        }
        return locked
    }

    func unlock(_ queues: [MessageQueue], group: String) async {
        for (_, members) in Dictionary(grouping: queues, by: \.brokerName) {
            guard let address = try? await masterAddress(members[0]) else { continue }
            let body = LockBatchRequestBody(consumerGroup: group, clientId: clientID, mqSet: members).encode()
            _ = try? await call(address, code: RequestCode.unlockBatchMQ, body: body, timeoutMillis: 1_000)
        }
    }

    func unregister(group: String, producer: Bool) async {
        for address in brokerAddresses {
            _ = try? await invoke(address, code: RequestCode.unregisterClient,
                                  fields: ["clientID": clientID, producer ? "producerGroup" : "consumerGroup": group], timeoutMillis: 1_000)
        }
    }
}

/// A pull consumer: the application picks queues and offsets.
public final class PullConsumer: Sendable {
    public let client: ClientInstance
    public let group: String

    public init(group: String, config: ClientConfig) {
        client = ClientInstance(config: config)
        self.group = group
    }

    public convenience init(group: String, namesrvAddr: String) {
        self.init(group: group, config: ClientConfig(namesrvAddr: namesrvAddr))
    }

    public func start() {
        let clientID = client.clientID
        let group = group
        client.heartbeatBody.withLock {
            $0 = {
                HeartbeatData(clientID: clientID, consumerDataSet: [
                    ConsumerData(groupName: group, consumeType: "CONSUME_ACTIVELY", messageModel: .clustering,
                                 consumeFromWhere: ConsumeFromWhere.lastOffset.name, subscriptionDataSet: []),
                ])
            }
        }
        client.start()
    }

    public func shutdown() async {
        await client.unregister(group: group, producer: false)
        await client.shutdown()
    }

    /// Every readable queue of `topic`.
    public func fetchSubscribeMessageQueues(_ topic: String) async throws -> [MessageQueue] {
        guard let route = try await client.route(topic, refresh: true) else { throw ClientError.noRoute(topic: topic) }
        return route.subscribeQueues(topic: topic)
    }

    /// Reads up to `maxNums` messages from `offset`; answers at once.
    public func pull(_ queue: MessageQueue, expression: String = "*", offset: Int64, maxNums: Int = 32) async throws -> PullResult {
        try await client.pull(queue, subscription: Subscription(topic: queue.topic, expression: expression), group: group,
                              offset: offset, maxNums: maxNums, commitOffset: nil, suspendMillis: 0)
    }

    /// Like `pull`, but the broker holds the request up to `suspendMillis` until a message arrives.
    public func pullBlockIfNotFound(_ queue: MessageQueue, expression: String = "*", offset: Int64, maxNums: Int = 32,
                                    suspendMillis: Int64 = 20_000) async throws -> PullResult {
        try await client.pull(queue, subscription: Subscription(topic: queue.topic, expression: expression), group: group,
                              offset: offset, maxNums: maxNums, commitOffset: nil, suspendMillis: suspendMillis)
    }

    /// The group's committed offset (nil when none).
    public func fetchConsumeOffset(_ queue: MessageQueue) async throws -> Int64? { try await client.queryOffset(queue, group: group) }
    public func updateConsumeOffset(_ queue: MessageQueue, offset: Int64) async throws { try await client.updateOffset(queue, group: group, offset: offset) }
    public func maxOffset(_ queue: MessageQueue) async throws -> Int64 { try await client.queueOffset(RequestCode.getMaxOffset, queue) }
    public func minOffset(_ queue: MessageQueue) async throws -> Int64 { try await client.queueOffset(RequestCode.getMinOffset, queue) }
    public func searchOffset(_ queue: MessageQueue, timestamp: Int64) async throws -> Int64 {
        try await client.queueOffset(RequestCode.searchOffsetByTimestamp, queue, timestamp: timestamp)
    }
}
