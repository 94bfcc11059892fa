import Common
import NIOCore
import Remoting

/// END_TRANSACTION (37): a producer's decision on a half message, after its local transaction or when the
/// broker asked (`fromTransactionCheck`) (RocketMQ's `EndTransactionProcessor`). Producers send it one-way;
/// a caller that waits hears SUCCESS, or SYSTEM_ERROR naming what did not match.
struct EndTransactionProcessor: SynchronousProcessor {
    let services: BrokerServices
    var codes: [Int32] { [RequestCode.endTransaction] }

    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError)
        -> RemotingCommand {
        guard services.brokerRole != .slave else {
            return .response(to: request, code: ResponseCode.slaveNotAvailable, remark: "Can't process transaction on a slave broker")
        }
        let group = try header.string("producerGroup")
        let halfOffset = try header.int64("tranStateTableOffset")
        let commitLogOffset = try header.int64("commitLogOffset")
        let decision = MessageSysFlag(rawValue: try header.int32("commitOrRollback"))
        let fromCheck = header.bool("fromTransactionCheck")
        let commit: Bool
        switch decision {
        case .transactionCommit: commit = true
        case .transactionRollback: commit = false
        case []:
            // TRANSACTION_NOT_TYPE: the producer does not know yet; the check service asks again later.
            services.log("transaction: \(header.optionalString("transactionId") ?? "?") of \(group) is still unknown (fromCheck: \(fromCheck))")
            return .response(to: request, code: ResponseCode.success)
        default:
            return .response(to: request, code: ResponseCode.systemError,
                             remark: "commitOrRollback must be 0, 8 (commit) or 12 (rollback), not \(decision.rawValue)")
        }
        let answer = services.transactions.end(commitLogOffset: commitLogOffset, halfOffset: halfOffset, group: group,
                                               commit: commit, fromCheck: fromCheck)
        if answer.code != ResponseCode.success {
            services.log("transaction: END_TRANSACTION from \(group) refused: \(answer.remark ?? "")")
        }
        return .response(to: request, code: answer.code, remark: answer.remark)
    }
}
