import CommitLog
import IndexFile
import NIOCore

/// The calls behind `mqadmin`: cluster and topic administration, stats, message look-ups.
public final class Admin: Sendable {
    public let client: ClientInstance

    public init(namesrvAddr: String, timeoutMillis: Int64 = 5_000) {
        var config = ClientConfig(namesrvAddr: namesrvAddr)
        config.timeoutMillis = timeoutMillis
        config.serializeType = .json
        client = ClientInstance(config: config)
    }

    public func shutdown() async { await client.shutdown() }

    public struct BrokerEntry: Sendable {
        public var cluster: String
        public var brokerName: String
        public var brokerID: Int64
        public var address: String
    }

    /// Every broker the NameServers know, by cluster, name and id.
    public func clusterInfo() async throws -> [BrokerEntry] {
        let response = try await nameServer(RequestCode.getBrokerClusterInfo)
        let json = try JSONValue.parse(response.body.map { String(buffer: $0) } ?? "{}")
        var clusterOf: [String: String] = [:]
        for (cluster, names) in json["clusterAddrTable"]?.members ?? [] {
            for name in names.array ?? [] { if let name = name.string { clusterOf[name] = cluster } }
        }
        var entries: [BrokerEntry] = []
        for (name, data) in json["brokerAddrTable"]?.members ?? [] {
            for (id, address) in data["brokerAddrs"]?.members ?? [] {
                guard let id = Int64(id), let address = address.string else { continue }
                entries.append(BrokerEntry(cluster: clusterOf[name] ?? data["cluster"]?.string ?? "", brokerName: name, brokerID: id, address: address))
            }
        }
        return entries.sorted { ($0.cluster, $0.brokerName, $0.brokerID) < ($1.cluster, $1.brokerName, $1.brokerID) }
    }

    public func topicList() async throws -> [String] {
        let response = try await nameServer(RequestCode.getAllTopicListFromNameServer)
        let json = try JSONValue.parse(response.body.map { String(buffer: $0) } ?? "{}")
        return (json["topicList"]?.array ?? []).compactMap(\.string).sorted()
    }

    /// Creates or updates `topic` on one broker address, or on every master of `cluster`; returns the addresses.
    public func updateTopic(_ topic: String, brokerAddr: String?, cluster: String?, readQueueNums: Int, writeQueueNums: Int,
                            perm: Int, order: Bool) async throws -> [String] {
        var targets: [String] = []
        if let brokerAddr { targets = [brokerAddr] }
        if let cluster {
            let masters = try await clusterInfo().filter { $0.cluster == cluster && $0.brokerID == 0 }
            guard !masters.isEmpty else { throw ClientError.badResponse("no master broker in cluster \(cluster)") }
            targets += masters.map(\.address)
        }
        guard !targets.isEmpty else { throw ClientError.badResponse("give a broker address (-b) or a cluster (-c)") }
        for address in targets {
            _ = try await client.call(address, code: RequestCode.updateAndCreateTopic, fields: [
                "topic": topic, "defaultTopic": "TBW102", "readQueueNums": "\(readQueueNums)", "writeQueueNums": "\(writeQueueNums)",
                "perm": "\(perm)", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": order ? "true" : "false",
            ])
        }
        return targets
    }

    /// Deletes `topic` from every broker of `cluster` (all brokers when nil) and from every NameServer.
    public func deleteTopic(_ topic: String, cluster: String?) async throws -> [String] {
        let brokers = try await clusterInfo().filter { cluster == nil || $0.cluster == cluster }
        for broker in brokers where broker.brokerID == 0 {
            _ = try await client.call(broker.address, code: RequestCode.deleteTopicInBroker, fields: ["topic": topic])
        }
        for server in client.config.nameServers {
            var fields = ["topic": topic]
            if let cluster { fields["clusterName"] = cluster }
            _ = try await client.call(server, code: RequestCode.deleteTopicInNamesrv, fields: fields)
        }
        return brokers.map(\.address)
    }

    /// The route of `topic` (the NameServer's JSON, and parsed).
    public func topicRoute(_ topic: String) async throws -> (json: String, route: TopicRoute) {
        let response = try await client.callNameServer(code: RequestCode.getRouteInfoByTopic, fields: ["topic": topic])
        guard response.code == ResponseCode.success, let body = response.body else {
            throw ClientError.broker(code: response.code, remark: response.remark ?? "topic not exist", address: "NameServer")
        }
        let text = String(buffer: body)
        return (text, try TopicRoute.parse(text))
    }

    public struct QueueStats: Sendable {
        public var queue: MessageQueue
        public var minOffset: Int64
        public var maxOffset: Int64
        public var lastUpdateTimestamp: Int64
    }

    /// GET_TOPIC_STATS_INFO from every broker hosting `topic`.
    public func topicStats(_ topic: String) async throws -> [QueueStats] {
        let route = try await topicRoute(topic).route
        var stats: [QueueStats] = []
        for broker in route.brokerDatas {
            guard let address = route.readAddress(broker.brokerName) else { continue }
            let response = try await client.call(address, code: RequestCode.getTopicStatsInfo, fields: ["topic": topic])
            let json = try JSONValue.parse(response.body.map { String(buffer: $0) } ?? "{}")
            for (key, value) in json["offsetTable"]?.members ?? [] {
                guard let mq = try? JSONValue.parse(key), let id = mq["queueId"]?.int else { continue }
                stats.append(QueueStats(queue: MessageQueue(topic: topic, brokerName: mq["brokerName"]?.string ?? broker.brokerName, queueID: Int32(truncatingIfNeeded: id)),
                                        minOffset: value["minOffset"]?.int ?? 0, maxOffset: value["maxOffset"]?.int ?? 0,
                                        lastUpdateTimestamp: value["lastUpdateTimestamp"]?.int ?? 0))
            }
        }
        return stats.sorted { $0.queue < $1.queue }
    }

    public func brokerRuntimeInfo(_ address: String) async throws -> [(String, String)] {
        let response = try await client.call(address, code: RequestCode.getBrokerRuntimeInfo)
        let json = try JSONValue.parse(response.body.map { String(buffer: $0) } ?? "{}")
        return (json["table"]?.members ?? []).map { ($0.0, $0.1.string ?? $0.1.rendered()) }.sorted { $0.0 < $1.0 }
    }

    public struct ConsumeProgress: Sendable {
        public var queue: MessageQueue
        public var brokerOffset: Int64
        public var consumerOffset: Int64
        public var lastTimestamp: Int64
        public var diff: Int64 { brokerOffset - consumerOffset }
    }

    /// GET_CONSUME_STATS from every master broker.
    public func consumeProgress(group: String, topic: String? = nil) async throws -> [ConsumeProgress] {
        var rows: [ConsumeProgress] = []
        for broker in try await clusterInfo() where broker.brokerID == 0 {
            var fields = ["consumerGroup": group]
            if let topic { fields["topic"] = topic }
            let response = try await client.call(broker.address, code: RequestCode.getConsumeStats, fields: fields)
            let json = try JSONValue.parse(response.body.map { String(buffer: $0) } ?? "{}")
            for (key, value) in json["offsetTable"]?.members ?? [] {
                guard let mq = try? JSONValue.parse(key), let id = mq["queueId"]?.int, let topic = mq["topic"]?.string else { continue }
                rows.append(ConsumeProgress(queue: MessageQueue(topic: topic, brokerName: mq["brokerName"]?.string ?? broker.brokerName, queueID: Int32(truncatingIfNeeded: id)),
                                            brokerOffset: value["brokerOffset"]?.int ?? 0, consumerOffset: value["consumerOffset"]?.int ?? 0,
                                            lastTimestamp: value["lastTimestamp"]?.int ?? 0))
            }
        }
        return rows.sorted { $0.queue < $1.queue }
    }

    /// The message of a broker id (offsetMsgId: store host + commit-log offset in hex).
    public func viewMessage(offsetMsgID: String) async throws -> MessageExt {
        let digits = Array(offsetMsgID.utf8)
        guard digits.count == 32, let raw = UInt128(offsetMsgID, radix: 16) else {
            throw ClientError.badResponse("\(offsetMsgID) is not a message id of the form IP(8 hex) PORT(8 hex) OFFSET(16 hex)")
        }
        let ip = UInt32(truncatingIfNeeded: raw >> 96)
        let port = UInt32(truncatingIfNeeded: raw >> 64)
        let offset = UInt64(truncatingIfNeeded: raw)
        let address = HostAddress(ipv4: UInt8(ip >> 24), UInt8(truncatingIfNeeded: ip >> 16), UInt8(truncatingIfNeeded: ip >> 8),
                                  UInt8(truncatingIfNeeded: ip), port: Int32(bitPattern: port)).text
        let response = try await client.call(address, code: RequestCode.viewMessageByID, fields: ["offset": "\(offset)"])
        guard let body = response.body, let message = try MessageExt.decodeAll(body).first else {
            throw ClientError.badResponse("no message at \(offsetMsgID)")
        }
        return message
    }

    /// Messages of `topic` with `key` (a KEYS entry or the UNIQ_KEY), from every broker hosting it.
    public func queryMessage(topic: String, key: String, maxNum: Int = 32) async throws -> [MessageExt] {
        let route = try await topicRoute(topic).route
        var found: [MessageExt] = []
        for broker in route.brokerDatas {
            guard let address = route.readAddress(broker.brokerName) else { continue }
            let response = try await client.invoke(address, code: RequestCode.queryMessage, fields: [
                "topic": topic, "key": key, "maxNum": "\(maxNum)", "beginTimestamp": "0", "endTimestamp": "\(Int64.max)",
            ])
            if response.code == ResponseCode.queryNotFound { continue }
            guard response.code == ResponseCode.success else {
                throw ClientError.broker(code: response.code, remark: response.remark ?? "", address: address)
            }
            var messages = try response.body.map { try MessageExt.decodeAll($0) } ?? []
            for index in messages.indices { messages[index].brokerName = broker.brokerName }
            found += messages.filter { $0.keys.contains(key) || $0.property("UNIQ_KEY") == key }
        }
        return found
    }

    private func nameServer(_ code: Int32) async throws -> RemotingCommand {
        let response = try await client.callNameServer(code: code)
        guard response.code == ResponseCode.success else {
            throw ClientError.broker(code: response.code, remark: response.remark ?? "", address: "NameServer")
        }
        return response
    }
}
