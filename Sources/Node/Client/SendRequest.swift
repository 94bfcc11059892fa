import Common
import Remoting
import NIOCore

/// SEND_MESSAGE_V2 (or SEND_BATCH_MESSAGE with `batch`): its header fields and body, written by the connection
/// straight into its outbound buffer (no dictionary, no JSON, no header or body buffer per send).
struct SendRequest: RemotingRequest, Sendable {
    var group: String
    var topic: String
    var defaultTopicQueueNums: Int
    var queueID: Int32
    var sysFlag: Int32
    var bornTimestamp: Int64
    var flag: Int32
    /// The message's own properties (a single message; a batch carries each message's in its body).
    var properties: MessageProperties
    /// UNIQ_KEY to write after `properties` when the message has none (nil: it carries one).
    var uniqueID: PackedID?
    /// Whether `WAIT=true` follows (the message does not say itself).
    var addWait: Bool
    var body: [UInt8]
    var batch: ByteBuffer?

    var code: Int32 { batch == nil ? RequestCode.sendMessageV2 : RequestCode.sendBatchMessage }

    /// The properties' wire length with the pairs the producer adds (`UNIQ_KEY=<32 hex>`, `WAIT=true`).
    var propertiesByteCount: Int {
        properties.byteCount + (uniqueID == nil ? 0 : Self.uniqueKey.utf8CodeUnitCount + 2 + PackedID.hexCount)
            + (addWait ? Self.waitPair.utf8CodeUnitCount : 0)
    }

    static let uniqueKey: StaticString = "UNIQ_KEY"
    static let waitPair: StaticString = "WAIT\u{1}true\u{2}"

    /// The fields in RocketMQ's `SendMessageRequestHeaderV2` order (a..m), in `HeaderFields.Writer`'s layout
    /// (`keyLength(2) key valueLength(4) value`, decimal numbers, empty values left out), all written within one
    /// reservation of the buffer.
    func writeFields(into buffer: inout ByteBuffer) {
        let propertiesCount = batch == nil ? propertiesByteCount : 0
        // 12 fields of a one-letter key (7 bytes each with the lengths), three strings, seven numbers, the properties.
        let sizeMax = 12 * 7 + group.utf8.count + topic.utf8.count + Self.autoCreateTopic.utf8CodeUnitCount + 7 * Self.decimalDigitsMax
            + propertiesCount + 5 + 5
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: sizeMax) { target in
            var at = 0
            at += Self.store("a", text: group, into: target, at: at)
            at += Self.store("b", text: topic, into: target, at: at)
            at += Self.store("c", bytes: Self.autoCreateTopic, into: target, at: at)
            at += Self.store("d", Int64(defaultTopicQueueNums), into: target, at: at)
            at += Self.store("e", Int64(queueID), into: target, at: at)
            at += Self.store("f", Int64(sysFlag), into: target, at: at)
            at += Self.store("g", bornTimestamp, into: target, at: at)
            at += Self.store("h", Int64(flag), into: target, at: at)
            if propertiesCount > 0 { at += storeProperties(count: propertiesCount, into: target, at: at) }
            at += Self.store("j", 0, into: target, at: at)
            at += Self.store("k", bytes: "false", into: target, at: at)
            at += Self.store("m", bytes: batch == nil ? "false" : "true", into: target, at: at)
            precondition(at <= sizeMax, "SEND fields wrote \(at) of at most \(sizeMax) bytes")
            return at
        }
    }

    static let autoCreateTopic: StaticString = "TBW102"
    static let decimalDigitsMax = HeaderFields.Writer.decimalDigitsMax

    /// A one-letter key and its value's length at `at`; the bytes written (7).
    private static func storeKey(_ key: UInt8, valueCount: Int, into target: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        target.storeBytes(of: UInt16(1).bigEndian, toByteOffset: at, as: UInt16.self)
        target[at + 2] = key
        target.storeBytes(of: UInt32(valueCount).bigEndian, toByteOffset: at + 3, as: UInt32.self)
        return 7
    }

    private static func store(_ key: Unicode.Scalar, text: String, into target: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        let count = text.utf8.count
        guard count > 0 else { return 0 }  // empty values do not survive the binary form
        let keyCount = storeKey(UInt8(ascii: key), valueCount: count, into: target, at: at)
        return keyCount + copy(text, into: target, at: at + keyCount)
    }

    private static func store(_ key: Unicode.Scalar, bytes: StaticString, into target: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        let keyCount = storeKey(UInt8(ascii: key), valueCount: bytes.utf8CodeUnitCount, into: target, at: at)
        return keyCount + copy(bytes, into: target, at: at + keyCount)
    }

    /// `value` in decimal (`HeaderFields.Writer.storeDecimal`), then its key and length before it.
    private static func store(_ key: Unicode.Scalar, _ value: Int64, into target: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        let count = HeaderFields.Writer.storeDecimal(value, into: UnsafeMutableRawBufferPointer(rebasing: target[(at + 7)...]))
        return storeKey(UInt8(ascii: key), valueCount: count, into: target, at: at) + count
    }

    /// Field `i`: the properties then UNIQ_KEY and WAIT when added, `count` bytes in all.
    private func storeProperties(count: Int, into target: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
        var at = start + Self.storeKey(UInt8(ascii: "i"), valueCount: count, into: target, at: start)
        for (key, value) in properties.pairs {
            at += Self.copy(key, into: target, at: at)
            target[at] = MessageProperties.nameValueSeparator
            at += 1 + Self.copy(value, into: target, at: at + 1)
            target[at] = MessageProperties.propertySeparator
            at += 1
        }
        if let uniqueID {
            at += Self.copy(Self.uniqueKey, into: target, at: at)
            target[at] = MessageProperties.nameValueSeparator
            uniqueID.storeHex(into: UnsafeMutableRawBufferPointer(rebasing: target[(at + 1)...]))
            at += 1 + PackedID.hexCount
            target[at] = MessageProperties.propertySeparator
            at += 1
        }
        if addWait { at += Self.copy(Self.waitPair, into: target, at: at) }
        precondition(at - start == 7 + count, "SEND properties wrote \(at - start - 7) of \(count) bytes")
        return at - start
    }

    private static func copy(_ text: String, into target: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        var text = text  // withUTF8 is mutating; a native string is not copied
        return text.withUTF8 { utf8 in
            UnsafeMutableRawBufferPointer(rebasing: target[at...]).copyMemory(from: UnsafeRawBufferPointer(utf8))
            return utf8.count
        }
    }

    private static func copy(_ text: StaticString, into target: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        UnsafeMutableRawBufferPointer(rebasing: target[at...])
            .copyMemory(from: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        return text.utf8CodeUnitCount
    }

    func writeBody(into buffer: inout ByteBuffer) {
        if let batch { buffer.writeImmutableBuffer(batch) } else { buffer.writeBytes(body) }
    }
}

/// An id as text, or packed until read (a send's UNIQ_KEY and the broker's offset id).
enum IDText: Sendable {
    case text(String)
    case packed(PackedID)

    var string: String {
        switch self {
        case .text(let text): text
        case .packed(let id): id.hexString
        }
    }

    /// A response field's id: packed when it is 32 upper-case hex digits, else its text.
    init(_ value: HeaderFields.Value?) {
        guard let value else { self = .text(""); return }
        if let packed = value.withBytes({ PackedID(hex: $0) }) { self = .packed(packed) } else { self = .text(value.string) }
    }
}
