import Common
import NIOCore
import Remoting

/// The broker's `RemotingProcessor` when `aclEnable=true` (RocketMQ's `PlainAccessValidator` as an RPC hook): every
/// request is checked here, before any processor sees it, and a refused one is answered NO_PERMISSION with RocketMQ's
/// reason as the remark; nothing of it is stored or changed. Without `aclEnable` the broker serves `BrokerProcessor`
/// directly, so ACL costs nothing then.
struct AclCheckingProcessor: RemotingProcessor {
    let inner: BrokerProcessor
    let permissions: PlainPermissionManager

    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        answer(request, context: context.futuresOnly).future(on: context.eventLoop)
    }

    func answer(_ request: RemotingCommand, context: RequestContext) -> RemotingAnswer {
        do throws(AclDenial) {
            try PlainAccessValidator.check(request, host: Self.host(of: context.remoteAddress), rules: permissions.rules)
        } catch {
            permissions.logDenial("acl: refused request code \(request.code) from \(context.remoteAddress): \(error)")
            return .now(.response(to: request, code: ResponseCode.noPermission, remark: error.description))
        }
        return inner.answer(request, context: context)
    }

    func connectionClosed(_ context: RequestContext) { inner.connectionClosed(context) }

    /// `a.b.c.d:port` or `v6:port` without the port.
    static func host(of address: String) -> String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        return String(address[..<colon])
    }
}

/// RocketMQ's `PlainAccessValidator`: what a request needs (`parse`) and whether the rules allow it (`validate`).
enum PlainAccessValidator {
    /// Throws the reason when `rules` refuse `request` from `host`.
    static func check(_ request: RemotingCommand, host: String, rules: AclRules) throws(AclDenial) {
        if rules.isGloballyWhite(host) { return }
        let access = try parse(request, host: host)
        try rules.validate(access) { secretKey in request.aclSignature(secretKey: secretKey) }
    }

    /// The resources a request touches and the permission each needs (RocketMQ 4.9's table, plus SEND_BATCH_MESSAGE
    /// like SEND_MESSAGE_V2 and QUERY_CONSUMER_OFFSET like UPDATE_CONSUMER_OFFSET, which 4.9 leaves unchecked).
    static func parse(_ request: RemotingCommand, host: String) throws(AclDenial) -> AccessRequest {
        var access = AccessRequest(code: request.code, host: host, accessKey: request.field("AccessKey"),
                                   signature: request.field("Signature"))
        switch request.code {
        case RequestCode.sendMessage:
            access.needSend(request.field("topic"))
        case RequestCode.sendMessageV2, RequestCode.sendBatchMessage:
            access.needSend(request.field("b"))
        case RequestCode.consumerSendMsgBack:
            access.needGroup(request.field("group"))
        case RequestCode.pullMessage:
            access.need(request.field("topic"), .sub)
            access.needGroup(request.field("consumerGroup"))
        case RequestCode.queryMessage:
            access.need(request.field("topic"), .sub)
        case RequestCode.heartBeat:
            let heartbeat: HeartbeatData
            do { heartbeat = try HeartbeatData.decode(from: request.body) } catch {
                throw AclDenial(description: "\(error)")
            }
            for consumer in heartbeat.consumerDataSet {
                access.needGroup(consumer.groupName)
                for subscription in consumer.subscriptionDataSet { access.need(subscription.topic, .sub) }
            }
        case RequestCode.unregisterClient, RequestCode.getConsumerListByGroup:
            access.needGroup(request.field("consumerGroup"))
        case RequestCode.updateConsumerOffset, RequestCode.queryConsumerOffset:
            access.needGroup(request.field("consumerGroup"))
            access.need(request.field("topic"), .sub)
        default:
            break
        }
        return access
    }
}
