import NIOCore
import Synchronization

/// Puts whose answers wait (SYNC_FLUSH, SYNC_MASTER), answered on one event loop in batches. A confirmation
/// from a store thread queues the put's slot and status here, and one task on the event loop delivers the whole
/// batch in one call (the owner writes the batch's answers together). A put costs no promise, callback or task
/// of its own.
///
/// A queue made by `PutPipeline.makeAnswerQueue` is the pipeline's: a group commit queues the answers it made
/// durable without scheduling anything (`completeDeferred`) and, once they are all queued, `publish`es the queue:
/// one event-loop hop per loop per group commit, not one per answer queued while the loop already drained.
///
/// **Thread:** `complete`, `completeDeferred` and `publish` any; the delivery runs on `eventLoop`, in completion order.
public final class PutAnswerQueue: @unchecked Sendable {
    /// A put's slot (the owner's numbering) and its final status.
    public struct Answer: Sendable {
        public var slot: UInt32
        public var status: PutMessageStatus
    }

    private struct Queued {
        var answers: ContiguousArray<Answer>
        /// A delivery task is queued on the event loop (it takes every answer queued before it runs).
        var scheduled = false
        /// Deferred answers wait for `publish` (the pipeline was told to publish this queue).
        var awaitingPublish = false
    }

    public let eventLoop: EventLoop
    /// The queue's number in its pipeline (`PutPipeline.makeAnswerQueue`); nil for a queue made on its own.
    let index: UInt32?
    private let queued: Mutex<Queued>
    /// The batch being delivered (touched on the event loop only).
    private var delivering: ContiguousArray<Answer>
    /// Runs on `eventLoop` with each batch, in completion order.
    private let deliver: (UnsafeBufferPointer<Answer>) -> Void
    /// A pipeline's queue: its delivery task, made once (scheduling it allocates no closure). It holds the queue
    /// unowned: the pipeline keeps its queues, and a weak reference would move every retain of the queue (one per
    /// waiting put) to the slow side-table count.
    private var drainTask: (@Sendable () -> Void)?

    /// - Parameters:
    ///   - capacity: answers held without growing (a batch past it allocates once, and the room is kept).
    ///   - deliver: runs on `eventLoop` for each answer.
    ///   - delivered: runs on `eventLoop` after each batch's last `deliver`.
    public convenience init(eventLoop: EventLoop, capacity: Int, deliver: @escaping (Answer) -> Void,
                            delivered: @escaping () -> Void = {}) {
        self.init(eventLoop: eventLoop, index: nil, capacity: capacity) { batch in
            for answer in batch { deliver(answer) }
            delivered()
        }
    }

    /// - Parameters:
    ///   - deliver: runs on `eventLoop` with each batch (one call, however many answers).
    init(eventLoop: EventLoop, index: UInt32?, capacity: Int, deliver: @escaping (UnsafeBufferPointer<Answer>) -> Void) {
        self.eventLoop = eventLoop
        self.index = index
        self.deliver = deliver
        var answers = ContiguousArray<Answer>()
        answers.reserveCapacity(capacity)
        queued = Mutex(Queued(answers: answers))
        delivering = ContiguousArray()
        delivering.reserveCapacity(capacity)
        if index != nil { drainTask = { [unowned self] in drain() } }
    }

    private func scheduleDrain() {
        if let drainTask { return eventLoop.execute(drainTask) }
        eventLoop.execute { [self] in drain() }
    }

    /// Queues an answer; the first of a batch schedules its delivery.
    func complete(slot: UInt32, status: PutMessageStatus) {
        let schedule = queued.withLock { queued in
            queued.answers.append(Answer(slot: slot, status: status))
            if queued.scheduled { return false }
            queued.scheduled = true
            return true
        }
        if schedule { scheduleDrain() }
    }

    /// Queues an answer whose delivery waits for `publish`. True when the caller must publish the queue (the first
    /// answer since the last publish, with no delivery already scheduled to take it).
    func completeDeferred(slot: UInt32, status: PutMessageStatus) -> Bool {
        queued.withLock { queued in
            queued.answers.append(Answer(slot: slot, status: status))
            if queued.scheduled || queued.awaitingPublish { return false }
            queued.awaitingPublish = true
            return true
        }
    }

    /// Schedules the delivery of the answers queued by `completeDeferred`, unless one is scheduled already.
    func publish() {
        let schedule = queued.withLock { queued in
            queued.awaitingPublish = false
            if queued.scheduled || queued.answers.isEmpty { return false }
            queued.scheduled = true
            return true
        }
        if schedule { scheduleDrain() }
    }

    private func drain() {
        queued.withLock { queued in
            swap(&queued.answers, &delivering)
            queued.scheduled = false
        }
        delivering.withUnsafeBufferPointer { deliver($0) }
        delivering.removeAll(keepingCapacity: true)
    }
}
