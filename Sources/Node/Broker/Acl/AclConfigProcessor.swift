import Common
import NIOCore
import Remoting

/// The plain-ACL admin codes (RocketMQ 4.9's `AdminBrokerProcessor` for them): create or update an account (50),
/// delete one (51), the file's data version (52), replace the global white addresses (53) and the whole
/// configuration (54). Changes are checked, written back to `plain_acl.yml` and in force before the answer.
/// Only admin accounts get here when ACL is on (`AclRules.adminCodes`); without `aclEnable` every code is refused.
struct AclConfigProcessor: SynchronousProcessor {
    let services: BrokerServices
    let permissions: PlainPermissionManager?

    var codes: [Int32] {
        [RequestCode.updateAndCreateAclConfig, RequestCode.deleteAclConfig, RequestCode.getBrokerClusterAclInfo,
         RequestCode.updateGlobalWhiteAddrsConfig, RequestCode.getBrokerClusterAclConfig]
    }

    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError) -> RemotingCommand {
        guard let permissions else {
            return .response(to: request, code: ResponseCode.systemError, remark: "ACL is not enabled on this broker (aclEnable=false)")
        }
        switch request.code {
        case RequestCode.updateAndCreateAclConfig:
            let config = try Self.accessConfig(header)
            return modify(permissions, request, failure: ResponseCode.updateAndCreateAclConfigFailed) { file throws(AclPatternError) in
                if let index = file.accounts.firstIndex(where: { $0.accessKey == config.accessKey }) {
                    file.accounts[index] = Self.merged(file.accounts[index], with: config, header)
                } else {
                    file.accounts.append(config)
                }
            }
        case RequestCode.deleteAclConfig:
            let accessKey = try header.string("accessKey")
            return modify(permissions, request, failure: ResponseCode.deleteAclConfigFailed) { file throws(AclPatternError) in
                guard let index = file.accounts.firstIndex(where: { $0.accessKey == accessKey }) else {
                    throw AclPatternError("The accesskey[\(accessKey)] corresponding to accessConfig has been deleted failed.")
                }
                file.accounts.remove(at: index)
            }
        case RequestCode.updateGlobalWhiteAddrsConfig:
            let addresses = (header.optionalString("globalWhiteAddrs") ?? "").split(separator: ",").map { String($0.trimmingSpaces) }
            if let target = header.optionalString("aclFileFullPath"), target != permissions.path {
                return .response(to: request, code: ResponseCode.updateGlobalWhiteAddrsConfigFailed,
                                 remark: "this broker's ACL file is \(permissions.path), not \(target)")
            }
            return modify(permissions, request, failure: ResponseCode.updateGlobalWhiteAddrsConfigFailed) { file throws(AclPatternError) in
                for address in addresses { _ = try AclAddressPattern(parsing: address) }
                file.globalWhiteRemoteAddresses = addresses
            }
        case RequestCode.getBrokerClusterAclInfo:
            let version = permissions.file.dataVersion
            return .response(to: request, code: ResponseCode.success, extFields: [
                "version": version.jsonText, "allAclFileVersion": "{\(jsonString(permissions.path)):\(version.jsonText)}",
                "brokerName": services.config.brokerName, "brokerAddr": services.brokerAddr,
                "clusterName": services.config.brokerClusterName,
            ])
        default:
            let file = permissions.file
            let body = BrokerClusterAclConfigBody(globalWhiteAddrs: file.globalWhiteRemoteAddresses, plainAccessConfigs: file.accounts)
            return .response(to: request, code: ResponseCode.success, body: body.encode())
        }
    }

    private func modify(_ permissions: PlainPermissionManager, _ request: RemotingCommand, failure: Int32,
                        _ change: (inout PlainAclFile) throws(AclPatternError) -> Void) -> RemotingCommand {
        do throws(AclPatternError) {
            try permissions.modify(change)
            return .response(to: request, code: ResponseCode.success)
        } catch {
            return .response(to: request, code: failure, remark: error.description)
        }
    }

    /// CreateAccessConfigRequestHeader: comma-separated permission lists, `admin` as "true"/"false".
    static func accessConfig(_ header: RequestHeader) throws(RequestHeader.FieldError) -> PlainAccessConfig {
        var config = PlainAccessConfig(accessKey: try header.string("accessKey"), secretKey: header.optionalString("secretKey") ?? "")
        config.whiteRemoteAddress = header.optionalString("whiteRemoteAddress")
        config.admin = header.bool("admin")
        config.defaultTopicPerm = header.optionalString("defaultTopicPerm")
        config.defaultGroupPerm = header.optionalString("defaultGroupPerm")
        config.topicPerms = list(header.optionalString("topicPerms"))
        config.groupPerms = list(header.optionalString("groupPerms"))
        return config
    }

    private static func list(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { String($0.trimmingSpaces) }.filter { !$0.isEmpty }
    }

    /// RocketMQ's `createAclAccessConfigMap` over an existing account: what the request carries replaces, what it
    /// leaves out stays (`admin` always comes with the request).
    static func merged(_ old: PlainAccessConfig, with new: PlainAccessConfig, _ header: RequestHeader) -> PlainAccessConfig {
        var result = old
        if !new.secretKey.isEmpty { result.secretKey = new.secretKey }
        if new.whiteRemoteAddress != nil { result.whiteRemoteAddress = new.whiteRemoteAddress }
        result.admin = new.admin
        if new.defaultTopicPerm != nil { result.defaultTopicPerm = new.defaultTopicPerm }
        if new.defaultGroupPerm != nil { result.defaultGroupPerm = new.defaultGroupPerm }
        if header.optionalString("topicPerms") != nil { result.topicPerms = new.topicPerms }
        if header.optionalString("groupPerms") != nil { result.groupPerms = new.groupPerms }
        return result
    }
}
