import Remoting
/// One queue's offsets in a TopicStatsTable (`TopicOffset.java`).
public struct TopicOffset: Equatable, Sendable {
    public var minOffset: Int64
    public var maxOffset: Int64
    /// Store time of the queue's last message, 0 when it is empty.
    public var lastUpdateTimestamp: Int64

    public init(minOffset: Int64, maxOffset: Int64, lastUpdateTimestamp: Int64) {
        self.minOffset = minOffset
        self.maxOffset = maxOffset
        self.lastUpdateTimestamp = lastUpdateTimestamp
    }
}

/// GET_TOPIC_STATS_INFO's body (`TopicStatsTable.java`): MessageQueue keys, written as fastjson writes them
/// (object keys), which a Java mqadmin parses.
public struct TopicStatsTable: Equatable, Sendable, RemotingBody {
    public var offsetTable: [MessageQueue: TopicOffset]

    public init(offsetTable: [MessageQueue: TopicOffset]) { self.offsetTable = offsetTable }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "TopicStatsTable")
        try body.requireObject()
        offsetTable = [:]
        for (key, value) in try body.members("offsetTable") {
            let queue = try MessageQueue(objectKey: key, in: body)
            let offsets = BodyReader(value, "TopicOffset")
            offsetTable[queue] = TopicOffset(minOffset: offsets.int64("minOffset", default: 0), maxOffset: offsets.int64("maxOffset", default: 0),
                                             lastUpdateTimestamp: offsets.int64("lastUpdateTimestamp", default: 0))
        }
    }

    public var json: JSONValue {
        let entries = offsetTable.keys.sorted().map { queue -> (String, JSONValue) in
            let offsets = offsetTable[queue]!
            return (queue.json.compactText, .object([("lastUpdateTimestamp", .integer(offsets.lastUpdateTimestamp)),
                                                     ("maxOffset", .integer(offsets.maxOffset)), ("minOffset", .integer(offsets.minOffset))]))
        }
        return .object([("offsetTable", .bareKeyObject(entries))])
    }
}

/// One queue's progress in a ConsumeStats (`OffsetWrapper.java`).
public struct OffsetWrapper: Equatable, Sendable {
    public var brokerOffset: Int64
    public var consumerOffset: Int64
    /// Store time of the message at `consumerOffset - 1`, 0 when none.
    public var lastTimestamp: Int64

    public init(brokerOffset: Int64, consumerOffset: Int64, lastTimestamp: Int64) {
        self.brokerOffset = brokerOffset
        self.consumerOffset = consumerOffset
        self.lastTimestamp = lastTimestamp
    }
}

/// GET_CONSUME_STATS's body (`ConsumeStats.java`). `consumeTps` is left out unless it was measured.
public struct ConsumeStats: Equatable, Sendable, RemotingBody {
    public var offsetTable: [MessageQueue: OffsetWrapper]
    public var consumeTps: Double?

    public init(offsetTable: [MessageQueue: OffsetWrapper], consumeTps: Double? = nil) {
        self.offsetTable = offsetTable
        self.consumeTps = consumeTps
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ConsumeStats")
        try body.requireObject()
        consumeTps = json["consumeTps"]?.double
        offsetTable = [:]
        for (key, value) in try body.members("offsetTable") {
            let queue = try MessageQueue(objectKey: key, in: body)
            let offsets = BodyReader(value, "OffsetWrapper")
            offsetTable[queue] = OffsetWrapper(brokerOffset: offsets.int64("brokerOffset", default: 0),
                                               consumerOffset: offsets.int64("consumerOffset", default: 0),
                                               lastTimestamp: offsets.int64("lastTimestamp", default: 0))
        }
    }

    public var json: JSONValue {
        let entries = offsetTable.keys.sorted().map { queue -> (String, JSONValue) in
            let offsets = offsetTable[queue]!
            return (queue.json.compactText, .object([("brokerOffset", .integer(offsets.brokerOffset)),
                                                     ("consumerOffset", .integer(offsets.consumerOffset)),
                                                     ("lastTimestamp", .integer(offsets.lastTimestamp))]))
        }
        var members: [(String, JSONValue)] = []
        if let consumeTps { members.append(("consumeTps", .number(consumeTps))) }
        members.append(("offsetTable", .bareKeyObject(entries)))
        return .object(members)
    }
}

extension MessageQueue {
    /// A fastjson object key (`{"brokerName":..,"queueId":..,"topic":..}` as text).
    init(objectKey: String, in body: BodyReader) throws(BodyError) {
        guard let json = try? JSONValue.parse(objectKey) else { throw body.fail("offsetTable key \(objectKey) is not a MessageQueue") }
        try self.init(json: json)
    }
}
