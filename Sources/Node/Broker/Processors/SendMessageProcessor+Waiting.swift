import Common
import NIOCore
import Remoting
import Replication
import Synchronization

/// The sends of one event loop that wait for their flush or slave (SYNC_FLUSH, SYNC_MASTER). Each holds a slot
/// with what its answer needs; the pipeline's confirmations come back through `queue` in batches (one event-loop
/// task per group commit, not a promise, callback and task per send), and each answer is handed to its
/// connection, which writes a batch's answers together. Slots are reused: a waiting send allocates nothing.
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
    private let services: BrokerServices

    init(eventLoop: EventLoop, services: BrokerServices) {
        self.services = services
        queue = PutAnswerQueue(eventLoop: eventLoop, capacity: 1024) { [weak self] answer in self?.deliver(answer) }
    }

    /// A free slot for a send about to be put; give it back with `release` unless the put answers `.queued`.
    func reserve() -> UInt32 {
        if let slot = free.popLast() { return slot }
        slots.append(nil)
        return UInt32(slots.count - 1)
    }

    func release(_ slot: UInt32) { free.append(slot) }

    /// Keeps what the answer needs until the put's status comes (always later: it is delivered by a task on this loop).
    func hold(_ slot: UInt32, _ waiting: Waiting) { slots[Int(slot)] = waiting }

    private func deliver(_ answer: PutAnswerQueue.Answer) {
        guard let waiting = slots[Int(answer.slot)].take() else { return }
        free.append(answer.slot)
        let response = SendMessageProcessor.response(services: services, to: waiting.request, waiting.stored, status: answer.status,
                                                     writer: waiting.context.fieldsWriter(capacity: 128),
                                                     startedNanos: waiting.startedNanos, counted: waiting.counted)
        waiting.context.answer(response, to: waiting.request)
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
