import Common
import Remoting

/// Consumer and producer groups as RocketMQ's `DefaultMQAdminExt` reaches them: settings on each master, the
/// members behind a group's retry topic, a member's own report, offset resets.
extension Admin {
    /// The masters of `cluster`, or `[brokerAddr]`; an error when neither names a broker.
    public func targets(brokerAddr: String?, cluster: String?) async throws -> [String] {
        if let brokerAddr { return [brokerAddr] }
        guard let cluster else { throw ClientError.badResponse("give a broker address (-b) or a cluster (-c)") }
        let masters = try await clusterInfo().filter { $0.cluster == cluster && $0.brokerID == BrokerData.masterID }.map(\.address)
        guard !masters.isEmpty else { throw ClientError.badResponse("no master broker in cluster \(cluster)") }
        return masters
    }

    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on one broker.
    public func updateSubscriptionGroup(_ config: SubscriptionGroupConfig, brokerAddr: String) async throws {
        _ = try await client.call(brokerAddr, code: RequestCode.updateAndCreateSubscriptionGroup, body: config.encode())
    }

    /// DELETE_SUBSCRIPTIONGROUP on one broker (its committed offsets too with `removeOffset`).
    public func deleteSubscriptionGroup(_ group: String, brokerAddr: String, removeOffset: Bool) async throws {
        _ = try await client.call(brokerAddr, code: RequestCode.deleteSubscriptionGroup,
                                  fields: ["groupName": group, "removeOffset": removeOffset ? "true" : "false"])
    }

    /// A group's settings on one broker (nil when that broker has none).
    public func subscriptionGroupConfig(_ group: String, brokerAddr: String) async throws -> SubscriptionGroupConfig? {
        let response = try await client.call(brokerAddr, code: RequestCode.getAllSubscriptionGroupConfig)
        return try SubscriptionGroupWrapper.decode(from: response.body).subscriptionGroupTable[group]
    }

    /// The addresses that serve a group's retry topic (where its members heartbeat), one per broker name.
    func groupBrokers(_ group: String) async throws -> [String] {
        let topic = TopicValidator.retryTopic(group: group)
        guard let route = try await client.route(topic, refresh: true) else {
            throw ClientError.broker(code: ResponseCode.topicNotExist, remark: "No topic route info in name server for the topic: \(topic)",
                                     address: "NameServer")
        }
        return route.brokerDatas.compactMap { route.readAddress($0.brokerName) }
    }

    /// GET_CONSUMER_CONNECTION_LIST from `brokerAddr`, or from the brokers of the group's retry topic (the first that
    /// knows the group online).
    public func consumerConnection(group: String, brokerAddr: String? = nil) async throws -> ConsumerConnection {
        var lastError: Error = ClientError.broker(code: ResponseCode.consumerNotOnline, remark: "the consumer group[\(group)] not online",
                                                  address: brokerAddr ?? "broker")
        let addresses: [String]
        if let brokerAddr { addresses = [brokerAddr] } else { addresses = try await groupBrokers(group) }
        for address in addresses {
            do {
                let response = try await client.call(address, code: RequestCode.getConsumerConnectionList, fields: ["consumerGroup": group])
                return try ConsumerConnection.decode(from: response.body)
            } catch { lastError = error }
        }
        throw lastError
    }

    /// GET_PRODUCER_CONNECTION_LIST from every broker of `topic`, merged by client id.
    public func producerConnection(group: String, topic: String) async throws -> ProducerConnection {
        let route = try await topicRoute(topic).route
        var byID: [String: Connection] = [:]
        var lastError: Error?
        for broker in route.brokerDatas {
            guard let address = route.readAddress(broker.brokerName) else { continue }
            do {
                let response = try await client.call(address, code: RequestCode.getProducerConnectionList, fields: ["producerGroup": group])
                for connection in try ProducerConnection.decode(from: response.body).connectionSet { byID[connection.clientId] = connection }
            } catch { lastError = error }
        }
        if byID.isEmpty, let lastError { throw lastError }
        return ProducerConnection(connectionSet: byID.keys.sorted().map { byID[$0]! })
    }

    /// GET_CONSUMER_RUNNING_INFO for one member, relayed by a broker of the group's retry topic.
    public func consumerRunningInfo(group: String, clientID: String, jstack: Bool = false) async throws -> ConsumerRunningInfo {
        var lastError: Error = ClientError.badResponse("no broker serves the group \(group)")
        for address in try await groupBrokers(group) {
            do {
                let response = try await client.call(address, code: RequestCode.getConsumerRunningInfo, fields: [
                    "consumerGroup": group, "clientId": clientID, "jstackEnable": jstack ? "true" : "false",
                ], timeoutMillis: 12_000)
                return try ConsumerRunningInfo.decode(from: response.body)
            } catch { lastError = error }
        }
        throw lastError
    }

    /// GET_BROKER_CONSUME_STATS: every group's progress on one broker.
    public func brokerConsumeStats(brokerAddr: String, orderOnly: Bool, timeoutMillis: Int64) async throws -> ConsumeStatsList {
        let response = try await client.call(brokerAddr, code: RequestCode.getBrokerConsumeStats,
                                             fields: ["isOrder": orderOnly ? "true" : "false"], timeoutMillis: timeoutMillis)
        return try ConsumeStatsList.decode(from: response.body)
    }

    /// INVOKE_BROKER_TO_RESET_OFFSET on the master of each broker of `topic`: the members online move to the offsets at
    /// `timestamp` (-1: each queue's end). Throws `ClientError.broker` with CONSUMER_NOT_ONLINE when no member is online.
    public func resetOffsetByTimestamp(topic: String, group: String, timestamp: Int64, force: Bool) async throws -> [MessageQueue: Int64] {
        let route = try await topicRoute(topic).route
        var table: [MessageQueue: Int64] = [:]
        for broker in route.brokerDatas {
            guard let address = broker.masterAddress else { continue }
            let response = try await client.call(address, code: RequestCode.invokeBrokerToResetOffset, fields: [
                "topic": topic, "group": group, "timestamp": "\(timestamp)", "isForce": force ? "true" : "false",
            ])
            table.merge(try ResetOffsetBody.decode(from: response.body).offsetTable) { _, new in new }
        }
        return table
    }

    /// One queue of an offline reset (RocketMQ's `RollbackStats`).
    public struct RollbackStats: Sendable {
        public var queue: MessageQueue
        public var brokerOffset: Int64
        public var consumerOffset: Int64
        public var timestampOffset: Int64
        public var rollbackOffset: Int64
    }

    /// The reset for a group with no member online (RocketMQ's `resetOffsetByTimestampOld`): each queue's offset at
    /// `timestamp` is committed directly when `force` or when it is not past the committed one.
    public func resetOffsetOffline(topic: String, group: String, timestamp: Int64, force: Bool) async throws -> [RollbackStats] {
        let stats = try await topicStats(topic)
        let progress = Dictionary(try await consumeProgress(group: group, topic: topic).map { ($0.queue, $0) }) { a, _ in a }
        var rows: [RollbackStats] = []
        for queue in stats {
            let brokerOffset = progress[queue.queue]?.brokerOffset ?? queue.maxOffset
            let consumerOffset = progress[queue.queue]?.consumerOffset ?? queue.minOffset
            let target = timestamp == -1 ? queue.maxOffset
                : try await client.queueOffset(RequestCode.searchOffsetByTimestamp, queue.queue, timestamp: timestamp)
            var row = RollbackStats(queue: queue.queue, brokerOffset: brokerOffset, consumerOffset: consumerOffset,
                                    timestampOffset: target, rollbackOffset: consumerOffset)
            if force || target <= consumerOffset {
                row.rollbackOffset = target
                try await client.updateOffset(queue.queue, group: group, offset: target)
            }
            rows.append(row)
        }
        return rows
    }

    /// Commits `offset` for `group` on `queue` (UPDATE_CONSUMER_OFFSET to the queue's master).
    public func updateConsumeOffset(_ queue: MessageQueue, group: String, offset: Int64) async throws {
        try await client.updateOffset(queue, group: group, offset: offset)
    }
}
