import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting

/// Queue offsets by position and time, and messages by offset id or key (RocketMQ's offset requests and
/// `QueryMessageProcessor`).
struct QueryMessageProcessor: SynchronousProcessor {
    let services: BrokerServices
    var codes: [Int32] {
        [RequestCode.getMaxOffset, RequestCode.getMinOffset, RequestCode.getEarliestMsgStoretime, RequestCode.searchOffsetByTimestamp,
         RequestCode.viewMessageByID, RequestCode.queryMessage]
    }

    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError) -> RemotingCommand {
        let store = services.store
        func ok(_ fields: [String: String]) -> RemotingCommand { .response(to: request, code: ResponseCode.success, extFields: fields) }
        switch request.code {
        case RequestCode.viewMessageByID:
            let offset = try header.int64("offset")
            guard offset >= 0, let record = try? store.lookMessage(physicalOffset: UInt64(offset)) else {
                return .response(to: request, code: ResponseCode.systemError, remark: "no message at offset \(offset)")
            }
            return .response(to: request, code: ResponseCode.success, body: ByteBuffer(bytes: record.region.bytes))
        case RequestCode.queryMessage: return try query(request, header)
        default: break
        }
        let topic = try header.string("topic")
        let queueID = try header.int32("queueId")
        switch request.code {
        case RequestCode.getMaxOffset: return ok(["offset": "\(store.maxOffset(topic: topic, queueID: queueID))"])
        case RequestCode.getMinOffset: return ok(["offset": "\(store.minOffset(topic: topic, queueID: queueID))"])
        case RequestCode.getEarliestMsgStoretime:
            guard let time = store.earliestMessageTime(topic: topic, queueID: queueID) else {
                return .response(to: request, code: ResponseCode.systemError, remark: "the queue \(topic):\(queueID) holds no message")
            }
            return ok(["timestamp": "\(time)"])
        default:
            let timestamp = try header.int64("timestamp")
            return ok(["offset": "\(store.offset(forTimestamp: timestamp, topic: topic, queueID: queueID))"])
        }
    }

    /// QUERY_MESSAGE: the records of `topic` indexed under `key` within the time range.
    func query(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        let topic = try header.string("topic")
        let key = try header.string("key")
        let maxNum = Int(try header.optionalInt32("maxNum") ?? 32)
        let begin = try header.optionalInt64("beginTimestamp") ?? 0
        let end = try header.optionalInt64("endTimestamp") ?? .max
        let records = services.store.queryMessage(topic: topic, key: key, maxNum: max(1, maxNum), begin: begin, end: end)
        guard !records.isEmpty else {
            return .response(to: request, code: ResponseCode.queryNotFound, remark: "can not find message, maybe time range not correct")
        }
        var body = ByteBuffer()
        for record in records { body.writeBytes(record.region.bytes) }
        return .response(to: request, code: ResponseCode.success,
                         extFields: ["indexLastUpdateTimestamp": "\(currentTimeMillis())",
                                     "indexLastUpdatePhyoffset": "\(services.store.commitLog.wroteOffset)"],
                         body: body)
    }
}
