import Common
import Remoting

/// CLEAN_UNUSED_TOPIC and CLEAN_EXPIRED_CONSUMEQUEUE (RocketMQ's `DefaultMessageStore.cleanUnusedTopic` and
/// `cleanExpiredConsumerQueue`): consume queues no topic uses any more, or that only point below the commit log's
/// first offset, are deleted. The store deletes queues a topic at a time, so an expired queue goes only when every
/// queue of its topic has expired (RocketMQ drops single queues); an empty queue is kept, as RocketMQ keeps it.
extension AdminBrokerProcessor {
    static let storeCodes = [RequestCode.cleanUnusedTopic, RequestCode.cleanExpiredConsumeQueue]

    func answerStore(_ request: RemotingCommand) -> RemotingCommand {
        let removed = request.code == RequestCode.cleanUnusedTopic ? cleanUnusedTopics() : cleanExpiredQueues()
        if !removed.isEmpty {
            let what = request.code == RequestCode.cleanUnusedTopic ? "unused" : "expired"
            services.log("broker: deleted the consume queues of \(removed.count) \(what) topic(s): \(removed.joined(separator: ", "))")
        }
        return .response(to: request, code: ResponseCode.success)
    }

    /// Topics with consume queues but no topic config (the schedule and transaction-op topics stay).
    func cleanUnusedTopics() -> [String] {
        let kept: Set<String> = [TopicValidator.scheduleTopic, TopicValidator.transactionOpHalfTopic]
        let unused = Set(services.store.queues.map(\.topic)).filter { !kept.contains($0) && services.topics.topic($0) == nil }.sorted()
        for topic in unused { services.store.deleteTopic(topic) }
        return unused
    }

    /// Topics whose every queue's last unit points below the commit log's first offset (the schedule topic stays).
    func cleanExpiredQueues() -> [String] {
        let store = services.store
        let minOffset = Int64(store.commitLog.minOffset)
        var queuesOf: [String: [Int32]] = [:]
        for (topic, queueID) in store.queues where topic != TopicValidator.scheduleTopic { queuesOf[topic, default: []].append(queueID) }
        let expired = queuesOf.filter { topic, queueIDs in
            queueIDs.allSatisfy { queueID in
                let maxOffset = store.maxOffset(topic: topic, queueID: queueID)
                guard maxOffset > 0, let last = store.unit(topic: topic, queueID: queueID, offset: maxOffset - 1) else { return false }
                return last.physicalOffset < minOffset
            }
        }.keys.sorted()
        for topic in expired { store.deleteTopic(topic) }
        return expired
    }
}
