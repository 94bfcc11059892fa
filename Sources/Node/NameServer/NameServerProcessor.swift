import Common
import NIOCore
import Remoting

/// The NameServer's request processor (RocketMQ's `DefaultRequestProcessor`): one small handler per code.
public struct NameServerProcessor: RemotingProcessor {
    public let routes: RouteInfoManager
    public let kv: KVConfigManager
    public let settings: NamesrvRuntimeConfig
    let log: @Sendable (String) -> Void

    public init(routes: RouteInfoManager, kv: KVConfigManager, settings: NamesrvRuntimeConfig = NamesrvRuntimeConfig(NamesrvConfig()),
                log: @escaping @Sendable (String) -> Void) {
        self.routes = routes
        self.kv = kv
        self.settings = settings
        self.log = log
    }

    public func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        let response: RemotingCommand
        do throws(RequestHeader.FieldError) {
            response = try answer(request, header: RequestHeader(request), channel: ObjectIdentifier(context.channel))
        } catch {
            response = .response(to: request, error: error)
        }
        return context.eventLoop.makeSucceededFuture(response)
    }

    public func connectionClosed(_ context: RequestContext) {
        let dropped = routes.expire(now: currentTimeMillis(), expiryMillis: .max, closedChannel: ObjectIdentifier(context.channel))
        for address in dropped { log("namesrv: broker \(address) dropped: its connection closed") }
    }

    func answer(_ request: RemotingCommand, header: RequestHeader, channel: ObjectIdentifier) throws(RequestHeader.FieldError) -> RemotingCommand {
        switch request.code {
        case RequestCode.registerBroker: return try register(request, header, channel: channel)
        case RequestCode.unregisterBroker:
            routes.unregister(brokerName: try header.string("brokerName"), brokerAddr: try header.string("brokerAddr"))
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.getRouteInfoByTopic: return try route(request, header)
        case RequestCode.getBrokerClusterInfo: return .response(to: request, code: ResponseCode.success, body: routes.clusterInfo().encode())
        case RequestCode.getAllTopicListFromNameServer:
            return .response(to: request, code: ResponseCode.success, body: TopicList(topicList: routes.topics()).encode())
        case RequestCode.getTopicsByCluster:
            let topics = routes.topics(cluster: try header.string("cluster"))
            return .response(to: request, code: ResponseCode.success, body: TopicList(topicList: topics).encode())
        case RequestCode.deleteTopicInNamesrv:
            routes.deleteTopic(try header.string("topic"), cluster: header.optionalString("clusterName"))
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.putKVConfig:
            kv.put(namespace: try header.string("namespace"), key: try header.string("key"), value: try header.string("value"))
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.getKVConfig: return try getKV(request, header)
        case RequestCode.deleteKVConfig:
            kv.delete(namespace: try header.string("namespace"), key: try header.string("key"))
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.getKVListByNamespace:
            let namespace = try header.string("namespace")
            guard let table = kv.list(namespace: namespace) else {
                return .response(to: request, code: ResponseCode.queryNotFound, remark: "No config item, Namespace: \(namespace)")
            }
            return .response(to: request, code: ResponseCode.success, body: KVTable(table: table).encode())
        case RequestCode.queryDataVersion: return try queryDataVersion(request, header)
        default: return try answerAdmin(request, header)
        }
    }

    /// Form 2 (quoted keys) for requests of version >= 401 or `acceptStandardJsonOnly`, else fastjson's form 1.
    func route(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        let topic = try header.string("topic")
        guard var route = routes.route(topic: topic) else {
            return .response(to: request, code: ResponseCode.topicNotExist, remark: "No topic route info in name server for the topic: \(topic)")
        }
        route.quotedKeys = request.version >= 401 || header.bool("acceptStandardJsonOnly")
        if settings.current.orderMessageEnable { route.orderTopicConf = kv.get(namespace: Self.orderTopicConfigNamespace, key: topic) }
        return .response(to: request, code: ResponseCode.success, body: route.encode())
    }

    func getKV(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        let namespace = try header.string("namespace")
        let key = try header.string("key")
        guard let value = kv.get(namespace: namespace, key: key) else {
            return .response(to: request, code: ResponseCode.queryNotFound, remark: "No config item, Namespace: \(namespace) Key: \(key)")
        }
        return .response(to: request, code: ResponseCode.success, extFields: ["value": value])
    }

    func queryDataVersion(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        let address = try header.string("brokerAddr")
        let sent = try? DataVersion.decode(from: request.body)
        let stored = routes.dataVersion(of: address)
        let changed = stored == nil || sent == nil || stored! != sent!
        if !changed { routes.touch(address, now: currentTimeMillis()) }
        return .response(to: request, code: ResponseCode.success, extFields: ["changed": changed ? "true" : "false"],
                         body: stored?.encode())
    }

    func register(_ request: RemotingCommand, _ header: RequestHeader, channel: ObjectIdentifier) throws(RequestHeader.FieldError) -> RemotingCommand {
        try header.require("brokerName", "brokerAddr", "clusterName", "brokerId")
        var registration = RouteInfoManager.Registration(
            cluster: try header.string("clusterName"), brokerName: try header.string("brokerName"),
            brokerAddr: try header.string("brokerAddr"), brokerID: try header.int64("brokerId"),
            haServerAddr: header.optionalString("haServerAddr") ?? "", topics: nil)
        if let expected = try header.optionalInt64("bodyCrc32"), expected != 0, let body = request.body {
            let actual = body.withUnsafeReadableBytes { rocketMQCRC32($0) }
            guard Int64(actual) == expected else {
                return .response(to: request, code: ResponseCode.systemError,
                                 remark: "register broker body CRC32 \(actual) differs from bodyCrc32 \(expected)")
            }
        }
        if header.bool("compressed") {
            return .response(to: request, code: ResponseCode.systemError,
                             remark: "compressed REGISTER_BROKER bodies are not supported; set compressedRegister=false")
        }
        if let body = request.body, body.readableBytes > 0 {
            do throws(BodyError) {
                registration.topics = try RegisterBrokerBody.decode(from: body).topicConfigSerializeWrapper
            } catch {
                return .response(to: request, code: ResponseCode.systemError, remark: "REGISTER_BROKER body: \(error)")
            }
        }
        let (master, masterHA) = routes.register(registration, channel: channel, now: currentTimeMillis())
        var fields: [String: String] = [:]
        if let master { fields["masterAddr"] = master }
        if let masterHA, !masterHA.isEmpty { fields["haServerAddr"] = masterHA }
        return .response(to: request, code: ResponseCode.success, extFields: fields)
    }
}
