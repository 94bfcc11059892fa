#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting

/// Topics, statistics, orderly locks and the tables slaves copy (RocketMQ's `AdminBrokerProcessor`).
struct AdminBrokerProcessor: SynchronousProcessor {
    let services: BrokerServices
    let replica: ReplicaRole
    var codes: [Int32] {
        [RequestCode.updateAndCreateTopic, RequestCode.deleteTopicInBroker, RequestCode.getAllTopicConfig, RequestCode.getBrokerRuntimeInfo,
         RequestCode.getTopicStatsInfo, RequestCode.getConsumeStats, RequestCode.lockBatchMQ, RequestCode.unlockBatchMQ,
         RequestCode.getAllConsumerOffset, RequestCode.getAllDelayOffset, RequestCode.getAllSubscriptionGroupConfig,
         RequestCode.getBrokerHAStatus]
    }

    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError) -> RemotingCommand {
        func ok(_ body: some RemotingBody) -> RemotingCommand { .response(to: request, code: ResponseCode.success, body: body.encode()) }
        if services.brokerRole == .slave,
           request.code == RequestCode.updateAndCreateTopic || request.code == RequestCode.deleteTopicInBroker {
            return .response(to: request, code: ResponseCode.systemError,
                             remark: "Can't modify topic or subscription group from slave broker, please execute it from master broker.")
        }
        switch request.code {
        case RequestCode.updateAndCreateTopic: return try createTopic(request, header)
        case RequestCode.deleteTopicInBroker:
            let topic = try header.string("topic")
            guard !TopicValidator.systemTopics.contains(topic) else {
                return .response(to: request, code: ResponseCode.systemError, remark: "The topic[\(topic)] is conflict with system topic.")
            }
            services.topics.delete(topic)
            services.store.deleteTopic(topic)
            services.topicsChanged()
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.getAllTopicConfig: return ok(services.topics.wrapper)
        case RequestCode.getBrokerRuntimeInfo: return ok(KVTable(table: runtimeInfo()))
        case RequestCode.getTopicStatsInfo: return try topicStats(request, header)
        case RequestCode.getConsumeStats: return ok(consumeStats(group: try header.string("consumerGroup"), topic: header.optionalString("topic")))
        case RequestCode.lockBatchMQ, RequestCode.unlockBatchMQ: return lock(request)
        case RequestCode.getAllConsumerOffset: return ok(services.offsets.wrapper)
        case RequestCode.getAllDelayOffset: return ok(services.schedule.wrapper)
        case RequestCode.getBrokerHAStatus: return ok(replica.haRuntimeInfo(commitLogEnd: services.store.commitLog.wroteOffset))
        default: return ok(services.subscriptionGroups.wrapper)
        }
    }

    /// UPDATE_AND_CREATE_TOPIC: validated as RocketMQ's admin does (name, system topics, queue counts, permission).
    func createTopic(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        let topic = try header.string("topic")
        if let problem = TopicValidator.problem(with: topic) { return .response(to: request, code: ResponseCode.systemError, remark: problem) }
        guard !TopicValidator.systemTopics.contains(topic) else {
            return .response(to: request, code: ResponseCode.systemError, remark: "The topic[\(topic)] is conflict with system topic.")
        }
        let read = try header.optionalInt32("readQueueNums") ?? 8
        let write = try header.optionalInt32("writeQueueNums") ?? 8
        let perm = try header.optionalInt32("perm") ?? Int32(Permission.readWrite.rawValue)
        let queues = 1...Int32(TopicConfig.queueNumsMax)
        guard queues.contains(read), queues.contains(write) else {
            return .response(to: request, code: ResponseCode.systemError,
                             remark: "readQueueNums and writeQueueNums must be within 1...\(TopicConfig.queueNumsMax), not \(read) and \(write)")
        }
        guard (0...15).contains(perm) else {
            return .response(to: request, code: ResponseCode.systemError, remark: "perm must be a PermName bit set 0...15, not \(perm)")
        }
        var config = TopicConfig(topicName: topic, readQueueNums: Int(read), writeQueueNums: Int(write), perm: Permission(rawValue: Int(perm)))
        config.order = header.bool("order")
        config.topicFilterType = header.optionalString("topicFilterType") ?? "SINGLE_TAG"
        services.topics.upsert(config)
        services.topicsChanged()
        return .response(to: request, code: ResponseCode.success)
    }

    /// GET_TOPIC_STATS_INFO: min/max offset and last store time of each write queue.
    func topicStats(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        let topic = try header.string("topic")
        guard let config = services.topics.topic(topic) else {
            return .response(to: request, code: ResponseCode.topicNotExist, remark: "topic[\(topic)] not exist")
        }
        let store = services.store
        var table: [MessageQueue: TopicOffset] = [:]
        for queue in 0..<Int32(config.writeQueueNums) {
            let maxOffset = store.maxOffset(topic: topic, queueID: queue)
            let last = maxOffset > 0 ? store.storeTime(topic: topic, queueID: queue, offset: maxOffset - 1) ?? 0 : 0
            table[MessageQueue(topic: topic, brokerName: services.config.brokerName, queueID: queue)] =
                TopicOffset(minOffset: store.minOffset(topic: topic, queueID: queue), maxOffset: maxOffset, lastUpdateTimestamp: last)
        }
        return .response(to: request, code: ResponseCode.success, body: TopicStatsTable(offsetTable: table).encode())
    }

    /// GET_CONSUME_STATS: per queue the group committed, the broker's and the group's offsets. `consumeTps` is left
    /// out: the broker does not measure it per group.
    func consumeStats(group: String, topic: String?) -> ConsumeStats {
        let store = services.store
        var table: [MessageQueue: OffsetWrapper] = [:]
        for (name, queue, consumerOffset) in services.offsets.consumedQueues(group: group, topic: topic) {
            let last = consumerOffset > 0 ? store.storeTime(topic: name, queueID: queue, offset: consumerOffset - 1) ?? 0 : 0
            table[MessageQueue(topic: name, brokerName: services.config.brokerName, queueID: queue)] =
                OffsetWrapper(brokerOffset: store.maxOffset(topic: name, queueID: queue), consumerOffset: consumerOffset, lastTimestamp: last)
        }
        return ConsumeStats(offsetTable: table)
    }

    /// LOCK_BATCH_MQ / UNLOCK_BATCH_MQ (orderly consumption).
    func lock(_ request: RemotingCommand) -> RemotingCommand {
        let body: LockBatchRequestBody
        do { body = try LockBatchRequestBody.decode(from: request.body) } catch {
            return .response(to: request, code: ResponseCode.systemError, remark: "lock body: \(error)")
        }
        if request.code == RequestCode.unlockBatchMQ {
            services.locks.unlock(group: body.consumerGroup, clientID: body.clientId, queues: body.mqSet)
            return .response(to: request, code: ResponseCode.success)
        }
        let locked = services.locks.tryLock(group: body.consumerGroup, clientID: body.clientId, queues: body.mqSet, now: currentTimeMillis())
        return .response(to: request, code: ResponseCode.success, body: LockBatchResponseBody(lockOKMQSet: locked).encode())
    }

    /// GET_BROKER_RUNTIME_INFO: measured values only (a key the broker does not measure is left out).
    func runtimeInfo() -> [String: String] {
        let log = services.store.commitLog
        var table = services.stats.snapshot()
        table["brokerVersionDesc"] = "V4_9_7"
        table["brokerVersion"] = "407"
        table["dispatchBehindBytes"] = "\(services.store.dispatchBehindBytes)"
        table["commitLogMinOffset"] = "\(log.minOffset)"
        table["commitLogMaxOffset"] = "\(log.wroteOffset)"
        table["remainHowManyDataToFlush"] = "\(log.wroteOffset - min(log.flushedOffset, log.wroteOffset))"
        table["brokerRole"] = services.brokerRole.rawValue
        // This process's CPU time so far (getrusage: every thread): `bench producer -n` takes it before and after
        // a run for the broker's CPU per message.
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            table["cpuUserMicros"] = "\(Int64(usage.ru_utime.tv_sec) * 1_000_000 + Int64(usage.ru_utime.tv_usec))"
            table["cpuSysMicros"] = "\(Int64(usage.ru_stime.tv_sec) * 1_000_000 + Int64(usage.ru_stime.tv_usec))"
        }
        table.merge(replica.runtimeInfo) { _, replication in replication }
        if case .record(let oldest)? = try? log.readRecord(at: log.minOffset, checkCRC: false) {
            table["earliestMessageTimeStamp"] = "\(oldest.header.storeTimestamp)"
        }
        if let capacity = diskCapacity(services.store.config.commitLog.storePathCommitLog) {
            table["commitLogDirCapacity"] = capacity
        }
        return table
    }

    /// RocketMQ's `Total : x GiB, Free : y GiB` for the commit log's file system.
    func diskCapacity(_ path: String) -> String? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        func gib(_ blocks: UInt) -> String { String(format2: Double(blocks) * Double(info.f_frsize) / Double(1 << 30)) }
        return "Total : \(gib(info.f_blocks)) GiB, Free : \(gib(info.f_bavail)) GiB."
    }
}

extension String {
    /// A number with two decimals.
    init(format2 value: Double) {
        let hundredths = Int64((value * 100).rounded())
        let fraction = hundredths % 100
        self = "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
    }
}
