#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The mmap path's write buffer under SYNC_FLUSH (`CommitLogSettings.usesWriteBuffer`), RocketMQ's transient
/// store pool by another name: appenders copy into the anonymous arena (`IOArena`, as on io_uring), and the
/// group commit, once per round (`FlushEngine+GroupCommit.swift`), writes the appended arena bytes to the file with `pwrite` (split at file
/// ends; a range that wraps the arena is contiguous in its double mapping), publishes them as committed
/// (readable through the file's mapping), makes them durable and answers the waiters they cover.
///
/// Nothing writes through the mapping, so writeback never write-protects a page an appender is writing
/// (`page_mkclean`: a TLB shoot-down of the appending CPU and a fault again per flush), and neither the
/// pre-faulter nor MADV_POPULATE_WRITE is needed. Readers read the mapping up to `committedOffset`, as on
/// io_uring. The group commit sleeps until a put's waiter, a replicated append or an appender waiting for arena
/// room wakes it (`DurabilityWaiters.flusherIdle`).
extension FlushEngine {
    /// Writes the arena bytes from the committed offset to `wrote` into their files, a file at a time, and
    /// publishes each part as committed (waking readers of committed bytes, and appenders waiting for room).
    /// - Returns: the committed offset reached (below `wrote` only when a file is missing).
    func writeBuffered(_ arena: IOArena, upTo wrote: UInt64) throws(SyscallError) -> UInt64 {
        var committed = log.committedAtomic.load(ordering: .relaxed)
        while committed < wrote, let file = log.queue.file(containing: committed) {
            let end = min(wrote, file.fileEndOffset)
            let bytes = UnsafeRawBufferPointer(start: arena.pointer(at: committed), count: Int(end - committed))
            try log.settings.fileIO.pwrite(file.fd, bytes, Int(committed - file.fileFromOffset))
            committed = end
            log.committedAtomic.store(committed, ordering: .releasing)
            log.notifyGrowth()
            if arenaWaiters.load(ordering: .sequentiallyConsistent) > 0 { arenaRoom.withLock { arenaRoom.broadcast() } }
        }
        return committed
    }

    /// Wakes the thread that writes the arena out: the ring, or the write buffer's group commit if it sleeps.
    func wakeWriter() {
        guard ring == nil else { return wakeRing() }
        let waiters = log.waiters
        if waiters.flusherIdle.load(ordering: .sequentiallyConsistent) && waiters.flusherIdle.exchange(false, ordering: .sequentiallyConsistent) {
            waiters.wake.withLock { waiters.wake.signal() }
        }
    }
}
