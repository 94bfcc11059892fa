import Synchronization

/// The state a commit log shares with its background threads (flush, ring, watcher). The threads hold
/// this object, not the `CommitLog`, so releasing the log can close it without a thread touching a
/// half-destroyed object.
final class LogShared: @unchecked Sendable {
    let settings: CommitLogSettings
    let queue: MappedFileQueue
    let checkpoint: StoreCheckpoint
    let waiters: DurabilityWaiters
    let log: @Sendable (String) -> Void

    let wroteAtomic = Atomic<UInt64>(0)
    let committedAtomic = Atomic<UInt64>(0)
    let flushedAtomic = Atomic<UInt64>(0)
    /// Readers (the dispatcher) see nothing at or past this offset (DLedger: the end of what a quorum committed).
    let visibleLimit = Atomic<UInt64>(.max)
    let lastStoreTimestamp = Atomic<Int64>(0)
    let flushFailedFlag = Atomic<Bool>(false)
    let diskFullFlag = Atomic<Bool>(false)
    let closedFlag = Atomic<Bool>(true)
    /// Completed flushes (msync/fdatasync rounds): puts per flush shows how well group commit groups.
    let flushCount = Atomic<Int>(0)
    /// Time spent in those flushes (msync/fdatasync, or io_uring submit to FDATASYNC completion), and the last one's.
    let flushNanosTotal = Atomic<UInt64>(0)
    let flushNanosLast = Atomic<UInt64>(0)
    /// Bytes of zeros the live pre-writer wrote ahead of the writer (`FlushEngine+PreWrite`).
    let livePreWrittenBytes = Atomic<Int>(0)

    /// Wakes a reader (the dispatcher) parked until the log grows; costs one atomic load per publish
    /// when nobody is parked.
    let growth = ConditionLock()
    let growthWaiters = Atomic<Int>(0)
    /// The parked readers that wait for the committed position (HA senders), also counted in `growthWaiters`.
    let committedWaiters = Atomic<Int>(0)

    /// After a position moved: the committed one (an append on the mmap path, a ring write), or with `flushed`
    /// the flushed one. Under SYNC_FLUSH readers of visible data (the dispatcher) wait for the flush, so a
    /// committed move wakes only the committed readers: not the dispatcher once per append.
    @inline(__always)
    func notifyGrowth(flushed: Bool = false) {
        // Under a visibility limit (DLedger) an append shows readers nothing new: the limit's move wakes them.
        guard visibleLimit.load(ordering: .relaxed) == .max else { return }
        // The position was just stored (release): without a full fence the load of `growthWaiters` may pass it
        // (x86 reorders a store with a later load), so a waiter that read the old position while we read no
        // waiters would sleep through the growth (a lost wake-up: an HA sender parked until its heartbeat).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let waiters = flushed || settings.flushDiskType == .asyncFlush
            ? growthWaiters.load(ordering: .sequentiallyConsistent) : committedWaiters.load(ordering: .sequentiallyConsistent)
        if waiters > 0 { growth.withLock { growth.broadcast() } }
    }

    init(settings: CommitLogSettings, queue: MappedFileQueue, checkpoint: StoreCheckpoint,
         log: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.queue = queue
        self.checkpoint = checkpoint
        self.log = log
        waiters = DurabilityWaiters(capacity: settings.pendingWaitersMax, lanes: settings.groupCommitLanes,
                                    wakesRing: settings.runsRingRounds)
    }

    var isFlushFailed: Bool { flushFailedFlag.load(ordering: .relaxed) }

    /// Why an append must be refused now, if it must. The text is built only then.
    func refusal() -> StoreError? {
        if closedFlag.load(ordering: .relaxed) { return StoreError(.storeClosed, "the commit log is closed") }
        if flushFailedFlag.load(ordering: .relaxed) {
            return StoreError(.flushFailed, "an earlier fdatasync failed; appends are refused, reads go on")
        }
        if diskFullFlag.load(ordering: .relaxed) {
            return StoreError(.diskFull, "disk usage is above diskSpaceWarningLevelRatio \(settings.diskSpaceWarningLevelRatio)%; appends are refused until space is freed")
        }
        return nil
    }

    /// One completed flush and how long it took (**Thread:** the flush thread; two relaxed adds and a store).
    func countFlush(nanos: UInt64) {
        flushCount.wrappingAdd(1, ordering: .relaxed)
        flushNanosTotal.wrappingAdd(nanos, ordering: .relaxed)
        flushNanosLast.store(nanos, ordering: .relaxed)
    }
}
