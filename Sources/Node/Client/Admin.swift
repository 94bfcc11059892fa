import Common
import Remoting
import NIOCore

/// The calls behind `mqadmin`: cluster and topic administration, stats, message look-ups.
public final class Admin: Sendable {
    public let client: ClientInstance

    public init(namesrvAddr: String, timeoutMillis: Int64 = 5_000, credentials: SessionCredentials? = nil) {
        var config = ClientConfig(namesrvAddr: namesrvAddr)
        config.timeoutMillis = timeoutMillis
        config.credentials = credentials
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
        let info = try ClusterInfo.decode(from: try await nameServer(RequestCode.getBrokerClusterInfo).body)
        var clusterOf: [String: String] = [:]
        for (cluster, names) in info.clusterAddrTable { for name in names { clusterOf[name] = cluster } }
        var entries: [BrokerEntry] = []
        for (name, data) in info.brokerAddrTable {
            for (id, address) in data.brokerAddrs {
                entries.append(BrokerEntry(cluster: clusterOf[name] ?? data.cluster, brokerName: name, brokerID: id, address: address))
            }
        }
        return entries.sorted { ($0.cluster, $0.brokerName, $0.brokerID) < ($1.cluster, $1.brokerName, $1.brokerID) }
    }

    public func topicList() async throws -> [String] {
        try TopicList.decode(from: try await nameServer(RequestCode.getAllTopicListFromNameServer).body).topicList.sorted()
    }

    /// Creates or updates `topic` on one broker address, or on every master of `cluster`; returns the addresses.
    public func updateTopic(_ topic: String, brokerAddr: String?, cluster: String?, readQueueNums: Int, writeQueueNums: Int,
                            perm: Permission, order: Bool) async throws -> [String] {
        var targets: [String] = []
        if let brokerAddr { targets = [brokerAddr] }
        if let cluster {
            let masters = try await clusterInfo().filter { $0.cluster == cluster && $0.brokerID == BrokerData.masterID }
            guard !masters.isEmpty else { throw ClientError.badResponse("no master broker in cluster \(cluster)") }
            targets += masters.map(\.address)
        }
        guard !targets.isEmpty else { throw ClientError.badResponse("give a broker address (-b) or a cluster (-c)") }
        for address in targets {
            _ = try await client.call(address, code: RequestCode.updateAndCreateTopic, fields: [
                "topic": topic, "defaultTopic": TopicValidator.autoCreateTopicKeyTopic, "readQueueNums": "\(readQueueNums)", "writeQueueNums": "\(writeQueueNums)",
                "perm": "\(perm.rawValue)", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": order ? "true" : "false",
            ])
        }
        return targets
    }

    /// Deletes `topic` from every broker of `cluster` (all brokers when nil) and from every NameServer.
    public func deleteTopic(_ topic: String, cluster: String?) async throws -> [String] {
        let brokers = try await clusterInfo().filter { cluster == nil || $0.cluster == cluster }
        for broker in brokers where broker.brokerID == BrokerData.masterID {
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
    public func topicRoute(_ topic: String) async throws -> (json: String, route: TopicRouteData) {
        let response = try await client.callNameServer(code: RequestCode.getRouteInfoByTopic, fields: ["topic": topic])
        guard response.code == ResponseCode.success, let body = response.body else {
            throw ClientError.broker(code: response.code, remark: response.remark ?? "topic not exist", address: "NameServer")
        }
        let text = String(buffer: body)
        return (text, try TopicRouteData.decode(from: body))
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
            for (queue, offsets) in try TopicStatsTable.decode(from: response.body).offsetTable {
                stats.append(QueueStats(queue: queue, minOffset: offsets.minOffset, maxOffset: offsets.maxOffset,
                                        lastUpdateTimestamp: offsets.lastUpdateTimestamp))
            }
        }
        return stats.sorted { $0.queue < $1.queue }
    }

    public func brokerRuntimeInfo(_ address: String) async throws -> [(String, String)] {
        let response = try await client.call(address, code: RequestCode.getBrokerRuntimeInfo)
        return try KVTable.decode(from: response.body).table.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// GET_BROKER_HA_STATUS: a master's slave connections, or a slave's link to its master.
    public func haStatus(_ address: String) async throws -> HARuntimeInfo {
        try HARuntimeInfo.decode(from: try await client.call(address, code: RequestCode.getBrokerHAStatus).body)
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
        for broker in try await clusterInfo() where broker.brokerID == BrokerData.masterID {
            var fields = ["consumerGroup": group]
            if let topic { fields["topic"] = topic }
            let response = try await client.call(broker.address, code: RequestCode.getConsumeStats, fields: fields)
            for (queue, progress) in try ConsumeStats.decode(from: response.body).offsetTable {
                rows.append(ConsumeProgress(queue: queue, brokerOffset: progress.brokerOffset, consumerOffset: progress.consumerOffset,
                                            lastTimestamp: progress.lastTimestamp))
            }
        }
        return rows.sorted { $0.queue < $1.queue }
    }

    /// The message of a broker id (offsetMsgId: store host + commit-log offset in hex).
    public func viewMessage(offsetMsgID: String) async throws -> MessageExt {
        guard let id = MessageID(hex: offsetMsgID) else {
            throw ClientError.badResponse("\(offsetMsgID) is not a message id of the form IP(8 hex) PORT(8 hex) OFFSET(16 hex)")
        }
        let response = try await client.call(id.storeHost.description, code: RequestCode.viewMessageByID,
                                             fields: ["offset": "\(id.commitLogOffset)"])
        guard let body = response.body, let message = try MessageDecoder.decodeAll(body).first else {
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
            var messages = try response.body.map { try MessageDecoder.decodeAll($0) } ?? []
            for index in messages.indices { messages[index].brokerName = broker.brokerName }
            found += messages.filter { $0.keys.contains(key) || $0.property(MessageConst.uniqueClientMessageIDKeyIndex) == key }
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
