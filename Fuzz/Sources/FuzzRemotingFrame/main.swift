// Remoting frames over arbitrary bytes: the frame decoder, both header encodings (JSON scanned in place,
// binary walked) and every way a processor reads header fields. Invariants: nothing reads outside the input
// (ASan), a frame decodes to a header inside its frame, and a decoded command written again decodes to the same
// code, opaque, flag, remark and fields.
import FuzzSupport
import NIOCore
import Remoting

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

func frame(_ command: RemotingCommand) -> [UInt8] {
    var buffer = ByteBuffer()
    RemotingFrameEncoder.write(command, into: &buffer)
    return Array(buffer.readableBytesView)
}

func seeds() -> [[UInt8]] {
    var writer = HeaderFields.Writer()
    writer.append("a", "ProducerGroup")
    writer.append("b", "TopicTest")
    writer.append("e", 3)
    writer.append("i", "KEYS\u{1}k1\u{2}TAGS\u{1}A\u{2}")
    let json = RemotingCommand(code: RequestCode.pullMessage, opaque: 7, extFields: ["topic": "T", "queueId": "0", "q\"x": "é\\n"])
    var response = RemotingCommand.response(to: json, code: ResponseCode.pullNotFound, remark: "no \"new\" message")
    response.body = ByteBuffer(string: "{}")
    return [
        frame(RemotingCommand(code: RequestCode.sendMessageV2, fields: writer.fields, body: ByteBuffer(string: "hello"))),
        frame(RemotingCommand(code: RequestCode.sendMessageV2, fields: writer.fields, serializeType: .json)),
        frame(json), frame(response),
        [0, 0, 0, 8, 0, 0, 0, 4] + Array("{}{}".utf8),
    ]
}

/// Reads the fields every way the roles do.
func readFields(_ command: RemotingCommand) -> [String: String] {
    var count = 0
    command.fields?.forEach { key, value in
        count += key.count
        _ = value.int64
        _ = value.bool
        value.withBytes { count += $0.count }
        return true
    }
    _ = command.fields?["topic"]?.string
    let header = RequestHeader(command)
    _ = try? header.int32("queueId")
    _ = try? header.optionalInt64("offset")
    return command.extFields
}

fuzzMain(seeds: seeds) { bytes in
    var buffer = ByteBuffer(bytes: bytes)
    let decoder = RemotingFrameDecoder(maxFrameBytes: 1 << 20)
    for _ in 0..<64 {
        let command: RemotingCommand
        do {
            guard let decoded = try decoder.decodeFrame(&buffer) else { return }
            command = decoded
        } catch { return }
        let fields = readFields(command)
        for type in [SerializeType.json, .rocketmq] {
            var again = command
            again.serializeType = type
            var bytes = ByteBuffer(bytes: frame(again))
            guard let twice = try? decoder.decodeFrame(&bytes) else { fuzzFailure("a decoded command written as \(type) does not decode") }
            guard twice.code == command.code, twice.opaque == command.opaque, twice.flag == command.flag else {
                fuzzFailure("code, opaque or flag changed through \(type)")
            }
            // The binary form drops empty keys and values unless it copies a binary block as it came; the JSON form
            // keeps every field.
            let copied = type == .json || command.fields?.format == .binary
            let kept = copied ? fields : fields.filter { !$0.key.isEmpty && !$0.value.isEmpty }
            guard readFields(twice) == kept else { fuzzFailure("fields changed through \(type): \(fields) -> \(twice.extFields)") }
        }
    }
}
