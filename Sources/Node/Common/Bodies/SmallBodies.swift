import Remoting
/// A list of topic names (`TopicList.java`): GET_ALL_TOPIC_LIST_FROM_NAMESERVER's and GET_TOPICS_BY_CLUSTER's body.
public struct TopicList: Equatable, Sendable, RemotingBody {
    public var topicList: [String]

    public init(topicList: [String]) { self.topicList = topicList }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "TopicList")
        try body.requireObject()
        topicList = try body.array("topicList").compactMap(\.string)
    }

    public var json: JSONValue { .object([("topicList", topicList.json)]) }
}

/// String keys to string values (`KVTable.java`): GET_BROKER_RUNTIME_INFO's and GET_KVLIST_BY_NAMESPACE's body.
public struct KVTable: Equatable, Sendable, RemotingBody {
    public var table: [String: String]

    public init(table: [String: String]) { self.table = table }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "KVTable")
        try body.requireObject()
        table = [:]
        for (key, value) in try body.members("table") {
            switch value {
            case .string(let text): table[key] = text
            case .integer(let number): table[key] = String(number)
            default: throw body.fail("table[\(key)] is not a string")
            }
        }
    }

    public var json: JSONValue { .object([("table", .object(table.keys.sorted().map { ($0, .string(table[$0]!)) }))]) }
}

/// GET_CONSUMER_LIST_BY_GROUP's answer (`GetConsumerListByGroupResponseBody`).
public struct ConsumerListBody: Equatable, Sendable, RemotingBody {
    public var consumerIdList: [String]

    public init(consumerIdList: [String]) { self.consumerIdList = consumerIdList }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ConsumerListBody")
        try body.requireObject()
        consumerIdList = try body.array("consumerIdList").compactMap(\.string)
    }

    public var json: JSONValue { .object([("consumerIdList", consumerIdList.json)]) }
}

/// LOCK_BATCH_MQ's and UNLOCK_BATCH_MQ's body (`LockBatchRequestBody`, `UnlockBatchRequestBody`).
public struct LockBatchRequestBody: Equatable, Sendable, RemotingBody {
    public var consumerGroup: String
    public var clientId: String
    public var mqSet: [MessageQueue]

    public init(consumerGroup: String, clientId: String, mqSet: [MessageQueue]) {
        self.consumerGroup = consumerGroup
        self.clientId = clientId
        self.mqSet = mqSet
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "LockBatchRequestBody")
        consumerGroup = try body.string("consumerGroup")
        clientId = try body.string("clientId")
        mqSet = []
        for item in try body.array("mqSet") { mqSet.append(try MessageQueue(json: item)) }
    }

    public var json: JSONValue {
        .object([("clientId", .string(clientId)), ("consumerGroup", .string(consumerGroup)), ("mqSet", .array(mqSet.map(\.json)))])
    }
}

/// LOCK_BATCH_MQ's answer: the queues the caller now holds.
public struct LockBatchResponseBody: Equatable, Sendable, RemotingBody {
    public var lockOKMQSet: [MessageQueue]

    public init(lockOKMQSet: [MessageQueue]) { self.lockOKMQSet = lockOKMQSet }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "LockBatchResponseBody")
        try body.requireObject()
        lockOKMQSet = []
        for item in try body.array("lockOKMQSet") { lockOKMQSet.append(try MessageQueue(json: item)) }
    }

    public var json: JSONValue { .object([("lockOKMQSet", .array(lockOKMQSet.map(\.json)))]) }
}
