#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import NIOCore

extension RequestCode {
    public static let queryConsumerOffset: Int32 = 14
    public static let updateConsumerOffset: Int32 = 15
    public static let updateAndCreateTopic: Int32 = 17
    public static let searchOffsetByTimestamp: Int32 = 29
    public static let getMaxOffset: Int32 = 30
    public static let getMinOffset: Int32 = 31
    public static let getEarliestMsgStoretime: Int32 = 32
    public static let viewMessageByID: Int32 = 33
    public static let unregisterClient: Int32 = 35
    public static let getConsumerListByGroup: Int32 = 38
    public static let queryMessage: Int32 = 12
    public static let getAllTopicConfig: Int32 = 21
    public static let getBrokerRuntimeInfo: Int32 = 28
    public static let consumerSendMsgBack: Int32 = 36
    public static let lockBatchMQ: Int32 = 41
    public static let unlockBatchMQ: Int32 = 42
    public static let getTopicStatsInfo: Int32 = 202
    public static let getConsumeStats: Int32 = 208
    public static let deleteTopicInBroker: Int32 = 215
    public static let notifyConsumerIdsChanged: Int32 = 40
    public static let sendMessageV2: Int32 = 310
    public static let sendBatchMessage: Int32 = 320
}

extension ResponseCode {
    public static let flushDiskTimeout: Int32 = 10
    public static let messageIllegal: Int32 = 13
    public static let serviceNotAvailable: Int32 = 14
    public static let noPermission: Int32 = 16
    public static let pullNotFound: Int32 = 19
    public static let pullRetryImmediately: Int32 = 20
    public static let pullOffsetMoved: Int32 = 21
    public static let subscriptionNotExist: Int32 = 24
}

/// The broker's request processor (SEND, PULL, HEART_BEAT, offsets, consumer lists).
public struct BrokerProcessor: RemotingProcessor {
    let broker: Broker
    /// Called when a topic was created, so the broker re-registers with the NameServers.
    let topicsChanged: @Sendable () -> Void

    public init(broker: Broker, topicsChanged: @escaping @Sendable () -> Void) {
        self.broker = broker
        self.topicsChanged = topicsChanged
        broker.pullRerun = { [broker] request, channel in
            BrokerProcessor(broker: broker, topicsChanged: topicsChanged).pull(request, channel: channel, mayHold: false).response!
        }
    }

    public func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        // SEND and PULL read their fields from the frame's bytes; the rest use the dictionary view.
        switch request.code {
        case RequestCode.sendMessage, RequestCode.sendMessageV2, RequestCode.sendBatchMessage:
            return send(request, context: context)
        case RequestCode.pullMessage:
            let (response, held) = pull(request, channel: context.channel, mayHold: true)
            if let response { return context.eventLoop.makeSucceededFuture(response) }
            return held!
        default:
            break
        }
        let f = request.extFields
        func fail(_ code: Int32, _ remark: String) -> EventLoopFuture<RemotingCommand?> {
            context.eventLoop.makeSucceededFuture(.response(to: request, code: code, remark: remark))
        }
        func ok(_ fields: [String: String] = [:], body: ByteBuffer? = nil) -> EventLoopFuture<RemotingCommand?> {
            context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.success, extFields: fields, body: body))
        }
        func queueID() -> Int32? { f["queueId"].flatMap { Int32($0) } }
        switch request.code {
        case RequestCode.heartBeat:
            return heartbeat(request, context: context)
        case RequestCode.unregisterClient:
            let clientID = f["clientID"] ?? ""
            for group in [f["consumerGroup"], f["producerGroup"]].compactMap({ $0 }) where !group.isEmpty {
                if broker.unregister(clientID: clientID, group: group) { notify(group: group) }
            }
            return ok()
        case RequestCode.getConsumerListByGroup:
            let group = f["consumerGroup"] ?? ""
            let ids = broker.consumerIDs(group: group)
            guard !ids.isEmpty else { return fail(ResponseCode.systemError, "no consumer for this group, \(group)") }
            return ok(body: ByteBuffer(string: "{\"consumerIdList\":[\(ids.map(jsonString).joined(separator: ","))]}"))
        case RequestCode.queryConsumerOffset:
            guard let topic = f["topic"], let group = f["consumerGroup"], let queue = queueID() else { return fail(ResponseCode.systemError, "QUERY_CONSUMER_OFFSET needs consumerGroup, topic, queueId") }
            if let offset = broker.committedOffset(group: group, topic: topic, queueID: queue) { return ok(["offset": "\(offset)"]) }
            if broker.store.minOffset(topic: topic, queueID: queue) <= 0 { return ok(["offset": "0"]) }
            return fail(ResponseCode.queryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
        case RequestCode.updateConsumerOffset:
            guard let topic = f["topic"], let group = f["consumerGroup"], let queue = queueID(), let offset = f["commitOffset"].flatMap({ Int64($0) }) else {
                return fail(ResponseCode.systemError, "UPDATE_CONSUMER_OFFSET needs consumerGroup, topic, queueId, commitOffset")
            }
            broker.commitOffset(group: group, topic: topic, queueID: queue, offset: offset)
            return ok()
        case RequestCode.getMaxOffset, RequestCode.getMinOffset, RequestCode.getEarliestMsgStoretime, RequestCode.searchOffsetByTimestamp:
            guard let topic = f["topic"], let queue = queueID() else { return fail(ResponseCode.systemError, "request \(request.code) needs topic and queueId") }
            switch request.code {
            case RequestCode.getMaxOffset: return ok(["offset": "\(broker.store.maxOffset(topic: topic, queueID: queue))"])
            case RequestCode.getMinOffset: return ok(["offset": "\(broker.store.minOffset(topic: topic, queueID: queue))"])
            case RequestCode.getEarliestMsgStoretime: return ok(["timestamp": "\(broker.store.earliestMessageTime(topic: topic, queueID: queue) ?? 0)"])
            default:
                let timestamp = f["timestamp"].flatMap { Int64($0) } ?? 0
                return ok(["offset": "\(broker.store.offset(forTimestamp: timestamp, topic: topic, queueID: queue))"])
            }
        case RequestCode.consumerSendMsgBack:
            return sendBack(request, context: context)
        case RequestCode.lockBatchMQ, RequestCode.unlockBatchMQ:
            let text = request.body.map { String(buffer: $0) } ?? "{}"
            guard let json = try? JSONValue.parse(text), let group = json["consumerGroup"]?.string, let clientID = json["clientId"]?.string else {
                return fail(ResponseCode.systemError, "lock body needs consumerGroup, clientId and mqSet")
            }
            let queues = (json["mqSet"]?.array ?? []).compactMap { mq -> LockedQueue? in
                guard let topic = mq["topic"]?.string, let name = mq["brokerName"]?.string, let id = mq["queueId"]?.int else { return nil }
                return LockedQueue(topic: topic, brokerName: name, queueID: Int32(id))
            }
            if request.code == RequestCode.unlockBatchMQ {
                broker.unlock(group: group, clientID: clientID, queues: queues)
                return ok()
            }
            let locked = broker.tryLock(group: group, clientID: clientID, queues: queues, now: wallClockMillis())
            let set = locked.map { "{\"brokerName\":\(jsonString($0.brokerName)),\"queueId\":\($0.queueID),\"topic\":\(jsonString($0.topic))}" }
            return ok(body: ByteBuffer(string: "{\"lockOKMQSet\":[\(set.joined(separator: ","))]}"))
        case RequestCode.updateAndCreateTopic:
            guard let topic = f["topic"], !topic.isEmpty, isLegalTopic(topic),
                  topic.utf8.count <= 127 else { return fail(ResponseCode.systemError, "The specified topic[\(f["topic"] ?? "")] is invalid: use ^[%|a-zA-Z0-9_-]+$, up to 127 characters.") }
            guard topic != MessageStoreConfig.scheduleTopic, topic != "TBW102" else { return fail(ResponseCode.systemError, "The topic[\(topic)] is conflict with system topic.") }
            var config = TopicConfig(topicName: topic, readQueueNums: Int(f["readQueueNums"] ?? "") ?? 8,
                                     writeQueueNums: Int(f["writeQueueNums"] ?? "") ?? 8, perm: Int(f["perm"] ?? "") ?? 6)
            config.order = ["true", "1"].contains(f["order"] ?? "")
            broker.upsertTopic(config)
            topicsChanged()
            return ok()
        case RequestCode.deleteTopicInBroker:
            guard let topic = f["topic"], !topic.isEmpty else { return fail(ResponseCode.systemError, "DELETE_TOPIC_IN_BROKER needs topic") }
            broker.deleteTopic(topic)
            topicsChanged()
            return ok()
        case RequestCode.getAllTopicConfig:
            return ok(body: ByteBuffer(string: broker.topicConfigWrapper()))
        case RequestCode.queryMessage:
            guard let topic = f["topic"], let key = f["key"] else { return fail(ResponseCode.systemError, "QUERY_MESSAGE needs topic and key") }
            let maxNum = Int(f["maxNum"] ?? "32") ?? 32
            let records = broker.store.queryMessage(topic: topic, key: key, maxNum: maxNum,
                                                    begin: Int64(f["beginTimestamp"] ?? "0") ?? 0, end: Int64(f["endTimestamp"] ?? "") ?? .max)
            guard !records.isEmpty else { return fail(ResponseCode.queryNotFound, "can not find message, maybe time range not correct") }
            var body = ByteBuffer()
            for record in records { body.writeBytes(record.region.bytes) }
            return ok(["indexLastUpdateTimestamp": "\(wallClockMillis())", "indexLastUpdatePhyoffset": "\(broker.store.commitLog.wroteOffset)"], body: body)
        case RequestCode.getBrokerRuntimeInfo:
            let info = broker.runtimeInfo().sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + jsonString($0.value) }
            return ok(body: ByteBuffer(string: "{\"table\":{\(info.joined(separator: ","))}}"))
        case RequestCode.getTopicStatsInfo:
            guard let topic = f["topic"], let config = broker.topicConfig(topic) else {
                return fail(ResponseCode.topicNotExist, "topic[\(f["topic"] ?? "")] not exist")
            }
            let entries = (0..<Int32(config.writeQueueNums)).map { queue -> String in
                let maxOffset = broker.store.maxOffset(topic: topic, queueID: queue)
                let last = maxOffset > 0 ? broker.store.storeTime(topic: topic, queueID: queue, offset: maxOffset - 1) ?? 0 : 0
                return "{\"brokerName\":\(jsonString(broker.config.brokerName)),\"queueId\":\(queue),\"topic\":\(jsonString(topic))}:{\"lastUpdateTimestamp\":\(last),\"maxOffset\":\(maxOffset),\"minOffset\":\(broker.store.minOffset(topic: topic, queueID: queue))}"
            }
            return ok(body: ByteBuffer(string: "{\"offsetTable\":{\(entries.joined(separator: ","))}}"))
        case RequestCode.getConsumeStats:
            guard let group = f["consumerGroup"] else { return fail(ResponseCode.systemError, "GET_CONSUME_STATS needs consumerGroup") }
            let entries = broker.consumedQueues(group: group, topic: f["topic"]).map { (topic, queue, consumerOffset) -> String in
                let brokerOffset = broker.store.maxOffset(topic: topic, queueID: queue)
                let last = consumerOffset > 0 ? broker.store.storeTime(topic: topic, queueID: queue, offset: consumerOffset - 1) ?? 0 : 0
                return "{\"brokerName\":\(jsonString(broker.config.brokerName)),\"queueId\":\(queue),\"topic\":\(jsonString(topic))}:{\"brokerOffset\":\(brokerOffset),\"consumerOffset\":\(consumerOffset),\"lastTimestamp\":\(last)}"
            }
            return ok(body: ByteBuffer(string: "{\"consumeTps\":0.0,\"offsetTable\":{\(entries.joined(separator: ","))}}"))
        case RequestCode.viewMessageByID:
            guard let offset = f["offset"].flatMap({ UInt64($0) }),
                  let record = try? broker.store.lookMessage(physicalOffset: offset) else { return fail(ResponseCode.systemError, "no message at offset \(f["offset"] ?? "?")") }
            return ok(body: ByteBuffer(bytes: record.region.bytes))
        default:
            return fail(ResponseCode.requestCodeNotSupported, " request type \(request.code) not supported")
        }
    }

    public func connectionClosed(_ context: RequestContext) {
        for group in broker.channelClosed(context.channel) { notify(group: group) }
    }

    /// NOTIFY_CONSUMER_IDS_CHANGED (one-way) to every member of `group`.
    func notify(group: String) {
        for channel in broker.channels(group: group) {
            let command = RemotingCommand(code: RequestCode.notifyConsumerIdsChanged, opaque: 0, flag: RemotingCommand.onewayFlag,
                                          extFields: ["consumerGroup": group])
            channel.writeAndFlush(command, promise: nil)
        }
    }

    // MARK: SEND

    func send(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        let f = SendFields(request.wireFields)
        func fail(_ code: Int32, _ remark: String) -> EventLoopFuture<RemotingCommand?> {
            context.eventLoop.makeSucceededFuture(.response(to: request, code: code, remark: remark))
        }
        guard let topic = f.topic?.string, !topic.isEmpty else { return fail(ResponseCode.systemError, "The specified topic is blank.") }
        guard topic.utf8.count <= (topic.hasPrefix("%RETRY%") || topic.hasPrefix("%DLQ%") ? 255 : 127), isLegalTopic(topic) else {
            return fail(ResponseCode.systemError, "The specified topic[\(topic)] contains illegal characters or is too long; allowing only ^[%|a-zA-Z0-9_-]+$ up to 127 characters.")
        }
        var config = broker.topicConfig(topic)
        if config == nil {
            let template = broker.topicConfig(f.defaultTopic?.string ?? "TBW102")
            guard broker.config.autoCreateTopicEnable, let template, template.perm & 1 != 0 else {
                return fail(ResponseCode.topicNotExist, "topic[\(topic)] not exist, apply first please!")
            }
            let wanted = f.defaultTopicQueueNums?.int64.map { Int($0) } ?? template.writeQueueNums
            let queues = max(1, min(wanted, template.writeQueueNums))
            let created = TopicConfig(topicName: topic, readQueueNums: queues, writeQueueNums: queues, perm: template.perm & ~1)
            if broker.createTopic(created) { topicsChanged() }
            config = broker.topicConfig(topic)
        }
        guard let config else { return fail(ResponseCode.topicNotExist, "topic[\(topic)] not exist, apply first please!") }
        var queueID = f.queueID?.int32 ?? 0
        if queueID < 0 { queueID = Int32.random(in: 0..<Int32(max(1, config.writeQueueNums))) }
        guard queueID < max(config.writeQueueNums, config.readQueueNums) else {
            return fail(ResponseCode.systemError, "request queueId[\(queueID)] is illegal, topic: \(topic) writeQueueNums: \(config.writeQueueNums)")
        }
        let batch = request.code == RequestCode.sendBatchMessage || f.batch?.bool == true
        let header = SendHeader(queueID: queueID, sysFlag: f.sysFlag?.int32 ?? 0, bornTimestamp: f.bornTimestamp?.int64 ?? 0,
                                flag: f.flag?.int32 ?? 0, reconsumeTimes: f.reconsumeTimes?.int32 ?? 0,
                                bornHost: context.channel.remoteAddress.map(hostAddress) ?? .loopback)
        // Only SYNC_FLUSH puts wait for durability: they get a token whose answer completes a promise.
        let waits = broker.config.store.commitLog.flushDiskType == .syncFlush
        let promise = waits ? context.eventLoop.makePromise(of: DurabilityStatus.self) : nil
        let token = promise.map { broker.durabilityToken($0) } ?? 0
        let body = request.body ?? ByteBuffer()
        // Borrow the body and properties from the frame; only a delayed message builds new properties.
        let stored = withFieldBytes(f.properties) { properties in
            body.withUnsafeReadableBytes { bodyBytes -> Result<(PutMessageResult?, (BatchAppendResult, Int64)?, Bool), StoreError> in
                if let level = delayLevel(properties) {
                    guard !batch else { return .failure(StoreError(.messageTooLarge, "batch messages cannot be delayed")) }
                    let (storeTopic, storeQueue, scheduledProperties) = scheduled(Array(properties), topic: topic, queueID: queueID, level: level)
                    var delayed = header
                    delayed.queueID = storeQueue
                    return Array(storeTopic.utf8).withUnsafeBytes { t in scheduledProperties.withUnsafeBytes { p in
                        storeOne(bodyBytes, topic: t, header: delayed, properties: p, token: token).map { ($0, nil, $0.durabilityPending) }
                    } }
                }
                return f.topic!.withBytes { topicBytes in
                    if batch {
                        return storeBatch(bodyBytes, topic: topicBytes, header: header, batchProperties: properties, token: token)
                            .map { (nil, ($0.0, $0.1), $0.2) }
                    }
                    return storeOne(bodyBytes, topic: topicBytes, header: header, properties: properties, token: token)
                        .map { ($0, nil, $0.durabilityPending) }
                }
            }
        }
        switch stored {
        case .failure(let error):
            if let promise {
                broker.forgetToken(token)
                promise.succeed(.putOK)  // nothing waits on it
            }
            return fail(responseCode(for: error), error.description)
        case .success(let (single, batchResult, pending)):
            if let promise, !pending {
                broker.forgetToken(token)
                promise.succeed(.putOK)
            }
            let msgID: String
            let queueOffset: Int64
            if let single {
                msgID = single.append.messageID.hexString
                queueOffset = single.queueOffset
                broker.putTotal.wrappingAdd(1, ordering: .relaxed)
            } else {
                let (result, first) = batchResult!
                msgID = batchMessageIDs(result)
                queueOffset = first
                broker.putTotal.wrappingAdd(Int64(msgID.utf8.count / 33 + 1), ordering: .relaxed)
            }
            let serializeType = request.serializeType
            let allocator = context.channel.allocator
            let queueID = queueID
            @Sendable func response(_ status: DurabilityStatus) -> RemotingCommand? {
                var fields = HeaderFields.Writer(allocator: allocator, capacity: 128)
                fields.append("msgId", msgID)
                fields.append("queueId", queueID)
                fields.append("queueOffset", queueOffset)
                fields.append("MSG_REGION", "DefaultRegion")
                fields.append("TRACE_ON", "true")
                var response = RemotingCommand(code: status == .putOK ? ResponseCode.success : ResponseCode.flushDiskTimeout,
                                               fields: fields.fields, serializeType: serializeType)
                response.opaque = request.opaque
                response.flag = RemotingCommand.responseFlag
                return response
            }
            guard let promise else { return context.eventLoop.makeSucceededFuture(response(.putOK)) }
            return promise.futureResult.map(response)
        }
    }

    /// SEND_MESSAGE's fields (long names) and SEND_MESSAGE_V2's (one letter), found in one pass.
    struct SendFields {
        var topic, queueID, sysFlag, bornTimestamp, flag, properties, reconsumeTimes, batch, defaultTopic, defaultTopicQueueNums: HeaderFields.Value?

        init(_ fields: HeaderFields) {
            fields.forEach { key, value in
                if key.count == 1 {
                    switch key[0] {
                    case UInt8(ascii: "b"): topic = value
                    case UInt8(ascii: "c"): defaultTopic = value
                    case UInt8(ascii: "d"): defaultTopicQueueNums = value
                    case UInt8(ascii: "e"): queueID = value
                    case UInt8(ascii: "f"): sysFlag = value
                    case UInt8(ascii: "g"): bornTimestamp = value
                    case UInt8(ascii: "h"): flag = value
                    case UInt8(ascii: "i"): properties = value
                    case UInt8(ascii: "j"): reconsumeTimes = value
                    case UInt8(ascii: "m"): batch = value
                    default: break
                    }
                    return true
                }
                func named(_ text: StaticString) -> Bool { HeaderFields.Value.equal(key, text) }
                if named("topic") { topic = value }
                else if named("queueId") { queueID = value }
                else if named("sysFlag") { sysFlag = value }
                else if named("bornTimestamp") { bornTimestamp = value }
                else if named("flag") { flag = value }
                else if named("properties") { properties = value }
                else if named("reconsumeTimes") { reconsumeTimes = value }
                else if named("batch") { batch = value }
                else if named("defaultTopic") { defaultTopic = value }
                else if named("defaultTopicQueueNums") { defaultTopicQueueNums = value }
                return true
            }
        }
    }

    struct SendHeader {
        var queueID: Int32
        var sysFlag: Int32
        var bornTimestamp: Int64
        var flag: Int32
        var reconsumeTimes: Int32
        var bornHost: HostAddress
    }

    func storeOne(_ body: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer, header: SendHeader, properties: UnsafeRawBufferPointer,
                  token: UInt64) -> Result<PutMessageResult, StoreError> {
        Result { () throws(StoreError) in
            try broker.store.put(MessageView(topic: topic, body: body, properties: properties, queueID: header.queueID, flag: header.flag,
                                             sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost,
                                             reconsumeTimes: header.reconsumeTimes), token: token)
        }
    }

    /// A batch body (§5.2): records of `TOTALSIZE MAGIC(0) BODYCRC(0) FLAG BODYLEN BODY PROPLEN PROPS`; each is stored
    /// with the batch's topic, queue and born fields and its own properties plus the batch-level ones.
    func storeBatch(_ bytes: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer, header: SendHeader,
                    batchProperties: UnsafeRawBufferPointer, token: UInt64) -> Result<(BatchAppendResult, Int64, Bool), StoreError> {
        // Bodies are borrowed from the frame; each message's properties (plus the batch-level ones) go into
        // one buffer, so the views are built in one pass (no recursion, nothing quadratic).
        var records: [(flag: Int32, body: Range<Int>, properties: Range<Int>)] = []
        var properties: [UInt8] = []
        var at = 0
        func int32(_ offset: Int) -> Int32 {
            Int32(bitPattern: UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3]))
        }
        while at < bytes.count {
            guard at + 20 <= bytes.count else { return .failure(StoreError(.messageTooLarge, "batch record at \(at) is cut short")) }
            let flag = int32(at + 12)
            let bodyLength = Int(int32(at + 16))
            guard bodyLength >= 0, bodyLength <= bytes.count - at - 22 else {
                return .failure(StoreError(.messageTooLarge, "batch record at \(at): bad body length"))
            }
            let propertiesAt = at + 20 + bodyLength
            let propertiesLength = Int(UInt16(bytes[propertiesAt]) << 8 | UInt16(bytes[propertiesAt + 1]))
            guard propertiesAt + 2 + propertiesLength <= bytes.count else {
                return .failure(StoreError(.messageTooLarge, "batch record at \(at): bad properties length"))
            }
            let start = properties.count
            properties += UnsafeRawBufferPointer(rebasing: bytes[(propertiesAt + 2)..<(propertiesAt + 2 + propertiesLength)])
            if !batchProperties.isEmpty {
                if properties.count > start, properties.last != 2 { properties.append(2) }
                properties += batchProperties
            }
            records.append((flag, (at + 20)..<propertiesAt, start..<properties.count))
            at = propertiesAt + 2 + propertiesLength
        }
        guard !records.isEmpty else { return .failure(StoreError(.messageTooLarge, "empty batch")) }
        return properties.withUnsafeBytes { allProperties in
            let views = records.map { record in
                MessageView(topic: topic, body: UnsafeRawBufferPointer(rebasing: bytes[record.body]),
                            properties: UnsafeRawBufferPointer(rebasing: allProperties[record.properties]), queueID: header.queueID,
                            flag: record.flag, sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost)
            }
            return Result { () throws(StoreError) in
                let (result, first, pending) = try broker.store.putBatch(views, token: token)
                return (result, first, pending)
            }
        }
    }

    func batchMessageIDs(_ result: BatchAppendResult) -> String {
        var ids: [String] = []
        var offset = result.physicalOffset
        while offset < result.nextOffset, case .record(let record)? = try? broker.store.commitLog.readRecord(at: offset, checkCRC: false) {
            ids.append(MessageID(storeHost: broker.storeHost, physicalOffset: offset).hexString)
            offset = record.nextOffset
        }
        return ids.joined(separator: ",")
    }

    func responseCode(for error: StoreError) -> Int32 {
        switch error.code {
        case .messageTooLarge, .topicTooLong, .propertiesTooLong: ResponseCode.messageIllegal
        case .diskFull, .storeClosed, .flushFailed, .waitersFull: ResponseCode.serviceNotAvailable
        default: ResponseCode.systemError
        }
    }

    // MARK: Delay and retry

    /// The DELAY level of a properties string, when it asks for one.
    func delayLevel(_ properties: UnsafeRawBufferPointer) -> Int? {
        guard let raw = propertyValue(properties, "DELAY"), !raw.isEmpty, raw.count < 4 else { return nil }
        var level = 0
        for byte in raw {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            level = level * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard level > 0 else { return nil }
        return min(level, broker.schedule.levels)
    }

    /// Where a delayed message waits: the schedule topic's queue for its level, with its real
    /// destination in REAL_TOPIC/REAL_QID.
    func scheduled(_ properties: [UInt8], topic: String, queueID: Int32, level: Int) -> (String, Int32, [UInt8]) {
        var parsed = MessageProperties(properties)
        parsed["DELAY"] = "\(level)"
        parsed["REAL_TOPIC"] = topic
        parsed["REAL_QID"] = "\(queueID)"
        let levels = broker.schedule.levels
        if broker.createTopic(TopicConfig(topicName: MessageStoreConfig.scheduleTopic, readQueueNums: levels, writeQueueNums: levels, perm: 6)) {
            topicsChanged()
        }
        return (MessageStoreConfig.scheduleTopic, Int32(level - 1), parsed.bytes)
    }

    /// CONSUMER_SEND_MSG_BACK: a message the consumer failed goes to `%RETRY%<group>` after a growing
    /// delay (level 3 + reconsumeTimes, or the one asked for), or to `%DLQ%<group>` once it was
    /// retried `maxReconsumeTimes` times.
    func sendBack(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        let f = request.extFields
        func answer(_ code: Int32, _ remark: String? = nil) -> EventLoopFuture<RemotingCommand?> {
            context.eventLoop.makeSucceededFuture(.response(to: request, code: code, remark: remark))
        }
        guard let offset = f["offset"].flatMap({ UInt64($0) }), let group = f["group"], !group.isEmpty else {
            return answer(ResponseCode.systemError, "CONSUMER_SEND_MSG_BACK needs offset and group")
        }
        guard let record = try? broker.store.lookMessage(physicalOffset: offset) else {
            return answer(ResponseCode.systemError, "look message by offset failed, \(offset)")
        }
        let header = record.header
        var properties = MessageProperties(record.properties)
        if properties["RETRY_TOPIC"] == nil { properties["RETRY_TOPIC"] = record.topicString }
        if properties["ORIGIN_MESSAGE_ID"] == nil {
            properties["ORIGIN_MESSAGE_ID"] = properties["UNIQ_KEY"] ?? MessageID(storeHost: header.storeHost, physicalOffset: offset).hexString
        }
        properties["DELAY"] = nil
        let maxTimes = f["maxReconsumeTimes"].flatMap { Int32($0) } ?? Int32(broker.config.maxReconsumeTimes)
        let requestedLevel = Int(f["delayLevel"] ?? "0") ?? 0
        let reconsumeTimes = header.reconsumeTimes
        var topic = "%RETRY%" + group
        var queueID: Int32 = 0
        var bytes: [UInt8]
        if reconsumeTimes >= maxTimes || requestedLevel < 0 {
            topic = "%DLQ%" + group
            if broker.createTopic(TopicConfig(topicName: topic, readQueueNums: 1, writeQueueNums: 1, perm: 6)) { topicsChanged() }
            bytes = properties.bytes
        } else {
            if broker.createTopic(TopicConfig(topicName: topic, readQueueNums: 1, writeQueueNums: 1, perm: 6)) { topicsChanged() }
            let level = requestedLevel == 0 ? 3 + Int(reconsumeTimes) : requestedLevel
            (topic, queueID, bytes) = scheduled(properties.bytes, topic: topic, queueID: 0, level: min(level, broker.schedule.levels))
        }
        let topicBytes = Array(topic.utf8)
        let stored = topicBytes.withUnsafeBytes { t in bytes.withUnsafeBytes { p in
            Result { () throws(StoreError) in
                try broker.store.put(MessageView(topic: t, body: record.body, properties: p, queueID: queueID, flag: header.flag,
                                                 sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost,
                                                 reconsumeTimes: reconsumeTimes + 1))
            }
        } }
        if case .failure(let error) = stored { return answer(responseCode(for: error), error.description) }
        return answer(ResponseCode.success)
    }

    // MARK: PULL

    /// Answers a pull now, or (with `mayHold` and nothing new) parks it and returns the future answer.
    func pull(_ request: RemotingCommand, channel: Channel, mayHold: Bool) -> (response: RemotingCommand?, held: EventLoopFuture<RemotingCommand?>?) {
        let f = PullFields(request.wireFields)
        func fail(_ code: Int32, _ remark: String) -> (RemotingCommand?, EventLoopFuture<RemotingCommand?>?) {
            (.response(to: request, code: code, remark: remark), nil)
        }
        guard let group = f.consumerGroup?.string, let topic = f.topic?.string, let queueID = f.queueID?.int32,
              let offset = f.queueOffset?.int64 else {
            return fail(ResponseCode.systemError, "PULL_MESSAGE needs consumerGroup, topic, queueId, queueOffset")
        }
        guard let config = broker.topicConfig(topic) else { return fail(ResponseCode.topicNotExist, "topic[\(topic)] not exist, apply first please!") }
        guard queueID >= 0, queueID < config.readQueueNums else {
            return fail(ResponseCode.systemError, "queueId[\(queueID)] is illegal, topic:[\(topic)] topicConfig.readQueueNums:[\(config.readQueueNums)]")
        }
        let sysFlag = f.sysFlag?.int32 ?? 0
        let tagsCodes: Set<Int32>?
        if sysFlag & 0x4 != 0 {
            tagsCodes = parseSubscription(f.subscription?.string ?? "*")
        } else if let registered = broker.subscription(group: group, topic: topic) {
            tagsCodes = registered
        } else {
            return fail(ResponseCode.subscriptionNotExist, "the consumer's subscription not exist")
        }
        if mayHold && sysFlag & 0x1 != 0, let commit = f.commitOffset?.int64, commit >= 0 {
            broker.commitOffset(group: group, topic: topic, queueID: queueID, offset: commit)
        }
        let maxMsgNums = f.maxMsgNums?.int64.map { Int($0) } ?? 32
        let result = broker.store.get(topic: topic, queueID: queueID, offset: offset, maxMsgNums: maxMsgNums, tagsCodes: tagsCodes)
        var code: Int32
        var next = result.nextBeginOffset
        switch result.status {
        case .found: code = ResponseCode.success
        case .noMatchedMessage, .messageWasRemoving: code = ResponseCode.pullRetryImmediately
        case .noMessageInQueue, .noMatchedLogicQueue:
            code = offset != 0 ? ResponseCode.pullOffsetMoved : ResponseCode.pullNotFound
            next = 0
        case .offsetTooSmall, .offsetOverflowBadly: code = ResponseCode.pullOffsetMoved
        case .offsetOverflowOne, .offsetFoundNull: code = ResponseCode.pullNotFound
        }
        if code == ResponseCode.pullNotFound && mayHold && sysFlag & 0x2 != 0 {
            let millis = max(0, min(f.suspendTimeoutMillis?.int64 ?? 15_000, 60_000))
            let promise = channel.eventLoop.makePromise(of: RemotingCommand?.self)
            broker.hold((request, channel, offset, promise), key: "\(topic)@\(queueID)", millis: max(0, millis - 500))
            // A message may have arrived between the read and the hold.
            if broker.store.maxOffset(topic: topic, queueID: queueID) > offset { broker.wakeHeldPulls(topic: topic, queueID: queueID) }
            return (nil, promise.futureResult)
        }
        var body: ByteBuffer?
        if code == ResponseCode.success {
            broker.getTotal.wrappingAdd(Int64(result.records.count), ordering: .relaxed)
            // The records go out as stored: one copy from the mapping into the frame, no re-encoding.
            var buffer = channel.allocator.buffer(capacity: result.totalBytes)
            for region in result.records { buffer.writeBytes(region.bytes) }
            body = buffer
        }
        var fields = HeaderFields.Writer(allocator: channel.allocator, capacity: 96)
        fields.append("suggestWhichBrokerId", 0)
        fields.append("nextBeginOffset", next)
        fields.append("minOffset", result.minOffset)
        fields.append("maxOffset", result.maxOffset)
        var response = RemotingCommand(code: code, fields: fields.fields, body: body, serializeType: request.serializeType)
        response.opaque = request.opaque
        response.flag = RemotingCommand.responseFlag
        response.remark = code == ResponseCode.success ? nil : result.status.rawValue
        return (response, nil)
    }

    /// PULL_MESSAGE's fields, found in one pass.
    struct PullFields {
        var consumerGroup, topic, queueID, queueOffset, sysFlag, subscription, commitOffset, maxMsgNums, suspendTimeoutMillis: HeaderFields.Value?

        init(_ fields: HeaderFields) {
            fields.forEach { key, value in
                func named(_ text: StaticString) -> Bool { HeaderFields.Value.equal(key, text) }
                if named("consumerGroup") { consumerGroup = value }
                else if named("topic") { topic = value }
                else if named("queueId") { queueID = value }
                else if named("queueOffset") { queueOffset = value }
                else if named("sysFlag") { sysFlag = value }
                else if named("subscription") { subscription = value }
                else if named("commitOffset") { commitOffset = value }
                else if named("maxMsgNums") { maxMsgNums = value }
                else if named("suspendTimeoutMillis") { suspendTimeoutMillis = value }
                return true
            }
        }
    }

    // MARK: HEART_BEAT

    func heartbeat(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        let text = request.body.map { String(buffer: $0) } ?? "{}"
        guard let json = try? JSONValue.parse(text) else {
            return context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.systemError, remark: "HEART_BEAT body is not JSON"))
        }
        let clientID = json["clientID"]?.string ?? ""
        var consumers: [(group: String, model: Int, subscriptions: [String: Set<Int32>?])] = []
        for consumer in json["consumerDataSet"]?.array ?? [] {
            guard let group = consumer["groupName"]?.string else { continue }
            let model: Int
            switch consumer["messageModel"] {
            case .string(let name)?: model = name.uppercased() == "BROADCASTING" ? 0 : 1
            case let value?: model = Int(value.int ?? 1)
            case nil: model = 1
            }
            var subscriptions: [String: Set<Int32>?] = [:]
            for subscription in consumer["subscriptionDataSet"]?.array ?? [] {
                guard let topic = subscription["topic"]?.string else { continue }
                subscriptions[topic] = parseSubscription(subscription["subString"]?.string ?? "*")
            }
            consumers.append((group, model, subscriptions))
            let retry = "%RETRY%" + group
            if broker.createTopic(TopicConfig(topicName: retry, readQueueNums: 1, writeQueueNums: 1, perm: 6)) { topicsChanged() }
        }
        for group in broker.heartbeat(clientID: clientID, channel: context.channel, consumers: consumers) { notify(group: group) }
        return context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.success))
    }
}

/// Tag codes of a subscription expression (`*` -> nil, "TagA || TagB" -> their Java hashes).
func parseSubscription(_ expression: String) -> Set<Int32>? {
    let tags = expression.split(separator: "|").map { $0.trimmingSuffix(while: { $0 == " " }) }.map { String($0.drop { $0 == " " }) }.filter { !$0.isEmpty }
    if tags.isEmpty || tags.contains("*") { return nil }
    return Set(tags.map { javaHashCode($0) })
}

/// Runs `body` with a field's bytes (empty when the field is missing).
func withFieldBytes<R>(_ value: HeaderFields.Value?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    guard let value else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
    return value.withBytes(body)
}

/// RocketMQ's legal topic characters: `^[%|a-zA-Z0-9_-]+$`.
func isLegalTopic(_ topic: String) -> Bool {
    topic.utf8.allSatisfy { byte in
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "|")
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }
}

/// A peer's socket address as a stored host (no text in between).
func hostAddress(_ address: SocketAddress) -> HostAddress {
    switch address {
    case .v4(let v4):
        let raw = UInt32(bigEndian: v4.address.sin_addr.s_addr)
        return HostAddress(ipv4: UInt8(raw >> 24), UInt8(truncatingIfNeeded: raw >> 16), UInt8(truncatingIfNeeded: raw >> 8),
                           UInt8(truncatingIfNeeded: raw), port: Int32(UInt16(bigEndian: v4.address.sin_port)))
    default:
        return parseHost(address.ipAddress ?? "", port: address.port ?? 0)
    }
}

extension RemotingCommand {
    /// The fields as bytes whichever way the command was made (a dictionary is written out once).
    var wireFields: HeaderFields {
        if let fields { return fields }
        var writer = HeaderFields.Writer()
        HeaderFields.writeBinaryEntries(fieldTable ?? [:], into: &writer.buffer)
        return writer.fields
    }
}
