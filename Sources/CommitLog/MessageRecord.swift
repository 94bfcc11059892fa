/// An IPv4 or IPv6 address and port, kept as plain integers so a message carries no heap storage.
public struct HostAddress: Hashable, Sendable {
    /// The address bytes in network order: IPv4 uses the first 4 bytes of `high`.
    public var high: UInt64
    public var low: UInt64
    public var port: Int32
    public var isIPv6: Bool

    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: Int32) {
        high = UInt64(a) << 56 | UInt64(b) << 48 | UInt64(c) << 40 | UInt64(d) << 32
        low = 0
        self.port = port
        isIPv6 = false
    }

    public init(ipv6High: UInt64, low: UInt64, port: Int32) {
        high = ipv6High
        self.low = low
        self.port = port
        isIPv6 = true
    }

    public static let loopback = HostAddress(ipv4: 127, 0, 0, 1, port: 10911)

    /// `a.b.c.d:port` (IPv4) or `[h:h:h:h:h:h:h:h]:port` (IPv6), as clients dial it.
    public var text: String {
        if isIPv6 {
            let groups = (0..<8).map { index -> String in
                let word = index < 4 ? high >> (48 - 16 * UInt64(index)) : low >> (48 - 16 * UInt64(index - 4))
                return String(UInt16(truncatingIfNeeded: word), radix: 16)
            }
            return "[\(groups.joined(separator: ":"))]:\(port)"
        }
        let ip = UInt32(truncatingIfNeeded: high >> 32)
        return "\(ip >> 24).\((ip >> 16) & 255).\((ip >> 8) & 255).\(ip & 255):\(port)"
    }

    /// True when the port fits TCP's 16 bits (a stored record with another port is corrupt).
    @inlinable public var hasValidPort: Bool { port >= 0 && port <= 65_535 }

    /// Bytes this host takes in a stored record: 4 + 4 (IPv4) or 16 + 4 (IPv6).
    @inlinable public var encodedSize: Int { isIPv6 ? 20 : 8 }

    @inlinable
    func store(at offset: Int, in target: UnsafeMutableRawPointer) -> Int {
        if isIPv6 {
            storeBigEndian(high, at: offset, in: target)
            storeBigEndian(low, at: offset + 8, in: target)
            storeBigEndian(port, at: offset + 16, in: target)
            return 20
        }
        storeBigEndian(UInt32(truncatingIfNeeded: high >> 32), at: offset, in: target)
        storeBigEndian(port, at: offset + 4, in: target)
        return 8
    }

    static func load(from bytes: UnsafeRawPointer, at offset: Int, ipv6: Bool) -> HostAddress {
        if ipv6 {
            return HostAddress(
                ipv6High: loadBigEndian(UInt64.self, at: offset, in: bytes),
                low: loadBigEndian(UInt64.self, at: offset + 8, in: bytes),
                port: loadBigEndian(Int32.self, at: offset + 16, in: bytes))
        }
        let address = UInt64(loadBigEndian(UInt32.self, at: offset, in: bytes)) << 32
        var host = HostAddress(ipv4: 0, 0, 0, 0, port: loadBigEndian(Int32.self, at: offset + 4, in: bytes))
        host.high = address
        return host
    }
}

@inlinable @inline(__always)
public func storeBigEndian<T: FixedWidthInteger>(_ value: T, at offset: Int, in target: UnsafeMutableRawPointer) {
    target.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
}

@inlinable @inline(__always)
public func loadBigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int, in source: UnsafeRawPointer) -> T {
    T(bigEndian: source.loadUnaligned(fromByteOffset: offset, as: T.self))
}

/// One message to append, borrowing its bytes from the caller (a NIO frame, a test buffer): nothing is
/// copied until the record is encoded into the log. Valid only inside the caller's `withUnsafe...` scope.
public struct MessageView {
    public var topic: UnsafeRawBufferPointer
    public var body: UnsafeRawBufferPointer
    /// RocketMQ's properties string (`key 0x01 value 0x02` ...), as bytes.
    public var properties: UnsafeRawBufferPointer
    public var queueID: Int32
    public var flag: Int32
    /// The queue offset the layer above assigned (it serialises per queue around the append).
    public var queueOffset: Int64
    public var sysFlag: Int32
    public var bornTimestamp: Int64
    public var bornHost: HostAddress
    public var reconsumeTimes: Int32
    public var preparedTransactionOffset: Int64

    public init(
        topic: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer,
        properties: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        queueID: Int32 = 0, flag: Int32 = 0, queueOffset: Int64 = 0, sysFlag: Int32 = 0,
        bornTimestamp: Int64 = 0, bornHost: HostAddress = .loopback, reconsumeTimes: Int32 = 0,
        preparedTransactionOffset: Int64 = 0
    ) {
        self.topic = topic
        self.body = body
        self.properties = properties
        self.queueID = queueID
        self.flag = flag
        self.queueOffset = queueOffset
        self.sysFlag = sysFlag
        self.bornTimestamp = bornTimestamp
        self.bornHost = bornHost
        self.reconsumeTimes = reconsumeTimes
        self.preparedTransactionOffset = preparedTransactionOffset
    }
}

/// RocketMQ's stored-message record (MESSAGE_VERSION V1/V2). The same bytes are what a PULL ships.
///
/// ```
/// +0  TOTALSIZE i32 | +4 MAGICCODE i32 | +8 BODYCRC i32 | +12 QUEUEID i32 | +16 FLAG i32
/// +20 QUEUEOFFSET i64 | +28 PHYSICALOFFSET i64 | +36 SYSFLAG i32 | +40 BORNTIMESTAMP i64
/// +48 BORNHOST 8|20 | STORETIMESTAMP i64 | STOREHOST 8|20 | RECONSUMETIMES i32 | PREPARED_TX_OFFSET i64
/// BODYLENGTH i32 | BODY | TOPICLENGTH i8 (V1) or i16 (V2) | TOPIC | PROPERTIESLENGTH i16 | PROPERTIES
/// ```
public enum MessageRecord {
    public static let magicV1: UInt32 = 0xDAA3_20A7
    public static let magicV2: UInt32 = 0xDAA3_20AB
    public static let blankMagic: UInt32 = 0xCBD4_3194
    /// A file always keeps room for the 8-byte blank record that ends it.
    public static let endOfFileMinBlankBytes = 8
    /// Fixed bytes of a record with IPv4 hosts and a V1 (1-byte) topic length.
    public static let fixedOverheadIPv4 = 91
    /// Topics longer than this get a V2 record (2-byte topic length).
    public static let topicLengthV1Max = 127
    public static let topicLengthMax = 255
    public static let propertiesLengthMax = Int(Int16.max)
    /// The largest queue id a record may carry (RocketMQ's queue ids are small; recovery treats a larger
    /// one as a damaged field).
    public static let queueIDMax: Int32 = 65_535

    public static let bornHostV6Flag: Int32 = 0x10
    public static let storeHostV6Flag: Int32 = 0x20
    public static let transactionTypeMask: Int32 = 0x0C

    // Offsets of fixed fields (independent of host sizes).
    public static let totalSizeOffset = 0
    public static let magicOffset = 4
    public static let bodyCRCOffset = 8
    public static let queueIDOffset = 12
    public static let flagOffset = 16
    public static let queueOffsetOffset = 20
    public static let physicalOffsetOffset = 28
    public static let sysFlagOffset = 36
    public static let bornTimestampOffset = 40
    public static let bornHostOffset = 48

    /// Offset of STORETIMESTAMP, which depends on the born host's size.
    @inlinable public static func storeTimestampOffset(bornHostV6: Bool) -> Int { bornHostV6 ? 68 : 56 }

    /// The whole record's size for `message` stored by `storeHost`.
    @inlinable
    public static func size(of message: MessageView, storeHost: HostAddress) -> Int {
        let topicLengthBytes = message.topic.count > topicLengthV1Max ? 2 : 1
        return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + message.bornHost.encodedSize + 8 + storeHost.encodedSize
            + 4 + 8 + 4 + message.body.count + topicLengthBytes + message.topic.count + 2 + message.properties.count
    }

    /// Encodes `message` at `target` (which has room for `size` bytes). The caller computed the body CRC
    /// outside any lock; physical offset and store timestamp are known only under the append lock.
    @inlinable
    public static func encode(
        _ message: MessageView, size: Int, bodyCRC: UInt32, storeHost: HostAddress,
        physicalOffset: Int64, storeTimestamp: Int64, into target: UnsafeMutableRawPointer
    ) {
        let v2 = message.topic.count > topicLengthV1Max
        var sysFlag = message.sysFlag & ~(bornHostV6Flag | storeHostV6Flag)
        if message.bornHost.isIPv6 { sysFlag |= bornHostV6Flag }
        if storeHost.isIPv6 { sysFlag |= storeHostV6Flag }
        storeBigEndian(Int32(size), at: 0, in: target)
        storeBigEndian(v2 ? magicV2 : magicV1, at: 4, in: target)
        storeBigEndian(bodyCRC, at: 8, in: target)
        storeBigEndian(message.queueID, at: 12, in: target)
        storeBigEndian(message.flag, at: 16, in: target)
        storeBigEndian(message.queueOffset, at: 20, in: target)
        storeBigEndian(physicalOffset, at: 28, in: target)
        storeBigEndian(sysFlag, at: 36, in: target)
        storeBigEndian(message.bornTimestamp, at: 40, in: target)
        var at = 48 + message.bornHost.store(at: 48, in: target)
        storeBigEndian(storeTimestamp, at: at, in: target)
        at += 8
        at += storeHost.store(at: at, in: target)
        storeBigEndian(message.reconsumeTimes, at: at, in: target)
        storeBigEndian(message.preparedTransactionOffset, at: at + 4, in: target)
        storeBigEndian(Int32(message.body.count), at: at + 12, in: target)
        at += 16
        copy(message.body, to: target + at)
        at += message.body.count
        if v2 {
            storeBigEndian(Int16(message.topic.count), at: at, in: target)
            at += 2
        } else {
            storeBigEndian(Int8(message.topic.count), at: at, in: target)
            at += 1
        }
        copy(message.topic, to: target + at)
        at += message.topic.count
        storeBigEndian(Int16(message.properties.count), at: at, in: target)
        at += 2
        copy(message.properties, to: target + at)
        assert(at + message.properties.count == size, "encoded size differs from computed size")
    }

    @inlinable @inline(__always)
    static func copy(_ source: UnsafeRawBufferPointer, to target: UnsafeMutableRawPointer) {
        if let base = source.baseAddress, source.count > 0 { target.copyMemory(from: base, byteCount: source.count) }
    }

    /// Writes the 8-byte blank record that fills a file's end: TOTALSIZE = bytes left, then the blank magic.
    @inlinable
    public static func encodeBlank(remainingBytes: Int, into target: UnsafeMutableRawPointer) {
        storeBigEndian(Int32(remainingBytes), at: 0, in: target)
        storeBigEndian(blankMagic, at: 4, in: target)
    }
}
