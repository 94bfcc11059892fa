import Common

/// Plain ACL in `broker.conf`: `aclEnable` (RocketMQ's key) and where `plain_acl.yml` is (ours: `plainAclFile`;
/// RocketMQ reads `$ROCKETMQ_HOME/conf/plain_acl.yml`, we default to the file next to `broker.conf`).
public struct AclSettings: Sendable {
    public var aclEnable = false
    public var plainAclFile: String?

    public init() {}

    /// The ACL keys; false when the key is not one.
    mutating func set(_ key: String, _ value: String) throws(PropertiesFile.ConfigError) -> Bool {
        switch key {
        case "aclEnable":
            guard value == "true" || value == "false" else {
                throw PropertiesFile.ConfigError(description: "must be true or false, not \"\(value)\"")
            }
            aclEnable = value == "true"
        case "plainAclFile":
            guard !value.isEmpty else { throw PropertiesFile.ConfigError(description: "must name a file") }
            plainAclFile = value
        default: return false
        }
        return true
    }

    /// `plain_acl.yml` beside `broker.conf` unless `plainAclFile` says otherwise.
    mutating func settle(confPath: String) {
        guard plainAclFile == nil else { return }
        let directory = confPath.lastIndex(of: "/").map { String(confPath[..<$0]) } ?? "."
        plainAclFile = directory + "/plain_acl.yml"
    }
}
