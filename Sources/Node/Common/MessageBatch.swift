import Remoting
import NIOCore

/// SEND_BATCH_MESSAGE's body (`MessageDecoder.encodeMessages`): per message
/// `TOTALSIZE MAGIC(0) BODYCRC(0) FLAG BODYLEN BODY PROPLEN PROPS`.
public enum MessageBatch {
    /// The fixed bytes of one record: total size, magic, body CRC, flag, body length, properties length.
    public static let recordOverhead = 22

    public static func encode(_ messages: [Message]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for message in messages {
            let properties = message.properties.bytes
            buffer.writeInteger(Int32(recordOverhead + message.body.count + properties.count))
            buffer.writeInteger(Int32(0))
            buffer.writeInteger(Int32(0))
            buffer.writeInteger(message.flag)
            buffer.writeInteger(Int32(message.body.count))
            buffer.writeBytes(message.body)
            buffer.writeInteger(Int16(properties.count))
            buffer.writeBytes(properties)
        }
        return buffer
    }

    /// One record of a batch, as byte ranges of the batch body.
    public struct Record: Sendable, Equatable {
        public var flag: Int32
        public var body: Range<Int>
        public var properties: Range<Int>
    }

    /// Walks a batch body, checking every length against the bytes present; calls `visit` per record (no
    /// allocation per record). Throws a description of the first bad record.
    public static func forEachRecord(in bytes: UnsafeRawBufferPointer, _ visit: (Record) -> Void) throws(BodyError) {
        var at = 0
        while at < bytes.count {
            func fail(_ reason: String) -> BodyError { BodyError(type: "MessageBatch", reason: "record at byte \(at): \(reason)") }
            guard bytes.count - at >= recordOverhead else { throw fail("cut short") }
            let totalSize = Int(bytes.bigEndian(Int32.self, at: at))
            let bodyLength = Int(bytes.bigEndian(Int32.self, at: at + 16))
            guard bodyLength >= 0, bodyLength <= bytes.count - at - recordOverhead else { throw fail("bad body length \(bodyLength)") }
            let propertiesAt = at + 20 + bodyLength
            let propertiesLength = Int(bytes.bigEndian(Int16.self, at: propertiesAt))
            guard propertiesLength >= 0, propertiesAt + 2 + propertiesLength <= bytes.count else {
                throw fail("bad properties length \(propertiesLength)")
            }
            let end = propertiesAt + 2 + propertiesLength
            guard totalSize == end - at else { throw fail("total size \(totalSize) differs from the \(end - at) bytes its fields take") }
            visit(Record(flag: bytes.bigEndian(Int32.self, at: at + 12), body: (at + 20)..<propertiesAt, properties: (propertiesAt + 2)..<end))
            at = end
        }
    }
}
