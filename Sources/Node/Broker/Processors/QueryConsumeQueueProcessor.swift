import Common
import IndexFile
import Remoting

/// QUERY_CONSUME_QUEUE (321, `mqadmin queryCq`): up to `count` units of one consume queue from `index` — commit-log
/// offset, size and tags code of each — with the queue's index range, and for `consumerGroup` whether its
/// subscription takes each unit (`eval`), or that the group is not online for the topic.
struct QueryConsumeQueueProcessor: SynchronousProcessor {
    let services: BrokerServices
    var codes: [Int32] { [RequestCode.queryConsumeQueue] }

    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError)
        -> RemotingCommand {
        let topic = try header.string("topic")
        let queueID = try header.int32("queueId")
        let index = try header.int64("index")
        let count = Int(try header.optionalInt32("count") ?? 10)
        guard let config = services.topics.topic(topic), queueID >= 0, queueID < max(config.readQueueNums, config.writeQueueNums) else {
            return .response(to: request, code: ResponseCode.systemError, remark: "\(queueID)@\(topic) is not exist!")
        }
        let store = services.store
        var body = QueryConsumeQueueResponseBody(queueData: [], maxQueueIndex: store.maxOffset(topic: topic, queueID: queueID),
                                                 minQueueIndex: store.minOffset(topic: topic, queueID: queueID))
        // Outer nil: the group has no subscription to the topic here; inner nil: it takes every tag.
        var subscription: Set<Int32>?? = nil
        if let group = header.optionalString("consumerGroup") {
            subscription = services.consumers.subscription(group: group, topic: topic)
            if subscription == nil { body.filterData = "\(group)@\(topic) is not online!" }
        }
        var offset = index
        while body.queueData.count < min(max(count, 0), QueryConsumeQueueResponseBody.unitsMax),
              let unit = store.unit(topic: topic, queueID: queueID, offset: offset) {
            var data = ConsumeQueueData(physicOffset: unit.physicalOffset, physicSize: unit.messageSize, tagsCode: unit.tagsCode)
            if case .some(let codes) = subscription { data.eval = codes.map { $0.contains(Int32(truncatingIfNeeded: unit.tagsCode)) } ?? true }
            body.queueData.append(data)
            offset += 1
        }
        guard !body.queueData.isEmpty || count <= 0 else {
            // RocketMQ answers SUCCESS without a body when the index holds no unit.
            return .response(to: request, code: ResponseCode.success, remark: "Index \(index) of \(queueID)@\(topic) is not exist!")
        }
        return .response(to: request, code: ResponseCode.success, body: body.encode())
    }
}
