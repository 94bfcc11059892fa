import NIOCore
import NIOPosix
import CommitLog
import Common
import Synchronization
import Testing
import TestSupport
@testable import Client
@testable import Remoting

/// An echo request written straight into the connection's buffer (TestProcessor's code 4 answers with field `i`
/// and the body).
struct EchoRequest: RemotingRequest, Sendable {
    var index: Int
    var code: Int32 { 4 }
    func writeFields(into buffer: inout ByteBuffer) {
        var fields = HeaderFields.Writer(capacity: 0)
        swap(&fields.buffer, &buffer)
        fields.append("i", index)
        swap(&fields.buffer, &buffer)
    }
    func writeBody(into buffer: inout ByteBuffer) { buffer.writeRepeatingByte(UInt8(index % 251), count: 100 + index) }
}

/// How many times a task meant for the loop ran elsewhere.
final class OffLoopCount: Sendable {
    let value = Atomic<Int>(0)
}

/// The producer's send path: SEND written straight into the connection's buffer must be the frame the command
/// encoder writes; requests sent that way are answered and time out like any other; tasks preferring the client's
/// `EventLoopTaskExecutor` run on its loop.
@Suite(.serialized) struct ClientSendPathTests {
    /// The SEND frame as the producer wrote it before: the message's properties with UNIQ_KEY and WAIT appended,
    /// fields a..m through `HeaderFields.Writer`, a body buffer, `RemotingFrameEncoder`.
    static func referenceFrame(_ message: Message, uniqueID: String, group: String, queueID: Int32, bornTimestamp: Int64,
                               opaque: Int32) -> ByteBuffer {
        var message = message
        message.properties.append(MessageConst.uniqueClientMessageIDKeyIndex, uniqueID)
        message.properties.append(MessageConst.waitStoreMsgOK, "true")
        var fields = HeaderFields.Writer(capacity: 192)
        fields.append("a", group)
        fields.append("b", message.topic)
        fields.append("c", TopicValidator.autoCreateTopicKeyTopic)
        fields.append("d", 4)
        fields.append("e", queueID)
        fields.append("f", Int32(0))
        fields.append("g", bornTimestamp)
        fields.append("h", message.flag)
        fields.append("i", properties: message.properties)
        fields.append("j", 0)
        fields.append("k", false)
        fields.append("m", false)
        var request = RemotingCommand(code: RequestCode.sendMessageV2, fields: fields.fields, body: ByteBuffer(bytes: message.body))
        request.language = .other
        request.opaque = opaque
        var frame = ByteBuffer()
        RemotingFrameEncoder.write(request, into: &frame)
        return frame
    }

    @Test func aSendWrittenIntoTheConnectionBufferIsTheEncodersFrame() {
        let id = UniqueID.nextPacked()
        for properties in [MessageProperties(), MessageProperties(Array("KEYS\u{1}k1 k2\u{2}TAGS\u{1}tagA\u{2}".utf8))] {
            var message = Message(topic: "TopicTest", body: Array("hello wire".utf8))
            message.properties = properties
            let request = SendRequest(group: "PG", topic: message.topic, defaultTopicQueueNums: 4, queueID: 3, sysFlag: 0,
                                      bornTimestamp: 1_700_000_000_123, flag: message.flag, properties: message.properties, uniqueID: id,
                                      addWait: true, body: message.body, batch: nil)
            var frame = ByteBuffer(string: "earlier frames stay")
            frame.writeFrame(request, opaque: 77)
            var expected = ByteBuffer(string: "earlier frames stay")
            var reference = Self.referenceFrame(message, uniqueID: id.hexString, group: "PG", queueID: 3,
                                                bornTimestamp: 1_700_000_000_123, opaque: 77)
            expected.writeBuffer(&reference)
            #expect(Array(frame.readableBytesView) == Array(expected.readableBytesView))
        }
    }

    /// UNIQ_KEY keeps Java's shape (ip 127.0.0.1, pid, salt, time, counter: 32 upper-case hex digits), and ids
    /// kept packed come back as the same text; other text stays text.
    @Test func idsArePackedAndWrittenOutAsTheSameText() {
        let first = UniqueID.nextPacked(), second = UniqueID.nextPacked()
        #expect(first.hexString.count == 32 && first.hexString.hasPrefix("7F000001"))
        #expect(first.hexString.allSatisfy { $0.isNumber || ("A"..."F").contains($0) })
        #expect(first != second && first.high == second.high)
        for text in [first.hexString, "0A0B0C0D00002A9F00000000000004D2"] {
            let packed = Array(text.utf8).withUnsafeBytes { PackedID(hex: $0) }
            #expect(packed?.hexString == text)
        }
        for text in ["0a0b0c0d00002a9f00000000000004d2", "7F000001", ""] {
            #expect(Array(text.utf8).withUnsafeBytes { PackedID(hex: $0) } == nil)
        }
    }

    func withServer(_ body: (String, RemotingClient, EventLoopTaskExecutor) async throws -> Void) async throws {
        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await RemotingServer(port: 0, group: serverGroup, processor: TestProcessor())
        let client = RemotingClient(group: clientGroup)
        do {
            try await body("127.0.0.1:\(server.port)", client, client.makeTaskExecutor())
        } catch {
            Issue.record("\(error)")
        }
        await client.close()
        try await server.close()
        try await clientGroup.shutdownGracefully()
        try await serverGroup.shutdownGracefully()
    }

    /// 200 requests at once, half from tasks on the client's loop and half from the global executor: each is
    /// answered with its own field and body, and tasks preferring the executor ran on the loop around every await.
    @Test func requestsWrittenIntoTheBufferAreAnsweredOnAndOffTheLoop() async throws {
        try await withServer { address, client, executor in
            let offLoop = OffLoopCount()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask(executorPreference: index % 2 == 0 ? executor : nil) {
                        if index % 2 == 0, !executor.eventLoop.inEventLoop { offLoop.value.wrappingAdd(1, ordering: .relaxed) }
                        let answer = try await client.invoke(address, request: EchoRequest(index: index), timeoutMillis: 5_000)
                        if index % 2 == 0, !executor.eventLoop.inEventLoop { offLoop.value.wrappingAdd(1, ordering: .relaxed) }
                        #expect(answer.code == ResponseCode.success)
                        #expect(answer.fields?["i"]?.int64 == Int64(index))
                        #expect(answer.body.map { Array($0.readableBytesView) } == [UInt8](repeating: UInt8(index % 251), count: 100 + index))
                    }
                }
                try await group.waitForAll()
            }
            #expect(offLoop.value.load(ordering: .relaxed) == 0, "tasks preferring the loop's executor ran elsewhere")
        }
    }

    /// A request written into the buffer that is not answered in time fails with a timeout (found by the sweep);
    /// its late answer is dropped and the connection goes on.
    @Test func anUnansweredRequestTimesOut() async throws {
        struct Held: RemotingRequest, Sendable {
            var code: Int32 { 2 }
            func writeFields(into buffer: inout ByteBuffer) {
                var fields = HeaderFields.Writer(capacity: 0)
                swap(&fields.buffer, &buffer)
                fields.append("hold", "400")
                swap(&fields.buffer, &buffer)
            }
            func writeBody(into buffer: inout ByteBuffer) {}
        }
        try await withServer { address, client, executor in
            let began = ContinuousClock.now
            let outcome = await Task(executorPreference: executor) {
                try await client.invoke(address, request: Held(), timeoutMillis: 100)
            }.result
            guard case .failure(let error) = outcome, case .timeout? = error as? RemotingError else {
                Issue.record("expected a timeout, got \(outcome)")
                return
            }
            #expect(ContinuousClock.now - began < .milliseconds(390), "the timeout waited for the answer")
            let answer = try await client.invoke(address, request: EchoRequest(index: 5), timeoutMillis: 5_000)
            #expect(answer.fields?["i"]?.int64 == 5)
        }
    }
}
