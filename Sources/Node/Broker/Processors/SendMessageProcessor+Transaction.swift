import CommitLog
import Common
import NIOCore
import Replication

extension SendMessageProcessor {
    /// A prepared (half) message of a transaction (RocketMQ's `prepareMessage`): stored in the half topic's queue 0
    /// with its destination in REAL_TOPIC/REAL_QID and a not-a-transaction sysFlag, so no consumer of the real
    /// topic sees it until END_TRANSACTION commits it. The answer names the half queue's offset, which the producer
    /// sends back as `tranStateTableOffset`. (`rejectTransactionMessage` is refused earlier, in `prepare`.)
    func storeHalf(_ body: UnsafeRawBufferPointer, send: Send, properties: UnsafeRawBufferPointer,
                   answering route: PutAnswerRoute) -> PutOutcome<StoredSend> {
        guard !send.batch else { return .failed(PutFailure(.messageIllegal, "batch messages cannot be transactional")) }
        services.transactions.createSystemTopics()
        let rewritten = TransactionalMessageService.halfProperties(properties, realTopic: send.topic, realQueueID: send.header.queueID)
        var header = send.header
        header.queueID = TransactionalMessageService.halfQueueID
        header.sysFlag = MessageSysFlag(rawValue: header.sysFlag).withTransactionType([]).rawValue
        let topic = Array(TopicValidator.transactionHalfTopic.utf8)
        return topic.withUnsafeBytes { topic in
            rewritten.withUnsafeBytes { properties in storeOne(body, topic: topic, header: header, properties: properties, answering: route) }
        }
    }
}

extension SendMessageProcessor.SendHeader {
    /// Whether the send is a transaction's half message (PREPARED sysFlag): one mask and compare, no allocation.
    @inline(__always)
    var isTransactionPrepared: Bool {
        sysFlag & MessageSysFlag.transactionTypeMask == MessageSysFlag.transactionPrepared.rawValue
    }
}
