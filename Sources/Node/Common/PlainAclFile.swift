/// `plain_acl.yml`: the global white addresses, the accounts and the file's data version (RocketMQ 4.9's layout).
/// Reading checks everything a validator will rely on (keys, permissions, address patterns, duplicate keys) and
/// names file, line and problem; unknown keys are refused rather than ignored, so a misspelt `topicPerms` cannot
/// silently grant defaults.
public struct PlainAclFile: Sendable, Equatable {
    public var globalWhiteRemoteAddresses: [String] = []
    public var accounts: [PlainAccessConfig] = []
    /// `dataVersion: [{counter, timestamp}]`, bumped on every write by the broker.
    public var dataVersion = AclDataVersion(counter: 0, timestamp: 0)

    public init() {}

    static let accountKeys = ["accessKey", "secretKey", "whiteRemoteAddress", "admin", "defaultTopicPerm", "defaultGroupPerm",
                              "topicPerms", "groupPerms"]

    /// Parses and checks `text`; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(YAMLError) -> PlainAclFile {
        let root = try YAML.parse(text, file: file)
        var result = PlainAclFile()
        let reader = AclYAMLReader(file: file)
        guard case .map(let entries) = root.value else {
            if root.value == .null { return result }  // an empty file: no accounts, no white addresses
            throw reader.error(root, "the file must be a map (globalWhiteRemoteAddresses, accounts, dataVersion)")
        }
        for entry in entries {
            switch entry.key {
            case "globalWhiteRemoteAddresses":
                result.globalWhiteRemoteAddresses = try reader.texts(entry.node, "globalWhiteRemoteAddresses")
                for (index, address) in result.globalWhiteRemoteAddresses.enumerated() {
                    do { _ = try AclAddressPattern(parsing: address) } catch {
                        throw reader.error(reader.item(entry.node, index), "globalWhiteRemoteAddresses: \(error)")
                    }
                }
            case "accounts":
                result.accounts = try reader.accounts(entry.node)
            case "dataVersion":
                result.dataVersion = try reader.dataVersion(entry.node)
            default:
                throw YAMLError(file: file, line: entry.line, problem: "unknown key \"\(entry.key)\" (expected globalWhiteRemoteAddresses, accounts, dataVersion)")
            }
        }
        return result
    }

    /// The file as YAML in SnakeYAML's shape (what `mqadmin updateAclConfig` and friends leave behind).
    public func yaml() -> String {
        let accountNodes = accounts.map { account -> YAMLNode in
            var entries = [YAMLEntry("accessKey", YAMLNode(.string(account.accessKey))),
                           YAMLEntry("secretKey", YAMLNode(.string(account.secretKey)))]
            if let white = account.whiteRemoteAddress { entries.append(YAMLEntry("whiteRemoteAddress", YAMLNode(.string(white)))) }
            entries.append(YAMLEntry("admin", YAMLNode(.plain(account.admin ? "true" : "false"))))
            if let perm = account.defaultTopicPerm { entries.append(YAMLEntry("defaultTopicPerm", YAMLNode(.string(perm)))) }
            if let perm = account.defaultGroupPerm { entries.append(YAMLEntry("defaultGroupPerm", YAMLNode(.string(perm)))) }
            if !account.topicPerms.isEmpty { entries.append(YAMLEntry("topicPerms", YAMLNode(.list(account.topicPerms.map { YAMLNode(.string($0)) })))) }
            if !account.groupPerms.isEmpty { entries.append(YAMLEntry("groupPerms", YAMLNode(.list(account.groupPerms.map { YAMLNode(.string($0)) })))) }
            return YAMLNode(.map(entries))
        }
        let version = YAMLNode(.map([YAMLEntry("counter", YAMLNode(.plain(String(dataVersion.counter)))),
                                     YAMLEntry("timestamp", YAMLNode(.plain(String(dataVersion.timestamp))))]))
        return YAML.render(YAMLNode(.map([
            YAMLEntry("globalWhiteRemoteAddresses", YAMLNode(.list(globalWhiteRemoteAddresses.map { YAMLNode(.string($0)) }))),
            YAMLEntry("accounts", YAMLNode(.list(accountNodes))),
            YAMLEntry("dataVersion", YAMLNode(.list([version]))),
        ])))
    }
}

/// RocketMQ's `DataVersion` as the ACL file keeps it.
public struct AclDataVersion: Sendable, Equatable {
    public var counter: Int64
    public var timestamp: Int64

    public init(counter: Int64, timestamp: Int64) {
        self.counter = counter
        self.timestamp = timestamp
    }

    /// fastjson's form, as GET_BROKER_CLUSTER_ACL_INFO's `version` carries it.
    public var jsonText: String { "{\"counter\":\(counter),\"stateVersion\":0,\"timestamp\":\(timestamp)}" }
}

/// Reads the nodes of `plain_acl.yml` into the model, with errors naming the line.
struct AclYAMLReader {
    let file: String

    func error(_ node: YAMLNode, _ problem: String) -> YAMLError { YAMLError(file: file, line: node.line, problem: problem) }

    func item(_ list: YAMLNode, _ index: Int) -> YAMLNode {
        if case .list(let items) = list.value, index < items.count { return items[index] }
        return list
    }

    func text(_ node: YAMLNode, _ key: String) throws(YAMLError) -> String? {
        if node.value == .null { return nil }
        guard let text = node.text else { throw error(node, "\(key) must be a scalar") }
        return text
    }

    /// A list of scalars (a lone scalar or null reads as a list of it, as SnakeYAML's JSON conversion allows none).
    func texts(_ node: YAMLNode, _ key: String) throws(YAMLError) -> [String] {
        switch node.value {
        case .null: return []
        case .list(let items):
            var result: [String] = []
            for item in items {
                guard let text = item.text else { throw error(item, "\(key) must list scalars") }
                result.append(text)
            }
            return result
        default: throw error(node, "\(key) must be a list")
        }
    }

    func accounts(_ node: YAMLNode) throws(YAMLError) -> [PlainAccessConfig] {
        if node.value == .null { return [] }
        guard case .list(let items) = node.value else { throw error(node, "accounts must be a list of maps") }
        var accounts: [PlainAccessConfig] = []
        for item in items {
            let account = try self.account(item)
            if accounts.contains(where: { $0.accessKey == account.accessKey }) {
                throw error(item, "accessKey \(account.accessKey) appears twice")
            }
            accounts.append(account)
        }
        return accounts
    }

    func account(_ node: YAMLNode) throws(YAMLError) -> PlainAccessConfig {
        guard case .map(let entries) = node.value else { throw error(node, "each account must be a map") }
        var account = PlainAccessConfig(accessKey: "", secretKey: "")
        for entry in entries {
            let value = entry.node
            switch entry.key {
            case "accessKey": account.accessKey = try text(value, "accessKey") ?? ""
            case "secretKey": account.secretKey = try text(value, "secretKey") ?? ""
            case "whiteRemoteAddress": account.whiteRemoteAddress = try text(value, "whiteRemoteAddress")
            case "admin":
                switch try text(value, "admin") {
                case nil, "false", "False", "FALSE": account.admin = false
                case "true", "True", "TRUE": account.admin = true
                default: throw error(value, "admin must be true or false")
                }
            case "defaultTopicPerm": account.defaultTopicPerm = try text(value, "defaultTopicPerm")
            case "defaultGroupPerm": account.defaultGroupPerm = try text(value, "defaultGroupPerm")
            case "topicPerms": account.topicPerms = try texts(value, "topicPerms")
            case "groupPerms": account.groupPerms = try texts(value, "groupPerms")
            default:
                throw YAMLError(file: file, line: entry.line, problem: "unknown account key \"\(entry.key)\" (expected \(PlainAclFile.accountKeys.joined(separator: ", ")))")
            }
        }
        do { try account.validate() } catch { throw self.error(node, "\(error)") }
        return account
    }

    func dataVersion(_ node: YAMLNode) throws(YAMLError) -> AclDataVersion {
        var version = AclDataVersion(counter: 0, timestamp: 0)
        guard case .list(let items) = node.value, let first = items.first else { return version }
        guard case .map(let entries) = first.value else { throw error(first, "dataVersion must list maps of counter and timestamp") }
        for entry in entries {
            guard let text = entry.node.text, let number = Int64(text) else {
                throw error(entry.node, "dataVersion \(entry.key) must be an integer")
            }
            if entry.key == "counter" { version.counter = number } else if entry.key == "timestamp" { version.timestamp = number }
        }
        return version
    }
}
