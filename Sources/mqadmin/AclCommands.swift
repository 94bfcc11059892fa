import ArgumentParser
import Client
import Common
import Remoting

/// The credentials every command signs its requests with when a broker has `aclEnable=true` (RocketMQ's mqadmin
/// reads them from `conf/tools.yml`; here they are options).
struct AclCredentialOptions: ParsableArguments {
    @Option(name: [.customLong("access-key"), .customLong("ak", withSingleDash: true)], help: "ACL access key (signs every request)")
    var accessKey: String?
    @Option(name: [.customLong("secret-key"), .customLong("sk", withSingleDash: true)], help: "ACL secret key")
    var secretKey: String?
    @Option(name: .customLong("security-token"), help: "ACL security token (sent and signed, not checked by plain ACL)")
    var securityToken: String?

    var credentials: SessionCredentials? {
        guard let accessKey, let secretKey else { return nil }
        return SessionCredentials(accessKey: accessKey, secretKey: secretKey, securityToken: securityToken)
    }

    func validate() throws {
        guard (accessKey == nil) == (secretKey == nil) else { throw ValidationError("give both --access-key and --secret-key, or neither") }
    }
}

let aclCommands: [any ParsableCommand.Type] = [UpdateAclConfig.self, DeleteAclConfig.self, UpdateGlobalWhiteAddr.self, GetAclConfig.self,
                                               ClusterAclConfigVersion.self]

/// `-b` or `-c`, as RocketMQ's ACL commands take them.
struct AclTargetOptions: ParsableArguments {
    @Option(name: .customShort("b"), help: "broker address host:port") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "cluster name (every broker of it)") var clusterName: String?

    func validate() throws {
        guard (brokerAddr == nil) != (clusterName == nil) else { throw ValidationError("give a broker address (-b) or a cluster (-c)") }
    }
}

struct UpdateAclConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateAclConfig", abstract: "Create or update an ACL account in plain_acl.yml.")
    @OptionGroup var options: NameServerOption
    @OptionGroup var target: AclTargetOptions
    @Option(name: .customShort("a"), help: "access key (longer than 6 characters)") var accessKey: String
    @Option(name: .customShort("s"), help: "secret key (longer than 6 characters)") var secretKey: String
    @Option(name: .customShort("w"), help: "white remote address (192.168.1.*, 10.0.0.1-5, ...)") var whiteRemoteAddress: String?
    @Option(name: .customShort("i"), help: "default topic permission: PUB, SUB, PUB|SUB or DENY") var defaultTopicPerm: String?
    @Option(name: .customShort("u"), help: "default group permission: PUB, SUB, PUB|SUB or DENY") var defaultGroupPerm: String?
    @Option(name: .customShort("t"), help: "topic permissions, e.g. topicA=DENY,topicB=PUB|SUB") var topicPerms: String?
    @Option(name: .customShort("g"), help: "group permissions, e.g. groupA=DENY,groupB=SUB") var groupPerms: String?
    @Option(name: .customShort("m"), help: "admin: true or false") var admin = "false"

    func run() async throws {
        var config = PlainAccessConfig(accessKey: accessKey.trimmingSpaces.description, secretKey: secretKey.trimmingSpaces.description)
        config.whiteRemoteAddress = whiteRemoteAddress
        config.defaultTopicPerm = defaultTopicPerm
        config.defaultGroupPerm = defaultGroupPerm
        config.admin = admin.lowercased() == "true"
        let topics = topicPerms.map { $0.split(separator: ",").map(String.init) }
        let groups = groupPerms.map { $0.split(separator: ",").map(String.init) }
        try await withAdmin(options) { admin in
            for address in try await admin.aclTargets(brokerAddr: target.brokerAddr, cluster: target.clusterName, includeSlaves: true) {
                try await admin.updateAclConfig(address, config, topicPerms: topics, groupPerms: groups)
                print("create or update plain access config to \(address) success.")
            }
            print("PlainAccessConfig{accessKey='\(config.accessKey)', whiteRemoteAddress='\(config.whiteRemoteAddress ?? "")', "
                  + "admin=\(config.admin), defaultTopicPerm='\(config.defaultTopicPerm ?? "")', defaultGroupPerm='\(config.defaultGroupPerm ?? "")', "
                  + "topicPerms=\(topics ?? []), groupPerms=\(groups ?? [])}")
        }
    }
}

struct DeleteAclConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deleteAclConfig", abstract: "Delete an ACL account from plain_acl.yml.",
                                                    aliases: ["deleteAccessConfig"])
    @OptionGroup var options: NameServerOption
    @OptionGroup var target: AclTargetOptions
    @Option(name: .customShort("a"), help: "access key of the account") var accessKey: String

    func run() async throws {
        try await withAdmin(options) { admin in
            for address in try await admin.aclTargets(brokerAddr: target.brokerAddr, cluster: target.clusterName, includeSlaves: true) {
                try await admin.deleteAclConfig(address, accessKey: accessKey)
                print("delete plain access config account from \(address) success.")
            }
            print("account's accesskey is:\(accessKey)")
        }
    }
}

struct UpdateGlobalWhiteAddr: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateGlobalWhiteAddr",
                                                    abstract: "Replace the global white remote addresses of plain_acl.yml.")
    @OptionGroup var options: NameServerOption
    @OptionGroup var target: AclTargetOptions
    @Option(name: .customShort("g"), help: "addresses, e.g. 10.10.103.*,192.168.0.*") var globalWhiteRemoteAddresses: String
    @Option(name: .customShort("p"), help: "the ACL file (must be the broker's)") var aclFileFullPath: String?

    func run() async throws {
        let addresses = globalWhiteRemoteAddresses.split(separator: ",").map { String($0.trimmingSpaces) }
        try await withAdmin(options) { admin in
            for address in try await admin.aclTargets(brokerAddr: target.brokerAddr, cluster: target.clusterName, includeSlaves: true) {
                try await admin.updateGlobalWhiteAddrs(address, addresses, aclFileFullPath: aclFileFullPath)
                print("update global white remote addresses to \(address) success.")
            }
        }
    }
}

struct GetAclConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "getAclConfig", abstract: "Print the ACL accounts and global white addresses.",
                                                    aliases: ["getAccessConfig", "getAccessConfigSubCommand"])
    @OptionGroup var options: NameServerOption
    @OptionGroup var target: AclTargetOptions

    func run() async throws {
        try await withAdmin(options) { admin in
            for address in try await admin.aclTargets(brokerAddr: target.brokerAddr, cluster: target.clusterName, includeSlaves: false) {
                let config = try await admin.aclConfig(address)
                print("\n" + pad("globalWhiteRemoteAddresses", 20) + ": [" + config.globalWhiteAddrs.joined(separator: ", ") + "]\n")
                print("accounts:")
                for account in config.plainAccessConfigs {
                    let rows: [(String, String)] = [
                        ("accessKey", account.accessKey), ("secretKey", account.secretKey), ("whiteRemoteAddress", account.whiteRemoteAddress ?? ""),
                        ("admin", "\(account.admin)"), ("defaultTopicPerm", account.defaultTopicPerm ?? ""),
                        ("defaultGroupPerm", account.defaultGroupPerm ?? ""),
                        ("topicPerms", "[" + account.topicPerms.joined(separator: ", ") + "]"),
                        ("groupPerms", "[" + account.groupPerms.joined(separator: ", ") + "]"),
                    ]
                    for (name, value) in rows { print("  " + pad(name, 18) + ": " + value) }
                    print("")
                }
            }
        }
    }
}

struct ClusterAclConfigVersion: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clusterAclConfigVersion",
                                                    abstract: "Print each broker's plain_acl.yml data version.")
    @OptionGroup var options: NameServerOption
    @OptionGroup var target: AclTargetOptions

    func run() async throws {
        try await withAdmin(options) { admin in
            print(pad("#Cluster Name", 18) + pad("#Broker Name", 24) + pad("#Broker Addr", 24) + pad("#AclFilePath", 40)
                  + pad("#AclConfigVersionNum", 22) + "#AclLastUpdateTime")
            for address in try await admin.aclTargets(brokerAddr: target.brokerAddr, cluster: target.clusterName, includeSlaves: false) {
                let info = try await admin.aclVersion(address)
                for file in info.files {
                    print(pad(info.clusterName, 18) + pad(info.brokerName, 24) + pad(info.brokerAddr, 24) + pad(file.path, 40)
                          + pad("\(file.counter)", 22) + formatTime(file.timestamp))
                }
            }
        }
    }
}
