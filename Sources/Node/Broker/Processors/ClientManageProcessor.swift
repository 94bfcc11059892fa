import Common
import NIOCore
import Remoting

/// HEART_BEAT (34), UNREGISTER_CLIENT (35), CHECK_CLIENT_CONFIG (46): clients joining and leaving their groups
/// (RocketMQ's `ClientManageProcessor`).
struct ClientManageProcessor: SynchronousProcessor {
    let services: BrokerServices
    var codes: [Int32] { [RequestCode.heartBeat, RequestCode.unregisterClient, RequestCode.checkClientConfig] }

    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError) -> RemotingCommand {
        switch request.code {
        case RequestCode.heartBeat: return heartbeat(request, context: context)
        case RequestCode.unregisterClient:
            let clientID = try header.string("clientID")
            if let group = header.optionalString("consumerGroup"), services.consumers.unregister(clientID: clientID, group: group) {
                services.consumers.notifyConsumerIdsChanged(group)
            }
            if let group = header.optionalString("producerGroup") { services.producers.unregister(clientID: clientID, group: group) }
            return .response(to: request, code: ResponseCode.success)
        default:
            // Only SQL92 subscriptions are checked by RocketMQ; tag subscriptions are always fine.
            return .response(to: request, code: ResponseCode.success)
        }
    }

    func heartbeat(_ request: RemotingCommand, context: RequestContext) -> RemotingCommand {
        let data: HeartbeatData
        do { data = try HeartbeatData.decode(from: request.body) } catch {
            return .response(to: request, code: ResponseCode.systemError, remark: "HEART_BEAT body: \(error)")
        }
        for consumer in data.consumerDataSet {
            services.subscriptionGroups.findOrCreate(consumer.groupName)
            services.createTopicIfAbsent(TopicValidator.retryTopic(group: consumer.groupName), queueNums: 1)
        }
        let client = ClientChannelInfo(clientID: data.clientID, channel: context.channel, address: context.remoteAddress,
                                       language: request.language.name, version: request.version)
        services.producers.register(client, groups: data.producerGroups)
        for group in services.consumers.register(client, consumers: data.consumerDataSet) {
            services.consumers.notifyConsumerIdsChanged(group)
        }
        return .response(to: request, code: ResponseCode.success)
    }

    func connectionClosed(_ context: RequestContext) {
        services.producers.channelClosed(context.channel)
        for group in services.consumers.channelClosed(context.channel) { services.consumers.notifyConsumerIdsChanged(group) }
    }
}

/// GET_CONSUMER_LIST_BY_GROUP (38), QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15): a group's members and
/// committed offsets (RocketMQ's `ConsumerManageProcessor`).
struct ConsumerManageProcessor: SynchronousProcessor {
    let services: BrokerServices
    var codes: [Int32] { [RequestCode.getConsumerListByGroup, RequestCode.queryConsumerOffset, RequestCode.updateConsumerOffset] }

    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError) -> RemotingCommand {
        let group = try header.string("consumerGroup")
        switch request.code {
        case RequestCode.getConsumerListByGroup:
            let ids = services.consumers.consumerIDs(group: group)
            guard !ids.isEmpty else { return .response(to: request, code: ResponseCode.systemError, remark: "no consumer for this group, \(group)") }
            return .response(to: request, code: ResponseCode.success, body: ConsumerListBody(consumerIdList: ids).encode())
        case RequestCode.queryConsumerOffset:
            let topic = try header.string("topic")
            let queueID = try header.int32("queueId")
            if let offset = services.offsets.committed(group: group, topic: topic, queueID: queueID) {
                return .response(to: request, code: ResponseCode.success, extFields: ["offset": "\(offset)"])
            }
            // A new group starts at 0 while the queue's first message is still there (RocketMQ's rule).
            if services.store.minOffset(topic: topic, queueID: queueID) <= 0 {
                return .response(to: request, code: ResponseCode.success, extFields: ["offset": "0"])
            }
            return .response(to: request, code: ResponseCode.queryNotFound, remark: "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
        default:
            services.offsets.commit(group: group, topic: try header.string("topic"), queueID: try header.int32("queueId"),
                                    offset: try header.int64("commitOffset"))
            return .response(to: request, code: ResponseCode.success)
        }
    }
}
