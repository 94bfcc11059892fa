import Common
import NIOCore
import Remoting

/// The NameServer's admin requests: a broker's write permission in every route, and the NameServer's settings
/// (RocketMQ's `DefaultRequestProcessor`).
extension NameServerProcessor {
    /// RocketMQ's KV namespace for order topics' `brokerName:queueNums;...` (`NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG`).
    public static let orderTopicConfigNamespace = "ORDER_TOPIC_CONFIG"

    func answerAdmin(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        switch request.code {
        case RequestCode.wipeWritePermOfBroker, RequestCode.addWritePermOfBroker:
            let brokerName = try header.string("brokerName")
            let wipe = request.code == RequestCode.wipeWritePermOfBroker
            let count = routes.operateWritePerm(brokerName: brokerName, wipe: wipe)
            log("namesrv: \(wipe ? "wiped" : "added") write permission of broker \(brokerName) in \(count) topic(s)")
            return .response(to: request, code: ResponseCode.success, extFields: [wipe ? "wipeTopicCount" : "addTopicCount": "\(count)"])
        case RequestCode.getNamesrvConfig:
            let text = settings.properties().map { "\($0.0)=\($0.1)\n" }.joined()
            return .response(to: request, code: ResponseCode.success, body: ByteBuffer(string: text))
        case RequestCode.updateNamesrvConfig:
            let text = request.body.map { String(buffer: $0) } ?? ""
            let pairs: [(String, String)]
            switch parseProperties(text) {
            case .success(let parsed): pairs = parsed
            case .failure(let error): return .response(to: request, code: ResponseCode.systemError, remark: "string2Properties error: \(error)")
            }
            do throws(NamesrvRuntimeConfig.Refusal) {
                try settings.update(pairs)
            } catch {
                switch error {
                case .configPath: return .response(to: request, code: ResponseCode.noPermission, remark: "Can not update config path")
                case .invalid(let reason): return .response(to: request, code: ResponseCode.systemError, remark: reason)
                }
            }
            log("namesrv: settings updated: \(pairs.map { "\($0.0)=\($0.1)" }.joined(separator: ", "))")
            return .response(to: request, code: ResponseCode.success)
        default:
            return .response(to: request, code: ResponseCode.requestCodeNotSupported, remark: " request type \(request.code) not supported")
        }
    }
}
