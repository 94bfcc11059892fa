import CommitLog

/// `config/topics.json` (RocketMQ's `TopicConfigManager` shape).
public struct TopicConfig: Equatable, Sendable {
    public var topicName: String
    public var readQueueNums: Int = 8
    public var writeQueueNums: Int = 8
    /// 2 write, 4 read (6 = both), 1 inherit, 8 priority.
    public var perm: Int = 6
    public var topicFilterType: String = "SINGLE_TAG"
    public var topicSysFlag: Int = 0
    public var order: Bool = false

    public init(topicName: String, readQueueNums: Int = 8, writeQueueNums: Int = 8, perm: Int = 6) {
        self.topicName = topicName
        self.readQueueNums = readQueueNums
        self.writeQueueNums = writeQueueNums
        self.perm = perm
    }

    var json: JSONValue {
        .object([("order", .bool(order)), ("perm", .integer(Int64(perm))), ("readQueueNums", .integer(Int64(readQueueNums))),
                 ("topicFilterType", .string(topicFilterType)), ("topicName", .string(topicName)),
                 ("topicSysFlag", .integer(Int64(topicSysFlag))), ("writeQueueNums", .integer(Int64(writeQueueNums)))])
    }

    init?(_ json: JSONValue) {
        guard let name = json["topicName"]?.string else { return nil }
        topicName = name
        readQueueNums = Int(json["readQueueNums"]?.int ?? 8)
        writeQueueNums = Int(json["writeQueueNums"]?.int ?? 8)
        perm = Int(json["perm"]?.int ?? 6)
        topicFilterType = json["topicFilterType"]?.string ?? "SINGLE_TAG"
        topicSysFlag = Int(json["topicSysFlag"]?.int ?? 0)
        order = json["order"]?.bool ?? false
    }
}

/// RocketMQ's `dataVersion`: bumped on every change.
public struct DataVersion: Equatable, Sendable {
    public var counter: Int64 = 0
    public var timestamp: Int64 = 0
    var json: JSONValue { .object([("counter", .integer(counter)), ("stateVersion", .integer(0)), ("timestamp", .integer(timestamp))]) }
    init(_ json: JSONValue?) {
        counter = json?["counter"]?.int ?? 0
        timestamp = json?["timestamp"]?.int ?? 0
    }
    public init() {}
    mutating func next() {
        counter += 1
        timestamp = wallClockMillis()
    }
}

/// The four JSON files under `<storePathRootDir>/config`, loaded with `.bak` fallback and persisted
/// atomically, in the shapes RocketMQ writes (object keys sorted; queue ids as keys).
public struct TopicConfigFile: Sendable {
    public var dataVersion = DataVersion()
    public var topics: [String: TopicConfig] = [:]
    let file: ConfigFile

    public init(storePathRootDir: String, log: @escaping @Sendable (String) -> Void = { _ in }) {
        file = ConfigFile(path: storePathRootDir + "/config/topics.json", log: log)
        guard let json = file.load() else { return }
        dataVersion = DataVersion(json["dataVersion"])
        for (name, value) in json["topicConfigTable"]?.members ?? [] { topics[name] = TopicConfig(value) }
    }

    public mutating func persist() throws(StoreError) {
        dataVersion.next()
        let table = topics.keys.sorted().map { ($0, topics[$0]!.json) }
        try file.persist(.object([("dataVersion", dataVersion.json), ("topicConfigTable", .object(table))]))
    }
}

/// `consumerOffset.json`: `"topic@group"` -> queue id -> next offset to consume.
public struct ConsumerOffsetFile: Sendable {
    public var offsets: [String: [Int32: Int64]] = [:]
    let file: ConfigFile

    public init(storePathRootDir: String, log: @escaping @Sendable (String) -> Void = { _ in }) {
        file = ConfigFile(path: storePathRootDir + "/config/consumerOffset.json", log: log)
        guard let json = file.load() else { return }
        for (key, queues) in json["offsetTable"]?.members ?? [] {
            var table: [Int32: Int64] = [:]
            for (queue, offset) in queues.members ?? [] {
                if let id = Int32(queue), let value = offset.int { table[id] = value }
            }
            offsets[key] = table
        }
    }

    public func persist() throws(StoreError) {
        try file.persist(.object([("offsetTable", .object(queueMaps(offsets)))]))
    }
}

/// `delayOffset.json`: delay level -> next schedule-queue offset to scan.
public struct DelayOffsetFile: Sendable {
    public var dataVersion = DataVersion()
    public var offsets: [Int32: Int64] = [:]
    let file: ConfigFile

    public init(storePathRootDir: String, log: @escaping @Sendable (String) -> Void = { _ in }) {
        file = ConfigFile(path: storePathRootDir + "/config/delayOffset.json", log: log)
        guard let json = file.load() else { return }
        dataVersion = DataVersion(json["dataVersion"])
        for (level, offset) in json["offsetTable"]?.members ?? [] {
            if let id = Int32(level), let value = offset.int { offsets[id] = value }
        }
    }

    public mutating func persist() throws(StoreError) {
        dataVersion.next()
        let table = offsets.keys.sorted().map { (String($0), JSONValue.integer(offsets[$0]!)) }
        try file.persist(.object([("dataVersion", dataVersion.json), ("offsetTable", .object(table))]))
    }
}

/// `subscriptionGroup.json`: consumer groups and their retry settings (4.x fields).
public struct SubscriptionGroupConfig: Equatable, Sendable {
    public var groupName: String
    public var consumeEnable = true
    public var consumeFromMinEnable = true
    public var consumeBroadcastEnable = true
    public var retryQueueNums = 1
    public var retryMaxTimes = 16
    public var brokerId: Int64 = 0
    public var whichBrokerWhenConsumeSlowly: Int64 = 1
    public var notifyConsumerIdsChangedEnable = true

    public init(groupName: String) { self.groupName = groupName }

    var json: JSONValue {
        .object([("brokerId", .integer(brokerId)), ("consumeBroadcastEnable", .bool(consumeBroadcastEnable)),
                 ("consumeEnable", .bool(consumeEnable)), ("consumeFromMinEnable", .bool(consumeFromMinEnable)),
                 ("groupName", .string(groupName)), ("notifyConsumerIdsChangedEnable", .bool(notifyConsumerIdsChangedEnable)),
                 ("retryMaxTimes", .integer(Int64(retryMaxTimes))), ("retryQueueNums", .integer(Int64(retryQueueNums))),
                 ("whichBrokerWhenConsumeSlowly", .integer(whichBrokerWhenConsumeSlowly))])
    }

    init?(_ json: JSONValue) {
        guard let name = json["groupName"]?.string else { return nil }
        groupName = name
        consumeEnable = json["consumeEnable"]?.bool ?? true
        consumeFromMinEnable = json["consumeFromMinEnable"]?.bool ?? true
        consumeBroadcastEnable = json["consumeBroadcastEnable"]?.bool ?? true
        retryQueueNums = Int(json["retryQueueNums"]?.int ?? 1)
        retryMaxTimes = Int(json["retryMaxTimes"]?.int ?? 16)
        brokerId = json["brokerId"]?.int ?? 0
        whichBrokerWhenConsumeSlowly = json["whichBrokerWhenConsumeSlowly"]?.int ?? 1
        notifyConsumerIdsChangedEnable = json["notifyConsumerIdsChangedEnable"]?.bool ?? true
    }
}

public struct SubscriptionGroupFile: Sendable {
    public var dataVersion = DataVersion()
    public var groups: [String: SubscriptionGroupConfig] = [:]
    let file: ConfigFile

    public init(storePathRootDir: String, log: @escaping @Sendable (String) -> Void = { _ in }) {
        file = ConfigFile(path: storePathRootDir + "/config/subscriptionGroup.json", log: log)
        guard let json = file.load() else { return }
        dataVersion = DataVersion(json["dataVersion"])
        for (name, value) in json["subscriptionGroupTable"]?.members ?? [] { groups[name] = SubscriptionGroupConfig(value) }
    }

    public mutating func persist() throws(StoreError) {
        dataVersion.next()
        let table = groups.keys.sorted().map { ($0, groups[$0]!.json) }
        try file.persist(.object([("dataVersion", dataVersion.json), ("subscriptionGroupTable", .object(table))]))
    }
}

private func queueMaps(_ offsets: [String: [Int32: Int64]]) -> [(String, JSONValue)] {
    offsets.keys.sorted().map { key in
        let queues = offsets[key]!
        return (key, JSONValue.object(queues.keys.sorted().map { (String($0), JSONValue.integer(queues[$0]!)) }))
    }
}
