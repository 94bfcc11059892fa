import Common
import NIOCore
import Remoting

/// What a local transaction came to (RocketMQ's `LocalTransactionState`).
public enum LocalTransactionState: String, Sendable, CaseIterable {
    /// Commit: the message becomes visible in its topic.
    case commitMessage = "COMMIT_MESSAGE"
    /// Roll back: the message is never delivered.
    case rollbackMessage = "ROLLBACK_MESSAGE"
    /// Not known yet: the broker asks the group's check listener later.
    case unknown = "UNKNOW"

    /// END_TRANSACTION's `commitOrRollback`: the transaction sysFlag (0 for unknown).
    var commitOrRollback: Int32 {
        switch self {
        case .commitMessage: MessageSysFlag.transactionCommit.rawValue
        case .rollbackMessage: MessageSysFlag.transactionRollback.rawValue
        case .unknown: 0
        }
    }
}

/// A transactional send's outcome: the half message's send result and what the local transaction decided.
public struct TransactionSendResult: Sendable {
    public var sendResult: SendResult
    public var localTransactionState: LocalTransactionState
    /// The transaction's id: the message's UNIQ_KEY (what the check listener's message carries too).
    public var transactionID: String
}

/// A producer of transactional messages (RocketMQ's `TransactionMQProducer`): `sendMessageInTransaction` stores a
/// half message, invisible to consumers, runs the local transaction, then tells the broker to commit or roll back
/// (END_TRANSACTION, one-way). When the decision was UNKNOW or never arrived (this producer died), the broker
/// asks a live producer of the same group through CHECK_TRANSACTION_STATE, and `checkListener` answers.
///
/// **Thread:** any; the check listener runs on a task of its own for each check.
public final class TransactionProducer: Sendable {
    public typealias CheckListener = @Sendable (MessageExt) async -> LocalTransactionState
    public let producer: Producer
    private let checkListener: CheckListener

    /// - Parameters:
    ///   - checkListener: the local transaction's state for a half message the broker asks about.
    public init(config: ClientConfig, settings: Producer.Settings, checkListener: @escaping CheckListener) {
        producer = Producer(config: config, settings: settings)
        self.checkListener = checkListener
    }

    public convenience init(group: String, namesrvAddr: String, checkListener: @escaping CheckListener) {
        var settings = Producer.Settings()
        settings.group = group
        self.init(config: ClientConfig(namesrvAddr: namesrvAddr), settings: settings, checkListener: checkListener)
    }

    public func start() {
        let group = producer.settings.group
        let listener = checkListener
        producer.client.serverRequests.transactionCheck.withLock { check in
            check = { command, channel in
                Task { await Self.answerCheck(command, channel: channel, group: group, listener: listener) }
            }
        }
        producer.start()
    }

    public func shutdown() async { await producer.shutdown() }

    /// Sends `message` as a half message, runs `execute` (the local transaction) once it is stored, and sends the
    /// decision. A DELAY level is dropped (transactional messages are not delayed, as in RocketMQ). An `execute`
    /// that throws counts as UNKNOW: the broker asks the check listener later.
    /// - Throws: what sending the half message threw; `execute` does not run then.
    public func sendMessageInTransaction(_ message: Message, timeoutMillis: Int64? = nil,
                                         execute: (Message) async throws -> LocalTransactionState)
        async throws -> TransactionSendResult {
        var message = message
        message.properties[MessageConst.delayTimeLevel] = nil
        message.properties[MessageConst.transactionPrepared] = "true"
        message.properties[MessageConst.producerGroup] = producer.settings.group
        if message.properties[MessageConst.uniqueClientMessageIDKeyIndex] == nil {
            message.properties.append(MessageConst.uniqueClientMessageIDKeyIndex, UniqueID.next())
        }
        let result = try await producer.send([message], batch: false, selector: nil,
                                             timeoutMillis: timeoutMillis ?? producer.settings.sendMsgTimeoutMillis,
                                             sysFlag: MessageSysFlag.transactionPrepared.rawValue)
        let transactionID = message.properties[MessageConst.uniqueClientMessageIDKeyIndex] ?? result.msgID
        let state: LocalTransactionState
        if result.status == .sendOK {
            state = (try? await execute(message)) ?? .unknown
        } else {
            state = .rollbackMessage  // stored without the promised flush or replica: RocketMQ rolls it back
        }
        await endTransaction(result, state: state, transactionID: transactionID)
        return TransactionSendResult(sendResult: result, localTransactionState: state, transactionID: transactionID)
    }

    /// END_TRANSACTION (one-way) to the master that stored the half message. A lost decision is not an error:
    /// the broker's check service asks again.
    private func endTransaction(_ result: SendResult, state: LocalTransactionState, transactionID: String) async {
        guard let offsetID = MessageID(hex: result.offsetMsgID),
              let address = try? await producer.masterAddress(result.queue.topic, result.queue.brokerName, defaultTopic: false) else { return }
        var request = RemotingCommand(code: RequestCode.endTransaction, opaque: 0, flag: RemotingCommand.onewayFlag, extFields: [
            "producerGroup": producer.settings.group, "tranStateTableOffset": "\(result.queueOffset)",
            "commitLogOffset": "\(offsetID.commitLogOffset)", "commitOrRollback": "\(state.commitOrRollback)",
            "fromTransactionCheck": "false", "msgId": result.msgID, "transactionId": transactionID,
        ], serializeType: producer.client.config.serializeType)
        request.language = .other
        try? await producer.client.remoting.invokeOneway(address, request)
    }

    /// Answers CHECK_TRANSACTION_STATE on the connection it came on (END_TRANSACTION, one-way,
    /// `fromTransactionCheck=true`), as RocketMQ's `checkTransactionState` does.
    static func answerCheck(_ command: RemotingCommand, channel: Channel, group: String, listener: CheckListener) async {
        guard let body = command.body, let message = try? MessageDecoder.decodeAll(body).first else { return }
        let fields = command.extFields
        guard let halfOffset = fields["tranStateTableOffset"], let commitLogOffset = fields["commitLogOffset"] else { return }
        let transactionID = fields["transactionId"].flatMap { $0.isEmpty ? nil : $0 }
            ?? message.properties[MessageConst.uniqueClientMessageIDKeyIndex] ?? ""
        let state = await listener(message)
        var request = RemotingCommand(code: RequestCode.endTransaction, opaque: 0, flag: RemotingCommand.onewayFlag, extFields: [
            "producerGroup": group, "tranStateTableOffset": halfOffset, "commitLogOffset": commitLogOffset,
            "commitOrRollback": "\(state.commitOrRollback)", "fromTransactionCheck": "true",
            "msgId": fields["msgId"] ?? transactionID, "transactionId": transactionID,
        ])
        request.language = .other
        channel.writeAndFlush(request, promise: nil)
    }
}
