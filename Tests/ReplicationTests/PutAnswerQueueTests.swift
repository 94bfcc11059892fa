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
    final class Delivered: @unchecked Sendable {
        /// Touched on the event loop only.
        var answers: [(slot: UInt32, status: PutMessageStatus, flushedPastEnd: Bool, onLoop: Bool)] = []
        let count = Atomic<Int>(0)
    }

    @Test(arguments: IOPath.allCases)
    func everyQueuedPutIsAnsweredOnceAfterItsFlush(io: IOPath) throws {
        let directory = TemporaryDirectory("put-answer-queue")
        let store = try MessageStore(config: storeConfig(directory.path, io: io, flush: .syncFlush))
        defer { store.close() }
        let pipeline = PutPipeline(store: store, role: .asyncMaster)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let delivered = Delivered()
        let ends = Mutex<[UInt32: UInt64]>([:])
        let queue = PutAnswerQueue(eventLoop: loop, capacity: 4) { answer in
            let end = ends.withLock { $0[answer.slot] } ?? .max
            delivered.answers.append((answer.slot, answer.status, store.commitLog.flushedOffset >= end, loop.inEventLoop))
            delivered.count.wrappingAdd(1, ordering: .relaxed)
        }
        let puts = 300
        let queued = try loop.submit { Self.put(0..<UInt32(puts), through: pipeline, answering: queue, ends: ends) }.wait()
        #expect(!queued.isEmpty)
        #expect(eventually(seconds: 10) { delivered.count.load(ordering: .relaxed) >= queued.count })
        let answers = try loop.submit { delivered.answers }.wait()
        #expect(answers.map(\.slot).sorted() == queued, "each queued put answered once, no other")
        #expect(answers.allSatisfy { $0.status == .putOK && $0.flushedPastEnd && $0.onLoop })
    }

    /// A queue made by the pipeline: its puts carry their queue and slot in their token (no table entry), each is
    /// answered once, on the loop, after its flush (the group commit publishes the queue once its answers are all
    /// queued), in non-empty batches.
    @Test(arguments: IOPath.allCases)
    func aPipelineQueueAnswersEachPutOnceAfterItsFlush(io: IOPath) throws {
        let directory = TemporaryDirectory("put-answer-queue-pipeline")
        let store = try MessageStore(config: storeConfig(directory.path, io: io, flush: .syncFlush))
        defer { store.close() }
        let pipeline = PutPipeline(store: store, role: .asyncMaster)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let delivered = Delivered()
        let batches = Atomic<Int>(0)
        let answeredAtBatchEnd = Atomic<Int>(0)
        let ends = Mutex<[UInt32: UInt64]>([:])
        let queue = pipeline.makeAnswerQueue(eventLoop: loop, capacity: 4) { batch in
            #expect(!batch.isEmpty)
            for answer in batch {
                let end = ends.withLock { $0[answer.slot] } ?? .max
                delivered.answers.append((answer.slot, answer.status, store.commitLog.flushedOffset >= end, loop.inEventLoop))
                delivered.count.wrappingAdd(1, ordering: .relaxed)
            }
            batches.wrappingAdd(1, ordering: .relaxed)
            answeredAtBatchEnd.store(delivered.answers.count, ordering: .relaxed)
        }
        var queued: [UInt32] = []
        for round in 0..<20 {
            let slots = UInt32(round * 50)..<UInt32(round * 50 + 50)
            queued += try loop.submit { Self.put(slots, through: pipeline, answering: queue, ends: ends) }.wait()
        }
        #expect(!queued.isEmpty)
        #expect(eventually(seconds: 10) { delivered.count.load(ordering: .relaxed) >= queued.count })
        let answers = try loop.submit { delivered.answers }.wait()
        #expect(answers.map(\.slot).sorted() == queued, "each queued put answered once, no other")
        #expect(answers.allSatisfy { $0.status == .putOK && $0.flushedPastEnd && $0.onLoop })
        #expect(batches.load(ordering: .relaxed) >= 1)
        #expect(answeredAtBatchEnd.load(ordering: .relaxed) == queued.count, "every answer came in a batch")
    }

    /// Puts one message per slot through `pipeline`, answered on `queue`; records where each queued one ends.
    /// - Returns: the slots whose answers were queued (the others were answered at once).
    private static func put(_ slots: Range<UInt32>, through pipeline: PutPipeline, answering queue: PutAnswerQueue,
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
