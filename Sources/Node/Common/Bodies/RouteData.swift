import Remoting
/// One broker name's queues of a topic (`QueueData.java`).
public struct QueueData: Equatable, Sendable {
    public var brokerName: String
    public var readQueueNums: Int
    public var writeQueueNums: Int
    public var perm: Permission
    public var topicSysFlag: Int = 0

    public init(brokerName: String, readQueueNums: Int, writeQueueNums: Int, perm: Permission, topicSysFlag: Int = 0) {
        self.brokerName = brokerName
        self.readQueueNums = readQueueNums
        self.writeQueueNums = writeQueueNums
        self.perm = perm
        self.topicSysFlag = topicSysFlag
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "QueueData")
        brokerName = try body.string("brokerName")
        readQueueNums = body.int("readQueueNums", default: 0, in: 0...TopicConfig.queueNumsMax)
        writeQueueNums = body.int("writeQueueNums", default: 0, in: 0...TopicConfig.queueNumsMax)
        perm = Permission(rawValue: body.int("perm", default: 6, in: 0...15))
        topicSysFlag = body.int("topicSysFlag", default: 0)
    }

    public var json: JSONValue {
        .object([("brokerName", .string(brokerName)), ("perm", .integer(Int64(perm.rawValue))),
                 ("readQueueNums", .integer(Int64(readQueueNums))), ("topicSysFlag", .integer(Int64(topicSysFlag))),
                 ("writeQueueNums", .integer(Int64(writeQueueNums)))])
    }
}

/// One broker name: its cluster and the address of each id, 0 being the master (`BrokerData.java`).
public struct BrokerData: Equatable, Sendable {
    public static let masterID: Int64 = 0

    public var cluster: String
    public var brokerName: String
    public var brokerAddrs: [Int64: String]

    public init(cluster: String, brokerName: String, brokerAddrs: [Int64: String]) {
        self.cluster = cluster
        self.brokerName = brokerName
        self.brokerAddrs = brokerAddrs
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "BrokerData")
        brokerName = try body.string("brokerName")
        cluster = body.optionalString("cluster") ?? ""
        brokerAddrs = [:]
        for (key, value) in try body.members("brokerAddrs") {
            guard let id = Int64(key), let address = value.string else { throw body.fail("brokerAddrs entry \(key) is not id: address") }
            brokerAddrs[id] = address
        }
    }

    /// `quotedKeys`: standard JSON (form 2); otherwise fastjson's bare `Long` keys (form 1), which every client reads.
    public func json(quotedKeys: Bool) -> JSONValue {
        let addresses = brokerAddrs.keys.sorted().map { (String($0), JSONValue.string(brokerAddrs[$0]!)) }
        return .object([("brokerAddrs", quotedKeys ? .object(addresses) : .bareKeyObject(addresses)),
                        ("brokerName", .string(brokerName)), ("cluster", .string(cluster))])
    }

    public var masterAddress: String? { brokerAddrs[Self.masterID] }
}

/// A topic's route (`TopicRouteData.java`): GET_ROUTEINFO_BY_TOPIC's body.
public struct TopicRouteData: Equatable, Sendable, RemotingBody {
    public var queueDatas: [QueueData]
    public var brokerDatas: [BrokerData]
    /// Form 2 (quoted broker-id keys) when true; form 1 (fastjson's bare keys) otherwise.
    public var quotedKeys = false

    /// The topic's order configuration (`brokerName:queueNums;...`) from the NameServer's KV namespace
    /// ORDER_TOPIC_CONFIG, when the NameServer has `orderMessageEnable` (RocketMQ's `orderTopicConf`).
    public var orderTopicConf: String?

    public init(queueDatas: [QueueData], brokerDatas: [BrokerData], quotedKeys: Bool = false) {
        self.queueDatas = queueDatas
        self.brokerDatas = brokerDatas
        self.quotedKeys = quotedKeys
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "TopicRouteData")
        try body.requireObject()
        var queues: [QueueData] = []
        for item in try body.array("queueDatas") { queues.append(try QueueData(json: item)) }
        var brokers: [BrokerData] = []
        for item in try body.array("brokerDatas") { brokers.append(try BrokerData(json: item)) }
        queueDatas = queues.sorted { $0.brokerName < $1.brokerName }
        brokerDatas = brokers.sorted { $0.brokerName < $1.brokerName }
        orderTopicConf = body.optionalString("orderTopicConf")
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("brokerDatas", .array(brokerDatas.map { $0.json(quotedKeys: quotedKeys) })),
                                              ("filterServerTable", .object([]))]
        if let orderTopicConf { members.append(("orderTopicConf", .string(orderTopicConf))) }
        members.append(("queueDatas", .array(queueDatas.map(\.json))))
        return .object(members)
    }

    public static func == (lhs: TopicRouteData, rhs: TopicRouteData) -> Bool {
        lhs.queueDatas == rhs.queueDatas && lhs.brokerDatas == rhs.brokerDatas
    }

    public func masterAddress(_ brokerName: String) -> String? {
        brokerDatas.first { $0.brokerName == brokerName }?.masterAddress
    }

    /// The address to read from: the suggested id when present, else the lowest id.
    public func readAddress(_ brokerName: String, suggested: Int64 = BrokerData.masterID) -> String? {
        guard let addresses = brokerDatas.first(where: { $0.brokerName == brokerName })?.brokerAddrs else { return nil }
        return addresses[suggested] ?? addresses.min { $0.key < $1.key }?.value
    }

    /// Queues a producer may write: WRITE permission and a master address, ids 0..<writeQueueNums.
    public func publishQueues(topic: String) -> [MessageQueue] {
        queueDatas.filter { $0.perm.isWriteable && masterAddress($0.brokerName) != nil }.flatMap { data in
            (0..<data.writeQueueNums).map { MessageQueue(topic: topic, brokerName: data.brokerName, queueID: Int32($0)) }
        }
    }

    /// Queues a consumer reads: READ permission, ids 0..<readQueueNums.
    public func subscribeQueues(topic: String) -> [MessageQueue] {
        queueDatas.filter { $0.perm.isReadable }.flatMap { data in
            (0..<data.readQueueNums).map { MessageQueue(topic: topic, brokerName: data.brokerName, queueID: Int32($0)) }
        }.sorted()
    }

    public var allAddresses: [String] { brokerDatas.flatMap { $0.brokerAddrs.values }.sorted() }
}

/// GET_BROKER_CLUSTER_INFO's body (`ClusterInfo.java`): broker names to their data, clusters to broker names.
public struct ClusterInfo: Equatable, Sendable, RemotingBody {
    public var brokerAddrTable: [String: BrokerData]
    public var clusterAddrTable: [String: Set<String>]

    public init(brokerAddrTable: [String: BrokerData], clusterAddrTable: [String: Set<String>]) {
        self.brokerAddrTable = brokerAddrTable
        self.clusterAddrTable = clusterAddrTable
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ClusterInfo")
        try body.requireObject()
        brokerAddrTable = [:]
        for (name, value) in try body.members("brokerAddrTable") { brokerAddrTable[name] = try BrokerData(json: value) }
        clusterAddrTable = [:]
        for (name, value) in try body.members("clusterAddrTable") {
            guard let names = value.array else { throw body.fail("clusterAddrTable[\(name)] is not an array") }
            clusterAddrTable[name] = Set(names.compactMap(\.string))
        }
    }

    public var json: JSONValue {
        let brokers = brokerAddrTable.keys.sorted().map { ($0, brokerAddrTable[$0]!.json(quotedKeys: false)) }
        let clusters = clusterAddrTable.keys.sorted().map { ($0, clusterAddrTable[$0]!.sorted().json) }
        return .object([("brokerAddrTable", .object(brokers)), ("clusterAddrTable", .object(clusters))])
    }
}
