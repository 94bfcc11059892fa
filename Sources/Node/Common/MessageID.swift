import Remoting
/// A socket address as RocketMQ stores it in a record and in an offset message id: IPv4 (4 bytes) or IPv6
/// (16 bytes), and a port.
public struct NetAddress: Hashable, Sendable, CustomStringConvertible {
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

    /// `a.b.c.d` and a port (0.0.0.0 when the text is not a dotted IPv4 address).
    public init(ipv4 text: String, port: Int) {
        let parts = text.split(separator: ".").compactMap { UInt8($0) }
        let bytes = parts.count == 4 ? parts : [0, 0, 0, 0]
        self.init(ipv4: bytes[0], bytes[1], bytes[2], bytes[3], port: Int32(truncatingIfNeeded: port))
    }

    /// `a.b.c.d:port` (IPv4) or `[h:h:h:h:h:h:h:h]:port` (IPv6), as clients dial it.
    public var description: String {
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

    /// Reads a host as stored: 4 + 4 bytes (IPv4) or 16 + 4 (IPv6), big-endian. The caller checked the length.
    static func load(_ bytes: UnsafeRawBufferPointer, at offset: Int, ipv6: Bool) -> NetAddress {
        if ipv6 {
            return NetAddress(ipv6High: bytes.bigEndian(UInt64.self, at: offset), low: bytes.bigEndian(UInt64.self, at: offset + 8),
                              port: bytes.bigEndian(Int32.self, at: offset + 16))
        }
        var host = NetAddress(ipv4: 0, 0, 0, 0, port: bytes.bigEndian(Int32.self, at: offset + 4))
        host.high = UInt64(bytes.bigEndian(UInt32.self, at: offset)) << 32
        return host
    }
}

/// RocketMQ's offset message id: store host, port and commit-log offset, in upper-case hex (32 digits for
/// IPv4, 56 for IPv6). It is how `VIEW_MESSAGE_BY_ID` finds a message.
public struct MessageID: Hashable, Sendable {
    public var storeHost: NetAddress
    public var commitLogOffset: Int64

    public init(storeHost: NetAddress, commitLogOffset: Int64) {
        self.storeHost = storeHost
        self.commitLogOffset = commitLogOffset
    }

    /// Parses an offset message id; nil for any other text (a client's unique key, say).
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 32 || digits.count == 56 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        let ipv6 = digits.count == 56
        let host = bytes.withUnsafeBytes { NetAddress.load($0, at: 0, ipv6: ipv6) }
        let offset = bytes.withUnsafeBytes { $0.bigEndian(Int64.self, at: ipv6 ? 20 : 8) }
        self.init(storeHost: host, commitLogOffset: offset)
    }

    /// Upper-case hex, built only when asked for (one allocation: the string itself).
    public var hexString: String {
        String(unsafeUninitializedCapacity: hexCount) { out in storeHex(into: UnsafeMutableRawBufferPointer(out)) }
    }

    /// The hex digits' count: 32 (IPv4) or 56 (IPv6).
    public var hexCount: Int { storeHost.isIPv6 ? 56 : 32 }

    /// Writes the upper-case hex at the start of `out` (at least `hexCount` bytes); the bytes written.
    public func storeHex(into out: UnsafeMutableRawBufferPointer) -> Int {
        precondition(out.count >= hexCount, "message id reservation too small")
        var at = 0
        func put<T: FixedWidthInteger>(_ value: T) {
            var shift = T.bitWidth - 4
            while shift >= 0 {
                let nibble = UInt8(truncatingIfNeeded: value >> shift) & 0xF
                out[at] = nibble < 10 ? 48 + nibble : 55 + nibble
                at += 1
                shift -= 4
            }
        }
        if storeHost.isIPv6 {
            put(storeHost.high)
            put(storeHost.low)
        } else {
            put(UInt32(truncatingIfNeeded: storeHost.high >> 32))
        }
        put(UInt32(bitPattern: storeHost.port))
        put(commitLogOffset)
        return at
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

extension HeaderFields.Writer {
    /// A message id's hex written straight into the fields (no string in between).
    public mutating func append(_ key: StaticString, _ id: MessageID) {
        withUnsafeTemporaryAllocation(byteCount: 56, alignment: 1) { scratch in
            let count = id.storeHex(into: scratch)
            append(key, UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
        }
    }
}

extension UnsafeRawBufferPointer {
    /// A big-endian integer at `offset`; the caller checked that it lies inside.
    @inline(__always)
    func bigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
