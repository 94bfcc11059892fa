#if canImport(Glibc)
import Glibc
#endif
import CLiburing
import Synchronization

/// One put waiting to become durable: the log offset its record ends at, the caller's token, a deadline.
struct DurabilityWaiter {
    var offset: UInt64
    var token: UInt64
    var deadlineNanos: UInt64
}

/// The group-commit hand-off: appenders add waiters to `pending`; the flusher swaps `pending` into
/// `inflight` *before* it reads the position it flushes to (so every swapped waiter is covered), and
/// completes `inflight` after the flush; a watcher completes whatever passes its deadline first.
/// There is one `inflight` list per lane (`lanes`): with `groupCommitLanes` 2 the mmap group commit runs two
/// rounds at once, each in its own lane (`FlushEngine+GroupCommit.swift`); otherwise only lane 0 exists.
/// Every list is preallocated to `pendingWaitersMax`: a put reserves a slot before it appends and fails
/// fast when none is left, so adding never allocates and never overflows.
final class DurabilityWaiters: @unchecked Sendable {
    struct Lists {
        var pending: ContiguousArray<DurabilityWaiter>
        var inflight: [ContiguousArray<DurabilityWaiter>]
    }
    /// The most lanes any engine runs (`CommitLogSettings.groupCommitLanes`).
    static let maxLanes = 2
    /// The lanes this log's engine runs: each reserves a full in-flight list.
    let lanes: Int
    let capacity: Int
    private let lists: Mutex<Lists>
    private let reserved = Atomic<Int>(0)
    /// Set once before the log starts; called on the flush, ring or watcher thread.
    var handler: @Sendable (_ token: UInt64, _ status: DurabilityStatus) -> Void = { _, _ in }
    /// Set once before the log starts; called after each batch of `handler` calls (a round's, a watcher sweep's).
    var batchEnd: (@Sendable () -> Void)?
    /// Wakes the flusher when a waiter arrives and it is idle.
    let wake: ConditionLock = ConditionLock()
    let flusherIdle = Atomic<Bool>(false)
    /// io_uring under SYNC_FLUSH with two rounds in flight: the ring thread waits in io_uring for completions and
    /// for this eventfd (`IORing.prepareWakeRead`); while `ringWaits`, the appender that wakes the flusher writes
    /// it instead of signalling `wake`. Owned here, for the log's life, so no appender can write a closed (or
    /// reused) descriptor when an engine stops. -1: none.
    let ringWakeFD: Int32
    let ringWaits = Atomic<Bool>(false)

    init(capacity: Int, lanes: Int, wakesRing: Bool = false) {
        self.capacity = capacity
        self.lanes = min(max(1, lanes), Self.maxLanes)
        ringWakeFD = wakesRing ? cliburing_eventfd() : -1
        var pending = ContiguousArray<DurabilityWaiter>()
        pending.reserveCapacity(capacity)
        let inflight = (0..<self.lanes).map { _ in
            var list = ContiguousArray<DurabilityWaiter>()
            list.reserveCapacity(capacity)
            return list
        }
        lists = Mutex(Lists(pending: pending, inflight: inflight))
    }

    deinit {
        if ringWakeFD >= 0 { close(ringWakeFD) }
    }

    /// A fresh list with full capacity, for a thread's private swap buffer.
    func makeBuffer() -> ContiguousArray<DurabilityWaiter> {
        var buffer = ContiguousArray<DurabilityWaiter>()
        buffer.reserveCapacity(capacity)
        return buffer
    }

    @inline(__always)
    func reserve() -> Bool {
        let before = reserved.wrappingAdd(1, ordering: .relaxed).oldValue
        if before < capacity { return true }
        reserved.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    @inline(__always) func cancelReservation() { reserved.wrappingSubtract(1, ordering: .relaxed) }

    var outstanding: Int { reserved.load(ordering: .relaxed) }

    /// Pending waiters that wake a sleeping flusher (the mmap group commit raises it while a round syncs).
    let wakeAtPending = Atomic<Int>(1)

    /// Adds a waiter for which a slot was reserved; wakes the flusher if it sleeps and enough wait.
    @inline(__always)
    func add(_ waiter: DurabilityWaiter) {
        let count = lists.withLock { lists in
            lists.pending.append(waiter)
            return lists.pending.count
        }
        // One appender takes the wake-up; the others see the flusher already woken.
        if count >= wakeAtPending.load(ordering: .sequentiallyConsistent) { wakeFlusher() }
    }

    /// Wakes the flusher if it sleeps (one caller wins the wake-up).
    func wakeFlusher() {
        guard flusherIdle.load(ordering: .sequentiallyConsistent) && flusherIdle.exchange(false, ordering: .sequentiallyConsistent) else {
            return
        }
        if ringWaits.load(ordering: .sequentiallyConsistent) {
            var one: UInt64 = 1
            _ = write(ringWakeFD, &one, 8)  // cannot block: the counter never nears its maximum
        } else {
            wake.withLock { wake.signal() }
        }
    }

    var hasPending: Bool { lists.withLock { !$0.pending.isEmpty } }
    var pendingCount: Int { lists.withLock { $0.pending.count } }

    /// Moves every pending waiter into `lane`'s in-flight list. Call before reading the flush target.
    /// - Returns: how many waiters `lane` now holds.
    @discardableResult
    func beginRound(lane: Int = 0) -> Int {
        lists.withLock { lists in
            if lists.inflight[lane].isEmpty {
                swap(&lists.pending, &lists.inflight[lane])
            } else {
                lists.inflight[lane].append(contentsOf: lists.pending)
                lists.pending.removeAll(keepingCapacity: true)
            }
            return lists.inflight[lane].count
        }
    }

    /// Completes `lane`'s in-flight waiters whose records end at or before `flushed` with `status`; with a
    /// failure, completes every one of them and every pending waiter.
    func endRound(lane: Int = 0, _ status: DurabilityStatus, upTo flushed: UInt64, scratch: inout ContiguousArray<DurabilityWaiter>) {
        lists.withLock { lists in
            if status != .putOK {
                swap(&lists.inflight[lane], &scratch)
                scratch.append(contentsOf: lists.pending)
                lists.pending.removeAll(keepingCapacity: true)
            } else if lists.inflight[lane].allSatisfy({ $0.offset <= flushed }) {
                swap(&lists.inflight[lane], &scratch)
            } else {
                lists.inflight[lane].removeAll { waiter in
                    guard waiter.offset <= flushed else { return false }
                    scratch.append(waiter)
                    return true
                }
            }
        }
        complete(&scratch, status)
    }

    /// Moves `lane`'s in-flight waiters that its round did not answer (their records lie past the file end the
    /// round stopped at) back to the pending ones, for the next round on any lane.
    func requeue(lane: Int) {
        lists.withLock { lists in
            guard !lists.inflight[lane].isEmpty else { return }
            lists.pending.append(contentsOf: lists.inflight[lane])
            lists.inflight[lane].removeAll(keepingCapacity: true)
        }
    }

    /// Completes waiters past their deadline with FLUSH_DISK_TIMEOUT; returns the earliest deadline left.
    func expire(now: UInt64, scratch: inout ContiguousArray<DurabilityWaiter>) -> UInt64? {
        let earliest: UInt64? = lists.withLock { lists in
            var earliest: UInt64 = .max
            func sweep(_ list: inout ContiguousArray<DurabilityWaiter>) {
                list.removeAll { waiter in
                    if waiter.deadlineNanos <= now {
                        scratch.append(waiter)
                        return true
                    }
                    earliest = min(earliest, waiter.deadlineNanos)
                    return false
                }
            }
            sweep(&lists.pending)
            for lane in lists.inflight.indices { sweep(&lists.inflight[lane]) }
            return earliest == .max ? nil : earliest
        }
        complete(&scratch, .flushDiskTimeout)
        return earliest
    }

    private func complete(_ scratch: inout ContiguousArray<DurabilityWaiter>, _ status: DurabilityStatus) {
        guard !scratch.isEmpty else { return }
        for waiter in scratch {
            reserved.wrappingSubtract(1, ordering: .relaxed)
            handler(waiter.token, status)
        }
        scratch.removeAll(keepingCapacity: true)
        batchEnd?()
    }
}
