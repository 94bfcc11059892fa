import CommitLog
import Testing

/// The body CRC's fast path (64-byte lanes, from 256 bytes on) gives zlib's CRC-32 at every length and alignment.
@Suite struct CRC32Tests {
    /// zlib's CRC-32, one byte at a time from a table: the reference the kernel must match.
    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1 }
        return value
    }

    static func reference(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc & 0x7FFF_FFFF
    }

    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) } }

    @Test func knownValuesOfLongInputs() {
        // zlib.crc32 of bytes (i * 131 + 7) & 0xFF, i = 0 ..< n (Python), sign bit cleared as RocketMQ does.
        let known: [(Int, UInt32)] = [(256, 0x0D75_AD75), (1024, 0x0824_E952), (1100, 0xCEDF_C30E), (4099, 0xDFAD_E85A)]
        for (count, crc) in known {
            #expect(Self.pattern(count).withUnsafeBytes { rocketCRC32($0) } == crc & 0x7FFF_FFFF, "length \(count)")
        }
    }

    @Test func matchesTheBytewiseReferenceAtEveryLengthAndAlignment() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<70_100).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { all in
            var lengths = Array(0...1100)
            lengths += (0..<40).map { _ in Int.random(in: 1100...70_000, using: &generator) }
            for length in lengths {
                let offset = length % 64
                let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                let expected = Self.reference(slice)
                let computed = rocketCRC32(slice)
                if computed != expected {
                    Issue.record("length \(length) at offset \(offset): \(computed) != \(expected)")
                    return
                }
            }
        }
    }
}
