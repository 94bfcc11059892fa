import Common
import NIOCore
import Remoting

/// GET_CONSUMER_RUNNING_INFO (307): an admin's question relayed to one consumer on its own connection, and the
/// consumer's answer relayed back (RocketMQ's `AdminBrokerProcessor.callConsumer`). The request waits for the
/// client without holding a thread: the answer completes a promise through `ServerInvoker`.
struct ConsumerRelayProcessor: BrokerRequestProcessor {
    let services: BrokerServices
    /// How long the consumer may take (RocketMQ's `callClient` waits 5 s).
    static let clientTimeoutMillis: Int64 = 5_000
    var codes: [Int32] { [RequestCode.getConsumerRunningInfo] }

    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        let header = RequestHeader(request)
        let group: String
        let clientID: String
        do throws(RequestHeader.FieldError) {
            group = try header.string("consumerGroup")
            clientID = try header.string("clientId")
        } catch {
            return context.eventLoop.makeSucceededFuture(.response(to: request, error: error))
        }
        guard let client = services.consumers.client(clientID, group: group) else {
            return context.eventLoop.makeSucceededFuture(
                .response(to: request, code: ResponseCode.systemError, remark: "The Consumer <\(group)> <\(clientID)> not online"))
        }
        let relayed = RemotingCommand(code: request.code, opaque: 0, extFields: request.extFields, body: request.body)
        return services.invoker.invoke(client.channel, relayed, timeoutMillis: Self.clientTimeoutMillis)
            .hop(to: context.eventLoop)
            .map { answer -> RemotingCommand? in
                .response(to: request, code: answer.code, remark: answer.remark, body: answer.body)
            }
            .flatMapErrorWithEventLoop { error, loop in
                let timedOut = if case RemotingError.timeout = error { true } else { false }
                let response: RemotingCommand = timedOut
                    ? .response(to: request, code: ResponseCode.consumeMsgTimeout, remark: "consumer <\(group)> <\(clientID)> Timeout: \(error)")
                    : .response(to: request, code: ResponseCode.systemError, remark: "invoke consumer <\(group)> <\(clientID)> Exception: \(error)")
                return loop.makeSucceededFuture(response)
            }
    }
}
