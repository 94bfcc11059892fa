import Benchmark
import NIOCore
import Remoting

/// Decoding SEND_MESSAGE_V2 frames and reading every field the broker needs: 0 mallocs per frame (the
/// frame's bytes are read in place; JSON escapes are undone on the stack).
func remotingBenchmarks(_ thresholds: [BenchmarkMetric: BenchmarkThresholds]) {
    // What the C++ client 1.2.3 sends (JSON, numbers as literals, properties with \u0001/\u0002).
    let json = #"{"code":310,"extFields":{"a":"ProducerGroup","b":"BenchmarkTest","c":"TBW102","d":4,"e":3,"f":0,"g":"1700000000000","h":0,"i":"KEYS\u0001k1\u0002UNIQ_KEY\u00017F0000010000ABCDEF\u0002WAIT\u0001true\u0002TAGS\u0001TagA\u0002","j":0,"k":false,"m":false},"flag":0,"language":"CPP","opaque":5,"remark":"","version":63}"#
    var writer = HeaderFields.Writer()
    writer.append("a", "ProducerGroup")
    writer.append("b", "BenchmarkTest")
    writer.append("e", 3)
    writer.append("g", Int64(1_700_000_000_000))
    writer.append("i", "KEYS\u{1}k1\u{2}UNIQ_KEY\u{1}7F0000010000ABCDEF\u{2}WAIT\u{1}true\u{2}TAGS\u{1}TagA\u{2}")
    var binaryFrame = ByteBuffer()
    RemotingFrameEncoder.write(RemotingCommand(code: RequestCode.sendMessageV2, fields: writer.fields, body: ByteBuffer(repeating: 97, count: 1024)),
                               into: &binaryFrame)
    var jsonFrame = ByteBuffer()
    jsonFrame.writeInteger(Int32(4 + json.utf8.count + 1024))
    jsonFrame.writeInteger(UInt32(json.utf8.count))
    jsonFrame.writeString(json)
    jsonFrame.writeRepeatingByte(97, count: 1024)

    for (name, frame) in [("json", jsonFrame), ("binary", binaryFrame)] {
        Benchmark("Remoting.decodeSend.\(name)", configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput], scalingFactor: .kilo, thresholds: thresholds)
        ) { benchmark in
            let decoder = RemotingFrameDecoder()
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var input = frame
                guard let command = try decoder.decodeFrame(&input), let fields = command.fields else { fatalError("frame did not decode") }
                var sum: Int64 = 0
                fields.forEach { key, value in
                    switch key.first {
                    case UInt8(ascii: "e"), UInt8(ascii: "g"): sum &+= value.int64 ?? 0
                    default: value.withBytes { sum &+= Int64($0.count) }
                    }
                    return true
                }
                blackHole(sum &+ Int64(command.body?.readableBytes ?? 0))
            }
            benchmark.stopMeasurement()
        }
    }
}

/// `Producer.sendRequest` (SEND_MESSAGE_V2 as a command) encoded as a frame. Reported, not gated at 0: the header
/// buffer and the body buffer are allocated per call. `Producer.send` no longer goes this way: it writes SEND
/// straight into the connection's outbound buffer (`SendRequest`, internal; 0.001 mallocs per send in the whole
/// bench process, see the README's figures).
func clientBenchmarks() {
    Benchmark("Client.sendRequest.1024B", configuration: .init(
        metrics: [.mallocCountTotal, .wallClock, .throughput], scalingFactor: .kilo)
    ) { benchmark in
        var message = Message(topic: "BenchmarkTest", body: [UInt8](repeating: 97, count: 1024), tags: "TagA")
        message.properties.append(("UNIQ_KEY", "7F0000010001ABCDEF0123456789ABCD"))
        message.properties.append(("WAIT", "true"))
        var out = ByteBufferAllocator().buffer(capacity: 4096)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            out.clear()
            RemotingFrameEncoder.write(Producer.sendRequest(message, group: "BenchmarkProducerGroup", queueID: 3), into: &out)
            blackHole(out.readableBytes)
        }
        benchmark.stopMeasurement()
    }
}
