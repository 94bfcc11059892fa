import Remoting
/// Committed consumer offsets (`ConsumerOffsetSerializeWrapper`): GET_ALL_CONSUMER_OFFSET's body and
/// `config/consumerOffset.json`. Keys are `topic@group`; queue ids are fastjson's bare integer keys.
public struct ConsumerOffsetSerializeWrapper: Equatable, Sendable, RemotingBody {
    public var offsetTable: [String: [Int32: Int64]]

    public init(offsetTable: [String: [Int32: Int64]] = [:]) { self.offsetTable = offsetTable }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ConsumerOffsetSerializeWrapper")
        try body.requireObject()
        offsetTable = [:]
        for (key, queues) in try body.requiredMembers("offsetTable") {
            guard let members = queues.members else { throw body.fail("offsetTable[\(key)] is not an object") }
            var table: [Int32: Int64] = [:]
            for (queue, offset) in members {
                guard let id = Int32(queue), let value = offset.int else { throw body.fail("offsetTable[\(key)] has a bad entry \(queue)") }
                table[id] = value
            }
            offsetTable[key] = table
        }
    }

    public var json: JSONValue {
        let entries = offsetTable.keys.sorted().map { key -> (String, JSONValue) in
            let queues = offsetTable[key]!
            return (key, .bareKeyObject(queues.keys.sorted().map { (String($0), .integer(queues[$0]!)) }))
        }
        return .object([("offsetTable", .object(entries))])
    }

    /// `topic@group`, the table's key.
    public static func key(topic: String, group: String) -> String { topic + "@" + group }
}

/// Delay levels' progress (`DelayOffsetSerializeWrapper`): GET_ALL_DELAY_OFFSET's body and
/// `config/delayOffset.json`. Level -> next schedule-queue offset to deliver.
public struct DelayOffsetSerializeWrapper: Equatable, Sendable, RemotingBody {
    public var dataVersion = DataVersion()
    public var offsetTable: [Int32: Int64]

    public init(dataVersion: DataVersion = DataVersion(), offsetTable: [Int32: Int64] = [:]) {
        self.dataVersion = dataVersion
        self.offsetTable = offsetTable
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "DelayOffsetSerializeWrapper")
        try body.requireObject()
        dataVersion = try json["dataVersion"].map { (value) throws(BodyError) in try DataVersion(json: value) } ?? DataVersion()
        offsetTable = [:]
        for (level, offset) in try body.requiredMembers("offsetTable") {
            guard let id = Int32(level), let value = offset.int else { throw body.fail("offsetTable has a bad entry \(level)") }
            offsetTable[id] = value
        }
    }

    public var json: JSONValue {
        .object([("dataVersion", dataVersion.json),
                 ("offsetTable", .bareKeyObject(offsetTable.keys.sorted().map { (String($0), .integer(offsetTable[$0]!)) }))])
    }
}

/// One consumer group's settings (`SubscriptionGroupConfig.java`, 4.x members).
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

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "SubscriptionGroupConfig")
        groupName = try body.string("groupName")
        consumeEnable = body.bool("consumeEnable", default: true)
        consumeFromMinEnable = body.bool("consumeFromMinEnable", default: true)
        consumeBroadcastEnable = body.bool("consumeBroadcastEnable", default: true)
        retryQueueNums = body.int("retryQueueNums", default: 1, in: 0...TopicConfig.queueNumsMax)
        retryMaxTimes = body.int("retryMaxTimes", default: 16, in: -1...1000)
        brokerId = body.int64("brokerId", default: 0)
        whichBrokerWhenConsumeSlowly = body.int64("whichBrokerWhenConsumeSlowly", default: 1)
        notifyConsumerIdsChangedEnable = body.bool("notifyConsumerIdsChangedEnable", default: true)
    }

    public var json: JSONValue {
        .object([("brokerId", .integer(brokerId)), ("consumeBroadcastEnable", .bool(consumeBroadcastEnable)),
                 ("consumeEnable", .bool(consumeEnable)), ("consumeFromMinEnable", .bool(consumeFromMinEnable)),
                 ("groupName", .string(groupName)), ("notifyConsumerIdsChangedEnable", .bool(notifyConsumerIdsChangedEnable)),
                 ("retryMaxTimes", .integer(Int64(retryMaxTimes))), ("retryQueueNums", .integer(Int64(retryQueueNums))),
                 ("whichBrokerWhenConsumeSlowly", .integer(whichBrokerWhenConsumeSlowly))])
    }
}

/// Consumer groups' settings (`SubscriptionGroupWrapper`): GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body and
/// `config/subscriptionGroup.json`.
public struct SubscriptionGroupWrapper: Equatable, Sendable, RemotingBody {
    public var dataVersion = DataVersion()
    public var subscriptionGroupTable: [String: SubscriptionGroupConfig]

    public init(dataVersion: DataVersion = DataVersion(), subscriptionGroupTable: [String: SubscriptionGroupConfig] = [:]) {
        self.dataVersion = dataVersion
        self.subscriptionGroupTable = subscriptionGroupTable
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "SubscriptionGroupWrapper")
        try body.requireObject()
        dataVersion = try json["dataVersion"].map { (value) throws(BodyError) in try DataVersion(json: value) } ?? DataVersion()
        subscriptionGroupTable = [:]
        for (name, value) in try body.requiredMembers("subscriptionGroupTable") {
            subscriptionGroupTable[name] = try SubscriptionGroupConfig(json: value)
        }
    }

    public var json: JSONValue {
        let table = subscriptionGroupTable.keys.sorted().map { ($0, subscriptionGroupTable[$0]!.json) }
        return .object([("dataVersion", dataVersion.json), ("subscriptionGroupTable", .object(table))])
    }
}
