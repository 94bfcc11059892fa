import Common
import Remoting

/// The plain-ACL admin calls behind `mqadmin updateAclConfig`, `deleteAclConfig`, `updateGlobalWhiteAddr`,
/// `getAclConfig` and `clusterAclConfigVersion` (RocketMQ's `DefaultMQAdminExt` ones). The broker refuses them unless
/// the admin's own credentials belong to an admin account (or its address is globally white).
extension Admin {
    /// One broker address, or every broker of `cluster` (masters and, with `includeSlaves`, slaves).
    public func aclTargets(brokerAddr: String?, cluster: String?, includeSlaves: Bool) async throws -> [String] {
        if let brokerAddr { return [brokerAddr] }
        guard let cluster else { throw ClientError.badResponse("give a broker address (-b) or a cluster (-c)") }
        let brokers = try await clusterInfo().filter { $0.cluster == cluster && (includeSlaves || $0.brokerID == BrokerData.masterID) }
        guard !brokers.isEmpty else { throw ClientError.badResponse("no broker in cluster \(cluster)") }
        return brokers.map(\.address)
    }

    /// Creates or updates an account (UPDATE_AND_CREATE_ACL_CONFIG). Lists left nil are not sent, so the broker keeps
    /// an existing account's lists.
    public func updateAclConfig(_ address: String, _ config: PlainAccessConfig, topicPerms: [String]?, groupPerms: [String]?) async throws {
        var fields = ["accessKey": config.accessKey, "secretKey": config.secretKey, "admin": config.admin ? "true" : "false"]
        fields["whiteRemoteAddress"] = config.whiteRemoteAddress
        fields["defaultTopicPerm"] = config.defaultTopicPerm
        fields["defaultGroupPerm"] = config.defaultGroupPerm
        fields["topicPerms"] = topicPerms?.joined(separator: ",")
        fields["groupPerms"] = groupPerms?.joined(separator: ",")
        _ = try await client.call(address, code: RequestCode.updateAndCreateAclConfig, fields: fields)
    }

    /// Deletes an account (DELETE_ACL_CONFIG).
    public func deleteAclConfig(_ address: String, accessKey: String) async throws {
        _ = try await client.call(address, code: RequestCode.deleteAclConfig, fields: ["accessKey": accessKey])
    }

    /// Replaces the global white addresses (UPDATE_GLOBAL_WHITE_ADDRS_CONFIG).
    public func updateGlobalWhiteAddrs(_ address: String, _ addresses: [String], aclFileFullPath: String?) async throws {
        var fields = ["globalWhiteAddrs": addresses.joined(separator: ",")]
        fields["aclFileFullPath"] = aclFileFullPath
        _ = try await client.call(address, code: RequestCode.updateGlobalWhiteAddrsConfig, fields: fields)
    }

    /// Every account and white address a broker has (GET_BROKER_CLUSTER_ACL_CONFIG).
    public func aclConfig(_ address: String) async throws -> BrokerClusterAclConfigBody {
        try BrokerClusterAclConfigBody.decode(from: try await client.call(address, code: RequestCode.getBrokerClusterAclConfig).body)
    }

    /// A broker's ACL file versions (GET_BROKER_CLUSTER_ACL_INFO): cluster, broker name and address, and per file its
    /// data version's counter and timestamp.
    public struct AclVersionInfo: Sendable {
        public var clusterName: String
        public var brokerName: String
        public var brokerAddr: String
        public var files: [(path: String, counter: Int64, timestamp: Int64)]
    }

    public func aclVersion(_ address: String) async throws -> AclVersionInfo {
        let response = try await client.call(address, code: RequestCode.getBrokerClusterAclInfo)
        let fields = response.extFields
        var files: [(path: String, counter: Int64, timestamp: Int64)] = []
        if let text = fields["allAclFileVersion"], let json = try? JSONValue.parse(text), let members = json.members {
            for (path, version) in members {
                files.append((path, version["counter"]?.int ?? 0, version["timestamp"]?.int ?? 0))
            }
        }
        return AclVersionInfo(clusterName: fields["clusterName"] ?? "", brokerName: fields["brokerName"] ?? "",
                              brokerAddr: fields["brokerAddr"] ?? address, files: files)
    }
}
