import Remoting

/// One client connection of a group (`Connection.java`): its id, address, language and protocol version.
public struct Connection: Equatable, Sendable {
    public var clientId: String
    public var clientAddr: String
    public var language: String
    public var version: Int32

    public init(clientId: String, clientAddr: String, language: String, version: Int32) {
        self.clientId = clientId
        self.clientAddr = clientAddr
        self.language = language
        self.version = version
    }

    init(json: JSONValue) {
        let body = BodyReader(json, "Connection")
        clientId = body.optionalString("clientId") ?? ""
        clientAddr = body.optionalString("clientAddr") ?? ""
        language = body.optionalString("language") ?? "OTHER"
        version = Int32(clamping: body.int64("version", default: 0))
    }

    var json: JSONValue {
        .object([("clientAddr", .string(clientAddr)), ("clientId", .string(clientId)), ("language", .string(language)),
                 ("version", .integer(Int64(version)))])
    }
}

/// GET_CONSUMER_CONNECTION_LIST's body (`ConsumerConnection.java`): the group's members and what they consume.
public struct ConsumerConnection: Equatable, Sendable, RemotingBody {
    public var connectionSet: [Connection]
    /// topic -> subscription.
    public var subscriptionTable: [String: SubscriptionData]
    public var consumeType: String
    public var messageModel: String
    public var consumeFromWhere: String

    public init(connectionSet: [Connection], subscriptionTable: [String: SubscriptionData], consumeType: String, messageModel: String,
                consumeFromWhere: String) {
        self.connectionSet = connectionSet
        self.subscriptionTable = subscriptionTable
        self.consumeType = consumeType
        self.messageModel = messageModel
        self.consumeFromWhere = consumeFromWhere
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ConsumerConnection")
        try body.requireObject()
        connectionSet = try body.array("connectionSet").map(Connection.init(json:))
        subscriptionTable = [:]
        for (topic, value) in try body.members("subscriptionTable") { subscriptionTable[topic] = try SubscriptionData(json: value) }
        consumeType = body.optionalString("consumeType") ?? ""
        messageModel = body.optionalString("messageModel") ?? ""
        consumeFromWhere = body.optionalString("consumeFromWhere") ?? ""
    }

    public var json: JSONValue {
        .object([("connectionSet", .array(connectionSet.map(\.json))), ("consumeFromWhere", .string(consumeFromWhere)),
                 ("consumeType", .string(consumeType)), ("messageModel", .string(messageModel)),
                 ("subscriptionTable", .object(subscriptionTable.keys.sorted().map { ($0, subscriptionTable[$0]!.json) }))])
    }

    /// The lowest protocol version among the members (`computeMinVersion`), 0 when there are none.
    public var minVersion: Int32 { connectionSet.map(\.version).min() ?? 0 }
}

/// GET_PRODUCER_CONNECTION_LIST's body (`ProducerConnection.java`).
public struct ProducerConnection: Equatable, Sendable, RemotingBody {
    public var connectionSet: [Connection]

    public init(connectionSet: [Connection]) { self.connectionSet = connectionSet }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ProducerConnection")
        try body.requireObject()
        connectionSet = try body.array("connectionSet").map(Connection.init(json:))
    }

    public var json: JSONValue { .object([("connectionSet", .array(connectionSet.map(\.json)))]) }
}

/// RESET_CONSUMER_CLIENT_OFFSET's and INVOKE_BROKER_TO_RESET_OFFSET's body (`ResetOffsetBody.java`): the
/// offset each queue moves to, MessageQueue object keys as fastjson writes them.
public struct ResetOffsetBody: Equatable, Sendable, RemotingBody {
    public var offsetTable: [MessageQueue: Int64]

    public init(offsetTable: [MessageQueue: Int64]) { self.offsetTable = offsetTable }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ResetOffsetBody")
        try body.requireObject()
        offsetTable = [:]
        for (key, value) in try body.members("offsetTable") {
            guard let offset = value.int else { throw body.fail("offset of \(key) is not an integer") }
            offsetTable[try MessageQueue(objectKey: key, in: body)] = offset
        }
    }

    public var json: JSONValue {
        .object([("offsetTable", .bareKeyObject(offsetTable.keys.sorted().map { ($0.json.compactText, .integer(offsetTable[$0]!)) }))])
    }
}

/// GET_BROKER_CONSUME_STATS's body (`ConsumeStatsList.java`): per group, the ConsumeStats of each topic it
/// consumes on this broker, and the sum of their diffs.
public struct ConsumeStatsList: Equatable, Sendable, RemotingBody {
    /// group -> one ConsumeStats per topic (RocketMQ nests it as a list of one-entry maps).
    public var consumeStatsList: [(group: String, stats: [ConsumeStats])]
    public var brokerAddr: String
    public var totalDiff: Int64

    public init(consumeStatsList: [(group: String, stats: [ConsumeStats])], brokerAddr: String, totalDiff: Int64) {
        self.consumeStatsList = consumeStatsList
        self.brokerAddr = brokerAddr
        self.totalDiff = totalDiff
    }

    public static func == (a: ConsumeStatsList, b: ConsumeStatsList) -> Bool {
        a.brokerAddr == b.brokerAddr && a.totalDiff == b.totalDiff && a.consumeStatsList.elementsEqual(b.consumeStatsList) {
            $0.group == $1.group && $0.stats == $1.stats
        }
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ConsumeStatsList")
        try body.requireObject()
        consumeStatsList = []
        for entry in try body.array("consumeStatsList") {
            for (group, list) in entry.members ?? [] {
                consumeStatsList.append((group, try (list.array ?? []).map { (item) throws(BodyError) in try ConsumeStats(json: item) }))
            }
        }
        brokerAddr = body.optionalString("brokerAddr") ?? ""
        totalDiff = body.int64("totalDiff", default: 0)
    }

    public var json: JSONValue {
        let list = consumeStatsList.map { JSONValue.object([($0.group, .array($0.stats.map(\.json)))]) }
        return .object([("brokerAddr", .string(brokerAddr)), ("consumeStatsList", .array(list)), ("totalDiff", .integer(totalDiff))])
    }
}

/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP's body is one group's settings.
extension SubscriptionGroupConfig: RemotingBody {}
