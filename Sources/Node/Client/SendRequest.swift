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

    /// The fields in RocketMQ's `SendMessageRequestHeaderV2` order (a..m), as `HeaderFields.Writer` writes them.
    func writeFields(into buffer: inout ByteBuffer) {
        var fields = HeaderFields.Writer(capacity: 0)  // the shared empty buffer: nothing allocated
        swap(&fields.buffer, &buffer)
        defer { swap(&fields.buffer, &buffer) }
        fields.append("a", group)
        fields.append("b", topic)
        fields.append("c", TopicValidator.autoCreateTopicKeyTopic)
        fields.append("d", defaultTopicQueueNums)
        fields.append("e", queueID)
        fields.append("f", sysFlag)
        fields.append("g", bornTimestamp)
        fields.append("h", flag)
        if batch == nil { writeProperties(into: &fields.buffer) }
        fields.append("j", 0)
        fields.append("k", false)
        fields.append("m", batch != nil)
    }

    /// Field `i`: the properties then UNIQ_KEY and WAIT when added, in place (nothing when there are none).
    private func writeProperties(into buffer: inout ByteBuffer) {
        let valueCount = propertiesByteCount
        guard valueCount > 0 else { return }
        let size = 2 + 1 + 4 + valueCount
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { target in
            var at = HeaderFields.Writer.storeKey("i", into: target)
            target.storeBytes(of: UInt32(valueCount).bigEndian, toByteOffset: at, as: UInt32.self)
            at += 4
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
            precondition(at == size, "SEND properties wrote \(at) of \(size) bytes")
            return size
        }
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
