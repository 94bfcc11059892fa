import Remoting
/// RocketMQ's `DataVersion`: bumped on every change of a broker's tables; the NameServer rebuilds a broker's
/// routes only when it differs.
public struct DataVersion: Equatable, Sendable, RemotingBody {
    public var counter: Int64 = 0
    public var timestamp: Int64 = 0

    public init(counter: Int64 = 0, timestamp: Int64 = 0) {
        self.counter = counter
        self.timestamp = timestamp
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "DataVersion")
        try body.requireObject()
        counter = body.int64("counter", default: 0)
        timestamp = body.int64("timestamp", default: 0)
    }

    public var json: JSONValue {
        .object([("counter", .integer(counter)), ("timestamp", .integer(timestamp))])
    }

    /// The next version: counter + 1, stamped now.
    public mutating func next() {
        counter += 1
        timestamp = currentTimeMillis()
    }
}

/// One topic's configuration on a broker (`TopicConfig.java`).
public struct TopicConfig: Equatable, Sendable {
    public var topicName: String
    public var readQueueNums: Int
    public var writeQueueNums: Int
    public var perm: Permission
    public var topicFilterType: String = "SINGLE_TAG"
    public var topicSysFlag: Int = 0
    public var order: Bool = false

    /// The most queues a topic may have (RocketMQ caps admin requests the same way).
    public static let queueNumsMax = 1024

    public init(topicName: String, readQueueNums: Int = 8, writeQueueNums: Int = 8, perm: Permission = .readWrite) {
        self.topicName = topicName
        self.readQueueNums = readQueueNums
        self.writeQueueNums = writeQueueNums
        self.perm = perm
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "TopicConfig")
        topicName = try body.string("topicName")
        readQueueNums = body.int("readQueueNums", default: 16, in: 0...Self.queueNumsMax)
        writeQueueNums = body.int("writeQueueNums", default: 16, in: 0...Self.queueNumsMax)
        perm = Permission(rawValue: body.int("perm", default: 6, in: 0...15))
        topicFilterType = body.optionalString("topicFilterType") ?? "SINGLE_TAG"
        topicSysFlag = body.int("topicSysFlag", default: 0)
        order = body.bool("order", default: false)
    }

    public var json: JSONValue {
        .object([("order", .bool(order)), ("perm", .integer(Int64(perm.rawValue))), ("readQueueNums", .integer(Int64(readQueueNums))),
                 ("topicFilterType", .string(topicFilterType)), ("topicName", .string(topicName)),
                 ("topicSysFlag", .integer(Int64(topicSysFlag))), ("writeQueueNums", .integer(Int64(writeQueueNums)))])
    }
}

/// A broker's topics and their version (`TopicConfigSerializeWrapper`): GET_ALL_TOPIC_CONFIG's body, the
/// heart of REGISTER_BROKER's, and `config/topics.json`.
public struct TopicConfigSerializeWrapper: Equatable, Sendable, RemotingBody {
    public var dataVersion = DataVersion()
    public var topicConfigTable: [String: TopicConfig] = [:]

    public init(dataVersion: DataVersion = DataVersion(), topicConfigTable: [String: TopicConfig] = [:]) {
        self.dataVersion = dataVersion
        self.topicConfigTable = topicConfigTable
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "TopicConfigSerializeWrapper")
        try body.requireObject()
        dataVersion = try json["dataVersion"].map { (value) throws(BodyError) in try DataVersion(json: value) } ?? DataVersion()
        for (name, value) in try body.requiredMembers("topicConfigTable") {
            topicConfigTable[name] = try TopicConfig(json: value)
        }
    }

    public var json: JSONValue {
        let table = topicConfigTable.keys.sorted().map { ($0, topicConfigTable[$0]!.json) }
        return .object([("dataVersion", dataVersion.json), ("topicConfigTable", .object(table))])
    }
}

/// REGISTER_BROKER's body (uncompressed form): the broker's topics and its filter servers.
public struct RegisterBrokerBody: Equatable, Sendable, RemotingBody {
    public var topicConfigSerializeWrapper: TopicConfigSerializeWrapper
    public var filterServerList: [String] = []

    public init(topicConfigSerializeWrapper: TopicConfigSerializeWrapper, filterServerList: [String] = []) {
        self.topicConfigSerializeWrapper = topicConfigSerializeWrapper
        self.filterServerList = filterServerList
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "RegisterBrokerBody")
        try body.requireObject()
        // Older brokers sent the wrapper itself as the body.
        let wrapper = json["topicConfigSerializeWrapper"] ?? json
        topicConfigSerializeWrapper = try TopicConfigSerializeWrapper(json: wrapper)
        filterServerList = try body.array("filterServerList").compactMap(\.string)
    }

    public var json: JSONValue {
        .object([("filterServerList", filterServerList.json), ("topicConfigSerializeWrapper", topicConfigSerializeWrapper.json)])
    }
}
