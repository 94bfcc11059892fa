import Remoting

/// One queue as a consumer holds it (`ProcessQueueInfo.java`).
public struct ProcessQueueInfo: Equatable, Sendable {
    public var commitOffset: Int64 = 0
    public var cachedMsgMinOffset: Int64 = 0
    public var cachedMsgMaxOffset: Int64 = 0
    public var cachedMsgCount = 0
    public var cachedMsgSizeInMiB = 0
    public var transactionMsgMinOffset: Int64 = 0
    public var transactionMsgMaxOffset: Int64 = 0
    public var transactionMsgCount = 0
    public var locked = false
    public var tryUnlockTimes: Int64 = 0
    public var lastLockTimestamp: Int64 = 0
    public var droped = false
    public var lastPullTimestamp: Int64 = 0
    public var lastConsumeTimestamp: Int64 = 0

    public init() {}

    static var integerKeys: [(String, WritableKeyPath<ProcessQueueInfo, Int64>)] { [
        ("cachedMsgMaxOffset", \.cachedMsgMaxOffset), ("cachedMsgMinOffset", \.cachedMsgMinOffset), ("commitOffset", \.commitOffset),
        ("lastConsumeTimestamp", \.lastConsumeTimestamp), ("lastLockTimestamp", \.lastLockTimestamp), ("lastPullTimestamp", \.lastPullTimestamp),
        ("transactionMsgMaxOffset", \.transactionMsgMaxOffset), ("transactionMsgMinOffset", \.transactionMsgMinOffset),
        ("tryUnlockTimes", \.tryUnlockTimes),
    ] }

    init(json: JSONValue) {
        let body = BodyReader(json, "ProcessQueueInfo")
        for (key, path) in Self.integerKeys { self[keyPath: path] = body.int64(key, default: 0) }
        cachedMsgCount = body.int("cachedMsgCount", default: 0)
        cachedMsgSizeInMiB = body.int("cachedMsgSizeInMiB", default: 0)
        transactionMsgCount = body.int("transactionMsgCount", default: 0)
        locked = body.bool("locked", default: false)
        droped = body.bool("droped", default: false)
    }

    var json: JSONValue {
        var members = Self.integerKeys.map { ($0.0, JSONValue.integer(self[keyPath: $0.1])) }
        members += [("cachedMsgCount", .integer(Int64(cachedMsgCount))), ("cachedMsgSizeInMiB", .integer(Int64(cachedMsgSizeInMiB))),
                    ("droped", .bool(droped)), ("locked", .bool(locked)), ("transactionMsgCount", .integer(Int64(transactionMsgCount)))]
        return .object(members.sorted { $0.0 < $1.0 })
    }
}

/// One topic's rates as a consumer measures them (`ConsumeStatus.java`).
public struct ConsumeStatus: Equatable, Sendable {
    public var pullRT = 0.0
    public var pullTPS = 0.0
    public var consumeRT = 0.0
    public var consumeOKTPS = 0.0
    public var consumeFailedTPS = 0.0
    public var consumeFailedMsgs: Int64 = 0

    public init() {}

    init(json: JSONValue) {
        let body = BodyReader(json, "ConsumeStatus")
        pullRT = body.double("pullRT", default: 0)
        pullTPS = body.double("pullTPS", default: 0)
        consumeRT = body.double("consumeRT", default: 0)
        consumeOKTPS = body.double("consumeOKTPS", default: 0)
        consumeFailedTPS = body.double("consumeFailedTPS", default: 0)
        consumeFailedMsgs = body.int64("consumeFailedMsgs", default: 0)
    }

    var json: JSONValue {
        .object([("consumeFailedMsgs", .integer(consumeFailedMsgs)), ("consumeFailedTPS", .number(consumeFailedTPS)),
                 ("consumeOKTPS", .number(consumeOKTPS)), ("consumeRT", .number(consumeRT)), ("pullRT", .number(pullRT)),
                 ("pullTPS", .number(pullTPS))])
    }
}

/// GET_CONSUMER_RUNNING_INFO's body (`ConsumerRunningInfo.java`): what a consumer reports about itself.
public struct ConsumerRunningInfo: Equatable, Sendable, RemotingBody {
    public static let propNamesrvAddr = "PROP_NAMESERVER_ADDR"
    public static let propThreadpoolCoreSize = "PROP_THREADPOOL_CORE_SIZE"
    public static let propConsumeOrderly = "PROP_CONSUMEORDERLY"
    public static let propConsumeType = "PROP_CONSUME_TYPE"
    public static let propClientVersion = "PROP_CLIENT_VERSION"
    public static let propConsumerStartTimestamp = "PROP_CONSUMER_START_TIMESTAMP"

    public var properties: [String: String] = [:]
    public var subscriptionSet: [SubscriptionData] = []
    public var mqTable: [MessageQueue: ProcessQueueInfo] = [:]
    /// topic -> rates.
    public var statusTable: [String: ConsumeStatus] = [:]
    public var jstack: String?

    public init() {}

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ConsumerRunningInfo")
        try body.requireObject()
        for (key, value) in try body.members("properties") { properties[key] = value.string ?? value.int.map { "\($0)" } ?? "" }
        subscriptionSet = try body.array("subscriptionSet").map { (item) throws(BodyError) in try SubscriptionData(json: item) }
        for (key, value) in try body.members("mqTable") { mqTable[try MessageQueue(objectKey: key, in: body)] = ProcessQueueInfo(json: value) }
        for (topic, value) in try body.members("statusTable") { statusTable[topic] = ConsumeStatus(json: value) }
        jstack = body.optionalString("jstack")
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = []
        if let jstack { members.append(("jstack", .string(jstack))) }
        members.append(("mqTable", .bareKeyObject(mqTable.keys.sorted().map { ($0.json.compactText, mqTable[$0]!.json) })))
        members.append(("properties", .object(properties.keys.sorted().map { ($0, .string(properties[$0]!)) })))
        members.append(("statusTable", .object(statusTable.keys.sorted().map { ($0, statusTable[$0]!.json) })))
        members.append(("subscriptionSet", .array(subscriptionSet.sorted { $0.topic < $1.topic }.map(\.json))))
        return .object(members)
    }
}
