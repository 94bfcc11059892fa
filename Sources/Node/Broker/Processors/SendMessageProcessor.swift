#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting
import Replication

/// SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320), and CONSUMER_SEND_MSG_BACK (36):
/// every message a client hands the broker, through the put pipeline (RocketMQ's `SendMessageProcessor`).
///
/// The hot path: header fields are read from the frame's bytes in one pass, the body and properties are
/// borrowed from the frame, and an ASYNC_FLUSH put on an ASYNC_MASTER answers without a promise.
struct SendMessageProcessor: BrokerRequestProcessor {
    let services: BrokerServices
    /// Sends waiting for their flush or slave, by event loop (answered in batches, see `WaitingSends`).
    let waiting = WaitingSendsByLoop()
    var codes: [Int32] { [RequestCode.sendMessage, RequestCode.sendMessageV2, RequestCode.sendBatchMessage, RequestCode.consumerSendMsgBack] }

    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        answer(request, context: context.futuresOnly).future(on: context.eventLoop)
    }

    /// The server's entry: an answer ready at once (a refusal, an ASYNC_FLUSH put) is `.now`, with no future.
    func answer(_ request: RemotingCommand, context: RequestContext) -> RemotingAnswer {
        if request.code == RequestCode.consumerSendMsgBack { return .later(sendBack(request, context: context)) }
        let startedNanos = services.stats.send == nil ? 0 : monotonicNanos()  // the send RT's start, when measured
        switch prepare(request, context: context) {
        case .failure(let refusal):
            return .now(.response(to: request, code: refusal.code, remark: refusal.remark))
        case .success(let send):
            return store(send, request: request, context: context, startedNanos: startedNanos)
        }
    }

    /// A send refused before the store: its response code and remark.
    struct Refusal: Error {
        var code: Int32
        var remark: String
    }

    /// A checked send: where it goes and what it is.
    struct Send {
        var fields: SendFields
        var topic: String
        var header: SendHeader
        var batch: Bool
        /// The topic's TOPIC_PUT_NUMS/SIZE, found with its config.
        var putStats: MessageStats
    }

    /// Checks the topic (auto-creating it from its template), the queue and the permissions.
    func prepare(_ request: RemotingCommand, context: RequestContext) -> Result<Send, Refusal> {
        let fields = SendFields(request.wireFields)
        guard services.isWriteable else {
            return .failure(Refusal(code: services.brokerRole == .slave ? ResponseCode.serviceNotAvailable : ResponseCode.noPermission,
                                    remark: "the broker[\(services.config.brokerName)] sending message is forbidden"))
        }
        let (topic, known) = lookUpTopic(fields, context: context)
        if known?.nameAllowsSend != true {  // a known topic's name was checked when it was made
            if let problem = TopicValidator.problem(with: topic) { return .failure(Refusal(code: ResponseCode.systemError, remark: problem)) }
            guard !TopicValidator.notAllowedSend.contains(topic) else {
                return .failure(Refusal(code: ResponseCode.noPermission, remark: "Sending message to topic[\(topic)] is forbidden."))
            }
        }
        let sendTopic: SendTopic
        switch known.map({ Result<SendTopic, Refusal>.success($0) }) ?? topicConfig(topic, fields: fields) {
        case .success(let found): sendTopic = found
        case .failure(let refusal): return .failure(refusal)
        }
        guard sendTopic.config.perm.isWriteable else {
            return .failure(Refusal(code: ResponseCode.noPermission, remark: "the topic[\(topic)] sending message is forbidden"))
        }
        let queueID: Int32
        switch chooseQueue(fields, config: sendTopic.config) {
        case .success(let chosen): queueID = chosen
        case .failure(let refusal): return .failure(refusal)
        }
        let header = SendHeader(queueID: queueID, sysFlag: fields.sysFlag?.int32 ?? 0, bornTimestamp: fields.bornTimestamp?.int64 ?? 0,
                                flag: fields.flag?.int32 ?? 0, reconsumeTimes: fields.reconsumeTimes?.int32 ?? 0,
                                bornHost: HostAddress(context.peerAddress))
        if header.isTransactionPrepared, services.config.transaction.rejectTransactionMessage {
            return .failure(Refusal(code: ResponseCode.noPermission,
                                    remark: "the broker[\(services.config.brokerName)] sending transaction message is forbidden"))
        }
        let batch = request.code == RequestCode.sendBatchMessage || fields.batch?.bool == true
        return .success(Send(fields: fields, topic: topic, header: header, batch: batch, putStats: sendTopic.putStats))
    }

    /// The topic's config, auto-created from its template (TBW102 unless the request names another) when
    /// `autoCreateTopicEnable` and the template may be inherited; with the topic's put statistics.
    func topicConfig(_ topic: String, fields: SendFields) -> Result<SendTopic, Refusal> {
        if let found = services.topics.topicForSend(topic) { return .success(found) }
        let templateName = fields.defaultTopic?.string ?? TopicValidator.autoCreateTopicKeyTopic
        guard services.config.autoCreateTopicEnable, let template = services.topics.topic(templateName), template.perm.isInherited else {
            return .failure(Refusal(code: ResponseCode.topicNotExist, remark: "topic[\(topic)] not exist, apply first please!"))
        }
        let wanted = fields.defaultTopicQueueNums?.int64.map { Int(clamping: $0) } ?? template.writeQueueNums
        let queues = max(1, min(wanted, template.writeQueueNums))
        var created = TopicConfig(topicName: topic, readQueueNums: queues, writeQueueNums: queues)
        created.perm = template.perm.subtracting(.inherit)
        if services.topics.createIfAbsent(created) { services.topicsChanged() }
        return services.topics.topicForSend(topic).map { .success($0) }
            ?? .failure(Refusal(code: ResponseCode.topicNotExist, remark: "topic[\(topic)] not exist, apply first please!"))
    }

    /// The request's queue: a negative id picks one at random; a malformed or out-of-range id is refused.
    func chooseQueue(_ fields: SendFields, config: TopicConfig) -> Result<Int32, Refusal> {
        guard let field = fields.queueID else { return .success(0) }
        guard var queueID = field.int32 else {
            return .failure(Refusal(code: ResponseCode.systemError, remark: "the field queueId must be a 32-bit integer, not \"\(field.string.prefix(64))\""))
        }
        if queueID < 0 { queueID = Int32.random(in: 0..<Int32(max(1, config.writeQueueNums))) }
        guard queueID < max(config.writeQueueNums, config.readQueueNums) else {
            return .failure(Refusal(code: ResponseCode.systemError,
                                    remark: "request queueId[\(queueID)] is illegal, topic: \(config.topicName) writeQueueNums: \(config.writeQueueNums)"))
        }
        return .success(queueID)
    }

    /// Puts the message (or batch) and answers when the pipeline says the modes' promises hold: at once, or (in the
    /// server) with its event loop's other waiting sends once their flush or slave confirms, or through a future.
    func store(_ send: Send, request: RemotingCommand, context: RequestContext, startedNanos: UInt64 = 0) -> RemotingAnswer {
        let body = request.body ?? ByteBuffer()
        let sends = context.answersLater && services.pipeline.answersWait ? waiting.forLoop(context.eventLoop, services: services) : nil
        let slot = sends?.reserve() ?? 0
        let route: PutAnswerRoute = sends.map { .queue($0.queue, slot: slot) } ?? .promise(on: context.eventLoop)
        let outcome: PutOutcome<StoredSend> = withFieldBytes(send.fields.properties) { properties in
            body.withUnsafeReadableBytes { bodyBytes in
                if send.header.isTransactionPrepared {
                    return storeHalf(bodyBytes, send: send, properties: properties, answering: route)
                }
                if let level = delayLevel(properties) {
                    guard !send.batch else { return .failed(PutFailure(.messageIllegal, "batch messages cannot be delayed")) }
                    return storeDelayed(bodyBytes, send: send, properties: properties, level: level, answering: route)
                }
                return send.fields.topic!.withBytes { topic in
                    send.batch
                        ? storeBatch(bodyBytes, topic: topic, header: send.header, batchProperties: properties, answering: route)
                        : storeOne(bodyBytes, topic: topic, header: send.header, properties: properties, answering: route)
                }
            }
        }
        let counted = (stats: send.putStats, bytes: body.readableBytes)
        if case .queued(let stored) = outcome {
            sends!.hold(slot, WaitingSends.Waiting(request: RequestHead(request), context: context, stored: stored,
                                                   startedNanos: startedNanos, counted: counted))
            return .deferred
        }
        sends?.release(slot)
        switch outcome {
        case .failed(let failure):
            services.stats.send?.record(failure.status, startedNanos: startedNanos)
            services.stats.countPutFailed()
            return .now(.response(to: request, code: ResponseCode.of(failure.status), remark: failure.message))
        case .done(let stored, let status):
            return .now(response(to: request, stored, status: status, writer: context.fieldsWriter(capacity: 128), startedNanos: startedNanos,
                                 counted: counted))
        case .pending(let stored, let future):
            return .later(future.map { status in
                response(to: request, stored, status: status, writer: context.fieldsWriter(capacity: 128), startedNanos: startedNanos,
                         counted: counted)
            })
        case .queued:
            preconditionFailure("answered above")
        }
    }

    /// A send's offset message id(s): one message's (written as hex straight into the answer), or a batch's, comma-joined.
    enum StoredIDs: Sendable {
        case one(MessageID)
        case joined(String)
    }

    /// What a send stored: the offset message id(s), the queue and its first offset, how many messages.
    struct StoredSend: Sendable {
        var msgID: StoredIDs
        var queueID: Int32
        var queueOffset: Int64
        var count: Int
    }

    func response(to request: RemotingCommand, _ stored: StoredSend, status: PutMessageStatus, writer fields: consuming HeaderFields.Writer,
                  startedNanos: UInt64 = 0, counted: (stats: MessageStats, bytes: Int)) -> RemotingCommand {
        Self.response(services: services, to: request, stored, status: status, writer: fields, startedNanos: startedNanos, counted: counted)
    }

    static func response(services: BrokerServices, to request: RemotingCommand, _ stored: StoredSend, status: PutMessageStatus,
                         writer fields: consuming HeaderFields.Writer, startedNanos: UInt64,
                         counted: (stats: MessageStats, bytes: Int)) -> RemotingCommand {
        services.stats.countPut(stored.count)
        if status != .putOK { services.stats.countPutFailed() }
        counted.stats.add(messages: stored.count, bytes: counted.bytes)
        services.stats.send?.record(status, count: stored.count, startedNanos: startedNanos)
        switch stored.msgID {
        case .one(let id): fields.append("msgId", id)
        case .joined(let ids): fields.append("msgId", ids)
        }
        fields.append("queueId", stored.queueID)
        fields.append("queueOffset", stored.queueOffset)
        fields.append("MSG_REGION", "DefaultRegion")
        fields.append("TRACE_ON", "true")
        var response = RemotingCommand(code: ResponseCode.of(status), fields: fields.fields, serializeType: request.serializeType)
        response.opaque = request.opaque
        response.flag = RemotingCommand.responseFlag
        return response
    }

    func storeOne(_ body: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer, header: SendHeader, properties: UnsafeRawBufferPointer,
                  answering route: PutAnswerRoute) -> PutOutcome<StoredSend> {
        let message = MessageView(topic: topic, body: body, properties: properties, queueID: header.queueID, flag: header.flag,
                                  sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost,
                                  reconsumeTimes: header.reconsumeTimes)
        return services.pipeline.put(message, answering: route).map { result in
            StoredSend(msgID: .one(MessageID(storeHost: NetAddress(result.append.storeHost), commitLogOffset: Int64(result.append.physicalOffset))),
                       queueID: header.queueID, queueOffset: result.queueOffset, count: 1)
        }
    }

    /// A delayed message waits in the schedule topic's queue for its level, with its real destination in
    /// REAL_TOPIC/REAL_QID.
    func storeDelayed(_ body: UnsafeRawBufferPointer, send: Send, properties: UnsafeRawBufferPointer, level: Int,
                      answering route: PutAnswerRoute) -> PutOutcome<StoredSend> {
        var rewritten = MessageProperties(bytes: properties)
        rewritten[MessageConst.delayTimeLevel] = "\(level)"
        rewritten[MessageConst.realTopic] = send.topic
        rewritten[MessageConst.realQueueID] = "\(send.header.queueID)"
        services.createTopicIfAbsent(TopicValidator.scheduleTopic, queueNums: services.schedule.levels)
        var header = send.header
        header.queueID = Int32(level - 1)
        let topic = Array(TopicValidator.scheduleTopic.utf8)
        let bytes = rewritten.bytes
        return topic.withUnsafeBytes { topic in
            bytes.withUnsafeBytes { properties in storeOne(body, topic: topic, header: header, properties: properties, answering: route) }
        }
    }

    /// The DELAY level a properties string asks for, clamped to the configured levels; nil for none.
    func delayLevel(_ properties: UnsafeRawBufferPointer) -> Int? {
        guard Self.mayHaveDelay(properties) else { return nil }
        guard let raw = MessageProperties.value(of: "DELAY", in: properties), !raw.isEmpty, raw.count < 4 else { return nil }
        var level = 0
        for byte in raw {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            level = level * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard level > 0 else { return nil }
        return min(level, services.schedule.levels)
    }
}

extension SendMessageProcessor {
    /// False when no property can be DELAY, found with memchr from name separator to name separator (most sends
    /// are not delayed; a full walk compares every name byte by byte).
    static func mayHaveDelay(_ properties: UnsafeRawBufferPointer) -> Bool {
        guard let base = properties.baseAddress else { return false }
        let name: StaticString = "DELAY"
        var at = 0
        while at < properties.count, let hit = memchr(base + at, 1, properties.count - at) {
            let separator = UnsafeRawPointer(hit) - base
            let start = separator - name.utf8CodeUnitCount
            if start >= 0, start == 0 || properties[start - 1] == 2, memcmp(base + start, name.utf8Start, name.utf8CodeUnitCount) == 0 {
                return true
            }
            at = separator + 1
        }
        return false
    }
}

extension PutOutcome {
    /// The same outcome with the stored value transformed.
    func map<T: Sendable>(_ transform: (Stored) -> T) -> PutOutcome<T> {
        switch self {
        case .failed(let failure): .failed(failure)
        case .done(let stored, let status): .done(transform(stored), status)
        case .pending(let stored, let future): .pending(transform(stored), future)
        case .queued(let stored): .queued(transform(stored))
        }
    }
}

/// Runs `body` with a field's bytes (empty when the field is missing).
func withFieldBytes<R>(_ value: HeaderFields.Value?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    guard let value else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
    return value.withBytes(body)
}

extension RemotingCommand {
    /// The fields as bytes whichever way the command was made (a dictionary is written out once).
    var wireFields: HeaderFields {
        if let fields { return fields }
        return HeaderFields.binary(extFields)
    }
}
