// What the broker and the clients decode inside message bodies: the properties codec, SEND_BATCH bodies and
// stored records as a client decodes them (zlib bodies included). Invariants: no read outside the input;
// properties written again parse to the same pairs; every batch record's ranges lie inside the body and tile it;
// decoded stored messages account for exactly the bytes they took.
import Common
import FuzzSupport
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

func seeds() -> [[UInt8]] {
    var message = Message(topic: "T", body: Array("hello".utf8), tags: "A", keys: ["k1"])
    message.properties["UNIQ_KEY"] = "0A0B"
    let batch = MessageBatch.encode([message, Message(topic: "T", body: [])])
    return [
        [0] + Array(message.properties.bytes),
        [1] + Array(batch.readableBytesView),
        [2] + encodedRecord(topic: "T", body: Array("hi".utf8), properties: "TAGS\u{1}A\u{2}", physicalOffset: 0),
        [2] + encodedRecord(topic: "V6", body: [1, 2, 3], properties: "", physicalOffset: 0, ipv6: true),
    ]
}

fuzzMain(seeds: seeds) { input in
    guard let selector = input.first else { return }
    let bytes = UnsafeRawBufferPointer(rebasing: input[1...])
    switch selector % 3 {
    case 0:
        let properties = MessageProperties(bytes: bytes)
        guard MessageProperties(properties.bytes) == properties else { fuzzFailure("properties changed through writing") }
        _ = MessageProperties.value(of: "TAGS", in: bytes)
        _ = properties.userProperties
    case 1:
        var end = 0
        try? MessageBatch.forEachRecord(in: bytes) { record in
            guard record.body.lowerBound >= end, record.properties.upperBound <= bytes.count, record.body.upperBound <= record.properties.lowerBound else {
                fuzzFailure("batch record ranges \(record.body) \(record.properties) outside the body or overlapping")
            }
            end = record.properties.upperBound
        }
    default:
        guard let messages = try? MessageDecoder.decodeAll(ByteBuffer(bytes: bytes)) else { return }
        guard messages.reduce(0, { $0 + $1.storeSize }) == bytes.count else { fuzzFailure("decoded messages do not account for the body") }
    }
}
