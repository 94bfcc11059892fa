import NIOCore
import NIOPosix
import Remoting
import Synchronization
import Testing
import TestSupport

/// Parks every request (`.deferred`) and answers the parked ones in batches, each batch from one event-loop task,
/// the way durable sends are answered after a group commit.
final class ParkingProcessor: RemotingProcessor, @unchecked Sendable {
    /// Touched on the (single) event loop only.
    private var parked: [(RemotingCommand, RequestContext)] = []
    let answered = Atomic<Int>(0)
    let futureContextsDeferred = Atomic<Int>(0)

    func answer(_ request: RemotingCommand, context: RequestContext) -> RemotingAnswer {
        if context.futuresOnly.answersLater { futureContextsDeferred.wrappingAdd(1, ordering: .relaxed) }
        guard context.answersLater else { return .later(process(request, context: context)) }
        parked.append((request, context))
        if parked.count == 1 {
            context.eventLoop.execute { [self] in
                let batch = parked
                parked.removeAll()
                for (request, context) in batch {
                    context.answer(.response(to: request, code: ResponseCode.success, extFields: request.extFields), to: request)
                    answered.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        return .deferred
    }

    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.systemError, remark: "not deferred"))
    }
}

@Suite(.serialized) struct DeferredAnswerTests {
    @Test func deferredAnswersAreWrittenOnceEachWithTheirOwnFields() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let processor = ParkingProcessor()
        let server = try await RemotingServer(port: 0, group: group, processor: processor)
        let client = RemotingClient(group: group)
        let address = "127.0.0.1:\(server.port)"
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for index in 0..<300 {
                    tasks.addTask {
                        let answer = try await client.invoke(address, RemotingCommand(code: 7, opaque: 0, extFields: ["i": "\(index)"]))
                        #expect(answer.code == ResponseCode.success)
                        #expect(answer.extFields["i"] == "\(index)")
                    }
                }
                try await tasks.waitForAll()
            }
        } catch {
            Issue.record("\(error)")
        }
        #expect(processor.answered.load(ordering: .relaxed) == 300)
        #expect(processor.futureContextsDeferred.load(ordering: .relaxed) == 0, "futuresOnly contexts cannot be answered later")
        await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }
}
