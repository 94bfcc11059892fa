import Remoting
#if canImport(Glibc)
import Glibc
#endif

/// A topic's or broker's permissions (RocketMQ's `PermName`): a bit set, written as its integer.
public struct Permission: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let inherit = Permission(rawValue: 1)
    public static let write = Permission(rawValue: 2)
    public static let read = Permission(rawValue: 4)
    public static let priority = Permission(rawValue: 8)
    public static let readWrite: Permission = [.read, .write]
    /// The default template's permission (TBW102: read, write, inherit).
    public static let all: Permission = [.read, .write, .inherit]

    public var isReadable: Bool { contains(.read) }
    public var isWriteable: Bool { contains(.write) }
    public var isInherited: Bool { contains(.inherit) }

    /// RocketMQ's `perm2String`: "RWX" with "-" for a missing bit.
    public var description: String {
        (isReadable ? "R" : "-") + (isWriteable ? "W" : "-") + (isInherited ? "X" : "-")
    }
}

/// Topic names: RocketMQ's system topics and its `TopicValidator` rules.
public enum TopicValidator {
    /// The template auto-created topics copy (`AUTO_CREATE_TOPIC_KEY_TOPIC`).
    public static let autoCreateTopicKeyTopic = "TBW102"
    /// Where delayed messages and retries wait (`RMQ_SYS_SCHEDULE_TOPIC`).
    public static let scheduleTopic = "SCHEDULE_TOPIC_XXXX"
    public static let transactionHalfTopic = "RMQ_SYS_TRANS_HALF_TOPIC"
    public static let transactionOpHalfTopic = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
    /// Where half messages go once checked `transactionCheckMax` times without an answer.
    public static let transactionCheckMaxTimeTopic = "TRANS_CHECK_MAX_TIME_TOPIC"
    public static let selfTestTopic = "SELF_TEST_TOPIC"
    public static let offsetMovedEvent = "OFFSET_MOVED_EVENT"
    public static let retryGroupTopicPrefix = "%RETRY%"
    public static let dlqGroupTopicPrefix = "%DLQ%"
    /// The longest topic a client may create or send to; retry and DLQ topics may be longer.
    public static let topicLengthMax = 127
    public static let systemTopicLengthMax = 255

    /// Topics no producer may send to (RocketMQ's `NOT_ALLOWED_SEND_TOPIC_SET`, and the auto-create template).
    public static let notAllowedSend: Set<String> = [scheduleTopic, transactionHalfTopic, transactionOpHalfTopic, autoCreateTopicKeyTopic]
    /// Topics the broker owns; admin requests may not create or delete them. (`BenchmarkTest` stays creatable:
    /// it is the default topic of RocketMQ's `producer.sh` and of `bench`.)
    public static let systemTopics: Set<String> = [
        autoCreateTopicKeyTopic, scheduleTopic, transactionHalfTopic, transactionOpHalfTopic, transactionCheckMaxTimeTopic, selfTestTopic,
        offsetMovedEvent,
    ]

    /// `^[%|a-zA-Z0-9_-]+$`, as RocketMQ's `TopicValidator.isTopicOrGroupIllegal` checks it.
    public static func hasLegalCharacters(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "|")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }

    /// Why `topic` cannot be used, or nil when it can (retry and DLQ topics may be up to 255 bytes).
    public static func problem(with topic: String) -> String? {
        if topic.isEmpty { return "The specified topic is blank." }
        let lengthMax = isRetryOrDLQ(topic) ? systemTopicLengthMax : topicLengthMax
        guard topic.utf8.count <= lengthMax else { return "The specified topic is longer than topic max length \(lengthMax)." }
        guard hasLegalCharacters(topic) else {
            return "The specified topic[\(topic)] contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
        }
        return nil
    }

    public static func isRetryOrDLQ(_ topic: String) -> Bool {
        topic.hasPrefix(retryGroupTopicPrefix) || topic.hasPrefix(dlqGroupTopicPrefix)
    }

    public static func retryTopic(group: String) -> String { retryGroupTopicPrefix + group }
    public static func dlqTopic(group: String) -> String { dlqGroupTopicPrefix + group }
}

/// How a consumer group shares messages (RocketMQ's `MessageModel`).
public enum MessageModel: String, Sendable, CaseIterable {
    /// Every member gets every message; offsets live with the client.
    case broadcasting = "BROADCASTING"
    /// Each message goes to one member; offsets live on the broker.
    case clustering = "CLUSTERING"

    /// From a heartbeat: the name, or the enum's ordinal as older peers write it.
    public init?(json: JSONValue?) {
        switch json {
        case .string(let name)?: self.init(rawValue: name.uppercased())
        case .integer(let ordinal)?: self = ordinal == 0 ? .broadcasting : .clustering
        default: return nil
        }
    }
}

/// A stored message's `sysFlag` bits (RocketMQ's `MessageSysFlag`).
public struct MessageSysFlag: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let compressed = MessageSysFlag(rawValue: 0x1)
    public static let multiTags = MessageSysFlag(rawValue: 0x2)
    public static let transactionPrepared = MessageSysFlag(rawValue: 0x4)
    public static let transactionCommit = MessageSysFlag(rawValue: 0x8)
    public static let transactionRollback = MessageSysFlag(rawValue: 0xC)
    public static let bornHostV6 = MessageSysFlag(rawValue: 0x10)
    public static let storeHostV6 = MessageSysFlag(rawValue: 0x20)
    /// The two bits that hold the transaction type (not-a-transaction, prepared, commit, rollback).
    public static let transactionTypeMask: Int32 = 0xC

    public var transactionType: MessageSysFlag { MessageSysFlag(rawValue: rawValue & Self.transactionTypeMask) }

    /// The same flags with the transaction type replaced (`resetTransactionValue`): `[]` for not-a-transaction.
    public func withTransactionType(_ type: MessageSysFlag) -> MessageSysFlag {
        MessageSysFlag(rawValue: (rawValue & ~Self.transactionTypeMask) | (type.rawValue & Self.transactionTypeMask))
    }
}

/// A PULL request's `sysFlag` bits (RocketMQ's `PullSysFlag`).
public struct PullSysFlag: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The request carries the consumer's offset to commit (`commitOffset`).
    public static let commitOffset = PullSysFlag(rawValue: 0x1)
    /// The broker may hold the request until a message arrives (long polling).
    public static let suspend = PullSysFlag(rawValue: 0x2)
    /// The request carries its subscription expression instead of relying on the heartbeat's.
    public static let subscription = PullSysFlag(rawValue: 0x4)
    public static let classFilter = PullSysFlag(rawValue: 0x8)
}

/// Milliseconds since the Unix epoch (Java's `System.currentTimeMillis`).
public func currentTimeMillis() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

/// Java's `String.hashCode` (31 * h + c over UTF-16 code units, 32-bit wrapping): RocketMQ's tags code.
public func javaStringHash(_ text: String) -> Int32 {
    var hash: Int32 = 0
    for unit in text.utf16 { hash = 31 &* hash &+ Int32(unit) }
    return hash
}

/// Nanoseconds of a monotonic clock (for timeouts and latencies; never goes back).
public func uptimeNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
