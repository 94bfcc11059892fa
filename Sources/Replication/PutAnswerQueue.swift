import NIOCore
import Synchronization

/// Puts whose answers wait (SYNC_FLUSH, SYNC_MASTER), answered on one event loop in batches. A confirmation
/// from a store thread queues the put's slot and status here; the first one of a batch queues one task on the
/// event loop, which delivers the whole batch. A group commit then costs one event-loop hop per loop, and a put
/// no promise, callback or task of its own.
///
/// **Thread:** `complete` any; `deliver` runs on `eventLoop`, one answer at a time, in completion order.
public final class PutAnswerQueue: @unchecked Sendable {
    /// A put's slot (the owner's numbering) and its final status.
    public struct Answer: Sendable {
        public var slot: UInt32
        public var status: PutMessageStatus
    }

    private struct Queued {
        var answers: ContiguousArray<Answer>
        var scheduled = false
    }

    public let eventLoop: EventLoop
    private let queued: Mutex<Queued>
    /// The batch being delivered (touched on the event loop only).
    private var delivering: ContiguousArray<Answer>
    private let deliver: (Answer) -> Void

    /// - Parameters:
    ///   - capacity: answers held without growing (a batch past it allocates once, and the room is kept).
    ///   - deliver: runs on `eventLoop` for each answer.
    public init(eventLoop: EventLoop, capacity: Int, deliver: @escaping (Answer) -> Void) {
        self.eventLoop = eventLoop
        self.deliver = deliver
        var answers = ContiguousArray<Answer>()
        answers.reserveCapacity(capacity)
        queued = Mutex(Queued(answers: answers))
        delivering = ContiguousArray()
        delivering.reserveCapacity(capacity)
    }

    /// Queues an answer; the first of a batch schedules its delivery.
    func complete(slot: UInt32, status: PutMessageStatus) {
        let schedule = queued.withLock { queued in
            queued.answers.append(Answer(slot: slot, status: status))
            if queued.scheduled { return false }
            queued.scheduled = true
            return true
        }
        if schedule { eventLoop.execute { [self] in drain() } }
    }

    private func drain() {
        queued.withLock { queued in
            swap(&queued.answers, &delivering)
            queued.scheduled = false
        }
        for answer in delivering { deliver(answer) }
        delivering.removeAll(keepingCapacity: true)
    }
}
