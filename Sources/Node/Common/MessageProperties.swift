import Remoting
/// RocketMQ's property keys (`MessageConst.java`) that the roles read or write.
public enum MessageConst {
    public static let keys = "KEYS"
    public static let tags = "TAGS"
    public static let waitStoreMsgOK = "WAIT"
    public static let delayTimeLevel = "DELAY"
    public static let retryTopic = "RETRY_TOPIC"
    public static let realTopic = "REAL_TOPIC"
    public static let realQueueID = "REAL_QID"
    public static let transactionPrepared = "TRAN_MSG"
    public static let producerGroup = "PGROUP"
    /// How often the broker has asked the producer about a half message (RocketMQ's `TRANSACTION_CHECK_TIMES`).
    public static let transactionCheckTimes = "TRANSACTION_CHECK_TIMES"
    /// Seconds a half message is not checked after its birth (instead of `transactionTimeOut`).
    public static let checkImmunityTimeInSeconds = "CHECK_IMMUNITY_TIME_IN_SECONDS"
    public static let transactionPreparedQueueOffset = "TRAN_PREPARED_QUEUE_OFFSET"
    public static let minOffset = "MIN_OFFSET"
    public static let maxOffset = "MAX_OFFSET"
    public static let originMessageID = "ORIGIN_MESSAGE_ID"
    public static let uniqueClientMessageIDKeyIndex = "UNIQ_KEY"
    public static let reconsumeTime = "RECONSUME_TIME"
    public static let maxReconsumeTimes = "MAX_RECONSUME_TIMES"
    public static let consumeStartTime = "CONSUME_START_TIME"
    public static let msgRegion = "MSG_REGION"
    public static let traceSwitch = "TRACE_ON"

    /// Keys RocketMQ reserves for itself; everything else is a user property.
    public static let systemKeys: Set<String> = [
        tags, keys, uniqueClientMessageIDKeyIndex, waitStoreMsgOK, delayTimeLevel, realTopic, realQueueID, retryTopic,
        originMessageID, minOffset, maxOffset, consumeStartTime, transactionPrepared, producerGroup, msgRegion, traceSwitch,
        reconsumeTime, maxReconsumeTimes, transactionCheckTimes, checkImmunityTimeInSeconds, transactionPreparedQueueOffset, "CLUSTER", "__STARTDELIVERTIME", "INSTANCE_ID", "CORRECTION_FLAG",
        "CONSUME_CONTEXT", "BATCH", "DELAY_TIME_LEVEL", "TIMER_DELIVER_MS",
    ]
}

/// A message's properties: RocketMQ's `key 0x01 value 0x02 ...` string, as ordered pairs. This is the one
/// codec of the roles (client messages, stored records, the broker's delay/retry/DLQ rewrites); the store reads
/// the bytes it needs in place (IndexFile's `propertyValue`), and the send path never decodes them.
public struct MessageProperties: Sendable, Equatable, Sequence {
    public private(set) var pairs: [(key: String, value: String)] = []

    public static let nameValueSeparator: UInt8 = 1
    public static let propertySeparator: UInt8 = 2
    /// The longest properties string RocketMQ accepts (its length travels as a 2-byte signed integer).
    public static let byteCountMax = Int(Int16.max)

    public init() {}

    /// Parses the wire form; a pair without a separator is skipped, as Java's `string2messageProperties` does.
    public init(bytes: UnsafeRawBufferPointer) {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != Self.propertySeparator { end += 1 }
            if let separator = bytes[start..<end].firstIndex(of: Self.nameValueSeparator) {
                pairs.append((String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<separator]), as: UTF8.self),
                              String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(separator + 1)..<end]), as: UTF8.self)))
            }
            start = end + 1
        }
    }

    public init(_ bytes: [UInt8]) {
        self.init()
        bytes.withUnsafeBytes { self = MessageProperties(bytes: $0) }
    }

    public static func == (lhs: MessageProperties, rhs: MessageProperties) -> Bool {
        lhs.pairs.count == rhs.pairs.count && zip(lhs.pairs, rhs.pairs).allSatisfy { $0 == $1 }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { pairs.makeIterator() }

    public var isEmpty: Bool { pairs.isEmpty }

    /// A key's value; setting replaces it (moved to the end), nil removes it.
    public subscript(key: String) -> String? {
        get { pairs.first { $0.key == key }?.value }
        set {
            pairs.removeAll { $0.key == key }
            if let newValue { pairs.append((key, newValue)) }
        }
    }

    /// Adds a pair at the end without looking for an earlier one (the caller knows the key is new).
    public mutating func append(_ key: String, _ value: String) { pairs.append((key, value)) }

    /// Room for `count` pairs in all, so the appends after it do not grow the storage one by one.
    public mutating func reserveCapacity(_ count: Int) { pairs.reserveCapacity(count) }

    /// The wire form's length, without building it.
    public var byteCount: Int { pairs.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 } }

    /// The wire form.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(byteCount)
        for (key, value) in pairs {
            out += key.utf8
            out.append(Self.nameValueSeparator)
            out += value.utf8
            out.append(Self.propertySeparator)
        }
        return out
    }

    /// The wire form as text (a SEND header's `properties` field).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// Writes the wire form into `target` (exactly `byteCount` bytes long).
    func store(into target: UnsafeMutableRawBufferPointer) {
        var at = 0
        for (key, value) in pairs {
            at += target[at...].copyUTF8(of: key)
            target[at] = Self.nameValueSeparator
            at += 1 + target[(at + 1)...].copyUTF8(of: value)
            target[at] = Self.propertySeparator
            at += 1
        }
        precondition(at == target.count, "properties wrote \(at) of \(target.count) bytes")
    }

    /// User properties (those RocketMQ does not reserve), last value of a key winning.
    public var userProperties: [String: String] {
        Dictionary(pairs.filter { !MessageConst.systemKeys.contains($0.key) }.map { ($0.key, $0.value) },
                   uniquingKeysWith: { _, last in last })
    }

    /// The value of `key` in wire-form `bytes`, in place (no copy, no allocation).
    public static func value(of key: StaticString, in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let name = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        var start = 0
        while start < bytes.count {
            var separator = start
            while separator < bytes.count, bytes[separator] != nameValueSeparator, bytes[separator] != propertySeparator {
                separator += 1
            }
            var end = separator
            while end < bytes.count, bytes[end] != propertySeparator { end += 1 }
            if separator < end, UnsafeRawBufferPointer(rebasing: bytes[start..<separator]).elementsEqual(name) {
                return UnsafeRawBufferPointer(rebasing: bytes[(separator + 1)..<end])
            }
            start = end + 1
        }
        return nil
    }
}

extension Slice where Base == UnsafeMutableRawBufferPointer {
    /// Copies `text`'s UTF-8 to the start of this slice (which has room); the bytes copied.
    fileprivate func copyUTF8(of text: String) -> Int {
        var text = text  // withUTF8 is mutating; a native string is not copied
        return text.withUTF8 { utf8 in
            UnsafeMutableRawBufferPointer(rebasing: self).copyMemory(from: UnsafeRawBufferPointer(utf8))
            return utf8.count
        }
    }
}

extension HeaderFields.Writer {
    /// `properties`' wire form as the value of `key`, written into the header in place (no intermediate array
    /// or string); nothing when there are none (an empty value does not survive the binary form).
    public mutating func append(_ key: StaticString, properties: MessageProperties) {
        let valueCount = properties.byteCount
        guard valueCount > 0 else { return }
        let size = 2 + key.utf8CodeUnitCount + 4 + valueCount
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { target in
            let at = Self.storeKey(key, into: target)
            target.storeBytes(of: UInt32(valueCount).bigEndian, toByteOffset: at, as: UInt32.self)
            properties.store(into: UnsafeMutableRawBufferPointer(rebasing: target[(at + 4)..<size]))
            return size
        }
    }
}
