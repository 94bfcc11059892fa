import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting
import Replication

/// The puts of transactional messages (RocketMQ's `TransactionalMessageBridge`), all through the put pipeline.
extension TransactionalMessageService {
    /// The half message's properties (REAL_TOPIC/REAL_QID added) and the put that stores it in the half queue:
    /// not-a-transaction sysFlag there, so the half queue's consume queue indexes it and the real topic's does not.
    static func halfProperties(_ properties: UnsafeRawBufferPointer, realTopic: String, realQueueID: Int32) -> [UInt8] {
        var rewritten = MessageProperties(bytes: properties)
        rewritten[MessageConst.realTopic] = realTopic
        rewritten[MessageConst.realQueueID] = "\(realQueueID)"
        return rewritten.bytes
    }

    /// Creates the half and op topics (one queue each, as RocketMQ's) unless they exist.
    func createSystemTopics() {
        createTopic(TopicValidator.transactionHalfTopic, 1)
        createTopic(TopicValidator.transactionOpHalfTopic, 1)
    }

    /// Puts the committed copy of `half` to its real topic and queue: COMMIT sysFlag, REAL_TOPIC, REAL_QID and
    /// TRAN_MSG removed (RocketMQ's `endMessageTransaction`), the half message's offset as its prepared offset.
    func putCommitted(_ half: StoredRecord, properties: MessageProperties) -> PutFailure? {
        var properties = properties
        guard let realTopic = properties[MessageConst.realTopic],
              let realQueueID = properties[MessageConst.realQueueID].flatMap({ Int32($0) }) else {
            return PutFailure(.messageIllegal, "the half message at \(half.header.physicalOffset) lacks REAL_TOPIC/REAL_QID")
        }
        properties[MessageConst.realTopic] = nil
        properties[MessageConst.realQueueID] = nil
        properties[MessageConst.transactionPrepared] = nil
        var copy = StoredCopy(half)
        copy.queueID = realQueueID
        copy.sysFlag = MessageSysFlag(rawValue: half.header.sysFlag).withTransactionType(.transactionCommit).rawValue
        copy.preparedTransactionOffset = half.header.physicalOffset
        if case .failed(let failure) = copy.put(through: pipeline, topic: realTopic, properties: properties.bytes, on: nil) { return failure }
        return nil
    }

    /// Puts the op message recording a decision on `half`: tag `d`, the half queue offset as body, and the
    /// transaction's UNIQ_KEY as its key (so an admin can find it).
    func putOp(_ half: StoredRecord, key: String?) -> PutFailure? {
        var properties = MessageProperties()
        properties.append(MessageConst.tags, Self.removeTag)
        if let key { properties.append(MessageConst.keys, key) }
        properties.append(MessageConst.waitStoreMsgOK, "false")
        let body = Array("\(half.header.queueOffset)".utf8)
        let topic = Array(TopicValidator.transactionOpHalfTopic.utf8)
        let propertyBytes = properties.bytes
        let outcome = topic.withUnsafeBytes { topic in
            body.withUnsafeBytes { body in
                propertyBytes.withUnsafeBytes { propertyBytes in
                    pipeline.put(MessageView(topic: topic, body: body, properties: propertyBytes, queueID: half.header.queueID,
                                             bornTimestamp: currentTimeMillis(), bornHost: storeHost), on: nil)
                }
            }
        }
        if case .failed(let failure) = outcome { return failure }
        return nil
    }

    /// Puts `half` back at the half queue's end with new properties (RocketMQ's `putBackHalfMsgQueue`); where the
    /// copy was stored, or the failure.
    func putBack(_ half: StoredRecord, properties: MessageProperties) -> Result<AppendResult, PutFailure> {
        let copy = StoredCopy(half)
        switch copy.put(through: pipeline, topic: TopicValidator.transactionHalfTopic, properties: properties.bytes, on: nil) {
        case .failed(let failure): return .failure(failure)
        case .done(let result, _), .pending(let result, _), .queued(let result): return .success(result.append)
        }
    }

    /// Moves a half message checked `transactionCheckMax` times to `TRANS_CHECK_MAX_TIME_TOPIC` (RocketMQ 4.9's
    /// `resolveDiscardMsg`), where an admin can still read it; false when the store refused it.
    func discard(_ half: StoredRecord, properties: MessageProperties) -> Bool {
        log("transaction: half message \(half.header.queueOffset) (\(properties[MessageConst.uniqueClientMessageIDKeyIndex] ?? "no key")) "
            + "was checked \(settings.transactionCheckMax) times without an answer; moved to \(TopicValidator.transactionCheckMaxTimeTopic)")
        createTopic(TopicValidator.transactionCheckMaxTimeTopic, 1)
        var copy = StoredCopy(half)
        copy.queueID = 0
        if case .failed(let failure) = copy.put(through: pipeline, topic: TopicValidator.transactionCheckMaxTimeTopic,
                                                properties: properties.bytes, on: nil) {
            log("transaction: cannot move half message \(half.header.queueOffset): \(failure)")
            return false
        }
        return true
    }

    /// CHECK_TRANSACTION_STATE (one-way) to a live producer of the half message's group about the put-back copy
    /// `renewed` of `half`, with the message as body under its real topic and queue; false when no producer of the
    /// group is connected.
    @discardableResult
    func sendCheck(_ half: StoredRecord, properties: MessageProperties, renewed: AppendResult) -> Bool {
        guard let group = properties[MessageConst.producerGroup], let channel = producers.availableChannel(group: group) else {
            log("transaction: no producer of group \(properties[MessageConst.producerGroup] ?? "?") online to check half message \(renewed.queueOffset)")
            return false
        }
        let key = properties[MessageConst.uniqueClientMessageIDKeyIndex] ?? ""
        let physicalOffset = Int64(renewed.physicalOffset)
        var command = RemotingCommand(code: RequestCode.checkTransactionState, opaque: 0, flag: RemotingCommand.onewayFlag, extFields: [
            "tranStateTableOffset": "\(renewed.queueOffset)", "commitLogOffset": "\(physicalOffset)", "msgId": key, "transactionId": key,
            "offsetMsgId": MessageID(storeHost: NetAddress(renewed.storeHost), commitLogOffset: physicalOffset).hexString,
        ])
        command.body = checkBody(half, properties: properties.bytes, renewed: renewed,
                                 realTopic: properties[MessageConst.realTopic] ?? TopicValidator.transactionHalfTopic,
                                 realQueueID: properties[MessageConst.realQueueID].flatMap { Int32($0) } ?? half.header.queueID)
        channel.writeAndFlush(command, promise: nil)
        return true
    }

    /// The put-back half message as a stored record under its real topic and queue (RocketMQ's
    /// `MessageDecoder.encode`): `half`'s body and born fields, the copy's properties, offsets and store time.
    func checkBody(_ half: StoredRecord, properties: [UInt8], renewed: AppendResult, realTopic: String, realQueueID: Int32) -> ByteBuffer {
        let header = half.header
        let topic = Array(realTopic.utf8)
        return topic.withUnsafeBytes { topic in
            properties.withUnsafeBytes { properties in
                let view = MessageView(topic: topic, body: half.body, properties: properties, queueID: realQueueID, flag: header.flag,
                                       queueOffset: renewed.queueOffset, sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp,
                                       bornHost: header.bornHost, reconsumeTimes: header.reconsumeTimes,
                                       preparedTransactionOffset: header.preparedTransactionOffset)
                let size = MessageRecord.size(of: view, storeHost: renewed.storeHost)
                var buffer = ByteBufferAllocator().buffer(capacity: size)
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { target in
                    MessageRecord.encode(view, size: size, bodyCRC: header.bodyCRC, storeHost: renewed.storeHost,
                                         physicalOffset: Int64(renewed.physicalOffset), storeTimestamp: renewed.storeTimestamp,
                                         into: target.baseAddress!)
                    return size
                }
                return buffer
            }
        }
    }
}
