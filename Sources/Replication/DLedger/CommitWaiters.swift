import CommitLog
import Synchronization

/// Puts waiting for their DLedger entry to commit: (end offset, token, deadline) in a ring of
/// `commitWaitersMax` slots allocated once. Waiters are added under the commit log's append lock, so they arrive
/// in offset order and with rising deadlines: a commit completes a prefix, and so does a deadline. Handlers
/// run outside the lock; every waiter is completed exactly once.
final class CommitWaiters: @unchecked Sendable {
    struct Waiter {
        var offset: UInt64
        var token: UInt64
        var deadlineNanos: UInt64
    }

    struct Ring {
        var slots: ContiguousArray<Waiter>
        var head = 0
        var count = 0
    }

    private let ring: Mutex<Ring>
    /// Set once before traffic (the put pipeline's confirmation).
    var handler: @Sendable (_ token: UInt64, _ status: PutMessageStatus) -> Void = { _, _ in }

    init(capacity: Int) {
        ring = Mutex(Ring(slots: ContiguousArray(repeating: Waiter(offset: 0, token: 0, deadlineNanos: 0), count: capacity)))
    }

    var outstanding: Int { ring.withLock { $0.count } }
    var hasRoom: Bool { ring.withLock { $0.count < $0.slots.count } }

    /// Registers a wait until the log's committed end reaches `offset`. The caller checked `hasRoom` under the
    /// same append lock (only appends add), so a slot is free.
    func add(offset: UInt64, token: UInt64, deadlineNanos: UInt64) {
        ring.withLock { ring in
            precondition(ring.count < ring.slots.count, "commit waiters: no free slot (admit checks hasRoom)")
            if ring.count > 0 {
                let last = ring.slots[(ring.head + ring.count - 1) % ring.slots.count]
                precondition(offset > last.offset, "commit waiters arrive in offset order")
            }
            ring.slots[(ring.head + ring.count) % ring.slots.count] = Waiter(offset: offset, token: token, deadlineNanos: deadlineNanos)
            ring.count += 1
        }
    }

    /// Completes with PUT_OK every wait whose offset the committed end reached.
    func complete(upTo offset: UInt64) {
        finish(.putOK) { $0.offset <= offset }
    }

    /// Completes the waits whose deadline passed with IN_SYNC_REPLICAS_NOT_ENOUGH.
    func expire(now: UInt64) {
        finish(.inSyncReplicasNotEnough) { $0.deadlineNanos <= now }
    }

    /// Completes every wait with IN_SYNC_REPLICAS_NOT_ENOUGH (leadership moved: the entries may or may not commit).
    func failAll() {
        finish(.inSyncReplicasNotEnough) { _ in true }
    }

    /// Pops the prefix `done` holds for, in batches, and tells the handler outside the lock.
    private func finish(_ status: PutMessageStatus, while done: (Waiter) -> Bool) {
        var tokens: [UInt64] = []
        while true {
            ring.withLock { ring in
                while ring.count > 0 && tokens.count < 1024 {
                    let first = ring.slots[ring.head]
                    guard done(first) else { break }
                    tokens.append(first.token)
                    ring.head = (ring.head + 1) % ring.slots.count
                    ring.count -= 1
                }
            }
            guard !tokens.isEmpty else { return }
            for token in tokens { handler(token, status) }
            tokens.removeAll(keepingCapacity: true)
        }
    }
}
