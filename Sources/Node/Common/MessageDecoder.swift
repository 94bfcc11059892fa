import Remoting
import CLibdeflate
import NIOCore

/// Why a PULL, QUERY_MESSAGE or VIEW_MESSAGE_BY_ID body could not be read.
public struct MessageDecodingError: Error, CustomStringConvertible, Sendable {
    public var offset: Int
    public var reason: String
    public var description: String { "stored message at byte \(offset) of the body: \(reason)" }
}

/// Decodes stored records as a broker ships them (RocketMQ's `MessageDecoder`): the client side of the
/// record layout the store writes (`CommitLog`'s `MessageRecord`). Every length is checked against the
/// bytes present before anything is read or copied.
public enum MessageDecoder {
    public static let magicV1: UInt32 = 0xDAA3_20A7
    public static let magicV2: UInt32 = 0xDAA3_20AB
    /// A body that inflates past this is refused (a compressed bomb must not take the client's memory).
    public static let inflatedBytesMax = 64 << 20

    /// Every record in `buffer`, with zlib bodies (sysFlag bit 0x1) inflated.
    public static func decodeAll(_ buffer: ByteBuffer) throws(MessageDecodingError) -> [MessageExt] {
        let result = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(MessageDecodingError) -> [MessageExt] in
                var messages: [MessageExt] = []
                var at = 0
                while at < raw.count {
                    let message = try decode(UnsafeRawBufferPointer(rebasing: raw[at...]), at: at)
                    at += message.storeSize
                    messages.append(message)
                }
                return messages
            }
        }
        return try result.get()
    }

    /// The record at the start of `bytes` (`at` is only for error messages).
    public static func decode(_ bytes: UnsafeRawBufferPointer, at: Int = 0) throws(MessageDecodingError) -> MessageExt {
        func fail(_ reason: String) -> MessageDecodingError { MessageDecodingError(offset: at, reason: reason) }
        guard bytes.count >= 40 else { throw fail("only \(bytes.count) bytes left") }
        let totalSize = Int(bytes.bigEndian(Int32.self, at: 0))
        let magic = bytes.bigEndian(UInt32.self, at: 4)
        guard magic == magicV1 || magic == magicV2 else { throw fail("bad magic 0x\(String(magic, radix: 16))") }
        guard totalSize >= 40, totalSize <= bytes.count else { throw fail("size \(totalSize) does not fit the \(bytes.count) bytes left") }
        let record = UnsafeRawBufferPointer(rebasing: bytes[0..<totalSize])
        var cursor = Cursor(bytes: record, at: 36, fail: fail)
        let sysFlag = MessageSysFlag(rawValue: try cursor.int32())
        let bornTimestamp = try cursor.int64()
        let bornHost = try cursor.host(ipv6: sysFlag.contains(.bornHostV6))
        let storeTimestamp = try cursor.int64()
        let storeHost = try cursor.host(ipv6: sysFlag.contains(.storeHostV6))
        let reconsumeTimes = try cursor.int32()
        _ = try cursor.int64()  // prepared transaction offset
        var body = Array(try cursor.bytes(count: Int(try cursor.int32())))
        let topicLength = magic == magicV2 ? Int(try cursor.int16()) : Int(try cursor.uint8())
        let topic = String(decoding: try cursor.bytes(count: topicLength), as: UTF8.self)
        let properties = MessageProperties(bytes: try cursor.bytes(count: Int(try cursor.int16())))
        guard cursor.at == totalSize else { throw fail("fields end at \(cursor.at), the record says \(totalSize)") }
        if sysFlag.contains(.compressed) { body = try inflate(body, fail: fail) }
        return MessageExt(
            topic: topic, body: body, flag: record.bigEndian(Int32.self, at: 16), properties: properties,
            queueID: record.bigEndian(Int32.self, at: 12), queueOffset: record.bigEndian(Int64.self, at: 20),
            commitLogOffset: record.bigEndian(Int64.self, at: 28), sysFlag: sysFlag, bornTimestamp: bornTimestamp,
            bornHost: bornHost, storeTimestamp: storeTimestamp, storeHost: storeHost, reconsumeTimes: reconsumeTimes,
            storeSize: totalSize)
    }

    /// Reads fields in order, each checked against the record's end.
    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var at: Int
        let fail: (String) -> MessageDecodingError

        mutating func take(_ count: Int) throws(MessageDecodingError) -> Int {
            guard count >= 0, count <= bytes.count - at else { throw fail("a \(count)-byte field at \(at) runs past the record") }
            defer { at += count }
            return at
        }
        mutating func uint8() throws(MessageDecodingError) -> UInt8 { bytes[try take(1)] }
        mutating func int16() throws(MessageDecodingError) -> Int16 { bytes.bigEndian(Int16.self, at: try take(2)) }
        mutating func int32() throws(MessageDecodingError) -> Int32 { bytes.bigEndian(Int32.self, at: try take(4)) }
        mutating func int64() throws(MessageDecodingError) -> Int64 { bytes.bigEndian(Int64.self, at: try take(8)) }
        mutating func bytes(count: Int) throws(MessageDecodingError) -> UnsafeRawBufferPointer {
            let start = try take(count)
            return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + count)])
        }
        mutating func host(ipv6: Bool) throws(MessageDecodingError) -> NetAddress {
            NetAddress.load(bytes, at: try take(ipv6 ? 20 : 8), ipv6: ipv6)
        }
    }

    /// zlib-inflates a body compressed by a Java or C++ producer, at most `inflatedBytesMax`.
    static func inflate(_ compressed: [UInt8], fail: (String) -> MessageDecodingError) throws(MessageDecodingError) -> [UInt8] {
        guard let decompressor = libdeflate_alloc_decompressor() else { throw fail("cannot allocate a decompressor") }
        defer { libdeflate_free_decompressor(decompressor) }
        var capacity = min(max(compressed.count * 4, 4096), inflatedBytesMax)
        while true {
            var output = [UInt8](repeating: 0, count: capacity)
            var actual = 0
            let result = compressed.withUnsafeBytes { input in output.withUnsafeMutableBytes { out in
                libdeflate_zlib_decompress(decompressor, input.baseAddress, input.count, out.baseAddress, out.count, &actual)
            } }
            if result == LIBDEFLATE_SUCCESS { return Array(output[..<actual]) }
            guard result == LIBDEFLATE_INSUFFICIENT_SPACE else { throw fail("a compressed body does not inflate") }
            guard capacity < inflatedBytesMax else { throw fail("a compressed body inflates past \(inflatedBytesMax) bytes") }
            capacity = min(capacity * 4, inflatedBytesMax)
        }
    }
}

/// RocketMQ's checksum: zlib's CRC32 with the sign bit cleared (`UtilAll.crc32`), e.g. REGISTER_BROKER's
/// `bodyCrc32`.
public func rocketMQCRC32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    UInt32(libdeflate_crc32(0, bytes.baseAddress, bytes.count)) & 0x7FFF_FFFF
}
