import CLibdeflate
import CommitLog
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A message to send: topic, body, and properties (tags, keys and user properties travel as properties).
public struct Message: Sendable {
    public var topic: String
    public var body: [UInt8]
    public var flag: Int32 = 0
    /// Every property, system ones (TAGS, KEYS, DELAY, ...) included, in insertion order.
    public var properties: [(String, String)] = []

    public init(topic: String, body: [UInt8], tags: String? = nil, keys: [String] = [], properties: [String: String] = [:]) {
        self.topic = topic
        self.body = body
        if let tags, !tags.isEmpty { self.properties.append(("TAGS", tags)) }
        if !keys.isEmpty { self.properties.append(("KEYS", keys.joined(separator: " "))) }
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) { self.properties.append((key, value)) }
    }

    public init(topic: String, body: String, tags: String? = nil, keys: [String] = [], properties: [String: String] = [:]) {
        self.init(topic: topic, body: Array(body.utf8), tags: tags, keys: keys, properties: properties)
    }

    public subscript(property key: String) -> String? {
        get { properties.first { $0.0 == key }?.1 }
        set {
            properties.removeAll { $0.0 == key }
            if let newValue { properties.append((key, newValue)) }
        }
    }

    public var tags: String? { self[property: "TAGS"] }
    public var keys: [String] { self[property: "KEYS"]?.split(separator: " ").map(String.init) ?? [] }
    /// RocketMQ's delay level (1 = 1 s ... 18 = 2 h); 0 for none.
    public var delayTimeLevel: Int {
        get { Int(self[property: "DELAY"] ?? "") ?? 0 }
        set { self[property: "DELAY"] = newValue > 0 ? "\(newValue)" : nil }
    }

    /// The length of `propertiesString` in bytes, without building it.
    var propertiesByteCount: Int { properties.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 2 } }

    /// The properties string: `key 0x01 value 0x02` per pair.
    var propertiesString: String {
        var text = ""
        for (key, value) in properties { text += key + "\u{1}" + value + "\u{2}" }
        return text
    }
}

/// A received message: the stored record's fields (what PULL, QUERY_MESSAGE and VIEW_MESSAGE_BY_ID return).
public struct MessageExt: Sendable {
    public var topic: String
    public var body: [UInt8]
    public var flag: Int32
    public var properties: [(String, String)]
    public var queueID: Int32
    public var queueOffset: Int64
    public var commitLogOffset: Int64
    public var sysFlag: Int32
    public var bornTimestamp: Int64
    public var bornHost: HostAddress
    public var storeTimestamp: Int64
    public var storeHost: HostAddress
    public var reconsumeTimes: Int32
    public var storeSize: Int
    /// Set by the consumer: the broker it came from.
    public var brokerName: String = ""

    public func property(_ key: String) -> String? { properties.first { $0.0 == key }?.1 }
    public var tags: String? { property("TAGS") }
    public var keys: [String] { property("KEYS")?.split(separator: " ").map(String.init) ?? [] }
    /// The id the producer made (UNIQ_KEY), else the broker's offset id.
    public var msgID: String { property("UNIQ_KEY") ?? offsetMsgID }
    /// The broker's id: store host and commit-log offset, in hex.
    public var offsetMsgID: String { MessageID(storeHost: storeHost, physicalOffset: UInt64(commitLogOffset)).hexString }
    public var bodyString: String { String(decoding: body, as: UTF8.self) }
    /// User properties (everything RocketMQ does not reserve for itself).
    public var userProperties: [String: String] {
        Dictionary(properties.filter { !Self.systemKeys.contains($0.0) }, uniquingKeysWith: { _, last in last })
    }

    static let systemKeys: Set<String> = [
        "TAGS", "KEYS", "UNIQ_KEY", "WAIT", "DELAY", "REAL_TOPIC", "REAL_QID", "RETRY_TOPIC", "ORIGIN_MESSAGE_ID",
        "MIN_OFFSET", "MAX_OFFSET", "CONSUME_START_TIME", "TRAN_MSG", "PGROUP", "MSG_REGION", "TRACE_ON", "CLUSTER",
        "__STARTDELIVERTIME", "INSTANCE_ID", "CORRECTION_FLAG", "MAX_RECONSUME_TIMES",
        "CONSUME_CONTEXT", "BATCH", "DELAY_TIME_LEVEL", "TIMER_DELIVER_MS",
    ]

    /// Decodes the stored records in `buffer` (a PULL/QUERY/VIEW body), inflating zlib bodies (sysFlag 0x1).
    public static func decodeAll(_ buffer: ByteBuffer) throws -> [MessageExt] {
        try buffer.withUnsafeReadableBytes { raw in
            var messages: [MessageExt] = []
            var at = 0
            while at < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[at...])
                guard case .message(let header) = RecordDecoder.check(rest, checkCRC: false) else {
                    throw ClientError.badResponse("stored message at byte \(at) of the body does not decode")
                }
                func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: rest[range]) }
                var body = Array(slice(header.body))
                if header.sysFlag & 0x1 != 0 { body = try inflate(body) }
                messages.append(MessageExt(
                    topic: String(decoding: slice(header.topic), as: UTF8.self), body: body, flag: header.flag,
                    properties: parseProperties(slice(header.properties)), queueID: header.queueID,
                    queueOffset: header.queueOffset, commitLogOffset: header.physicalOffset, sysFlag: header.sysFlag,
                    bornTimestamp: header.bornTimestamp, bornHost: header.bornHost, storeTimestamp: header.storeTimestamp,
                    storeHost: header.storeHost, reconsumeTimes: header.reconsumeTimes, storeSize: header.totalSize))
                at += header.totalSize
            }
            return messages
        }
    }

    static func parseProperties(_ bytes: UnsafeRawBufferPointer) -> [(String, String)] {
        var pairs: [(String, String)] = []
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != 2 { end += 1 }
            if let separator = bytes[start..<end].firstIndex(of: 1) {
                pairs.append((String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<separator]), as: UTF8.self),
                              String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(separator + 1)..<end]), as: UTF8.self)))
            }
            start = end + 1
        }
        return pairs
    }

    /// zlib-inflates a body compressed by a Java or C++ producer.
    static func inflate(_ compressed: [UInt8]) throws -> [UInt8] {
        guard let decompressor = libdeflate_alloc_decompressor() else { throw ClientError.badResponse("cannot allocate a decompressor") }
        defer { libdeflate_free_decompressor(decompressor) }
        var capacity = max(compressed.count * 4, 4096)
        while capacity <= 64 << 20 {
            var output = [UInt8](repeating: 0, count: capacity)
            var actual = 0
            let result = compressed.withUnsafeBytes { input in output.withUnsafeMutableBytes { out in
                libdeflate_zlib_decompress(decompressor, input.baseAddress, input.count, out.baseAddress, out.count, &actual)
            } }
            if result == LIBDEFLATE_SUCCESS { return Array(output[..<actual]) }
            guard result == LIBDEFLATE_INSUFFICIENT_SPACE else { throw ClientError.badResponse("a compressed body does not inflate") }
            capacity *= 4
        }
        throw ClientError.badResponse("a compressed body inflates past 64 MiB")
    }
}

/// A queue of a topic on one broker.
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
}

/// Why a client call failed.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    /// The broker or NameServer answered with an error code.
    case broker(code: Int32, remark: String, address: String)
    case noRoute(topic: String)
    case noNameServer(String)
    case badResponse(String)
    case notStarted
    case messageTooLarge(Int, max: Int)

    public var description: String {
        switch self {
        case .broker(let code, let remark, let address): "\(address) answered code \(code): \(remark)"
        case .noRoute(let topic): "No route info of this topic: \(topic)"
        case .noNameServer(let detail): "no NameServer reachable: \(detail)"
        case .badResponse(let detail): "bad response: \(detail)"
        case .notStarted: "the client is not started (or already shut down)"
        case .messageTooLarge(let size, let max): "the message body size \(size) exceeds the maximum \(max)"
        }
    }
}

/// Client-made message ids (UNIQ_KEY), shaped like Java's: ip, pid, a per-process number, then time and a
/// counter, 32 upper-case hex digits.
enum UniqueID {
    static let counter = Atomic<UInt32>(0)
    static let prefix: String = {
        var bytes: [UInt8] = [127, 0, 0, 1]
        let pid = UInt16(truncatingIfNeeded: getpid())
        bytes += [UInt8(pid >> 8), UInt8(truncatingIfNeeded: pid)]
        let salt = UInt32.random(in: 0...UInt32.max)
        bytes += [UInt8(salt >> 24), UInt8(truncatingIfNeeded: salt >> 16), UInt8(truncatingIfNeeded: salt >> 8), UInt8(truncatingIfNeeded: salt)]
        return hex(bytes)
    }()
    static let start = wallClockMillis()

    static func next() -> String {
        let elapsed = UInt32(truncatingIfNeeded: wallClockMillis() - start)
        let count = UInt16(truncatingIfNeeded: counter.wrappingAdd(1, ordering: .relaxed).oldValue)
        return prefix + hex([UInt8(elapsed >> 24), UInt8(truncatingIfNeeded: elapsed >> 16), UInt8(truncatingIfNeeded: elapsed >> 8),
                             UInt8(truncatingIfNeeded: elapsed), UInt8(count >> 8), UInt8(truncatingIfNeeded: count)])
    }

    static func hex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (index, byte) in bytes.enumerated() {
                let high = byte >> 4, low = byte & 15
                out[2 * index] = high < 10 ? 48 + high : 55 + high
                out[2 * index + 1] = low < 10 ? 48 + low : 55 + low
            }
            return bytes.count * 2
        }
    }
}
