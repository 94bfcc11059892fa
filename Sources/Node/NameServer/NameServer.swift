import CommitLog
import IndexFile
import NIOCore
import Synchronization

/// `namesrv.properties` settings.
public struct NameServerConfig: Sendable {
    public var listenPort: Int = 9876
    /// How often brokers are checked for liveness (`scanNotActiveBrokerInterval`).
    public var scanNotActiveBrokerIntervalMillis: Int64 = 5_000
    /// A broker silent this long is dropped (RocketMQ's fixed 120 s, a setting here).
    public var brokerChannelExpiredTimeMillis: Int64 = 120_000
    public init() {}
}

/// The NameServer's tables (RocketMQ's `RouteInfoManager`): which brokers live, which topics they
/// serve, clusters, and a small KV store. Stateless across restarts; several run side by side.
public final class RouteInfoManager: Sendable {
    struct QueueData: Equatable {
        var brokerName: String
        var readQueueNums: Int64
        var writeQueueNums: Int64
        var perm: Int64
        var topicSysFlag: Int64
    }
    struct BrokerData {
        var cluster: String
        var brokerName: String
        var addresses: [Int64: String]
    }
    struct LiveBroker {
        var lastUpdateMillis: Int64
        var dataVersion: JSONValue
        var channel: ObjectIdentifier?
        var haServerAddr: String
    }
    struct Tables {
        var topicQueues: [String: [String: QueueData]] = [:]
        var brokers: [String: BrokerData] = [:]
        var clusters: [String: Set<String>] = [:]
        var live: [String: LiveBroker] = [:]
        var kv: [String: [String: String]] = [:]
    }
    let tables = Mutex(Tables())
    let log: @Sendable (String) -> Void

    public init(log: @escaping @Sendable (String) -> Void = { _ in }) { self.log = log }

    /// Registers (or refreshes) a broker and, for a master whose data version changed, its topics.
    /// - Returns: for a slave, the master's address and HA address.
    func register(cluster: String, brokerName: String, brokerAddr: String, brokerID: Int64, haServerAddr: String,
                  dataVersion: JSONValue, topics: [(String, QueueData)], channel: ObjectIdentifier?, now: Int64)
        -> (masterAddr: String?, masterHA: String?) {
        tables.withLock { t in
            t.clusters[cluster, default: []].insert(brokerName)
            var broker = t.brokers[brokerName] ?? BrokerData(cluster: cluster, brokerName: brokerName, addresses: [:])
            // An address that re-registers under another id replaces its old entry (a slave becoming master).
            for (id, address) in broker.addresses where address == brokerAddr && id != brokerID { broker.addresses[id] = nil }
            broker.addresses[brokerID] = brokerAddr
            t.brokers[brokerName] = broker
            let previous = t.live[brokerAddr]
            if brokerID == 0 && (previous == nil || previous!.dataVersion != dataVersion) {
                for (topic, queue) in topics { t.topicQueues[topic, default: [:]][brokerName] = queue }
            }
            t.live[brokerAddr] = LiveBroker(lastUpdateMillis: now, dataVersion: dataVersion, channel: channel,
                                            haServerAddr: haServerAddr)
            guard brokerID != 0, let master = broker.addresses[0] else { return (nil, nil) }
            return (master, t.live[master]?.haServerAddr)
        }
    }

    func unregister(brokerName: String, brokerAddr: String, brokerID: Int64) {
        tables.withLock { t in
            t.live[brokerAddr] = nil
            remove(address: brokerAddr, of: brokerName, &t)
        }
    }

    /// Drops the broker at `address` from every table; the last address of a name takes its topics along.
    private func remove(address: String, of brokerName: String, _ t: inout Tables) {
        guard var broker = t.brokers[brokerName] else { return }
        broker.addresses = broker.addresses.filter { $0.value != address }
        if broker.addresses.isEmpty {
            t.brokers[brokerName] = nil
            for cluster in t.clusters.keys {
                t.clusters[cluster]!.remove(brokerName)
                if t.clusters[cluster]!.isEmpty { t.clusters[cluster] = nil }
            }
            for topic in t.topicQueues.keys {
                t.topicQueues[topic]![brokerName] = nil
                if t.topicQueues[topic]!.isEmpty { t.topicQueues[topic] = nil }
            }
        } else {
            t.brokers[brokerName] = broker
        }
    }

    /// Drops brokers not heard from within `expiryMillis`, or whose channel is `closedChannel`.
    func expire(now: Int64, expiryMillis: Int64, closedChannel: ObjectIdentifier? = nil) -> [String] {
        tables.withLock { t in
            let dead = t.live.filter { now - $0.value.lastUpdateMillis > expiryMillis || ($0.value.channel != nil && $0.value.channel == closedChannel) }
            for address in dead.keys {
                t.live[address] = nil
                for (name, broker) in t.brokers where broker.addresses.values.contains(address) { remove(address: address, of: name, &t) }
            }
            return Array(dead.keys)
        }
    }

    /// TopicRouteData JSON, or nil when the topic has no queue data or no broker. `quotedKeys`: form 2
    /// (version >= 401 or acceptStandardJsonOnly); otherwise fastjson's bare `Long` keys, which every
    /// client parses.
    func route(topic: String, quotedKeys: Bool) -> String? {
        tables.withLock { t in
            guard let queues = t.topicQueues[topic], !queues.isEmpty else { return nil }
            let names = queues.keys.sorted()
            let brokers = names.compactMap { t.brokers[$0] }
            guard !brokers.isEmpty else { return nil }
            let brokerDatas = brokers.map { brokerDataJSON($0, quotedKeys: quotedKeys) }.joined(separator: ",")
            let queueDatas = names.map { name -> String in
                let q = queues[name]!
                return "{\"brokerName\":\(jsonString(q.brokerName)),\"perm\":\(q.perm),\"readQueueNums\":\(q.readQueueNums),\"topicSysFlag\":\(q.topicSysFlag),\"writeQueueNums\":\(q.writeQueueNums)}"
            }.joined(separator: ",")
            return "{\"brokerDatas\":[\(brokerDatas)],\"filterServerTable\":{},\"queueDatas\":[\(queueDatas)]}"
        }
    }

    func clusterInfo() -> String {
        tables.withLock { t in
            let brokers = t.brokers.keys.sorted().map { jsonString($0) + ":" + brokerDataJSON(t.brokers[$0]!, quotedKeys: false) }
            let clusters = t.clusters.keys.sorted().map { jsonString($0) + ":[" + t.clusters[$0]!.sorted().map(jsonString).joined(separator: ",") + "]" }
            return "{\"brokerAddrTable\":{\(brokers.joined(separator: ","))},\"clusterAddrTable\":{\(clusters.joined(separator: ","))}}"
        }
    }

    func topics(cluster: String? = nil) -> [String] {
        tables.withLock { t in
            let names = cluster.map { t.clusters[$0] ?? [] }
            return t.topicQueues.filter { entry in names.map { !$0.isDisjoint(with: entry.value.keys) } ?? true }.keys.sorted()
        }
    }

    func deleteTopic(_ topic: String, cluster: String?) {
        tables.withLock { t in
            guard let cluster, let names = t.clusters[cluster] else {
                t.topicQueues[topic] = nil
                return
            }
            for name in names { t.topicQueues[topic]?[name] = nil }
            if t.topicQueues[topic]?.isEmpty == true { t.topicQueues[topic] = nil }
        }
    }

    func dataVersion(of brokerAddr: String) -> JSONValue? { tables.withLock { $0.live[brokerAddr]?.dataVersion } }
    func touch(_ brokerAddr: String, now: Int64) { tables.withLock { $0.live[brokerAddr]?.lastUpdateMillis = now } }

    func putKV(namespace: String, key: String, value: String) { tables.withLock { $0.kv[namespace, default: [:]][key] = value } }
    func getKV(namespace: String, key: String) -> String? { tables.withLock { $0.kv[namespace]?[key] } }
    func deleteKV(namespace: String, key: String) { tables.withLock { _ = $0.kv[namespace]?.removeValue(forKey: key) } }
    func kvList(namespace: String) -> [String: String]? { tables.withLock { $0.kv[namespace] } }
}

private func brokerDataJSON(_ broker: RouteInfoManager.BrokerData, quotedKeys: Bool) -> String {
    let addresses = broker.addresses.keys.sorted().map { id in
        (quotedKeys ? "\"\(id)\"" : "\(id)") + ":" + jsonString(broker.addresses[id]!)
    }.joined(separator: ",")
    return "{\"brokerAddrs\":{\(addresses)},\"brokerName\":\(jsonString(broker.brokerName)),\"cluster\":\(jsonString(broker.cluster))}"
}

/// The NameServer's request processor.
public struct NameServerProcessor: RemotingProcessor {
    public let routes: RouteInfoManager
    let config: NameServerConfig

    public init(routes: RouteInfoManager, config: NameServerConfig) {
        self.routes = routes
        self.config = config
    }

    public func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        context.eventLoop.makeSucceededFuture(answer(request, channel: ObjectIdentifier(context.channel)))
    }

    public func connectionClosed(_ context: RequestContext) {
        let dropped = routes.expire(now: wallClockMillis(), expiryMillis: .max, closedChannel: ObjectIdentifier(context.channel))
        for address in dropped { routes.log("namesrv: broker \(address) dropped: its connection closed") }
    }

    func answer(_ request: RemotingCommand, channel: ObjectIdentifier) -> RemotingCommand {
        let fields = request.extFields
        func missing(_ names: String...) -> RemotingCommand? {
            let absent = names.filter { (fields[$0] ?? "").isEmpty }
            guard !absent.isEmpty else { return nil }
            return .response(to: request, code: ResponseCode.systemError,
                             remark: "the header of request \(request.code) lacks \(absent.joined(separator: ", "))")
        }
        switch request.code {
        case RequestCode.registerBroker:
            if let error = missing("brokerName", "brokerAddr", "clusterName", "brokerId") { return error }
            return register(request, channel: channel)
        case RequestCode.unregisterBroker:
            if let error = missing("brokerName", "brokerAddr") { return error }
            routes.unregister(brokerName: fields["brokerName"]!, brokerAddr: fields["brokerAddr"]!,
                              brokerID: Int64(fields["brokerId"] ?? "0") ?? 0)
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.getRouteInfoByTopic:
            if let error = missing("topic") { return error }
            let topic = fields["topic"]!
            let quoted = request.version >= 401 || ["true", "1"].contains(fields["acceptStandardJsonOnly"] ?? "")
            guard let json = routes.route(topic: topic, quotedKeys: quoted) else {
                return .response(to: request, code: ResponseCode.topicNotExist,
                                 remark: "No topic route info in name server for the topic: \(topic)")
            }
            return .response(to: request, code: ResponseCode.success, body: ByteBuffer(string: json))
        case RequestCode.getBrokerClusterInfo:
            return .response(to: request, code: ResponseCode.success, body: ByteBuffer(string: routes.clusterInfo()))
        case RequestCode.getAllTopicListFromNameServer, RequestCode.getTopicsByCluster:
            let cluster = request.code == RequestCode.getTopicsByCluster ? fields["cluster"] : nil
            let list = routes.topics(cluster: cluster).map(jsonString).joined(separator: ",")
            return .response(to: request, code: ResponseCode.success, body: ByteBuffer(string: "{\"topicList\":[\(list)]}"))
        case RequestCode.deleteTopicInNamesrv:
            if let error = missing("topic") { return error }
            routes.deleteTopic(fields["topic"]!, cluster: fields["clusterName"].flatMap { $0.isEmpty ? nil : $0 })
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.putKVConfig:
            if let error = missing("namespace", "key", "value") { return error }
            routes.putKV(namespace: fields["namespace"]!, key: fields["key"]!, value: fields["value"]!)
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.getKVConfig:
            if let error = missing("namespace", "key") { return error }
            guard let value = routes.getKV(namespace: fields["namespace"]!, key: fields["key"]!) else {
                return .response(to: request, code: ResponseCode.queryNotFound,
                                 remark: "No config item, Namespace: \(fields["namespace"]!) Key: \(fields["key"]!)")
            }
            return .response(to: request, code: ResponseCode.success, extFields: ["value": value])
        case RequestCode.deleteKVConfig:
            if let error = missing("namespace", "key") { return error }
            routes.deleteKV(namespace: fields["namespace"]!, key: fields["key"]!)
            return .response(to: request, code: ResponseCode.success)
        case RequestCode.getKVListByNamespace:
            if let error = missing("namespace") { return error }
            guard let table = routes.kvList(namespace: fields["namespace"]!) else {
                return .response(to: request, code: ResponseCode.queryNotFound, remark: "No config item, Namespace: \(fields["namespace"]!)")
            }
            let entries = table.keys.sorted().map { jsonString($0) + ":" + jsonString(table[$0]!) }.joined(separator: ",")
            return .response(to: request, code: ResponseCode.success, body: ByteBuffer(string: "{\"table\":{\(entries)}}"))
        case RequestCode.queryDataVersion:
            if let error = missing("brokerAddr") { return error }
            let address = fields["brokerAddr"]!
            let sent = request.body.flatMap { try? JSONValue.parse(String(buffer: $0)) }
            let stored = routes.dataVersion(of: address)
            let changed = stored == nil || sent == nil || stored! != sent!
            if !changed { routes.touch(address, now: wallClockMillis()) }
            return .response(to: request, code: ResponseCode.success, extFields: ["changed": changed ? "true" : "false"],
                             body: stored.map { ByteBuffer(string: $0.rendered().filter { $0 != "\n" && $0 != "\t" }) })
        default:
            return .response(to: request, code: ResponseCode.requestCodeNotSupported,
                             remark: " request type \(request.code) not supported")
        }
    }

    private func register(_ request: RemotingCommand, channel: ObjectIdentifier) -> RemotingCommand {
        let fields = request.extFields
        guard let brokerID = Int64(fields["brokerId"]!) else {
            return .response(to: request, code: ResponseCode.systemError, remark: "brokerId \(fields["brokerId"]!) is not a number")
        }
        var body = request.body ?? ByteBuffer()
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        if let expected = UInt32(fields["bodyCrc32"] ?? "0"), expected != 0 {
            let actual = bytes.withUnsafeBytes { rocketCRC32($0) }
            guard actual == expected else {
                return .response(to: request, code: ResponseCode.systemError, remark: "register broker body CRC32 \(actual) differs from bodyCrc32 \(expected)")
            }
        }
        if ["true", "1"].contains(fields["compressed"] ?? "") {
            return .response(to: request, code: ResponseCode.systemError, remark: "compressed REGISTER_BROKER bodies are not supported; set compressedRegister=false")
        }
        var dataVersion = JSONValue.null
        var topics: [(String, RouteInfoManager.QueueData)] = []
        if !bytes.isEmpty {
            guard let json = try? JSONValue.parse(String(decoding: bytes, as: UTF8.self)) else {
                return .response(to: request, code: ResponseCode.systemError, remark: "REGISTER_BROKER body is not JSON")
            }
            let wrapper = json["topicConfigSerializeWrapper"] ?? json
            dataVersion = wrapper["dataVersion"] ?? .null
            for (topic, config) in wrapper["topicConfigTable"]?.members ?? [] {
                topics.append((topic, .init(brokerName: fields["brokerName"]!, readQueueNums: config["readQueueNums"]?.int ?? 16,
                                            writeQueueNums: config["writeQueueNums"]?.int ?? 16, perm: config["perm"]?.int ?? 6,
                                            topicSysFlag: config["topicSysFlag"]?.int ?? 0)))
            }
        }
        let (master, masterHA) = routes.register(
            cluster: fields["clusterName"]!, brokerName: fields["brokerName"]!, brokerAddr: fields["brokerAddr"]!, brokerID: brokerID,
            haServerAddr: fields["haServerAddr"] ?? "", dataVersion: dataVersion, topics: topics, channel: channel, now: wallClockMillis())
        var extFields: [String: String] = [:]
        if let master { extFields["masterAddr"] = master }
        if let masterHA, !masterHA.isEmpty { extFields["haServerAddr"] = masterHA }
        return .response(to: request, code: ResponseCode.success, extFields: extFields)
    }
}

/// A running NameServer: the remoting server plus the liveness scan.
public final class NameServer: Sendable {
    public let server: RemotingServer<NameServerProcessor>
    public let routes: RouteInfoManager
    private let scan: RepeatedTask

    public init(config: NameServerConfig, group: EventLoopGroup, host: String = "0.0.0.0",
                log: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        let routes = RouteInfoManager(log: log)
        self.routes = routes
        server = try await RemotingServer(host: host, port: config.listenPort, group: group,
                                          processor: NameServerProcessor(routes: routes, config: config), log: log)
        let interval = TimeAmount.milliseconds(config.scanNotActiveBrokerIntervalMillis)
        scan = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            for address in routes.expire(now: wallClockMillis(), expiryMillis: config.brokerChannelExpiredTimeMillis) {
                log("namesrv: broker \(address) dropped: silent for more than \(config.brokerChannelExpiredTimeMillis) ms")
            }
        }
    }

    public var port: Int { server.port }

    public func close() async throws {
        scan.cancel()
        try await server.close()
    }
}
