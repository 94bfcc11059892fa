#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Broker
import CommitLog
import Client
import Common
import NameServer
import Remoting
import Replication
import Synchronization
import Testing
import TestSupport

/// Requests the test server has parked (code 2) and answered late, so tests wait on them instead of sleeping.
let heldRequests = Atomic<Int>(0)
let lateAnswers = Atomic<Int>(0)
/// Answers to code 2 with `hold` = "park": kept until a test releases them.
let parkedAnswers = Mutex<[(EventLoopPromise<RemotingCommand?>, RemotingCommand)]>([])

func releaseParkedAnswers() {
    for (promise, request) in parkedAnswers.withLock({ parked in defer { parked = [] }; return parked }) {
        promise.succeed(RemotingCommand.response(to: request, code: ResponseCode.success, extFields: ["held": "park"]))
    }
}

/// Echoes code 1 at once; holds code 2 for `hold` ms (a long poll); answers 3 for anything else; echoes field `i`
/// and the body of code 4 as an answer ready at once (`.now`, fields written into the connection's spare buffer).
struct TestProcessor: RemotingProcessor {
    func answer(_ request: RemotingCommand, context: RequestContext) -> RemotingAnswer {
        guard request.code == 4 else { return .later(process(request, context: context)) }
        var fields = context.fieldsWriter(capacity: 64)
        request.fields?["i"]?.withBytes { fields.append("i", $0) }
        return .now(RemotingCommand(code: ResponseCode.success, fields: fields.fields, body: request.body))
    }

    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        switch request.code {
        case 1:
            return context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.success, extFields: request.extFields, body: request.body))
        case 2 where request.extFields["hold"] == "park":
            let promise = context.eventLoop.makePromise(of: RemotingCommand?.self)
            parkedAnswers.withLock { $0.append((promise, request)) }
            heldRequests.wrappingAdd(1, ordering: .relaxed)
            return promise.futureResult
        case 2:
            let millis = Int64(request.extFields["hold"] ?? "0") ?? 0
            heldRequests.wrappingAdd(1, ordering: .relaxed)
            return context.eventLoop.scheduleTask(in: .milliseconds(millis)) {
                lateAnswers.wrappingAdd(1, ordering: .relaxed)
                return RemotingCommand.response(to: request, code: ResponseCode.success, extFields: ["held": "\(millis)"])
            }.futureResult
        default:
            return context.eventLoop.makeSucceededFuture(.response(
                to: request, code: ResponseCode.requestCodeNotSupported, remark: " request type \(request.code) not supported"))
        }
    }
}

/// Real sockets on 127.0.0.1: multiplexing by opaque, held requests, timeouts, bad input.
@Suite(.serialized) struct RemotingTransportTests {
    func withServer(_ body: (String, RemotingClient) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await RemotingServer(port: 0, group: group, processor: TestProcessor())
        let client = RemotingClient(group: group)
        do {
            try await body("127.0.0.1:\(server.port)", client)
        } catch {
            Issue.record("\(error)")
        }
        await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }

    @Test func heldRequestDoesNotBlockOthersOnTheSameConnection() async throws {
        try await withServer { address, client in
            // The held request is answered only when the test releases it, after the echoes: an echo queued behind it
            // would time out instead of being answered.
            let heldBefore = heldRequests.load(ordering: .relaxed)
            let held = Task { try await client.invoke(address, RemotingCommand(code: 2, opaque: 0, extFields: ["hold": "park"]),
                                                     timeoutMillis: 60_000) }
            #expect(await eventually(10) { heldRequests.load(ordering: .relaxed) > heldBefore })  // the held request is parked
            for index in 0..<20 {
                let answer = try await client.invoke(address, RemotingCommand(code: 1, opaque: 0, extFields: ["i": "\(index)"]))
                #expect(answer.extFields["i"] == "\(index)")
            }
            releaseParkedAnswers()
            #expect(try await held.value.extFields["held"] == "park")
        }
    }

    @Test func manyConcurrentRequestsAreMatchedByOpaque() async throws {
        try await withServer { address, client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let hold = index % 3 == 0 ? "\(index % 50)" : nil
                        let request = hold.map { RemotingCommand(code: 2, opaque: 0, extFields: ["hold": $0]) }
                            ?? RemotingCommand(code: 1, opaque: 0, extFields: ["i": "\(index)"])
                        let answer = try await client.invoke(address, request)
                        if let hold { #expect(answer.extFields["held"] == hold) } else { #expect(answer.extFields["i"] == "\(index)") }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// Answers ready at once, futures completed at once and a held answer, pipelined on one connection (more than the
    /// server's 64 KiB burst buffer): each request is answered once with its own field and body, in request order
    /// but for the held one; a one-way request gets no answer.
    @Test func pipelinedAnswersComeBackWholeAndInOrder() async throws {
        try await withServer { address, _ in
            let connection = try #require(RawConnection(port: Int(address.split(separator: ":")[1])!))
            var burst = ByteBuffer()
            RemotingFrameEncoder.write(RemotingCommand(code: 2, opaque: 1000, extFields: ["hold": "300"]), into: &burst)
            for index in 0..<300 {
                let body = ByteBuffer(bytes: [UInt8](repeating: UInt8(index % 251), count: 1024 + index))
                RemotingFrameEncoder.write(RemotingCommand(code: index % 2 == 0 ? 4 : 1, opaque: Int32(index), extFields: ["i": "\(index)"],
                                                           body: body, serializeType: index % 3 == 0 ? .json : .rocketmq), into: &burst)
            }
            RemotingFrameEncoder.write(RemotingCommand(code: 4, opaque: 2000, flag: RemotingCommand.onewayFlag), into: &burst)
            #expect(connection.send(Array(burst.readableBytesView)))
            var received = ByteBuffer()
            var answers: [RemotingCommand] = []
            let deadline = monotonicNanos() + 20_000_000_000
            while answers.count < 301, monotonicNanos() < deadline {
                received.writeBytes(connection.receive(withinMillis: 100))
                while let answer = try RemotingFrameDecoder().decodeFrame(&received) { answers.append(answer) }
            }
            #expect(answers.count == 301)
            #expect(answers.map(\.opaque).filter { $0 != 1000 } == Array(0..<300))
            #expect(answers.contains { $0.opaque == 1000 && $0.extFields["held"] == "300" })
            for answer in answers where answer.opaque != 1000 {
                let index = Int(answer.opaque)
                #expect(answer.isResponse && answer.code == ResponseCode.success)
                #expect(answer.serializeType == (index % 3 == 0 ? .json : .rocketmq))
                #expect(answer.extFields["i"] == "\(index)")
                #expect(answer.body.map { Array($0.readableBytesView) } == [UInt8](repeating: UInt8(index % 251), count: 1024 + index))
            }
            #expect(connection.receive(withinMillis: 200).isEmpty, "nothing more: the one-way request is not answered")
        }
    }

    @Test func unknownCodeIsAnsweredNotSupported() async throws {
        try await withServer { address, client in
            let answer = try await client.invoke(address, RemotingCommand(code: 9999, opaque: 0))
            #expect(answer.code == ResponseCode.requestCodeNotSupported)
            #expect(answer.remark?.contains("9999") == true)
        }
    }

    @Test func timeoutFailsTheCallAndALateResponseIsDropped() async throws {
        try await withServer { address, client in
            let answeredBefore = lateAnswers.load(ordering: .relaxed)
            do {
                _ = try await client.invoke(address, RemotingCommand(code: 2, opaque: 0, extFields: ["hold": "400"]), timeoutMillis: 100)
                Issue.record("no timeout")
            } catch let error as RemotingError {
                guard case .timeout = error else { throw error }
            }
            // The late answer has been sent (and dropped by the client) before the next request.
            #expect(await eventually(5) { lateAnswers.load(ordering: .relaxed) > answeredBefore })
            let answer = try await client.invoke(address, RemotingCommand(code: 1, opaque: 0, extFields: ["after": "late"]))
            #expect(answer.extFields["after"] == "late")
        }
    }

    @Test func garbageClosesOnlyThatConnection() async throws {
        try await withServer { address, client in
            let port = Int(address.split(separator: ":")[1])!
            for garbage: [UInt8] in [[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], [0, 0, 0, 8, 0, 0, 0, 4] + Array("nope".utf8)] {
                #expect(serverClosesAfterSending(garbage, toPort: port), "the server closes a connection that sent garbage")
            }
            let answer = try await client.invoke(address, RemotingCommand(code: 1, opaque: 0, extFields: ["still": "up"]))
            #expect(answer.extFields["still"] == "up")
        }
    }

    @Test func connectionRefusedIsAClearError() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = RemotingClient(group: group)
        do {
            _ = try await client.invoke("127.0.0.1:1", RemotingCommand(code: 1, opaque: 0))
            Issue.record("connected to port 1")
        } catch {
            #expect("\(error)" == "cannot reach 127.0.0.1:1 (connection refused)", "\(error)")
        }
        await client.close()
        try await group.shutdownGracefully()
    }
}
