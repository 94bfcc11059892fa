import Common
import NIOCore
import Remoting

/// Consumer and producer groups: settings, members, offsets of every group, offset resets (RocketMQ's
/// `AdminBrokerProcessor` and `Broker2Client`).
extension AdminBrokerProcessor {
    static let groupCodes = [
        RequestCode.updateAndCreateSubscriptionGroup, RequestCode.deleteSubscriptionGroup, RequestCode.getConsumerConnectionList,
        RequestCode.getProducerConnectionList, RequestCode.getBrokerConsumeStats, RequestCode.invokeBrokerToResetOffset,
    ]

    /// The answer to one of `groupCodes`.
    func answerGroups(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        switch request.code {
        case RequestCode.updateAndCreateSubscriptionGroup:
            let config: SubscriptionGroupConfig
            do { config = try SubscriptionGroupConfig.decode(from: request.body) } catch {
                return .response(to: request, code: ResponseCode.systemError, remark: "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP body: \(error)")
            }
            services.subscriptionGroups.upsert(config)
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.deleteSubscriptionGroup:
            let group = try header.string("groupName")
            services.subscriptionGroups.delete(group)
            if header.bool("removeOffset") { services.offsets.removeOffsets(group: group) }
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.getConsumerConnectionList:
            let group = try header.string("consumerGroup")
            guard let connection = services.consumers.connection(group: group) else {
                return .response(to: request, code: ResponseCode.consumerNotOnline, remark: "the consumer group[\(group)] not online")
            }
            return .response(to: request, code: ResponseCode.success, body: connection.encode())
        case RequestCode.getProducerConnectionList:
            let group = try header.string("producerGroup")
            let connections = services.producers.connections(group: group)
            guard !connections.isEmpty else {
                return .response(to: request, code: ResponseCode.systemError, remark: "the producer group[\(group)] not exist")
            }
            return .response(to: request, code: ResponseCode.success, body: ProducerConnection(connectionSet: connections).encode())
        case RequestCode.getBrokerConsumeStats:
            return .response(to: request, code: ResponseCode.success, body: brokerConsumeStats(orderOnly: header.bool("isOrder")).encode())
        default:
            return try resetOffset(request, header)
        }
    }

    /// GET_BROKER_CONSUME_STATS: every subscription group's progress on each topic it committed offsets for
    /// (only order topics with `isOrder`); a topic the group's online members no longer subscribe is left out.
    func brokerConsumeStats(orderOnly: Bool) -> ConsumeStatsList {
        var list: [(group: String, stats: [ConsumeStats])] = []
        var totalDiff: Int64 = 0
        for group in services.subscriptionGroups.wrapper.subscriptionGroupTable.keys.sorted() {
            var perTopic: [ConsumeStats] = []
            let online = !services.consumers.clients(group: group).isEmpty
            for topic in services.offsets.topics(group: group) {
                guard let config = services.topics.topic(topic), !orderOnly || config.order else { continue }
                if online, services.consumers.subscription(group: group, topic: topic) == nil { continue }
                let stats = ConsumeStats(offsetTable: queueProgress(group: group, topic: topic, writeQueueNums: config.writeQueueNums))
                totalDiff += stats.offsetTable.values.reduce(0) { $0 + $1.brokerOffset - $1.consumerOffset }
                perTopic.append(stats)
            }
            list.append((group, perTopic))
        }
        return ConsumeStatsList(consumeStatsList: list, brokerAddr: services.brokerAddr, totalDiff: totalDiff)
    }

    /// Broker offset, committed offset (0 when none) and the store time before it, for each write queue.
    func queueProgress(group: String, topic: String, writeQueueNums: Int) -> [MessageQueue: OffsetWrapper] {
        let store = services.store
        var table: [MessageQueue: OffsetWrapper] = [:]
        for queue in 0..<Int32(writeQueueNums) {
            let consumerOffset = max(0, services.offsets.committed(group: group, topic: topic, queueID: queue) ?? 0)
            let last = consumerOffset > 0 ? store.storeTime(topic: topic, queueID: queue, offset: consumerOffset - 1) ?? 0 : 0
            table[MessageQueue(topic: topic, brokerName: services.config.brokerName, queueID: queue)] =
                OffsetWrapper(brokerOffset: store.maxOffset(topic: topic, queueID: queue), consumerOffset: consumerOffset, lastTimestamp: last)
        }
        return table
    }

    /// INVOKE_BROKER_TO_RESET_OFFSET: the offset of each write queue at `timestamp` (-1: the queue's end), kept at the
    /// committed offset when that is lower and `isForce` is false; sent to every member of the group as
    /// RESET_CONSUMER_CLIENT_OFFSET (one-way), which moves and commits them. No member online: CONSUMER_NOT_ONLINE.
    func resetOffset(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        let topic = try header.string("topic")
        let group = try header.string("group")
        let timestamp = try header.int64("timestamp")
        let force = header.optionalString("isForce").map { $0 == "true" } ?? true
        guard let config = services.topics.topic(topic) else {
            return .response(to: request, code: ResponseCode.systemError,
                             remark: "[reset-offset] reset offset failed, no topic in this broker. topic=\(topic)")
        }
        var table: [MessageQueue: Int64] = [:]
        for queue in 0..<Int32(config.writeQueueNums) {
            guard let committed = services.offsets.committed(group: group, topic: topic, queueID: queue) else {
                return .response(to: request, code: ResponseCode.systemError, remark: "THe consumer group <\(group)> not exist")
            }
            let target = timestamp == -1 ? services.store.maxOffset(topic: topic, queueID: queue)
                : services.store.offset(forTimestamp: timestamp, topic: topic, queueID: queue)
            table[MessageQueue(topic: topic, brokerName: services.config.brokerName, queueID: queue)] =
                force || target < committed ? max(0, target) : committed
        }
        let clients = services.consumers.clients(group: group)
        guard !clients.isEmpty else {
            return .response(to: request, code: ResponseCode.consumerNotOnline,
                             remark: "Consumer not online, so can not reset offset, Group: \(group) Topic: \(topic) Timestamp: \(timestamp)")
        }
        let body = ResetOffsetBody(offsetTable: table)
        for client in clients {
            let command = RemotingCommand(code: RequestCode.resetConsumerClientOffset, opaque: 0, flag: RemotingCommand.onewayFlag,
                                          extFields: ["topic": topic, "group": group, "timestamp": "\(timestamp)"], body: body.encode())
            client.channel.writeAndFlush(command, promise: nil)
        }
        return .response(to: request, code: ResponseCode.success, body: body.encode())
    }
}
