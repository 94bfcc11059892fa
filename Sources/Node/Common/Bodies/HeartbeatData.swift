import Remoting
/// A subscription of one topic (`SubscriptionData.java`): the expression and the tags it names.
public struct SubscriptionData: Equatable, Sendable {
    public static let subscribeAll = "*"

    public var topic: String
    public var subString: String
    public var subVersion: Int64

    public init(topic: String, subString: String, subVersion: Int64 = currentTimeMillis()) {
        self.topic = topic
        self.subString = subString
        self.subVersion = subVersion
    }

    /// Read tolerantly (C writes `subVersion` as a string, Go as a number; `codeSet` is never trusted: the
    /// tags are recomputed from the expression).
    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "SubscriptionData")
        topic = try body.string("topic")
        subString = body.optionalString("subString") ?? Self.subscribeAll
        subVersion = body.int64("subVersion", default: 0)
    }

    /// The trimmed tags of `TagA || TagB`; empty for `*`.
    public var tagsSet: [String] { Self.tags(of: subString) ?? [] }

    /// The tags code set the broker filters with: nil for "all".
    public var codeSet: Set<Int32>? { Self.tags(of: subString).map { Set($0.map(javaStringHash)) } }

    /// Tags of an expression, nil when it subscribes to everything.
    public static func tags(of expression: String) -> [String]? {
        let tags = expression.split(separator: "|").map { $0.trimmingCharacters(" ") }.filter { !$0.isEmpty }
        if tags.isEmpty || tags.contains(subscribeAll) { return nil }
        return tags
    }

    public var json: JSONValue {
        let tags = tagsSet
        return .object([("classFilterMode", .bool(false)), ("codeSet", .array(tags.map { .integer(Int64(javaStringHash($0))) })),
                        ("expressionType", .string("TAG")), ("subString", .string(subString)), ("subVersion", .integer(subVersion)),
                        ("tagsSet", tags.json), ("topic", .string(topic))])
    }
}

/// A consumer group as one client describes it in a heartbeat (`ConsumerData.java`).
public struct ConsumerData: Equatable, Sendable {
    public var groupName: String
    public var consumeType: String
    public var messageModel: MessageModel
    public var consumeFromWhere: String
    public var subscriptionDataSet: [SubscriptionData]

    /// - Parameters:
    ///   - consumeType: `CONSUME_ACTIVELY` (pull) or `CONSUME_PASSIVELY` (push).
    ///   - consumeFromWhere: RocketMQ's name, `CONSUME_FROM_LAST_OFFSET` and so on.
    public init(groupName: String, consumeType: String, messageModel: MessageModel, consumeFromWhere: String,
                subscriptionDataSet: [SubscriptionData]) {
        self.groupName = groupName
        self.consumeType = consumeType
        self.messageModel = messageModel
        self.consumeFromWhere = consumeFromWhere
        self.subscriptionDataSet = subscriptionDataSet
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ConsumerData")
        groupName = try body.string("groupName")
        messageModel = MessageModel(json: json["messageModel"]) ?? .clustering
        consumeType = json["consumeType"].map { $0.string ?? ($0.int == 0 ? "CONSUME_ACTIVELY" : "CONSUME_PASSIVELY") } ?? "CONSUME_PASSIVELY"
        consumeFromWhere = json["consumeFromWhere"]?.string ?? "CONSUME_FROM_LAST_OFFSET"
        subscriptionDataSet = []
        for item in try body.array("subscriptionDataSet") { subscriptionDataSet.append(try SubscriptionData(json: item)) }
    }

    public var json: JSONValue {
        .object([("consumeFromWhere", .string(consumeFromWhere)), ("consumeType", .string(consumeType)), ("groupName", .string(groupName)),
                 ("messageModel", .string(messageModel.rawValue)), ("subscriptionDataSet", .array(subscriptionDataSet.map(\.json))),
                 ("unitMode", .bool(false))])
    }
}

/// HEART_BEAT's body (`HeartbeatData.java`): a client's producer and consumer groups.
public struct HeartbeatData: Equatable, Sendable, RemotingBody {
    public var clientID: String
    public var producerGroups: [String]
    public var consumerDataSet: [ConsumerData]

    public init(clientID: String, producerGroups: [String] = [], consumerDataSet: [ConsumerData] = []) {
        self.clientID = clientID
        self.producerGroups = producerGroups
        self.consumerDataSet = consumerDataSet
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "HeartbeatData")
        clientID = try body.string("clientID")
        producerGroups = try body.array("producerDataSet").compactMap { $0["groupName"]?.string }
        consumerDataSet = []
        for item in try body.array("consumerDataSet") { consumerDataSet.append(try ConsumerData(json: item)) }
    }

    public var json: JSONValue {
        .object([("clientID", .string(clientID)), ("consumerDataSet", .array(consumerDataSet.map(\.json))),
                 ("producerDataSet", .array(producerGroups.map { .object([("groupName", .string($0))]) }))])
    }
}

extension Substring {
    /// The text without leading and trailing `character`s.
    func trimmingCharacters(_ character: Character) -> String {
        String(drop { $0 == character }.reversed().drop { $0 == character }.reversed())
    }
}
