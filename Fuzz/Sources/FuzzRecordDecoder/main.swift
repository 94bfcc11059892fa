// The stored-record decoder over arbitrary bytes: it must never read outside them (ASan watches), and
// what it accepts must be a record: its ranges lie inside TOTALSIZE, and encoding the decoded fields again
// gives back the same bytes.
import CommitLog
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

func seeds() -> [[UInt8]] {
    [
        encodedRecord(topic: "TopicTest", body: Array("hello".utf8), properties: "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}",
                      physicalOffset: 0),
        encodedRecord(topic: "T", body: [], properties: "", queueID: 3, physicalOffset: 0),
        encodedRecord(topic: String(repeating: "t", count: 130), body: [1, 2, 3], properties: "UNIQ_KEY\u{1}AB\u{2}",
                      physicalOffset: 0),
        encodedRecord(topic: "V6", body: Array(repeating: 0x5A, count: 40), properties: "a\u{1}b", physicalOffset: 0, ipv6: true),
        encodedBlank(remaining: 8),
        [UInt8](repeating: 0, count: 16),
    ]
}

fuzzMain(seeds: seeds) { bytes in
    // Exactly the input's bytes: ASan flags a read one past them.
    for expected in [nil, Int64(0)] as [Int64?] {
        guard case .message(let header) = RecordDecoder.check(bytes, expectedPhysicalOffset: expected) else { continue }
        guard header.totalSize <= bytes.count, header.totalSize >= MessageRecord.fixedOverheadIPv4 else {
            fuzzFailure("accepted TOTALSIZE \(header.totalSize) of \(bytes.count) bytes")
        }
        for range in [header.body, header.topic, header.properties] where range.upperBound > header.totalSize {
            fuzzFailure("range \(range) outside a \(header.totalSize)-byte record")
        }
        checkRoundTrip(header, UnsafeRawBufferPointer(rebasing: bytes[0..<header.totalSize]))
    }
}

/// Encodes the decoded fields again; a record the decoder accepts must come back byte for byte (when its
/// magic is the one the encoder picks for its topic length).
func checkRoundTrip(_ header: StoredRecordHeader, _ record: UnsafeRawBufferPointer) {
    let v2 = header.topic.count > MessageRecord.topicLengthV1Max
    guard v2 == (header.magic == MessageRecord.magicV2) else { return }
    let view = MessageView(
        topic: UnsafeRawBufferPointer(rebasing: record[header.topic]), body: UnsafeRawBufferPointer(rebasing: record[header.body]),
        properties: UnsafeRawBufferPointer(rebasing: record[header.properties]), queueID: header.queueID, flag: header.flag,
        queueOffset: header.queueOffset, sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost,
        reconsumeTimes: header.reconsumeTimes, preparedTransactionOffset: header.preparedTransactionOffset)
    guard MessageRecord.size(of: view, storeHost: header.storeHost) == header.totalSize else {
        fuzzFailure("decoded fields give \(MessageRecord.size(of: view, storeHost: header.storeHost)) bytes, TOTALSIZE says \(header.totalSize)")
    }
    guard MessageRecord.flaw(in: view) == nil else { fuzzFailure("accepted a record the append path refuses: \(MessageRecord.flaw(in: view)!)") }
    var again = [UInt8](repeating: 0, count: header.totalSize)
    again.withUnsafeMutableBytes { target in
        MessageRecord.encode(view, size: header.totalSize, bodyCRC: header.bodyCRC, storeHost: header.storeHost,
                             physicalOffset: header.physicalOffset, storeTimestamp: header.storeTimestamp,
                             into: target.baseAddress!)
    }
    guard again.elementsEqual(record) else { fuzzFailure("re-encoding the decoded record gives other bytes") }
}
