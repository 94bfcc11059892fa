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
        let f = request.extFields
        func fail(_ code: Int32, _ remark: String) -> EventLoopFuture<RemotingCommand?> {
            context.eventLoop.makeSucceededFuture(.response(to: request, code: code, remark: remark))
        }
        func ok(_ fields: [String: String] = [:], body: ByteBuffer? = nil) -> EventLoopFuture<RemotingCommand?> {
            context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.success, extFields: fields, body: body))
        }
        func queueID() -> Int32? { f["queueId"].flatMap { Int32($0) } }
        switch request.code {
        case RequestCode.sendMessage, RequestCode.sendMessageV2, RequestCode.sendBatchMessage:
            return send(request, context: context)
        case RequestCode.pullMessage:
            let (response, held) = pull(request, channel: context.channel, mayHold: true)
            if let response { return context.eventLoop.makeSucceededFuture(response) }
            return held!
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
            guard let topic = f["topic"], !topic.isEmpty, topic.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "%|_-".contains($0)) }),
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
            return fail(RemotingSysResponseCode.requestCodeNotSupported, " request type \(request.code) not supported")
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
        let f = request.extFields
        let v2 = request.code != RequestCode.sendMessage
        func field(_ long: String, _ short: String) -> String? { v2 ? (f[short] ?? f[long]) : (f[long] ?? f[short]) }
        func fail(_ code: Int32, _ remark: String) -> EventLoopFuture<RemotingCommand?> {
            context.eventLoop.makeSucceededFuture(.response(to: request, code: code, remark: remark))
        }
        guard let topic = field("topic", "b"), !topic.isEmpty else { return fail(ResponseCode.systemError, "The specified topic is blank.") }
        guard topic.utf8.count <= (topic.hasPrefix("%RETRY%") || topic.hasPrefix("%DLQ%") ? 255 : 127),
              topic.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "%|_-".contains($0)) }) else {
            return fail(ResponseCode.systemError, "The specified topic[\(topic)] contains illegal characters or is too long; allowing only ^[%|a-zA-Z0-9_-]+$ up to 127 characters.")
        }
        var config = broker.topicConfig(topic)
        if config == nil {
            let template = broker.topicConfig(field("defaultTopic", "c") ?? "TBW102")
            guard broker.config.autoCreateTopicEnable, let template, template.perm & 1 != 0 else {
                return fail(ResponseCode.topicNotExist, "topic[\(topic)] not exist, apply first please!")
            }
            let wanted = Int(field("defaultTopicQueueNums", "d") ?? "") ?? template.writeQueueNums
            let queues = max(1, min(wanted, template.writeQueueNums))
            let created = TopicConfig(topicName: topic, readQueueNums: queues, writeQueueNums: queues, perm: template.perm & ~1)
            if broker.createTopic(created) { topicsChanged() }
            config = broker.topicConfig(topic)
        }
        guard let config else { return fail(ResponseCode.topicNotExist, "topic[\(topic)] not exist, apply first please!") }
        var queueID = Int32(field("queueId", "e") ?? "0") ?? 0
        if queueID < 0 { queueID = Int32.random(in: 0..<Int32(max(1, config.writeQueueNums))) }
        guard queueID < max(config.writeQueueNums, config.readQueueNums) else {
            return fail(ResponseCode.systemError, "request queueId[\(queueID)] is illegal, topic: \(topic) writeQueueNums: \(config.writeQueueNums)")
        }
        let batch = request.code == RequestCode.sendBatchMessage || ["true", "1"].contains(field("batch", "m") ?? "")
        var properties = Array((field("properties", "i") ?? "").utf8)
        let bornHost = context.channel.remoteAddress.map { parseHost($0.ipAddress ?? "", port: $0.port ?? 0) } ?? .loopback
        var storeTopic = topic
        var storeQueue = queueID
        if let level = delayLevel(properties) {
            guard !batch else { return fail(ResponseCode.messageIllegal, "batch messages cannot be delayed") }
            (storeTopic, storeQueue, properties) = scheduled(properties, topic: topic, queueID: queueID, level: level)
        }
        let header = SendHeader(topic: Array(storeTopic.utf8), queueID: storeQueue, sysFlag: Int32(field("sysFlag", "f") ?? "0") ?? 0,
                                bornTimestamp: Int64(field("bornTimestamp", "g") ?? "0") ?? 0, flag: Int32(field("flag", "h") ?? "0") ?? 0,
                                reconsumeTimes: Int32(field("reconsumeTimes", "j") ?? "0") ?? 0, bornHost: bornHost)
        var body = request.body ?? ByteBuffer()
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        let promise = context.eventLoop.makePromise(of: DurabilityStatus.self)
        let token = broker.durabilityToken(promise)
        let stored: Result<(PutMessageResult?, (BatchAppendResult, Int64)?, Bool), StoreError>
        if batch {
            stored = storeBatch(bytes, header: header, batchProperties: properties, token: token).map { (nil, ($0.0, $0.1), $0.2) }
        } else {
            stored = storeOne(bytes, header: header, properties: properties, token: token).map { ($0, nil, $0.durabilityPending) }
        }
        switch stored {
        case .failure(let error):
            broker.forgetToken(token)
            promise.succeed(.putOK)  // nothing waits on it
            return fail(responseCode(for: error), error.description)
        case .success(let (single, batchResult, pending)):
            if !pending {
                broker.forgetToken(token)
                promise.succeed(.putOK)
            }
            let msgID: String
            let queueOffset: Int64
            if let single {
                msgID = single.append.messageID.hexString
                queueOffset = single.queueOffset
            } else {
                let (result, first) = batchResult!
                msgID = batchMessageIDs(result)
                queueOffset = first
            }
            return promise.futureResult.map { status in
                .response(to: request, code: status == .putOK ? ResponseCode.success : ResponseCode.flushDiskTimeout,
                          extFields: ["msgId": msgID, "queueId": "\(queueID)", "queueOffset": "\(queueOffset)",
                                      "MSG_REGION": "DefaultRegion", "TRACE_ON": "true"])
            }
        }
    }

    struct SendHeader {
        var topic: [UInt8]
        var queueID: Int32
        var sysFlag: Int32
        var bornTimestamp: Int64
        var flag: Int32
        var reconsumeTimes: Int32
        var bornHost: HostAddress
    }

    func storeOne(_ body: [UInt8], header: SendHeader, properties: [UInt8], token: UInt64) -> Result<PutMessageResult, StoreError> {
        header.topic.withUnsafeBytes { t in body.withUnsafeBytes { b in properties.withUnsafeBytes { p in
            Result { () throws(StoreError) in
                try broker.store.put(MessageView(topic: t, body: b, properties: p, queueID: header.queueID, flag: header.flag,
                                                 sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost,
                                                 reconsumeTimes: header.reconsumeTimes), token: token)
            }
        } } }
    }

    /// A batch body (§5.2): records of `TOTALSIZE MAGIC(0) BODYCRC(0) FLAG BODYLEN BODY PROPLEN PROPS`; each is stored
    /// with the batch's topic, queue and born fields and its own properties plus the batch-level ones.
    func storeBatch(_ bytes: [UInt8], header: SendHeader, batchProperties: [UInt8], token: UInt64)
        -> Result<(BatchAppendResult, Int64, Bool), StoreError> {
        var messages: [(flag: Int32, body: [UInt8], properties: [UInt8])] = []
        var at = 0
        func int32(_ offset: Int) -> Int { Int(Int32(bitPattern: bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) })) }
        while at < bytes.count {
            guard at + 20 <= bytes.count else { return .failure(StoreError(.messageTooLarge, "batch record at \(at) is cut short")) }
            let flag = Int32(int32(at + 12))
            let bodyLength = int32(at + 16)
            guard bodyLength >= 0, at + 20 + bodyLength + 2 <= bytes.count else { return .failure(StoreError(.messageTooLarge, "batch record at \(at): bad body length")) }
            let body = Array(bytes[(at + 20)..<(at + 20 + bodyLength)])
            let propertiesAt = at + 20 + bodyLength
            let propertiesLength = Int(UInt16(bytes[propertiesAt]) << 8 | UInt16(bytes[propertiesAt + 1]))
            guard propertiesAt + 2 + propertiesLength <= bytes.count else { return .failure(StoreError(.messageTooLarge, "batch record at \(at): bad properties length")) }
            var properties = Array(bytes[(propertiesAt + 2)..<(propertiesAt + 2 + propertiesLength)])
            if !batchProperties.isEmpty {
                if let last = properties.last, last != 2 { properties.append(2) }
                properties += batchProperties
            }
            messages.append((flag, body, properties))
            at = propertiesAt + 2 + propertiesLength
        }
        guard !messages.isEmpty else { return .failure(StoreError(.messageTooLarge, "empty batch")) }
        // Borrow every message's bytes for the one append.
        func withViews<R>(_ index: Int, _ views: [MessageView], _ body: ([MessageView]) -> R) -> R {
            if index == messages.count { return body(views) }
            return header.topic.withUnsafeBytes { t in messages[index].body.withUnsafeBytes { b in messages[index].properties.withUnsafeBytes { p in
                withViews(index + 1, views + [MessageView(topic: t, body: b, properties: p, queueID: header.queueID, flag: messages[index].flag,
                                                           sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost)], body)
            } } }
        }
        return withViews(0, []) { views in
            Result { () throws(StoreError) in
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
    func delayLevel(_ properties: [UInt8]) -> Int? {
        guard properties.count > 6, let level = MessageProperties(properties)["DELAY"].flatMap({ Int($0) }), level > 0 else { return nil }
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
        let f = request.extFields
        func fail(_ code: Int32, _ remark: String) -> (RemotingCommand?, EventLoopFuture<RemotingCommand?>?) {
            (.response(to: request, code: code, remark: remark), nil)
        }
        guard let group = f["consumerGroup"], let topic = f["topic"], let queueID = f["queueId"].flatMap({ Int32($0) }),
              let offset = f["queueOffset"].flatMap({ Int64($0) }) else {
            return fail(ResponseCode.systemError, "PULL_MESSAGE needs consumerGroup, topic, queueId, queueOffset")
        }
        guard let config = broker.topicConfig(topic) else { return fail(ResponseCode.topicNotExist, "topic[\(topic)] not exist, apply first please!") }
        guard queueID >= 0, queueID < config.readQueueNums else {
            return fail(ResponseCode.systemError, "queueId[\(queueID)] is illegal, topic:[\(topic)] topicConfig.readQueueNums:[\(config.readQueueNums)]")
        }
        let sysFlag = Int32(f["sysFlag"] ?? "0") ?? 0
        let tagsCodes: Set<Int32>?
        if sysFlag & 0x4 != 0 {
            tagsCodes = parseSubscription(f["subscription"] ?? "*")
        } else if let registered = broker.subscription(group: group, topic: topic) {
            tagsCodes = registered
        } else {
            return fail(ResponseCode.subscriptionNotExist, "the consumer's subscription not exist")
        }
        if mayHold && sysFlag & 0x1 != 0, let commit = f["commitOffset"].flatMap({ Int64($0) }), commit >= 0 {
            broker.commitOffset(group: group, topic: topic, queueID: queueID, offset: commit)
        }
        let maxMsgNums = Int(f["maxMsgNums"] ?? "32") ?? 32
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
            let millis = min(Int64(f["suspendTimeoutMillis"] ?? "15000") ?? 15_000, 60_000)
            let promise = channel.eventLoop.makePromise(of: RemotingCommand?.self)
            broker.hold((request, channel, offset, promise), key: "\(topic)@\(queueID)", millis: max(0, millis - 500))
            // A message may have arrived between the read and the hold.
            if broker.store.maxOffset(topic: topic, queueID: queueID) > offset { broker.wakeHeldPulls(topic: topic, queueID: queueID) }
            return (nil, promise.futureResult)
        }
        var body: ByteBuffer?
        if code == ResponseCode.success {
            var buffer = ByteBufferAllocator().buffer(capacity: result.totalBytes)
            for region in result.records { buffer.writeBytes(region.bytes) }
            body = buffer
        }
        return (.response(to: request, code: code, remark: result.status.rawValue,
                          extFields: ["suggestWhichBrokerId": "0", "nextBeginOffset": "\(next)",
                                      "minOffset": "\(result.minOffset)", "maxOffset": "\(result.maxOffset)"], body: body), nil)
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
