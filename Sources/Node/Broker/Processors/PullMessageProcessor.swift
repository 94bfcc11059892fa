#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting

/// PULL_MESSAGE (11): records of one queue from an offset, filtered by the subscription's tags, sent as stored;
/// with nothing new and the suspend flag, the pull is parked until a message arrives (RocketMQ's
/// `PullMessageProcessor`).
struct PullMessageProcessor: BrokerRequestProcessor {
    let services: BrokerServices
    var codes: [Int32] { [RequestCode.pullMessage] }

    init(services: BrokerServices) {
        self.services = services
        let rerun = self
        services.holds.setRerun { request, channel in rerun.pull(request, channel: channel, mayHold: false).response }
    }

    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        let (response, held) = pull(request, channel: context.channel, mayHold: true)
        if let response { return context.eventLoop.makeSucceededFuture(response) }
        return held!
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

    /// Answers a pull now, or (with `mayHold` and nothing new) parks it and returns the future answer.
    func pull(_ request: RemotingCommand, channel: Channel, mayHold: Bool) -> (response: RemotingCommand?, held: EventLoopFuture<RemotingCommand?>?) {
        let fields = PullFields(request.wireFields)
        func fail(_ code: Int32, _ remark: String) -> (RemotingCommand?, EventLoopFuture<RemotingCommand?>?) {
            (.response(to: request, code: code, remark: remark), nil)
        }
        guard let group = fields.consumerGroup?.string, let topic = fields.topic?.string, let queueID = fields.queueID?.int32,
              let offset = fields.queueOffset?.int64 else {
            return fail(ResponseCode.systemError, "PULL_MESSAGE needs consumerGroup, topic, queueId and queueOffset, the last two integers")
        }
        guard services.runtime.brokerPermission.isReadable else {
            return fail(ResponseCode.noPermission, "the broker[\(services.config.brokerName)] pulling message is forbidden")
        }
        guard let config = services.topics.topic(topic) ?? replicatedTopic(topic) else {
            return fail(ResponseCode.topicNotExist, "topic[\(topic)] not exist, apply first please!")
        }
        guard config.perm.isReadable else { return fail(ResponseCode.noPermission, "the topic[\(topic)] pulling message is forbidden") }
        guard queueID >= 0, queueID < config.readQueueNums else {
            return fail(ResponseCode.systemError, "queueId[\(queueID)] is illegal, topic:[\(topic)] topicConfig.readQueueNums:[\(config.readQueueNums)]")
        }
        let sysFlag = PullSysFlag(rawValue: fields.sysFlag?.int32 ?? 0)
        let tagsCodes: Set<Int32>?
        if sysFlag.contains(.subscription) {
            tagsCodes = SubscriptionData(topic: topic, subString: fields.subscription?.string ?? "*").codeSet
        } else if let registered = services.consumers.subscription(group: group, topic: topic) {
            tagsCodes = registered
        } else {
            return fail(ResponseCode.subscriptionNotExist, "the consumer's subscription not exist")
        }
        // A slave keeps no offsets of its own: its master's are copied to it.
        if mayHold && sysFlag.contains(.commitOffset) && services.brokerRole != .slave,
           let commit = fields.commitOffset?.int64, commit >= 0 {
            services.offsets.commit(group: group, topic: topic, queueID: queueID, offset: commit)
        }
        let maxMsgNums = fields.maxMsgNums?.int64.map { Int(clamping: $0) } ?? 32
        let result = services.store.get(topic: topic, queueID: queueID, offset: offset, maxMsgNums: maxMsgNums, tagsCodes: tagsCodes)
        let (code, next) = Self.responseCode(result, requested: offset)
        if code == ResponseCode.pullNotFound && mayHold && sysFlag.contains(.suspend) {
            let millis = max(0, min(fields.suspendTimeoutMillis?.int64 ?? 15_000, 60_000))
            let promise = channel.eventLoop.makePromise(of: RemotingCommand?.self)
            services.holds.hold(request, channel: channel, topic: topic, queueID: queueID, offset: offset, promise: promise,
                                millis: max(0, millis - 500))
            return (nil, promise.futureResult)
        }
        services.stats.countGetCall(found: code == ResponseCode.success)
        if code == ResponseCode.success {
            services.stats.countGet(result.records.count, topic: topic)
            services.statsItems.countGet(topic: topic, group: group, messages: result.records.count, bytes: result.totalBytes)
        }
        return (response(to: request, result, code: code, next: next, group: group, channel: channel), nil)
    }

    /// RocketMQ's `suggestWhichBrokerId`: the master (0) unless `slaveReadEnable`; then the group's
    /// `whichBrokerWhenConsumeSlowly` when the pull reads further behind the log's end than
    /// `accessMessageInMemoryMaxRatio` percent of memory (the data is no longer in the page cache), else the group's
    /// `brokerId`.
    func suggestedBroker(_ result: GetMessageResult, group: String) -> Int64 {
        guard services.config.slaveReadEnable else { return BrokerData.masterID }
        let settings = services.subscriptionGroups.group(group) ?? SubscriptionGroupConfig(groupName: group)
        guard let first = result.records.first else { return settings.brokerId }
        let behind = services.store.commitLog.wroteOffset &- first.physicalOffset
        let memory = UInt64(max(0, sysconf(Int32(_SC_PHYS_PAGES)))) * UInt64(max(0, sysconf(Int32(_SC_PAGESIZE))))
        let inMemory = memory / 100 * UInt64(services.config.accessMessageInMemoryMaxRatio)
        return behind > inMemory ? settings.whichBrokerWhenConsumeSlowly : settings.brokerId
    }

    /// A slave serves the queues its log holds even before it copied the topic's config from its master (a
    /// master that dies within a sync period of creating a topic must not hide the topic's messages).
    func replicatedTopic(_ topic: String) -> TopicConfig? {
        guard services.brokerRole == .slave else { return nil }
        let queueIDs = services.store.queues.filter { $0.topic == topic }.map(\.queueID)
        guard let highest = queueIDs.max() else { return nil }
        return TopicConfig(topicName: topic, readQueueNums: Int(highest) + 1, writeQueueNums: 0, perm: .read)
    }

    /// RocketMQ's mapping of a get's status to a pull's response code and next offset.
    static func responseCode(_ result: GetMessageResult, requested offset: Int64) -> (Int32, Int64) {
        switch result.status {
        case .found: (ResponseCode.success, result.nextBeginOffset)
        case .noMatchedMessage, .messageWasRemoving: (ResponseCode.pullRetryImmediately, result.nextBeginOffset)
        case .noMessageInQueue, .noMatchedLogicQueue: (offset != 0 ? ResponseCode.pullOffsetMoved : ResponseCode.pullNotFound, 0)
        case .offsetTooSmall, .offsetOverflowBadly: (ResponseCode.pullOffsetMoved, result.nextBeginOffset)
        case .offsetOverflowOne, .offsetFoundNull: (ResponseCode.pullNotFound, result.nextBeginOffset)
        }
    }

    func response(to request: RemotingCommand, _ result: GetMessageResult, code: Int32, next: Int64, group: String,
                  channel: Channel) -> RemotingCommand {
        var body: ByteBuffer?
        if code == ResponseCode.success {
            // The records go out as stored: one copy from the mapping into the frame, no re-encoding.
            var buffer = channel.allocator.buffer(capacity: result.totalBytes)
            for region in result.records { buffer.writeBytes(region.bytes) }
            body = buffer
        }
        var fields = HeaderFields.Writer(allocator: channel.allocator, capacity: 96)
        fields.append("suggestWhichBrokerId", suggestedBroker(result, group: group))
        fields.append("nextBeginOffset", next)
        fields.append("minOffset", result.minOffset)
        fields.append("maxOffset", result.maxOffset)
        var response = RemotingCommand(code: code, fields: fields.fields, body: body, serializeType: request.serializeType)
        response.opaque = request.opaque
        response.flag = RemotingCommand.responseFlag
        response.remark = code == ResponseCode.success ? nil : result.status.rawValue
        return response
    }
}
