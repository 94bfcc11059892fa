#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Broker
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

/// Echoes code 1 at once; holds code 2 for `hold` ms (a long poll); answers 3 for anything else.
struct TestProcessor: RemotingProcessor {
    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        switch request.code {
        case 1:
            return context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.success, extFields: request.extFields, body: request.body))
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
            let held = Task { try await client.invoke(address, RemotingCommand(code: 2, opaque: 0, extFields: ["hold": "3000"]),
                                                     timeoutMillis: 10_000) }
            let heldBefore = heldRequests.load(ordering: .relaxed)
            _ = await eventually(5) { heldRequests.load(ordering: .relaxed) > heldBefore }  // the held request is parked
            let began = ContinuousClock.now
            for index in 0..<20 {
                let answer = try await client.invoke(address, RemotingCommand(code: 1, opaque: 0, extFields: ["i": "\(index)"]))
                #expect(answer.extFields["i"] == "\(index)")
            }
            // All twenty answers came back while the held request (3 s) was still pending.
            #expect(ContinuousClock.now - began < .milliseconds(2_900), "echoes waited behind the held request")
            #expect(try await held.value.extFields["held"] == "3000")
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
