import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting
import Replication

extension SendMessageProcessor {
    /// SEND_MESSAGE's fields (long names) and SEND_MESSAGE_V2's (one letter), found in one pass. Kept as locations
    /// in the request's field bytes: one reference to them however many fields there are.
    struct SendFields {
        let all: HeaderFields
        private var topicAt, queueIDAt, sysFlagAt, bornTimestampAt, flagAt, propertiesAt, reconsumeTimesAt, batchAt, defaultTopicAt,
                    defaultTopicQueueNumsAt: HeaderFields.Location?

        var topic: HeaderFields.Value? { topicAt.map(all.value(at:)) }
        var queueID: HeaderFields.Value? { queueIDAt.map(all.value(at:)) }
        var sysFlag: HeaderFields.Value? { sysFlagAt.map(all.value(at:)) }
        var bornTimestamp: HeaderFields.Value? { bornTimestampAt.map(all.value(at:)) }
        var flag: HeaderFields.Value? { flagAt.map(all.value(at:)) }
        var properties: HeaderFields.Value? { propertiesAt.map(all.value(at:)) }
        var reconsumeTimes: HeaderFields.Value? { reconsumeTimesAt.map(all.value(at:)) }
        var batch: HeaderFields.Value? { batchAt.map(all.value(at:)) }
        var defaultTopic: HeaderFields.Value? { defaultTopicAt.map(all.value(at:)) }
        var defaultTopicQueueNums: HeaderFields.Value? { defaultTopicQueueNumsAt.map(all.value(at:)) }

        init(_ fields: HeaderFields) {
            all = fields
            fields.forEachLocation { key, value in
                if key.count == 1 {
                    switch key[0] {
                    case UInt8(ascii: "b"): topicAt = value
                    case UInt8(ascii: "c"): defaultTopicAt = value
                    case UInt8(ascii: "d"): defaultTopicQueueNumsAt = value
                    case UInt8(ascii: "e"): queueIDAt = value
                    case UInt8(ascii: "f"): sysFlagAt = value
                    case UInt8(ascii: "g"): bornTimestampAt = value
                    case UInt8(ascii: "h"): flagAt = value
                    case UInt8(ascii: "i"): propertiesAt = value
                    case UInt8(ascii: "j"): reconsumeTimesAt = value
                    case UInt8(ascii: "m"): batchAt = value
                    default: break
                    }
                    return true
                }
                assignLongName(key, value)
                return true
            }
        }

        private mutating func assignLongName(_ key: UnsafeRawBufferPointer, _ value: HeaderFields.Location) {
            func named(_ text: StaticString) -> Bool { HeaderFields.Value.equal(key, text) }
            if named("topic") { topicAt = value }
            else if named("queueId") { queueIDAt = value }
            else if named("sysFlag") { sysFlagAt = value }
            else if named("bornTimestamp") { bornTimestampAt = value }
            else if named("flag") { flagAt = value }
            else if named("properties") { propertiesAt = value }
            else if named("reconsumeTimes") { reconsumeTimesAt = value }
            else if named("batch") { batchAt = value }
            else if named("defaultTopic") { defaultTopicAt = value }
            else if named("defaultTopicQueueNums") { defaultTopicQueueNumsAt = value }
        }
    }

    /// The stored fields a send's header gives every message it carries.
    struct SendHeader {
        var queueID: Int32
        var sysFlag: Int32
        var bornTimestamp: Int64
        var flag: Int32
        var reconsumeTimes: Int32
        var bornHost: HostAddress
    }

    /// A batch body (§5.2 of the protocol reference): each record is stored with the batch's topic, queue and born
    /// fields and its own properties plus the batch-level ones. Sizes are checked before anything is copied: the
    /// records' stored properties together may not exceed `maxMessageSize`, so one frame costs at most a bounded
    /// multiple of its own length.
    func storeBatch(_ bytes: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer, header: SendHeader,
                    batchProperties: UnsafeRawBufferPointer, answering route: PutAnswerRoute) -> PutOutcome<StoredSend> {
        let sizeMax = services.store.config.commitLog.maxMessageSize
        var count = 0
        var mergedBytes = 0
        var tooLong = false
        do throws(BodyError) {
            try MessageBatch.forEachRecord(in: bytes) { record in
                count += 1
                let merged = record.properties.count + (batchProperties.isEmpty ? 0 : batchProperties.count + 1)
                tooLong = tooLong || merged > MessageProperties.byteCountMax
                mergedBytes += merged
            }
        } catch {
            return .failed(PutFailure(.messageIllegal, error.description))
        }
        guard count > 0 else { return .failed(PutFailure(.messageIllegal, "the batch holds no message")) }
        guard !tooLong, mergedBytes <= sizeMax else {
            return .failed(PutFailure(.messageIllegal, "the batch's properties take \(mergedBytes) bytes once merged; at most \(sizeMax) and 32767 per message"))
        }
        var records: [(flag: Int32, body: Range<Int>, properties: Range<Int>)] = []
        records.reserveCapacity(count)
        var properties: [UInt8] = []
        properties.reserveCapacity(mergedBytes)
        try? MessageBatch.forEachRecord(in: bytes) { record in
            let start = properties.count
            properties += UnsafeRawBufferPointer(rebasing: bytes[record.properties])
            if !batchProperties.isEmpty {
                if properties.count > start, properties.last != MessageProperties.propertySeparator {
                    properties.append(MessageProperties.propertySeparator)
                }
                properties += batchProperties
            }
            records.append((record.flag, record.body, start..<properties.count))
        }
        let outcome = properties.withUnsafeBytes { allProperties in
            let views = records.map { record in
                MessageView(topic: topic, body: UnsafeRawBufferPointer(rebasing: bytes[record.body]),
                            properties: UnsafeRawBufferPointer(rebasing: allProperties[record.properties]), queueID: header.queueID,
                            flag: record.flag, sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost)
            }
            return services.pipeline.putBatch(views, answering: route)
        }
        return outcome.map { stored in
            StoredSend(msgID: .joined(batchMessageIDs(stored.0)), queueID: header.queueID, queueOffset: stored.firstQueueOffset, count: count)
        }
    }

    /// The offset message ids of a stored batch, comma-joined.
    func batchMessageIDs(_ result: BatchAppendResult) -> String {
        var ids: [String] = []
        var offset = result.physicalOffset
        while offset < result.nextOffset, case .record(let record)? = try? services.store.commitLog.readRecord(at: offset, checkCRC: false) {
            ids.append(MessageID(storeHost: NetAddress(services.storeHost), commitLogOffset: Int64(offset)).hexString)
            offset = record.nextOffset
        }
        return ids.joined(separator: ",")
    }

    /// CONSUMER_SEND_MSG_BACK: a message the consumer failed goes to `%RETRY%<group>` after a growing delay
    /// (level 3 + reconsumeTimes, or the one asked for), or to `%DLQ%<group>` once it was retried
    /// `maxReconsumeTimes` times.
    func sendBack(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        func answer(_ code: Int32, _ remark: String? = nil) -> EventLoopFuture<RemotingCommand?> {
            context.eventLoop.makeSucceededFuture(.response(to: request, code: code, remark: remark))
        }
        let header = RequestHeader(request)
        let offset: Int64, group: String, maxTimes: Int32, requestedLevel: Int32
        do throws(RequestHeader.FieldError) {
            offset = try header.int64("offset")
            group = try header.string("group")
            maxTimes = try header.optionalInt32("maxReconsumeTimes") ?? Int32(services.config.maxReconsumeTimes)
            requestedLevel = try header.optionalInt32("delayLevel") ?? 0
        } catch {
            return context.eventLoop.makeSucceededFuture(.response(to: request, error: error))
        }
        guard offset >= 0, let record = try? services.store.lookMessage(physicalOffset: UInt64(offset)) else {
            return answer(ResponseCode.systemError, "look message by offset failed, \(offset)")
        }
        var properties = MessageProperties(bytes: record.properties)
        if properties[MessageConst.retryTopic] == nil { properties[MessageConst.retryTopic] = record.topicString }
        if properties[MessageConst.originMessageID] == nil {
            properties[MessageConst.originMessageID] = properties[MessageConst.uniqueClientMessageIDKeyIndex]
                ?? MessageID(storeHost: NetAddress(record.header.storeHost), commitLogOffset: offset).hexString
        }
        properties[MessageConst.delayTimeLevel] = nil
        var copy = StoredCopy(record)
        copy.reconsumeTimes = record.header.reconsumeTimes + 1
        copy.queueID = 0
        var topic: String
        if record.header.reconsumeTimes >= maxTimes || requestedLevel < 0 {
            topic = TopicValidator.dlqTopic(group: group)
            services.createTopicIfAbsent(topic, queueNums: 1)
        } else {
            services.createTopicIfAbsent(TopicValidator.retryTopic(group: group), queueNums: 1)
            let level = min(requestedLevel == 0 ? 3 + Int(record.header.reconsumeTimes) : Int(requestedLevel), services.schedule.levels)
            properties[MessageConst.delayTimeLevel] = "\(level)"
            properties[MessageConst.realTopic] = TopicValidator.retryTopic(group: group)
            properties[MessageConst.realQueueID] = "0"
            services.createTopicIfAbsent(TopicValidator.scheduleTopic, queueNums: services.schedule.levels)
            topic = TopicValidator.scheduleTopic
            copy.queueID = Int32(level - 1)
        }
        switch copy.put(through: services.pipeline, topic: topic, properties: properties.bytes, on: nil) {
        case .failed(let failure): return answer(ResponseCode.of(failure.status), failure.message)
        case .done, .pending, .queued: return answer(ResponseCode.success)
        }
    }
}
