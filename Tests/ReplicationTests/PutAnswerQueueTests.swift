import CommitLog
import IndexFile
import NIOCore
import NIOPosix
import Replication
import Synchronization
import Testing
import TestSupport

/// SYNC_FLUSH puts answered through a `PutAnswerQueue`: every queued put is answered once, on the queue's event
/// loop, with PUT_OK only once the log is flushed past its record; puts answered at once are never delivered.
@Suite(.serialized) struct PutAnswerQueueTests {
    /// A SYNC_FLUSH store, its pipeline and one event loop; records each answer delivered on that loop.
    final class Fixture: @unchecked Sendable {
        let directory: TemporaryDirectory
        let store: MessageStore
        let pipeline: PutPipeline
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop: EventLoop
        /// Touched on the event loop only.
        var answers: [(slot: UInt32, status: PutMessageStatus, flushedPastEnd: Bool, onLoop: Bool)] = []
        let count = Atomic<Int>(0)
        /// Where each queued put's record ends, by slot.
        let ends = Mutex<[UInt32: UInt64]>([:])

        init(io: IOPath, _ name: String) throws {
            directory = TemporaryDirectory(name)
            store = try MessageStore(config: storeConfig(directory.path, io: io, flush: .syncFlush))
            pipeline = PutPipeline(store: store, role: .asyncMaster)
            loop = group.next()
        }

        func close() {
            try? group.syncShutdownGracefully()
            store.close()
        }

        /// Called on the loop for each answer delivered.
        func record(_ answer: PutAnswerQueue.Answer) {
            let end = ends.withLock { $0[answer.slot] } ?? .max
            answers.append((answer.slot, answer.status, store.commitLog.flushedOffset >= end, loop.inEventLoop))
            count.wrappingAdd(1, ordering: .relaxed)
        }

        /// Puts `slots` on the loop, answered on `queue`. - Returns: the slots whose answers were queued.
        func put(_ slots: Range<UInt32>, answering queue: PutAnswerQueue) throws -> [UInt32] {
            try loop.submit { PutAnswerQueueTests.put(slots, through: self.pipeline, answering: queue, ends: self.ends) }.wait()
        }

        /// Waits until every queued put was answered, and checks each was answered once, on the loop, with PUT_OK,
        /// after the log was flushed past its record.
        func expectEachAnsweredOnceAfterItsFlush(_ queued: [UInt32]) throws {
            #expect(!queued.isEmpty)
            #expect(eventually(seconds: 10) { self.count.load(ordering: .relaxed) >= queued.count })
            let answers = try loop.submit { self.answers }.wait()
            #expect(answers.map(\.slot).sorted() == queued, "each queued put answered once, no other")
            #expect(answers.allSatisfy { $0.status == .putOK && $0.flushedPastEnd && $0.onLoop })
        }
    }

    @Test(arguments: IOPath.allCases)
    func everyQueuedPutIsAnsweredOnceAfterItsFlush(io: IOPath) throws {
        let fixture = try Fixture(io: io, "put-answer-queue")
        defer { fixture.close() }
        let queue = PutAnswerQueue(eventLoop: fixture.loop, capacity: 4) { fixture.record($0) }
        try fixture.expectEachAnsweredOnceAfterItsFlush(try fixture.put(0..<300, answering: queue))
    }

    /// A queue made by the pipeline: its puts carry their queue and slot in their token (no table entry), each is
    /// answered once, on the loop, after its flush (the group commit publishes the queue once its answers are all
    /// queued), in non-empty batches.
    @Test(arguments: IOPath.allCases)
    func aPipelineQueueAnswersEachPutOnceAfterItsFlush(io: IOPath) throws {
        let fixture = try Fixture(io: io, "put-answer-queue-pipeline")
        defer { fixture.close() }
        let batches = Atomic<Int>(0)
        let answeredAtBatchEnd = Atomic<Int>(0)
        let queue = fixture.pipeline.makeAnswerQueue(eventLoop: fixture.loop, capacity: 4) { batch in
            #expect(!batch.isEmpty)
            for answer in batch { fixture.record(answer) }
            batches.wrappingAdd(1, ordering: .relaxed)
            answeredAtBatchEnd.store(fixture.answers.count, ordering: .relaxed)
        }
        var queued: [UInt32] = []
        for round in 0..<20 {
            queued += try fixture.put(UInt32(round * 50)..<UInt32(round * 50 + 50), answering: queue)
        }
        try fixture.expectEachAnsweredOnceAfterItsFlush(queued)
        #expect(batches.load(ordering: .relaxed) >= 1)
        #expect(answeredAtBatchEnd.load(ordering: .relaxed) == queued.count, "every answer came in a batch")
    }

    /// Puts one message per slot through `pipeline`, answered on `queue`; records where each queued one ends.
    /// - Returns: the slots whose answers were queued (the others were answered at once).
    fileprivate static func put(_ slots: Range<UInt32>, through pipeline: PutPipeline, answering queue: PutAnswerQueue,
                            ends: borrowing Mutex<[UInt32: UInt64]>) -> [UInt32] {
        var queued: [UInt32] = []
        let topic = Array("Durable".utf8), body = [UInt8](repeating: 9, count: 700), properties = Array("TAGS\u{1}t\u{2}".utf8)
        for slot in slots {
            let outcome = topic.withUnsafeBytes { t in
                body.withUnsafeBytes { b in
                    properties.withUnsafeBytes { p in
                        pipeline.put(MessageView(topic: t, body: b, properties: p, queueID: Int32(slot % 4), bornTimestamp: 1),
                                     answering: .queue(queue, slot: slot))
                    }
                }
            }
            switch outcome {
            case .queued(let result):
                ends.withLock { $0[slot] = result.append.nextOffset }
                queued.append(slot)
            case .done(_, let status): #expect(status == .putOK)
            case .failed(let failure): Issue.record("put \(slot) failed: \(failure)")
            case .pending: Issue.record("a queue route never answers with a future")
            }
        }
        return queued
    }
}
