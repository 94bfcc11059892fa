import CommitLog
import Synchronization

/// What `HAService.awaitReplica` answered at once.
public enum ReplicaWait: Sendable, Equatable {
    /// A slave already acknowledged the offset: the put is done.
    case done
    /// The `onReplicated` handler will hear the token, with `.replicated` or `.timedOut`.
    case pending
    /// No slave has reported, or the best one is `haMaxGapNotInSync` or more behind: RocketMQ's
    /// SLAVE_NOT_AVAILABLE (response code 11). The message stays stored on the master.
    case slaveNotAvailable
    /// `replicaWaitersMax` puts already wait (ours): answer as the broker answers a full flush queue.
    case waitersFull
}

/// How a pending replica wait ended.
public enum ReplicaStatus: UInt8, Sendable {
    /// A slave acknowledged the offset: PUT_OK.
    case replicated
    /// No slave acknowledged it within `slaveTimeout` (or the service closed): FLUSH_SLAVE_TIMEOUT
    /// (response code 12). The message stays stored on the master.
    case timedOut
}

/// One SYNC_MASTER put waiting for a slave: where its record ends, the caller's token, a deadline.
struct ReplicaWaiter {
    var offset: UInt64
    var token: UInt64
    var deadlineNanos: UInt64
}

/// The SYNC_MASTER hand-off, shaped like `DurabilityWaiters`: a ring of `replicaWaitersMax` slots
/// allocated once, kept in offset order (puts arrive almost in order, so an insert moves a slot or two),
/// so an acknowledgement completes a prefix. Deadlines are insertion time plus one constant, so the
/// watcher only wakes for the earliest. Handlers run outside the lock, in batches of a scratch buffer's
/// size; every waiter is completed exactly once.
final class ReplicaWaiters: @unchecked Sendable {
    struct Ring {
        var slots: ContiguousArray<ReplicaWaiter>
        var head = 0
        var count = 0
        /// The highest offset any slave acknowledged (never moves back): a wait up to it is done.
        var acknowledged: UInt64 = 0
        var hasAcknowledgement = false

        @inline(__always) func index(_ position: Int) -> Int {
            let raw = head + position
            return raw < slots.count ? raw : raw - slots.count
        }
    }

    let capacity: Int
    private let ring: Mutex<Ring>
    /// Set once before the first wait; called on a connection's reader thread or the watcher.
    var handler: @Sendable (_ token: UInt64, _ status: ReplicaStatus) -> Void = { _, _ in }
    /// The timeout watcher sleeps here; `add` wakes it only when it sleeps without a deadline.
    let wake = ConditionLock()
    let watcherIdle = Atomic<Bool>(false)
    /// Completions handed out per lock hold (the size of a thread's scratch buffer).
    static let batchMax = 256

    init(capacity: Int) {
        self.capacity = capacity
        ring = Mutex(Ring(slots: ContiguousArray(repeating: ReplicaWaiter(offset: 0, token: 0, deadlineNanos: 0), count: capacity)))
    }

    /// A scratch buffer for a completing thread.
    static func makeScratch() -> ContiguousArray<UInt64> {
        var scratch = ContiguousArray<UInt64>()
        scratch.reserveCapacity(batchMax)
        return scratch
    }

    var outstanding: Int { ring.withLock { $0.count } }

    /// Registers a wait up to `offset`, unless a slave already acknowledged it or every slot is taken.
    /// Checked under the lock that acknowledgements take, so no acknowledgement slips between the check
    /// and the insert.
    func add(offset: UInt64, token: UInt64, deadlineNanos: UInt64) -> ReplicaWait {
        let answer = ring.withLock { ring -> ReplicaWait in
            if ring.hasAcknowledgement && offset <= ring.acknowledged { return .done }
            if ring.count == ring.slots.count { return .waitersFull }
            var position = ring.count
            while position > 0 && ring.slots[ring.index(position - 1)].offset > offset {
                ring.slots[ring.index(position)] = ring.slots[ring.index(position - 1)]
                position -= 1
            }
            ring.slots[ring.index(position)] = ReplicaWaiter(offset: offset, token: token, deadlineNanos: deadlineNanos)
            ring.count += 1
            return .pending
        }
        if answer == .pending && watcherIdle.load(ordering: .sequentiallyConsistent) {
            wake.withLock { wake.signal() }
        }
        return answer
    }

    /// A slave acknowledged `offset`: completes every wait up to it with `.replicated`.
    func acknowledge(_ offset: UInt64, scratch: inout ContiguousArray<UInt64>) {
        while true {
            ring.withLock { ring in
                if !ring.hasAcknowledgement || offset > ring.acknowledged {
                    ring.acknowledged = offset
                    ring.hasAcknowledgement = true
                }
                while ring.count > 0 && scratch.count < ReplicaWaiters.batchMax {
                    let first = ring.slots[ring.head]
                    guard first.offset <= ring.acknowledged else { break }
                    scratch.append(first.token)
                    ring.head = ring.index(1)
                    ring.count -= 1
                }
            }
            guard !scratch.isEmpty else { return }
            complete(&scratch, .replicated)
        }
    }

    /// Completes the waits whose deadline passed with `.timedOut` (every wait with `all`).
    /// - Returns: the earliest deadline still pending, or nil when none is.
    @discardableResult
    func expire(now: UInt64, all: Bool = false, scratch: inout ContiguousArray<UInt64>) -> UInt64? {
        while true {
            let earliest = ring.withLock { ring -> UInt64? in
                var kept = 0
                var earliest = UInt64.max
                for position in 0..<ring.count {
                    let waiter = ring.slots[ring.index(position)]
                    if (all || waiter.deadlineNanos <= now) && scratch.count < ReplicaWaiters.batchMax {
                        scratch.append(waiter.token)
                        continue
                    }
                    earliest = min(earliest, waiter.deadlineNanos)
                    ring.slots[ring.index(kept)] = waiter
                    kept += 1
                }
                ring.count = kept
                return earliest == .max ? nil : earliest
            }
            guard !scratch.isEmpty else { return earliest }
            complete(&scratch, .timedOut)
        }
    }

    private func complete(_ scratch: inout ContiguousArray<UInt64>, _ status: ReplicaStatus) {
        for token in scratch { handler(token, status) }
        scratch.removeAll(keepingCapacity: true)
    }
}
