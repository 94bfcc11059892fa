import Common
import NIOCore
import Remoting

/// GET_DLEDGER_STATUS and DLEDGER_LEADERSHIP_TRANSFER (ours) on the broker's port: a DLedger member's view of its
/// group, and the hand-over of leadership to a named member (asked of the leader).
struct DLedgerAdminProcessor: SynchronousProcessor {
    let replica: ReplicaRole
    var codes: [Int32] { [RequestCode.getDLedgerStatus, RequestCode.dledgerLeadershipTransfer] }

    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError) -> RemotingCommand {
        guard case .dledger(let member) = replica else {
            return .response(to: request, code: ResponseCode.systemError, remark: "this broker is not a DLedger member (enableDLegerCommitLog=false)")
        }
        switch request.code {
        case RequestCode.getDLedgerStatus:
            return .response(to: request, code: ResponseCode.success, body: member.statusBody().encode())
        default:
            let target = try header.string("transfereeId")
            if let problem = member.server.transferLeadership(to: target) {
                return .response(to: request, code: ResponseCode.systemError, remark: "leadership transfer to \(target): \(problem)")
            }
            return .response(to: request, code: ResponseCode.success)
        }
    }
}
