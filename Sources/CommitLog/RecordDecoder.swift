#if canImport(Glibc)
import Glibc
#endif
import CStoreKernels

/// The parsed fixed fields of one stored record and where its variable parts lie.
public struct StoredRecordHeader: Sendable, Equatable {
    public var totalSize: Int
    public var magic: UInt32
    public var bodyCRC: UInt32
    public var queueID: Int32
    public var flag: Int32
    public var queueOffset: Int64
    public var physicalOffset: Int64
    public var sysFlag: Int32
    public var bornTimestamp: Int64
    public var bornHost: HostAddress
    public var storeTimestamp: Int64
    public var storeHost: HostAddress
    public var reconsumeTimes: Int32
    public var preparedTransactionOffset: Int64
    /// Byte ranges inside the record.
    public var body: Range<Int>
    public var topic: Range<Int>
    public var properties: Range<Int>
}

/// What one position of the log holds.
public enum RecordCheck: Sendable, Equatable {
    /// A valid message record.
    case message(StoredRecordHeader)
    /// The blank record that ends a file; `size` bytes to the file's end.
    case blank(size: Int)
    /// Zeros where a record would start: the written data ends here.
    case endOfData
    /// Not a valid record: which field, and what is wrong with it.
    case corrupt(field: String, detail: String)
}

public enum RecordDecoder {
    /// Fetches into the cache the lines a `check` of a `size`-byte record at `record` reads first: its fixed
    /// fields and its tail (topic and properties). A hint that never faults, for readers that walk the log.
    @inlinable
    public static func prefetch(_ record: UnsafeRawPointer, size: Int) {
        store_prefetch_for_read(record)
        store_prefetch_for_read(record + 64)
        if size > 128 { store_prefetch_for_read(record + (size - 1)) }
    }

    /// Checks the record at the start of `bytes` (which runs to the end of its file, or of the readable
    /// data). With `expectedPhysicalOffset`, a record whose PHYSICALOFFSET field differs is corrupt too:
    /// that closes the window where a stale record left behind a truncation could pass as live.
    public static func check(
        _ bytes: UnsafeRawBufferPointer, expectedPhysicalOffset: Int64? = nil, checkCRC: Bool = true
    ) -> RecordCheck {
        guard bytes.count >= 8, let base = bytes.baseAddress else {
            if bytes.allSatisfy({ $0 == 0 }) { return .endOfData }
            return .corrupt(field: "TOTALSIZE", detail: "only \(bytes.count) bytes left, a record needs 8 or more")
        }
        let totalSize = Int(loadBigEndian(Int32.self, at: 0, in: base))
        let magic = loadBigEndian(UInt32.self, at: 4, in: base)
        if magic == MessageRecord.blankMagic {
            guard totalSize == bytes.count else {
                return .corrupt(field: "TOTALSIZE", detail: "blank record says \(totalSize) bytes, file has \(bytes.count) left")
            }
            return .blank(size: totalSize)
        }
        if totalSize == 0 && magic == 0 { return .endOfData }
        guard magic == MessageRecord.magicV1 || magic == MessageRecord.magicV2 else {
            return .corrupt(field: "MAGICCODE", detail: "0x\(String(magic, radix: 16)) is no record magic")
        }
        let minimum = MessageRecord.fixedOverheadIPv4
        guard totalSize >= minimum else {
            return .corrupt(field: "TOTALSIZE", detail: "\(totalSize) is below the \(minimum)-byte minimum")
        }
        guard totalSize <= bytes.count else {
            return .corrupt(field: "TOTALSIZE", detail: "\(totalSize) runs past the \(bytes.count) bytes left")
        }
        return parse(base, totalSize: totalSize, magic: magic, expectedPhysicalOffset: expectedPhysicalOffset,
                     checkCRC: checkCRC)
    }

    static func parse(
        _ base: UnsafeRawPointer, totalSize: Int, magic: UInt32, expectedPhysicalOffset: Int64?, checkCRC: Bool
    ) -> RecordCheck {
        let sysFlag = loadBigEndian(Int32.self, at: 36, in: base)
        let bornV6 = sysFlag & MessageRecord.bornHostV6Flag != 0
        let storeV6 = sysFlag & MessageRecord.storeHostV6Flag != 0
        // The fixed fields end with BODYLENGTH; a V1 topic length, a 1-byte topic and PROPERTIESLENGTH follow.
        let bodyAt = 48 + (bornV6 ? 20 : 8) + 8 + (storeV6 ? 20 : 8) + 16
        guard bodyAt + 4 <= totalSize else {
            return .corrupt(field: "TOTALSIZE", detail: "\(totalSize) cannot hold the fixed fields of a record with sysFlag \(sysFlag)")
        }
        let physicalOffset = loadBigEndian(Int64.self, at: 28, in: base)
        if let expected = expectedPhysicalOffset, physicalOffset != expected {
            return .corrupt(field: "PHYSICALOFFSET", detail: "says \(physicalOffset), record lies at \(expected)")
        }
        let queueID = loadBigEndian(Int32.self, at: 12, in: base)
        guard queueID >= 0, queueID <= MessageRecord.queueIDMax else {
            return .corrupt(field: "QUEUEID", detail: "\(queueID) is outside 0...\(MessageRecord.queueIDMax)")
        }
        let bornHost = HostAddress.load(from: base, at: 48, ipv6: bornV6)
        guard bornHost.hasValidPort else {
            return .corrupt(field: "BORNHOST", detail: "port \(bornHost.port) is outside 0...65535")
        }
        let storeTimestampAt = 48 + (bornV6 ? 20 : 8)
        let storeHost = HostAddress.load(from: base, at: storeTimestampAt + 8, ipv6: storeV6)
        guard storeHost.hasValidPort else {
            return .corrupt(field: "STOREHOST", detail: "port \(storeHost.port) is outside 0...65535")
        }
        let bodyLength = Int(loadBigEndian(Int32.self, at: bodyAt - 4, in: base))
        guard bodyLength >= 0, bodyAt + bodyLength <= totalSize else {
            return .corrupt(field: "BODYLENGTH", detail: "\(bodyLength) does not fit in a \(totalSize)-byte record")
        }
        let topic: Range<Int>, properties: Range<Int>
        switch parseTail(base, at: bodyAt + bodyLength, totalSize: totalSize, magic: magic) {
        case .success(let ranges): (topic, properties) = ranges
        case .failure(let failure): return .corrupt(field: failure.field, detail: failure.detail)
        }
        let bodyCRC = loadBigEndian(UInt32.self, at: 8, in: base)
        if checkCRC && bodyLength > 0 {
            let computed = rocketCRC32(UnsafeRawBufferPointer(start: base + bodyAt, count: bodyLength))
            if computed != bodyCRC {
                return .corrupt(field: "BODYCRC", detail: "stored \(bodyCRC), body computes to \(computed)")
            }
        }
        return .message(StoredRecordHeader(
            totalSize: totalSize, magic: magic, bodyCRC: bodyCRC,
            queueID: queueID, flag: loadBigEndian(Int32.self, at: 16, in: base),
            queueOffset: loadBigEndian(Int64.self, at: 20, in: base), physicalOffset: physicalOffset,
            sysFlag: sysFlag, bornTimestamp: loadBigEndian(Int64.self, at: 40, in: base), bornHost: bornHost,
            storeTimestamp: loadBigEndian(Int64.self, at: storeTimestampAt, in: base), storeHost: storeHost,
            reconsumeTimes: loadBigEndian(Int32.self, at: bodyAt - 16, in: base),
            preparedTransactionOffset: loadBigEndian(Int64.self, at: bodyAt - 12, in: base),
            body: bodyAt ..< bodyAt + bodyLength, topic: topic, properties: properties))
    }

    struct TailFailure: Error {
        var field: String
        var detail: String
    }

    /// Topic length, topic, properties length and properties from `at` (just past the body), which must end
    /// exactly at `totalSize`. Topic and properties may not hold a zero byte: the body CRC covers neither,
    /// so a record whose tail was never written (zeros) would pass it, and the append path refuses them.
    static func parseTail(_ base: UnsafeRawPointer, at start: Int, totalSize: Int, magic: UInt32)
        -> Result<(topic: Range<Int>, properties: Range<Int>), TailFailure> {
        var at = start
        let lengthBytes = magic == MessageRecord.magicV2 ? 2 : 1
        guard at + lengthBytes <= totalSize else {
            return .failure(TailFailure(field: "TOPICLENGTH", detail: "past the record's end"))
        }
        let topicLength = lengthBytes == 2
            ? Int(loadBigEndian(Int16.self, at: at, in: base)) : Int(loadBigEndian(Int8.self, at: at, in: base))
        at += lengthBytes
        guard topicLength > 0, at + topicLength + 2 <= totalSize else {
            return .failure(TailFailure(field: "TOPICLENGTH", detail: "\(topicLength) does not fit in a \(totalSize)-byte record"))
        }
        let topic = at ..< at + topicLength
        if memchr(base + at, 0, topicLength) != nil {
            return .failure(TailFailure(field: "TOPIC", detail: "holds a zero byte (a zeroed tail, or not a record)"))
        }
        at += topicLength
        let propertiesLength = Int(loadBigEndian(Int16.self, at: at, in: base))
        at += 2
        guard propertiesLength >= 0 else {
            return .failure(TailFailure(field: "PROPERTIESLENGTH", detail: "\(propertiesLength) is negative"))
        }
        guard at + propertiesLength == totalSize else {
            return .failure(TailFailure(field: "TOTALSIZE", detail: "\(totalSize) differs from the \(at + propertiesLength) bytes its fields add up to"))
        }
        if propertiesLength > 0 && memchr(base + at, 0, propertiesLength) != nil {
            return .failure(TailFailure(field: "PROPERTIES", detail: "hold a zero byte (a zeroed tail, or not a record)"))
        }
        return .success((topic, at ..< at + propertiesLength))
    }
}
