import NIOCore
import NIOEmbedded
import NIOTestUtils
import Broker
import Client
import Common
import NameServer
import Remoting
import Replication
import Testing

/// The remoting frame codec: RocketMQ's byte layout, both header serialisations, and bad input that
/// closes only the offending connection.
@Suite struct RemotingCodecTests {
    func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.filter { !$0.isWhitespace })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    @Test func binaryHeaderMatchesTheReferenceBytes() {
        // Response code 0, JAVA, version 407, opaque 9, flag 1, no remark, extFields {"offset":"5"}.
        var command = RemotingCommand(code: ResponseCode.success, opaque: 9, flag: 1, extFields: ["offset": "5"], serializeType: .rocketmq)
        command.version = 407
        var out = ByteBuffer()
        RemotingFrameEncoder.write(command, into: &out)
        #expect(Array(out.readableBytesView) == bytes("""
            00000026 01000022 0000 00 0197 00000009 00000001 00000000 0000000d 0006 6f6666736574 00000001 35
            """))
    }

    /// A command whose fields are a binary block (SEND's answers) takes the encoder's one-reservation path: the same
    /// bytes as the dictionary's, and a body after them.
    @Test func binaryFieldsBlockEncodesAsTheReferenceBytes() throws {
        var writer = HeaderFields.Writer(capacity: 4)
        writer.append("offset", "5")
        var command = RemotingCommand(code: ResponseCode.success, fields: writer.fields)
        command.opaque = 9
        command.flag = 1
        var out = ByteBuffer()
        out.writeString("xy")  // the frame starts mid-buffer
        RemotingFrameEncoder.write(command, into: &out)
        #expect(Array(out.readableBytesView.dropFirst(2)) == bytes("""
            00000026 01000022 0000 00 0197 00000009 00000001 00000000 0000000d 0006 6f6666736574 00000001 35
            """))
        command.body = ByteBuffer(string: "payload")
        command.fields = nil
        out.clear()
        RemotingFrameEncoder.write(command, into: &out)
        let decoded = try #require(try RemotingFrameDecoder().decodeFrame(&out))
        #expect(decoded.opaque == 9 && decoded.isResponse && decoded.fields == nil && decoded.remark == nil)
        #expect(decoded.body.map { String(buffer: $0) } == "payload")
        #expect(out.readableBytes == 0)
    }

    @Test func jsonHeaderIsJavaShaped() throws {
        let command = RemotingCommand(code: ResponseCode.success, opaque: 3, flag: 1)
        var out = ByteBuffer()
        RemotingFrameEncoder.write(command, into: &out)
        out.moveReaderIndex(forwardBy: 8)
        #expect(String(buffer: out) == #"{"code":0,"flag":1,"language":"JAVA","opaque":3,"serializeTypeCurrentRPC":"JSON","version":407}"#)
    }

    @Test(arguments: [SerializeType.json, .rocketmq])
    func roundTripKeepsEveryField(type: SerializeType) throws {
        var body = ByteBuffer()
        body.writeString("hello\u{1}world")
        let command = RemotingCommand(code: RequestCode.sendMessageV2, opaque: 77, flag: 2, remark: "ré\"mark",
                                      extFields: ["a": "TopicTest", "b": "{\"x\":1}", "k": "\u{1}\u{2}"], body: body,
                                      serializeType: type)
        var out = ByteBuffer()
        RemotingFrameEncoder.write(command, into: &out)
        let decoded = try #require(try RemotingFrameDecoder().decodeFrame(&out))
        #expect(decoded.code == RequestCode.sendMessageV2)
        #expect(decoded.opaque == 77)
        #expect(decoded.isOneway)
        #expect(decoded.remark == "ré\"mark")
        #expect(decoded.extFields == command.extFields)
        #expect(decoded.body.map { String(buffer: $0) } == "hello\u{1}world")
        #expect(decoded.serializeType == type)
        #expect(out.readableBytes == 0)
    }

    /// What the C client 1.2.3 sends: numbers where Java writes strings, a trailing newline, extra keys.
    /// Found by FuzzRemotingFrame: a JSON header key with escapes (here `\u0041`) is read as the key it spells, as
    /// values already were, so a field written in one serialisation reads the same in the other.
    @Test func escapedJSONKeysReadAsTheirCharacters() throws {
        let json = #"{"code":11,"extFields":{"top\u0069c":"T","q\"x":"1"},"flag":0,"language":"JAVA","opaque":1,"version":1}"#
        var frame = ByteBuffer()
        frame.writeInteger(Int32(4 + json.utf8.count))
        frame.writeInteger(UInt32(json.utf8.count))
        frame.writeString(json)
        let command = try #require(try RemotingFrameDecoder().decodeFrame(&frame))
        #expect(command.extFields == ["topic": "T", "q\"x": "1"])
        #expect(command.fields?["topic"]?.string == "T")
    }

    /// A key given twice has its last value whichever way it is read (one lookup, the dictionary), as in Java's
    /// header map; the lookup used to stop at the first.
    @Test(arguments: [SerializeType.json, .rocketmq])
    func aRepeatedKeyReadsAsItsLastValue(type: SerializeType) throws {
        var writer = HeaderFields.Writer()
        writer.append("b", "First")
        writer.append("e", Int32(1))
        writer.append("b", "Last")
        let command = RemotingCommand(code: RequestCode.sendMessageV2, fields: writer.fields, serializeType: type)
        var out = ByteBuffer()
        RemotingFrameEncoder.write(command, into: &out)
        let decoded = try #require(try RemotingFrameDecoder().decodeFrame(&out))
        #expect(decoded.fields?["b"]?.string == "Last")
        #expect(decoded.extFields["b"] == "Last")
        #expect(decoded.fields?["e"]?.int32 == 1)
    }

    @Test func cClientHeaderValuesBecomeStrings() throws {
        let json = #"{"code":310,"extFields":{"AccessKey":"","OnsChannel":"ALIYUN","Signature":"x","a":"G","b":"T","e":3,"f":0,"g":"1700000000000","m":"0","unitMode":false},"flag":0,"language":"CPP","opaque":5,"remark":"","version":63}"# + "\n"
        var frame = ByteBuffer()
        frame.writeInteger(Int32(4 + json.utf8.count))
        frame.writeInteger(UInt32(json.utf8.count))
        frame.writeString(json)
        let decoded = try #require(try RemotingFrameDecoder().decodeFrame(&frame))
        #expect(decoded.extFields["e"] == "3")
        #expect(decoded.extFields["g"] == "1700000000000")
        #expect(decoded.extFields["unitMode"] == "false")
        #expect(decoded.language.name == "CPP")
        #expect(decoded.version == 63)
    }

    /// The Writer's binary layout, each field written with one reservation: `keyLength(2) key valueLength(4)
    /// value`, integers in decimal (0, negatives, both ends of Int64), an empty string left out.
    @Test func writerLaysOutFieldsAsRocketMQsBinaryHeader() {
        var writer = HeaderFields.Writer(capacity: 8)  // smaller than the fields: the buffer must grow
        writer.append("q", Int64.min)
        writer.append("ab", 0)
        writer.append("x", "")
        writer.append("v", "hi")
        writer.append("n", Int64.max)
        writer.append("s", Int32(-45))
        #expect(Array(writer.buffer.readableBytesView) == bytes("0001 71 00000014") + Array("-9223372036854775808".utf8)
                + bytes("0002 6162 00000001 30") + bytes("0001 76 00000002 6869")
                + bytes("0001 6e 00000013") + Array("9223372036854775807".utf8) + bytes("0001 73 00000003 2d3435"))
        let fields = writer.fields
        #expect(fields["q"]?.int64 == Int64.min && fields["n"]?.int64 == Int64.max && fields["s"]?.int32 == -45)
        #expect(fields["ab"]?.int64 == 0 && fields["v"]?.string == "hi" && fields["x"] == nil)
    }

    /// SEND's hot path reads fields from the frame's bytes: escapes undone, numbers from strings or literals,
    /// and a command whose fields were written with the Writer re-encodes into either header form.
    @Test(arguments: [SerializeType.json, .rocketmq])
    func rawFieldsReadWithoutADictionary(type: SerializeType) throws {
        var writer = HeaderFields.Writer()
        writer.append("b", "TopicTest")
        writer.append("e", Int32(-3))
        writer.append("g", Int64(1_700_000_000_123))
        writer.append("i", "KEYS\u{1}k1 k2\u{2}UNIQ_KEY\u{1}ABC\u{2}quote\u{1}\"\\é😀")
        writer.append("m", true)
        let command = RemotingCommand(code: RequestCode.sendMessageV2, fields: writer.fields, serializeType: type)
        var out = ByteBuffer()
        RemotingFrameEncoder.write(command, into: &out)
        let decoded = try #require(try RemotingFrameDecoder().decodeFrame(&out))
        let fields = try #require(decoded.fields)
        #expect(fields["b"]?.string == "TopicTest")
        #expect(fields["e"]?.int32 == -3)
        #expect(fields["g"]?.int64 == 1_700_000_000_123)
        #expect(fields["m"]?.bool == true)
        #expect(fields["i"]?.string == "KEYS\u{1}k1 k2\u{2}UNIQ_KEY\u{1}ABC\u{2}quote\u{1}\"\\é😀")
        #expect(fields["missing"] == nil)
        #expect(decoded.extFields.count == 5)
    }

    @Test func jsonFieldValuesMayBeLiteralsNestedOrSurrogatePairs() throws {
        let json = #"{"code":310,"extFields":{"e":3,"n":{"x":[1,{"y":"}"}]},"s":"\ud83d\ude00\u0001","t":true,"z":null,"w":"null","v":"none"},"opaque":1}"#
        var frame = ByteBuffer()
        frame.writeInteger(Int32(4 + json.utf8.count))
        frame.writeInteger(UInt32(json.utf8.count))
        frame.writeString(json)
        let decoded = try #require(try RemotingFrameDecoder().decodeFrame(&frame))
        let fields = try #require(decoded.fields)
        #expect(fields["e"]?.int64 == 3)
        #expect(fields["n"]?.string == #"{"x":[1,{"y":"}"}]}"#)
        #expect(fields["s"]?.string == "😀\u{1}")
        #expect(fields["t"]?.bool == true)
        #expect(fields["e"]?.bool == false)
        #expect(fields["z"] == nil, "a JSON null is a missing field")
        #expect(fields["w"]?.string == "null" && fields["v"]?.string == "none", "strings stay strings")
    }

    /// Untrusted nesting must not exhaust the event loop's stack: past 64 levels the header is refused.
    @Test func deeplyNestedHeaderIsRefusedNotACrash() throws {
        let json = #"{"code":10,"opaque":1,"x":"# + String(repeating: "[", count: 200_000)
        var frame = ByteBuffer()
        frame.writeInteger(Int32(4 + json.utf8.count))
        frame.writeInteger(UInt32(json.utf8.count))
        frame.writeString(json)
        #expect(throws: RemotingDecodingError.self) { _ = try RemotingFrameDecoder().decodeFrame(&frame) }
    }

    @Test func decoderSplitsFramesFedByteByByteAndInBatches() throws {
        let commands = (0..<5).map { index -> RemotingCommand in
            var body = ByteBuffer()
            body.writeRepeatingByte(UInt8(index), count: index * 10)
            return RemotingCommand(code: Int32(index), opaque: Int32(index), extFields: ["i": "\(index)"], body: index == 0 ? nil : body,
                                   serializeType: index % 2 == 0 ? .json : .rocketmq)
        }
        var stream = ByteBuffer()
        for command in commands { RemotingFrameEncoder.write(command, into: &stream) }
        for chunk in [1, 7, stream.readableBytes] {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(RemotingFrameDecoder()))
            var input = stream
            while input.readableBytes > 0 {
                let slice = input.readSlice(length: min(chunk, input.readableBytes))!
                try channel.writeInbound(slice)
            }
            for index in 0..<5 {
                let command = try #require(try channel.readInbound(as: RemotingCommand.self))
                #expect(command.opaque == Int32(index))
                #expect(command.extFields["i"] == "\(index)")
                #expect((command.body?.readableBytes ?? 0) == index * 10)
            }
            #expect(try channel.finish().isClean)
        }
    }

    @Test(arguments: [
        ("oversized length", "7fffffff 00000002 7b7d"),
        ("length below the header word", "00000002 0000"),
        ("header past the frame", "00000008 000000ff 7b7d7b7d"),
        ("not JSON", "00000008 00000004 6e6f6e65"),
        ("unknown serialize type", "00000006 05000002 7b7d"),
        ("JSON without code", "00000010 0000000c 7b226f706171756522 3a317d"),
        ("JSON cut inside extFields", "00000014 00000010 7b22636f6465223a312c22657874223a7b"),
        ("JSON with trailing garbage", "0000000e 0000000a 7b2261223a317d787878"),
        ("binary entry past its block", "0000001f 0100001b 0000 00 0001 00000001 00000000 00000000 00000006 0005 6b6579 0000"),
        ("binary ext length out of bounds", "0000001d 01000019 0000 00 0001 00000001 00000000 00000000 7fffffff 00000000"),
    ])
    func badFramesAreRejectedWithAReason(name: String, hex: String) throws {
        var buffer = ByteBuffer(bytes: bytes(hex))
        do {
            _ = try RemotingFrameDecoder().decodeFrame(&buffer)
            Issue.record("\(name) was accepted")
        } catch {
            #expect(!error.reason.isEmpty)
        }
    }

    @Test func truncatedFrameWaitsForMoreBytes() throws {
        var out = ByteBuffer()
        RemotingFrameEncoder.write(RemotingCommand(code: 1, opaque: 1), into: &out)
        var partial = out.getSlice(at: 0, length: out.readableBytes - 1)!
        #expect(try RemotingFrameDecoder().decodeFrame(&partial) == nil)
        #expect(partial.readableBytes == out.readableBytes - 1, "nothing consumed")
    }

    @Test func decoderPassesNIOsVerifier() throws {
        var first = ByteBuffer()
        RemotingFrameEncoder.write(RemotingCommand(code: RequestCode.sendMessage, opaque: 1, extFields: ["x": "y"]), into: &first)
        var second = ByteBuffer()
        RemotingFrameEncoder.write(RemotingCommand(code: RequestCode.pullMessage, opaque: 2, serializeType: .rocketmq), into: &second)
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(first, [CommandSummary(code: RequestCode.sendMessage, opaque: 1)]), (second, [CommandSummary(code: RequestCode.pullMessage, opaque: 2)])],
            decoderFactory: { SummaryDecoder() })
    }
}

/// The verifier needs Equatable output.
struct CommandSummary: Equatable {
    var code: Int32
    var opaque: Int32
}

struct SummaryDecoder: ByteToMessageDecoder {
    typealias InboundOut = CommandSummary
    var inner = RemotingFrameDecoder()
    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let command = try inner.decodeFrame(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(CommandSummary(code: command.code, opaque: command.opaque)))
        return .continue
    }
}
