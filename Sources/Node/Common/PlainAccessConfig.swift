import Remoting

/// A plain-ACL permission (RocketMQ's `acl.common.Permission`): DENY, ANY, PUB, SUB as bits.
public struct AclPermission: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let deny = AclPermission(rawValue: 1)
    public static let any = AclPermission(rawValue: 2)
    public static let pub = AclPermission(rawValue: 4)
    public static let sub = AclPermission(rawValue: 8)

    /// `PUB`, `SUB`, `PUB|SUB`, `SUB|PUB` or `DENY`; nil for anything else.
    public init?(parsing text: String) {
        switch text.trimmingSpaces {
        case "PUB": self = .pub
        case "SUB": self = .sub
        case "PUB|SUB", "SUB|PUB": self = [.pub, .sub]
        case "DENY": self = .deny
        default: return nil
        }
    }

    public var description: String {
        if contains(.deny) { return "DENY" }
        switch (contains(.pub), contains(.sub)) {
        case (true, true): return "PUB|SUB"
        case (true, false): return "PUB"
        case (false, true): return "SUB"
        case (false, false): return contains(.any) ? "ANY" : "DENY"
        }
    }

    /// RocketMQ's `checkPermission`: DENY owned refuses all; ANY needed takes PUB or SUB; else the bits must meet.
    public func allows(_ needed: AclPermission) -> Bool {
        if contains(.deny) { return false }
        if needed.contains(.any) { return contains(.pub) || contains(.sub) }
        return !intersection(needed).isEmpty
    }
}

/// One account of `plain_acl.yml` (RocketMQ's `PlainAccessConfig`), also the GET_BROKER_CLUSTER_ACL_CONFIG body's
/// member. Permissions stay text (`topicA=PUB|SUB`), as the file and the wire carry them; `validate` parses them.
public struct PlainAccessConfig: Sendable, Equatable {
    /// RocketMQ's `ACCESS_KEY_MIN_LENGTH` and `SECRET_KEY_MIN_LENGTH`: keys must be longer than this.
    public static let keyLengthMin = 6

    public var accessKey: String
    public var secretKey: String
    public var whiteRemoteAddress: String?
    public var admin = false
    public var defaultTopicPerm: String?
    public var defaultGroupPerm: String?
    public var topicPerms: [String] = []
    public var groupPerms: [String] = []

    public init(accessKey: String, secretKey: String) {
        self.accessKey = accessKey
        self.secretKey = secretKey
    }

    /// Checks keys, permissions and the white address; the first problem is thrown as text (RocketMQ's wording).
    public func validate() throws(AclPatternError) {
        guard accessKey.count > Self.keyLengthMin, secretKey.count > Self.keyLengthMin else {
            throw AclPatternError("The accessKey=\(accessKey) and secretKey=\(secretKey) cannot be null and length should longer than 6")
        }
        for (name, perm) in [("defaultTopicPerm", defaultTopicPerm), ("defaultGroupPerm", defaultGroupPerm)] {
            if let perm, AclPermission(parsing: perm) == nil {
                throw AclPatternError("\(name) \"\(perm)\" must be PUB, SUB, PUB|SUB, SUB|PUB or DENY")
            }
        }
        for resource in topicPerms + groupPerms { _ = try Self.resourcePerm(resource) }
        _ = try AclAddressPattern(parsing: whiteRemoteAddress ?? "")
    }

    /// `name=PERM` split and checked (RocketMQ's `checkResourcePerms`).
    public static func resourcePerm(_ text: String) throws(AclPatternError) -> (name: String, perm: AclPermission) {
        let items = text.split(separator: "=")
        guard items.count == 2 else {
            throw AclPatternError("Parse Resource format error for \(text). The expected resource format is 'Res=Perm'. For example: topicA=SUB")
        }
        guard let perm = AclPermission(parsing: String(items[1])) else {
            throw AclPatternError("Parse resource permission error for \(text). The expected permissions are 'SUB' or 'PUB' or 'SUB|PUB' or 'PUB|SUB'.")
        }
        return (String(items[0].trimmingSpaces), perm)
    }
}

extension PlainAccessConfig: RemotingBody {
    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "PlainAccessConfig")
        try body.requireObject()
        self.init(accessKey: body.optionalString("accessKey") ?? "", secretKey: body.optionalString("secretKey") ?? "")
        whiteRemoteAddress = body.optionalString("whiteRemoteAddress")
        admin = body.bool("admin", default: false)
        defaultTopicPerm = body.optionalString("defaultTopicPerm")
        defaultGroupPerm = body.optionalString("defaultGroupPerm")
        topicPerms = try body.array("topicPerms").compactMap(\.string)
        groupPerms = try body.array("groupPerms").compactMap(\.string)
    }

    /// fastjson's member order (alphabetical), null members left out.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("accessKey", .string(accessKey)), ("admin", .bool(admin))]
        if let defaultGroupPerm { members.append(("defaultGroupPerm", .string(defaultGroupPerm))) }
        if let defaultTopicPerm { members.append(("defaultTopicPerm", .string(defaultTopicPerm))) }
        members += [("groupPerms", groupPerms.json), ("secretKey", .string(secretKey)), ("topicPerms", topicPerms.json)]
        if let whiteRemoteAddress { members.append(("whiteRemoteAddress", .string(whiteRemoteAddress))) }
        return .object(members)
    }
}

/// GET_BROKER_CLUSTER_ACL_CONFIG's answer (`GetBrokerClusterAclConfigResponseBody`): the white addresses and accounts.
public struct BrokerClusterAclConfigBody: Sendable, Equatable, RemotingBody {
    public var globalWhiteAddrs: [String]
    public var plainAccessConfigs: [PlainAccessConfig]

    public init(globalWhiteAddrs: [String], plainAccessConfigs: [PlainAccessConfig]) {
        self.globalWhiteAddrs = globalWhiteAddrs
        self.plainAccessConfigs = plainAccessConfigs
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "GetBrokerClusterAclConfigResponseBody")
        try body.requireObject()
        globalWhiteAddrs = try body.array("globalWhiteAddrs").compactMap(\.string)
        var configs: [PlainAccessConfig] = []
        for item in try body.array("plainAccessConfigs") { configs.append(try PlainAccessConfig(json: item)) }
        plainAccessConfigs = configs
    }

    public var json: JSONValue {
        .object([("globalWhiteAddrs", globalWhiteAddrs.json), ("plainAccessConfigs", .array(plainAccessConfigs.map(\.json)))])
    }
}
