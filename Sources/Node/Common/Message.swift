import Remoting
import NIOCore

/// A message to send: topic, body, flag and properties (tags, keys, delay and user properties travel as
/// properties).
public struct Message: Sendable {
    public var topic: String
    public var body: [UInt8]
    public var flag: Int32 = 0
    /// Every property, system ones (TAGS, KEYS, DELAY, ...) included, in insertion order.
    public var properties = MessageProperties()

    public init(topic: String, body: [UInt8], tags: String? = nil, keys: [String] = [], properties: [String: String] = [:]) {
        self.topic = topic
        self.body = body
        if let tags, !tags.isEmpty { self.properties.append(MessageConst.tags, tags) }
        if !keys.isEmpty { self.properties.append(MessageConst.keys, keys.joined(separator: " ")) }
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) { self.properties.append(key, value) }
    }

    public init(topic: String, body: String, tags: String? = nil, keys: [String] = [], properties: [String: String] = [:]) {
        self.init(topic: topic, body: Array(body.utf8), tags: tags, keys: keys, properties: properties)
    }

    public subscript(property key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    public var tags: String? { properties[MessageConst.tags] }
    public var keys: [String] { properties[MessageConst.keys]?.split(separator: " ").map(String.init) ?? [] }
    /// RocketMQ's delay level (1 = 1 s ... 18 = 2 h); 0 for none.
    public var delayTimeLevel: Int {
        get { Int(properties[MessageConst.delayTimeLevel] ?? "") ?? 0 }
        set { properties[MessageConst.delayTimeLevel] = newValue > 0 ? "\(newValue)" : nil }
    }
}

/// A received message: the stored record's fields (what PULL, QUERY_MESSAGE and VIEW_MESSAGE_BY_ID return).
public struct MessageExt: Sendable {
    public var topic: String
    public var body: [UInt8]
    public var flag: Int32
    public var properties: MessageProperties
    public var queueID: Int32
    public var queueOffset: Int64
    public var commitLogOffset: Int64
    public var sysFlag: MessageSysFlag
    public var bornTimestamp: Int64
    public var bornHost: NetAddress
    public var storeTimestamp: Int64
    public var storeHost: NetAddress
    public var reconsumeTimes: Int32
    public var storeSize: Int
    /// Set by the consumer: the broker it came from.
    public var brokerName: String = ""

    public func property(_ key: String) -> String? { properties[key] }
    public var tags: String? { properties[MessageConst.tags] }
    public var keys: [String] { properties[MessageConst.keys]?.split(separator: " ").map(String.init) ?? [] }
    /// The id the producer made (UNIQ_KEY), else the broker's offset id.
    public var msgID: String { properties[MessageConst.uniqueClientMessageIDKeyIndex] ?? offsetMsgID }
    /// The broker's id: store host and commit-log offset, in hex.
    public var offsetMsgID: String { MessageID(storeHost: storeHost, commitLogOffset: commitLogOffset).hexString }
    public var bodyString: String { String(decoding: body, as: UTF8.self) }
    /// User properties (everything RocketMQ does not reserve for itself).
    public var userProperties: [String: String] { properties.userProperties }
}

/// A queue of a topic on one broker (RocketMQ's `MessageQueue`).
public struct MessageQueue: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var topic: String
    public var brokerName: String
    public var queueID: Int32

    public init(topic: String, brokerName: String, queueID: Int32) {
        self.topic = topic
        self.brokerName = brokerName
        self.queueID = queueID
    }

    public static func < (lhs: MessageQueue, rhs: MessageQueue) -> Bool {
        (lhs.topic, lhs.brokerName, lhs.queueID) < (rhs.topic, rhs.brokerName, rhs.queueID)
    }

    public var description: String { "\(topic)@\(brokerName):\(queueID)" }

    /// `{"brokerName":..,"queueId":..,"topic":..}`, fastjson's member order.
    public var json: JSONValue {
        .object([("brokerName", .string(brokerName)), ("queueId", .integer(Int64(queueID))), ("topic", .string(topic))])
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "MessageQueue")
        self.init(topic: try body.string("topic"), brokerName: try body.string("brokerName"), queueID: try body.int32("queueId"))
    }
}
