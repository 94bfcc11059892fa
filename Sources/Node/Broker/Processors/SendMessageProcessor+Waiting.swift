import Common
import NIOCore
import Remoting
import Replication
import Synchronization

/// The sends of one event loop that wait for their flush or slave (SYNC_FLUSH, SYNC_MASTER). Each holds a slot
/// with what its answer needs; the pipeline's confirmations come back through `queue` in batches (one event-loop
/// task per group commit, not a promise, callback and task per send). Each answer is encoded into its connection's
/// buffer, and after the batch each connection touched writes and flushes its answers once. Slots are reused: a
/// waiting send allocates nothing, and holds only the head of its request (not the frame's bytes, so the
/// connection's read buffer is free for the next read).
///
/// **Thread:** the event loop only; the queue's `complete` is the one door from the store's threads.
final class WaitingSends: @unchecked Sendable {
    struct Waiting {
        var request: RemotingCommand
        var context: RequestContext
        var stored: SendMessageProcessor.StoredSend
        var startedNanos: UInt64
        var counted: (stats: MessageStats, bytes: Int)
    }

    private(set) var queue: PutAnswerQueue!
    private var slots: ContiguousArray<Waiting?> = []
    private var free: ContiguousArray<UInt32> = []
    /// The connections answered in the batch being delivered (written once each after it).
    private var touched: ContiguousArray<RequestContext> = []
    private let services: BrokerServices

    init(eventLoop: EventLoop, services: BrokerServices) {
        self.services = services
        touched.reserveCapacity(64)
        queue = services.pipeline.makeAnswerQueue(eventLoop: eventLoop, capacity: 1024,
                                                  deliver: { [weak self] answer in self?.deliver(answer) },
                                                  delivered: { [weak self] in self?.writeTouched() })
    }

    /// A free slot for a send about to be put; give it back with `release` unless the put answers `.queued`.
    func reserve() -> UInt32 {
        if let slot = free.popLast() { return slot }
        slots.append(nil)
        return UInt32(slots.count - 1)
    }

    func release(_ slot: UInt32) { free.append(slot) }

    /// Keeps what the answer needs until the put's status comes (always later: it is delivered by a task on this loop).
    /// The request's fields and body are dropped: the answer needs its head only.
    func hold(_ slot: UInt32, _ waiting: Waiting) {
        var waiting = waiting
        waiting.request.fields = nil
        waiting.request.body = nil
        slots[Int(slot)] = waiting
    }

    private func deliver(_ answer: PutAnswerQueue.Answer) {
        guard let waiting = slots[Int(answer.slot)].take() else { return }
        free.append(answer.slot)
        let response = SendMessageProcessor.response(services: services, to: waiting.request, waiting.stored, status: answer.status,
                                                     writer: waiting.context.fieldsWriter(capacity: 128),
                                                     startedNanos: waiting.startedNanos, counted: waiting.counted)
        waiting.context.holdAnswer(response, to: waiting.request)
        if touched.last?.channel !== waiting.context.channel { touched.append(waiting.context) }
    }

    /// After a batch: each connection answered writes and flushes its answers (a connection met twice, apart, is
    /// written at its first call and finds nothing at the second).
    private func writeTouched() {
        for context in touched { context.writeHeldAnswers() }
        touched.removeAll(keepingCapacity: true)
    }
}

/// One `WaitingSends` per event loop, made on its loop's first waiting send.
final class WaitingSendsByLoop: Sendable {
    private let all = Mutex<[(loop: ObjectIdentifier, sends: WaitingSends)]>([])

    func forLoop(_ eventLoop: EventLoop, services: BrokerServices) -> WaitingSends {
        let loop = ObjectIdentifier(eventLoop)
        return all.withLock { all in
            if let found = all.first(where: { $0.loop == loop }) { return found.sends }
            let made = WaitingSends(eventLoop: eventLoop, services: services)
            all.append((loop, made))
            return made
        }
    }
}
