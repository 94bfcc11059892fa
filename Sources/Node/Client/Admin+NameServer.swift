import Common
import NIOCore
import Remoting

/// NameServer administration (RocketMQ's `DefaultMQAdminExt`): KV settings, a broker's write permission in the
/// routes, the NameServers' own settings. Each call goes to every NameServer of `namesrvAddr` (or `servers`).
extension Admin {
    /// The NameServers named by `-n`.
    public var nameServers: [String] { client.config.nameServers }

    /// PUT_KV_CONFIG on every NameServer.
    public func putKVConfig(namespace: String, key: String, value: String) async throws {
        for server in nameServers {
            _ = try await client.call(server, code: RequestCode.putKVConfig, fields: ["namespace": namespace, "key": key, "value": value])
        }
    }

    /// DELETE_KV_CONFIG on every NameServer.
    public func deleteKVConfig(namespace: String, key: String) async throws {
        for server in nameServers {
            _ = try await client.call(server, code: RequestCode.deleteKVConfig, fields: ["namespace": namespace, "key": key])
        }
    }

    /// GET_KV_CONFIG from the NameServers in turn; nil when none has the key.
    public func kvConfig(namespace: String, key: String) async throws -> String? {
        let response = try await client.callNameServer(code: RequestCode.getKVConfig, fields: ["namespace": namespace, "key": key])
        if response.code == ResponseCode.queryNotFound { return nil }
        guard response.code == ResponseCode.success else {
            throw ClientError.broker(code: response.code, remark: response.remark ?? "", address: "NameServer")
        }
        return response.extFields["value"]
    }

    /// WIPE_WRITE_PERM_OF_BROKER (`wipe`) or ADD_WRITE_PERM_OF_BROKER on each NameServer: per server, the number of
    /// topics changed or the failure.
    public func operateWritePerm(brokerName: String, wipe: Bool) async -> [(server: String, result: Result<Int, Error>)] {
        var results: [(server: String, result: Result<Int, Error>)] = []
        for server in nameServers {
            do {
                let response = try await client.call(server, code: wipe ? RequestCode.wipeWritePermOfBroker : RequestCode.addWritePermOfBroker,
                                                     fields: ["brokerName": brokerName])
                let count = Int(response.extFields[wipe ? "wipeTopicCount" : "addTopicCount"] ?? "") ?? 0
                results.append((server, .success(count)))
            } catch {
                results.append((server, .failure(error)))
            }
        }
        return results
    }

    /// GET_NAMESRV_CONFIG from each of `servers` (default: every NameServer): its `key=value` lines.
    public func nameServerConfig(servers: [String]? = nil) async throws -> [(server: String, properties: [(String, String)])] {
        var configs: [(server: String, properties: [(String, String)])] = []
        for server in servers ?? nameServers {
            let response = try await client.call(server, code: RequestCode.getNamesrvConfig)
            configs.append((server, Self.propertyLines(response.body.map { String(buffer: $0) } ?? "")))
        }
        return configs
    }

    /// UPDATE_NAMESRV_CONFIG on each of `servers` (default: every NameServer).
    public func updateNameServerConfig(key: String, value: String, servers: [String]? = nil) async throws {
        for server in servers ?? nameServers {
            _ = try await client.call(server, code: RequestCode.updateNamesrvConfig, body: ByteBuffer(string: "\(key)=\(value)\n"))
        }
    }

    /// The clusters whose brokers serve `topic` (RocketMQ's `getTopicClusterList`).
    public func topicClusters(_ topic: String) async throws -> [String] {
        let route = try await topicRoute(topic).route
        let brokers = try await clusterInfo()
        return Set(route.brokerDatas.compactMap { data in brokers.first { $0.brokerName == data.brokerName }?.cluster }).sorted()
    }

    /// A broker's settings (GET_BROKER_CONFIG): its `key=value` lines.
    public func brokerConfig(_ address: String) async throws -> [(String, String)] {
        let response = try await client.call(address, code: RequestCode.getBrokerConfig)
        return Self.propertyLines(response.body.map { String(buffer: $0) } ?? "")
    }

    /// The `key=value` lines of a config body, in order.
    static func propertyLines(_ text: String) -> [(String, String)] {
        text.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let equals = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<equals]), String(line[equals...].dropFirst()))
        }
    }

    /// UPDATE_BROKER_CONFIG: one key on one broker.
    public func updateBrokerConfig(_ address: String, key: String, value: String) async throws {
        _ = try await client.call(address, code: RequestCode.updateBrokerConfig, body: ByteBuffer(string: "\(key)=\(value)\n"))
    }
}

extension Admin {
    /// CLEAN_UNUSED_TOPIC or CLEAN_EXPIRED_CONSUMEQUEUE on one broker.
    public func cleanQueues(_ address: String, code: Int32) async throws {
        guard code == RequestCode.cleanUnusedTopic || code == RequestCode.cleanExpiredConsumeQueue else {
            throw ClientError.badResponse("request code \(code) is not a queue cleaning")
        }
        _ = try await client.call(address, code: code)
    }
}
