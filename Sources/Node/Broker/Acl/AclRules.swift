import Common
import Remoting

/// The rules of one good `plain_acl.yml`, compiled for checking requests (RocketMQ's `PlainPermissionManager` maps):
/// white-address patterns parsed, permissions parsed, group permissions keyed by their retry topic.
struct AclRules: Sendable {
    struct Account: Sendable {
        var accessKey: String
        var secretKey: String
        var white: AclAddressPattern
        var admin: Bool
        var defaultTopicPerm: AclPermission
        var defaultGroupPerm: AclPermission
        /// Topic → permission and `%RETRY%group` → permission; nil when the account lists none (RocketMQ's null map,
        /// which lets an admin through every resource).
        var resources: [String: AclPermission]?
    }

    var globalWhite: [AclAddressPattern]
    var accounts: [String: Account]

    /// Request codes only an admin account may send (RocketMQ 4.9's `Permission.ADMIN_CODE`, plus the ACL codes
    /// themselves, as RocketMQ 5 has them: otherwise any account could grant itself everything).
    static let adminCodes: Set<Int32> = [
        RequestCode.updateAndCreateTopic, RequestCode.updateBrokerConfig, RequestCode.deleteTopicInBroker,
        RequestCode.updateAndCreateSubscriptionGroup, RequestCode.deleteSubscriptionGroup,
        RequestCode.updateAndCreateAclConfig, RequestCode.deleteAclConfig, RequestCode.getBrokerClusterAclInfo,
        RequestCode.updateGlobalWhiteAddrsConfig, RequestCode.getBrokerClusterAclConfig,
    ]

    /// Compiles a checked file (`PlainAclFile.parse` validated it; a problem here is reported the same way).
    init(_ file: PlainAclFile) throws(AclPatternError) {
        globalWhite = try file.globalWhiteRemoteAddresses.map { text throws(AclPatternError) in try AclAddressPattern(parsing: text) }
        var accounts: [String: Account] = [:]
        for config in file.accounts {
            try config.validate()
            var resources: [String: AclPermission] = [:]
            for text in config.groupPerms {
                let (name, perm) = try PlainAccessConfig.resourcePerm(text)
                resources[TopicValidator.retryTopic(group: name)] = perm
            }
            for text in config.topicPerms {
                let (name, perm) = try PlainAccessConfig.resourcePerm(text)
                resources[name] = perm
            }
            accounts[config.accessKey] = Account(
                accessKey: config.accessKey, secretKey: config.secretKey, white: try AclAddressPattern(parsing: config.whiteRemoteAddress ?? ""),
                admin: config.admin, defaultTopicPerm: config.defaultTopicPerm.flatMap(AclPermission.init(parsing:)) ?? .deny,
                defaultGroupPerm: config.defaultGroupPerm.flatMap(AclPermission.init(parsing:)) ?? .deny,
                resources: resources.isEmpty ? nil : resources)
        }
        self.accounts = accounts
    }
}

/// What one request needs (RocketMQ's `PlainAccessResource` as `PlainAccessValidator.parse` fills it).
struct AccessRequest {
    var code: Int32
    var host: String
    var accessKey: String?
    var signature: String?
    /// Resource → needed permission; a resource named twice keeps the last (a HashMap's `put`).
    var resources: [String: AclPermission] = [:]

    mutating func need(_ resource: String?, _ perm: AclPermission) {
        guard let resource, !resource.isEmpty else { return }
        resources[resource] = perm
    }

    mutating func needGroup(_ group: String?) {
        guard let group, !group.isEmpty else { return }
        resources[TopicValidator.retryTopic(group: group)] = .sub
    }

    /// A send to `%RETRY%group` needs the group's SUB (the consumer's own retries), any other topic PUB.
    mutating func needSend(_ topic: String?) {
        guard let topic else { return }
        need(topic, topic.hasPrefix(TopicValidator.retryGroupTopicPrefix) ? .sub : .pub)
    }
}

/// Why a request was refused, in RocketMQ's words (the remark of the NO_PERMISSION answer).
struct AclDenial: Error, CustomStringConvertible {
    var description: String
}

extension AclRules {
    /// RocketMQ's `PlainPermissionManager.validate`: a global white address passes; else the account must exist; its
    /// own white address passes; else the signature must match and every resource's permission must allow.
    /// `signature` computes the request's expected signature for a secret key (only called when needed).
    func validate(_ request: AccessRequest, signature: (String) -> String) throws(AclDenial) {
        guard let accessKey = request.accessKey else { throw AclDenial(description: "No accessKey is configured") }
        guard let account = accounts[accessKey] else { throw AclDenial(description: "No acl config for \(accessKey)") }
        if account.white.matches(request.host) { return }
        guard let given = request.signature, constantTimeEqual(signature(account.secretKey), given) else {
            throw AclDenial(description: "Check signature failed for accessKey=\(accessKey)")
        }
        // Message traces may always be written (RocketMQ skips the check for PUB to RMQ_SYS_TRACE_TOPIC).
        if request.resources["RMQ_SYS_TRACE_TOPIC"] == .pub { return }
        try checkPerm(request, account)
    }

    /// RocketMQ's `checkPerm`, with its messages.
    func checkPerm(_ request: AccessRequest, _ account: Account) throws(AclDenial) {
        if Self.adminCodes.contains(request.code) && !account.admin {
            throw AclDenial(description: "Need admin permission for request code=\(request.code), but accessKey=\(account.accessKey) is not")
        }
        if request.resources.isEmpty { return }
        if account.resources == nil && account.admin { return }
        for (resource, needed) in request.resources.sorted(by: { $0.key < $1.key }) {
            let isGroup = resource.hasPrefix(TopicValidator.retryGroupTopicPrefix)
            let owned = account.resources?[resource] ?? (isGroup ? account.defaultGroupPerm : account.defaultTopicPerm)
            guard owned.allows(needed) else {
                let name = isGroup ? "group:" + resource.dropFirst(TopicValidator.retryGroupTopicPrefix.count) : "topic:" + resource
                throw AclDenial(description: "No default permission for \(name)")
            }
        }
    }

    func isGloballyWhite(_ host: String) -> Bool { globalWhite.contains { $0.matches(host) } }
}

/// Compares two signatures in time independent of where they differ.
func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
    let left = Array(lhs.utf8)
    let right = Array(rhs.utf8)
    guard left.count == right.count else { return false }
    var difference: UInt8 = 0
    for index in left.indices { difference |= left[index] ^ right[index] }
    return difference == 0
}
