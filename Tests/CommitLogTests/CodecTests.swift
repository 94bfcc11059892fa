import CommitLog
import Testing
import TestSupport

/// The stored-message record: RocketMQ's layout, byte for byte, and a decoder that names what is wrong.
@Suite struct CodecTests {
    func encode(_ message: TestMessage, storeHost: HostAddress = .loopback, physicalOffset: Int64 = 4096) -> [UInt8] {
        message.withView { view in
            let size = MessageRecord.size(of: view, storeHost: storeHost)
            var bytes = [UInt8](repeating: 0, count: size)
            bytes.withUnsafeMutableBytes { target in
                MessageRecord.encode(view, size: size, bodyCRC: rocketCRC32(view.body), storeHost: storeHost,
                                     physicalOffset: physicalOffset, storeTimestamp: 1_700_000_000_123,
                                     into: target.baseAddress!)
            }
            return bytes
        }
    }

    @Test func fixedOverheadIs91BytesWithIPv4Hosts() {
        let bytes = encode(TestMessage(topic: "T", body: [], properties: ""))
        #expect(bytes.count == MessageRecord.fixedOverheadIPv4 + 1)
        #expect(MessageRecord.fixedOverheadIPv4 == 91)
    }

    @Test func crcMatchesZlibMaskedToPositive() {
        let check = Array("123456789".utf8)
        // zlib's CRC32 of "123456789" is 0xCBF43926; RocketMQ clears the sign bit.
        #expect(check.withUnsafeBytes { rocketCRC32($0) } == 0xCBF4_3926 & 0x7FFF_FFFF)
    }

    @Test(arguments: [0, 1, 127, 128, 200], [false, true])
    func roundTripKeepsEveryField(topicLength: Int, ipv6: Bool) throws {
        let topic = String(repeating: "t", count: max(1, topicLength))
        var message = TestMessage(topic: topic, body: Array(0..<200).map { UInt8($0) },
                                  properties: "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}", queueID: 3, queueOffset: 99)
        let storeHost = ipv6 ? HostAddress(ipv6High: 0x2001_0DB8_0000_0000, low: 1, port: 10911) : HostAddress(ipv4: 10, 1, 2, 3, port: 10911)
        if ipv6 { message.bornHost = HostAddress(ipv6High: 0xFE80_0000_0000_0000, low: 2, port: 5555) }
        let bytes = encode(message, storeHost: storeHost)
        let check = bytes.withUnsafeBytes { RecordDecoder.check($0, expectedPhysicalOffset: 4096) }
        guard case .message(let header) = check else {
            Issue.record("decoded as \(check)")
            return
        }
        #expect(header.totalSize == bytes.count)
        #expect(header.magic == (topic.utf8.count > 127 ? MessageRecord.magicV2 : MessageRecord.magicV1))
        #expect(header.queueID == 3)
        #expect(header.flag == 7)
        #expect(header.queueOffset == 99)
        #expect(header.physicalOffset == 4096)
        #expect(header.storeTimestamp == 1_700_000_000_123)
        #expect(header.bornTimestamp == 1_700_000_000_000)
        #expect(header.reconsumeTimes == 2)
        #expect(header.storeHost == storeHost)
        #expect(header.bornHost == message.bornHost)
        #expect((header.sysFlag & MessageRecord.storeHostV6Flag != 0) == ipv6)
        #expect(Array(bytes[header.body]) == message.body)
        #expect(Array(bytes[header.topic]) == message.topic)
        #expect(Array(bytes[header.properties]) == message.properties)
    }

    @Test func ipv4FieldOffsetsMatchRocketMQ() {
        let bytes = encode(TestMessage(topic: "TopicTest", body: [1, 2, 3], queueID: 5, queueOffset: 0x0102_0304))
        func int32(_ at: Int) -> UInt32 { bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        func int64(_ at: Int) -> UInt64 { bytes[at..<at + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        #expect(int32(0) == UInt32(bytes.count))
        #expect(int32(4) == 0xDAA3_20A7)
        #expect(int32(12) == 5)
        #expect(int64(20) == 0x0102_0304)
        #expect(int64(28) == 4096)
        #expect(int64(56) == 1_700_000_000_123)  // STORETIMESTAMP after an IPv4 born host
        #expect(Array(bytes[48..<52]) == [127, 0, 0, 1])
        #expect(int32(84) == 3)  // BODY LENGTH
        #expect(bytes[91] == 9)  // TOPIC LENGTH (V1: one byte)
    }

    @Test func blankRecordIsSizeThenMagic() {
        var bytes = [UInt8](repeating: 0, count: 40)
        bytes.withUnsafeMutableBytes { MessageRecord.encodeBlank(remainingBytes: 40, into: $0.baseAddress!) }
        #expect(Array(bytes[0..<8]) == [0, 0, 0, 40, 0xCB, 0xD4, 0x31, 0x94])
        #expect(bytes.withUnsafeBytes { RecordDecoder.check($0) } == .blank(size: 40))
    }

    @Test func zerosAreTheEndOfData() {
        let zeros = [UInt8](repeating: 0, count: 64)
        #expect(zeros.withUnsafeBytes { RecordDecoder.check($0) } == .endOfData)
    }

    /// Each damaged field is reported by name.
    @Test(arguments: [
        (4, "MAGICCODE"), (0, "TOTALSIZE"), (100, "BODYCRC"), (28, "PHYSICALOFFSET"), (86, "BODYLENGTH"),
        (12, "QUEUEID"), (52, "BORNHOST"), (68, "STOREHOST"),
    ])
    func decoderNamesTheDamagedField(byte: Int, field: String) {
        var bytes = encode(TestMessage(topic: "TopicTest", body: Array(repeating: 65, count: 64)))
        bytes[byte] ^= 0x40
        let check = bytes.withUnsafeBytes { RecordDecoder.check($0, expectedPhysicalOffset: 4096) }
        guard case .corrupt(let named, _) = check else {
            Issue.record("expected corruption in \(field), got \(check)")
            return
        }
        #expect(named == field)
    }

    /// The body CRC covers neither topic nor properties: a zero byte there (a tail never written) is
    /// corruption all the same, as is a properties length that disagrees with the record's size.
    @Test(arguments: [(153 + 2, "TOPIC"), (153 + 9 + 2 + 3, "PROPERTIES"), (153 + 9 + 2 + 10, "PROPERTIES"),
                      (153 + 9 + 2, "PROPERTIES"), (153 + 9 + 1, "TOTALSIZE")])
    func zeroedTopicOrPropertiesAreCorrupt(byte: Int, field: String) {
        var bytes = encode(TestMessage(topic: "TopicTest", body: Array(repeating: 65, count: 64), properties: "TAGS\u{1}TagA\u{2}"))
        #expect(bytes.count == 153 + 9 + 2 + 10)
        bytes[min(byte, bytes.count - 1)] = 0
        let check = bytes.withUnsafeBytes { RecordDecoder.check($0, expectedPhysicalOffset: 4096) }
        guard case .corrupt(let named, _) = check else {
            Issue.record("expected corruption in \(field), got \(check)")
            return
        }
        #expect(named == field)
    }

    /// IPv6 hosts make the fixed fields 24 bytes longer: a record too short for them is corrupt before any
    /// of them is read (the decoder used to read BODYLENGTH past a 92-byte record's end).
    @Test func recordTooShortForItsIPv6HostsIsCorruptBeforeItsFieldsAreRead() {
        var bytes = encode(TestMessage(topic: "T", body: [], properties: ""))
        #expect(bytes.count == 92)
        bytes[39] |= UInt8(MessageRecord.bornHostV6Flag | MessageRecord.storeHostV6Flag)
        let check = bytes.withUnsafeBytes { RecordDecoder.check($0, expectedPhysicalOffset: 4096) }
        guard case .corrupt(let field, _) = check else {
            Issue.record("expected corruption, got \(check)")
            return
        }
        #expect(field == "TOTALSIZE")
    }

    @Test func truncatedRecordIsCorruptNotRead() {
        let bytes = encode(TestMessage(topic: "TopicTest", body: Array(repeating: 65, count: 64)))
        let check = bytes.withUnsafeBytes { RecordDecoder.check(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 1)])) }
        guard case .corrupt(let field, _) = check else {
            Issue.record("expected corruption, got \(check)")
            return
        }
        #expect(field == "TOTALSIZE")
    }
}
