import Remoting

/// One window of a broker statistic (`BrokerStatsItem.java`): the amount added in the window, per second, and per
/// addition (messages per send, for TOPIC_PUT_NUMS).
public struct BrokerStatsItem: Equatable, Sendable {
    public var sum: Int64
    public var tps: Double
    public var avgpt: Double

    public init(sum: Int64 = 0, tps: Double = 0, avgpt: Double = 0) {
        self.sum = sum
        self.tps = tps
        self.avgpt = avgpt
    }

    init(json: JSONValue, in body: BodyReader) throws(BodyError) {
        guard json.members != nil else { throw body.fail("a window is not a JSON object") }
        let item = BodyReader(json, body.type)
        sum = item.int64("sum", default: 0)
        tps = item.double("tps", default: 0)
        avgpt = item.double("avgpt", default: 0)
    }

    var json: JSONValue { .object([("avgpt", .number(avgpt)), ("sum", .integer(sum)), ("tps", .number(tps))]) }
}

/// VIEW_BROKER_STATS_DATA's body (`BrokerStatsData.java`): one statistic over the last minute, hour and day.
public struct BrokerStatsData: Equatable, Sendable, RemotingBody {
    public var statsMinute: BrokerStatsItem
    public var statsHour: BrokerStatsItem
    public var statsDay: BrokerStatsItem

    public init(statsMinute: BrokerStatsItem, statsHour: BrokerStatsItem, statsDay: BrokerStatsItem) {
        self.statsMinute = statsMinute
        self.statsHour = statsHour
        self.statsDay = statsDay
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "BrokerStatsData")
        try body.requireObject()
        func window(_ key: String) throws(BodyError) -> BrokerStatsItem {
            guard let value = json[key], value != .null else { return BrokerStatsItem() }
            return try BrokerStatsItem(json: value, in: body)
        }
        statsMinute = try window("statsMinute")
        statsHour = try window("statsHour")
        statsDay = try window("statsDay")
    }

    public var json: JSONValue {
        .object([("statsDay", statsDay.json), ("statsHour", statsHour.json), ("statsMinute", statsMinute.json)])
    }

    /// What `mqadmin statsAll` prints as the last 24 hours: the day's sum, else the hour's, else the minute's (the
    /// first non-zero one, as RocketMQ's `compute24HourSum`).
    public var sum24Hours: Int64 {
        if statsDay.sum != 0 { return statsDay.sum }
        if statsHour.sum != 0 { return statsHour.sum }
        return statsMinute.sum
    }
}

/// QUERY_TOPIC_CONSUME_BY_WHO's body (`GroupList.java`): the groups consuming a topic.
public struct GroupList: Equatable, Sendable, RemotingBody {
    public var groupList: [String]

    public init(groupList: [String]) { self.groupList = groupList }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "GroupList")
        try body.requireObject()
        groupList = try body.array("groupList").compactMap(\.string)
    }

    public var json: JSONValue { .object([("groupList", groupList.json)]) }
}
