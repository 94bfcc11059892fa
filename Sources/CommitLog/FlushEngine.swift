#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The flush pipeline of one commit log, by io path and `flushDiskType`:
/// - mmap + ASYNC_FLUSH: `FlushRealTimeService` (a timer thread flushing every `flushIntervalCommitLog`
///   when `flushCommitLogLeastPages` are dirty, or everything every `flushCommitLogThoroughInterval`);
/// - mmap + SYNC_FLUSH: `GroupCommitService` (one flush covers every waiter that arrived before it);
/// - io_uring (both): the ring thread writes the arena out (WRITE, linked FDATASYNC under SYNC_FLUSH),
///   reaps completions and advances committed/flushed offsets.
/// Under SYNC_FLUSH a watcher completes waiters still pending at their deadline (`FlushDiskWatcher`).
final class FlushEngine: @unchecked Sendable {
    let log: LogShared
    let arena: IOArena?
    private let ring: IORing?
    let stopping = Atomic<Bool>(false)
    private var threads: [StoreThread] = []
    /// The ring thread sleeps here when it has nothing to write; appenders signal it.
    private let ringWake = ConditionLock()
    private let ringIdle = Atomic<Bool>(false)
    /// Appenders that ran a whole arena ahead of the ring wait here.
    private let arenaRoom = ConditionLock()
    private let arenaWaiters = Atomic<Int>(0)
    private let watcherWake = ConditionLock()
    /// The mmap path's pre-faulter: woken when the write position passes `prefaultTrigger`.
    private let prefaultWake = ConditionLock()
    let prefaultTrigger = Atomic<UInt64>(0)

    private init(log: LogShared, arena: IOArena?, ring: IORing?) {
        self.log = log
        self.arena = arena
        self.ring = ring
    }

    static func start(for log: LogShared) throws(StoreError) -> FlushEngine {
        let settings = log.settings
        let engine: FlushEngine
        if settings.ioPath == .ioUring {
            let ring = try IORing(entries: settings.ioUringQueueDepth)
            let arena = try IOArena(size: settings.ioUringArenaSizeBytes)
            ring.register(arena)
            engine = FlushEngine(log: log, arena: arena, ring: ring)
            engine.threads.append(StoreThread(name: "io-uring-ring") { [engine] in engine.runRing() })
        } else {
            engine = FlushEngine(log: log, arena: nil, ring: nil)
            switch settings.flushDiskType {
            case .asyncFlush: engine.threads.append(StoreThread(name: "flush-realtime") { [engine] in engine.runRealTime() })
            case .syncFlush: engine.threads.append(StoreThread(name: "group-commit") { [engine] in engine.runGroupCommit() })
            }
            if settings.prefaultAheadBytes > 0 {
                engine.threads.append(StoreThread(name: "prefault") { [engine] in engine.runPrefault() })
            }
        }
        if settings.flushDiskType == .syncFlush {
            engine.threads.append(StoreThread(name: "flush-watcher") { [engine] in engine.runWatcher() })
        }
        return engine
    }

    /// Writes and flushes everything appended, completes every waiter, and joins the threads.
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        ringWake.withLock { ringWake.broadcast() }
        log.waiters.wake.withLock { log.waiters.wake.broadcast() }
        watcherWake.withLock { watcherWake.broadcast() }
        prefaultWake.withLock { prefaultWake.broadcast() }
        arenaRoom.withLock { arenaRoom.broadcast() }
        for thread in threads { thread.join() }
        threads.removeAll()
    }

    // MARK: Hot-path hooks (appender threads, under the append lock)

    @inline(__always)
    func appended(wrote: UInt64) {
        if arena == nil {
            if wrote >= prefaultTrigger.load(ordering: .relaxed) {
                prefaultTrigger.store(.max, ordering: .relaxed)  // one signal until the thread re-arms it
                prefaultWake.withLock { prefaultWake.signal() }
            }
            return
        }
        guard ringIdle.load(ordering: .sequentiallyConsistent) else { return }
        ringWake.withLock { ringWake.signal() }
    }

    /// Keeps the pages from the write position to `prefaultAheadBytes` beyond it faulted in and writable.
    /// MADV_POPULATE_WRITE prepares the page tables as a write would, without touching the bytes, so it
    /// is safe while appenders write into the same pages.
    private func runPrefault() {
        let window = UInt64(log.settings.prefaultAheadBytes)
        let page = UInt64(getpagesize())
        var populated = log.wroteAtomic.load(ordering: .acquiring)
        populated -= populated % page
        let populateWrite: Int32 = 23  // MADV_POPULATE_WRITE (Linux 5.14)
        while !stopping.load(ordering: .acquiring) {
            let wrote = log.wroteAtomic.load(ordering: .acquiring)
            if populated < wrote { populated = wrote - wrote % page }
            let target = wrote + window
            while populated < target, let file = log.queue.file(containing: populated) {
                let end = min(target, file.fileEndOffset)
                // madvise wants a page-aligned start (an unaligned one fails with EINVAL, leaving the window cold).
                let start = Int(populated - file.fileFromOffset) / Int(page) * Int(page)
                if madvise(file.base + start, Int(end - file.fileFromOffset) - start, populateWrite) != 0 { break }
                populated = end
            }
            // Wake again when the writer is half a window from the populated end, or (when nothing could
            // be populated: no file yet, or the end of the last one) after it moved on a quarter window.
            prefaultTrigger.store(max(wrote + window / 4, populated - min(populated, window / 2)), ordering: .relaxed)
            prefaultWake.withLock {
                if !stopping.load(ordering: .relaxed) && prefaultTrigger.load(ordering: .relaxed) > log.wroteAtomic.load(ordering: .relaxed) {
                    prefaultWake.wait(untilNanos: monotonicNanos() + 100_000_000)
                }
            }
        }
    }

    /// Blocks the appender while the arena holds `size` bytes not yet written to the file.
    func waitForArenaRoom(end: UInt64) throws(StoreError) {
        guard let arena else { return }
        let limit = UInt64(arena.size)
        if end - log.committedAtomic.load(ordering: .acquiring) <= limit { return }
        arenaWaiters.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { arenaWaiters.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        arenaRoom.lock()
        defer { arenaRoom.unlock() }
        while end - log.committedAtomic.load(ordering: .acquiring) > limit {
            if let refusal = log.refusal() { throw refusal }
            if stopping.load(ordering: .relaxed) { throw StoreError(.storeClosed, "the commit log is closing") }
            arenaRoom.wait(untilNanos: monotonicNanos() + 100_000_000)
        }
    }

    // MARK: mmap flushing

    /// Flushes the mapping from `flushedOffset` to `target`, file by file, then publishes the new
    /// flushed offset and the store time of the last message it covers.
    private func flushMapped(to target: UInt64, storeTimestamp: Int64) throws(SyscallError) {
        var from = log.flushedAtomic.load(ordering: .relaxed)
        let started = monotonicNanos()
        while from < target {
            guard let file = log.queue.file(containing: from) else { break }
            let to = min(target, file.fileEndOffset)
            try file.flush(from: Int(from - file.fileFromOffset), to: Int(to - file.fileFromOffset),
                           method: log.settings.flushMethod, io: log.settings.fileIO)
            from = to
        }
        log.flushedAtomic.store(target, ordering: .releasing)
        log.countFlush(nanos: monotonicNanos() - started)
        if log.settings.flushDiskType == .syncFlush { log.notifyGrowth() }
        if storeTimestamp > 0 { log.checkpoint.physicMsgTimestamp = storeTimestamp }
    }

    /// A flush to `target` left the page being appended to (and maybe pages after it) clean and read-only:
    /// fault the next 64 KiB back in here, after the waiters were answered, not in the appends into them.
    private func rearmTail(at target: UInt64) {
        let window = min(64 << 10, log.settings.prefaultAheadBytes)
        guard window > 0, let file = log.queue.file(containing: target) else { return }
        file.rearm(from: Int(target - file.fileFromOffset), bytes: window)
    }

    private func failFlush(_ error: SyscallError) {
        // A failed fdatasync is never retried: the kernel may have dropped those pages.
        if !log.flushFailedFlag.exchange(true, ordering: .sequentiallyConsistent) {
            log.log("commitlog: \(error); appends are refused from now on, reads go on")
        }
    }

    private func runRealTime() {
        let settings = log.settings
        let intervalNanos = UInt64(settings.flushIntervalCommitLogMillis) * 1_000_000
        let thoroughNanos = UInt64(settings.flushCommitLogThoroughIntervalMillis) * 1_000_000
        let leastBytes = UInt64(settings.flushCommitLogLeastPages * 4096)
        var lastThorough = monotonicNanos()
        while true {
            let done = stopping.load(ordering: .acquiring)
            if !done {
                ringWake.withLock { ringWake.wait(untilNanos: monotonicNanos() + intervalNanos) }
            }
            let now = monotonicNanos()
            let thorough = done || now - lastThorough >= thoroughNanos
            let timestamp = log.lastStoreTimestamp.load(ordering: .relaxed)
            let target = log.committedAtomic.load(ordering: .acquiring)
            let flushed = log.flushedAtomic.load(ordering: .relaxed)
            let crossesFile = target > flushed && target / UInt64(log.queue.fileSize) != flushed / UInt64(log.queue.fileSize)
            if target > flushed && (thorough || crossesFile || target - flushed >= leastBytes) && !log.isFlushFailed {
                do {
                    try flushMapped(to: target, storeTimestamp: timestamp)
                    rearmTail(at: target)
                } catch { failFlush(error) }
            }
            if thorough {
                lastThorough = now
                try? log.checkpoint.flush()
            }
            if done { return }
        }
    }

    private func runGroupCommit() {
        let waiters = log.waiters
        var scratch = waiters.makeBuffer()
        while true {
            waiters.wake.lock()
            if !waiters.hasPending && !stopping.load(ordering: .acquiring) {
                waiters.flusherIdle.store(true, ordering: .sequentiallyConsistent)
                if !waiters.hasPending {
                    waiters.wake.wait(untilNanos: monotonicNanos() + 100_000_000)
                }
                waiters.flusherIdle.store(false, ordering: .sequentiallyConsistent)
            }
            waiters.wake.unlock()
            let done = stopping.load(ordering: .acquiring)
            waiters.beginRound()  // before reading the target: every swapped waiter is then covered
            let timestamp = log.lastStoreTimestamp.load(ordering: .relaxed)
            let target = log.committedAtomic.load(ordering: .acquiring)
            if log.isFlushFailed {
                waiters.endRound(.flushFailed, upTo: .max, scratch: &scratch)
            } else {
                do {
                    if target > log.flushedAtomic.load(ordering: .relaxed) {
                        try flushMapped(to: target, storeTimestamp: timestamp)
                        rearmTail(at: target)  // before the answers: woken appenders would fault first
                    }
                    waiters.endRound(.putOK, upTo: target, scratch: &scratch)
                } catch {
                    failFlush(error)
                    waiters.endRound(.flushFailed, upTo: .max, scratch: &scratch)
                }
            }
            if done && !waiters.hasPending {
                try? log.checkpoint.flush()
                return
            }
        }
    }

    private func runWatcher() {
        let waiters = log.waiters
        var scratch = waiters.makeBuffer()
        let slice = UInt64(max(1, log.settings.syncFlushTimeoutMillis / 2)) * 1_000_000
        while !stopping.load(ordering: .acquiring) {
            let now = monotonicNanos()
            let earliest = waiters.expire(now: now, scratch: &scratch) ?? .max
            watcherWake.withLock {
                if !stopping.load(ordering: .relaxed) { watcherWake.wait(untilNanos: min(earliest, now + slice)) }
            }
        }
    }

    // MARK: io_uring

    private struct RingState {
        var inflight = false
        var writeEnd: UInt64 = 0
        var writeExpected = false
        var syncExpected = false
        var syncTarget: UInt64 = 0
        var lastFlush: UInt64 = 0
        var lastThorough: UInt64 = 0
    }

    private func runRing() {
        guard let ring, let arena else { return }
        let settings = log.settings
        let sync = settings.flushDiskType == .syncFlush
        let waiters = log.waiters
        var scratch = waiters.makeBuffer()
        var state = RingState()
        state.lastFlush = monotonicNanos()
        state.lastThorough = state.lastFlush
        while true {
            if !state.inflight {
                let done = stopping.load(ordering: .sequentiallyConsistent)
                if log.isFlushFailed {
                    waiters.beginRound()
                    waiters.endRound(.flushFailed, upTo: .max, scratch: &scratch)
                    if done { return }
                    sleepRing(timeoutNanos: 100_000_000, sync: sync)
                    continue
                }
                let submitted: Bool
                do { submitted = try submitNext(ring, arena, &state, sync: sync, force: done, scratch: &scratch) } catch {
                    failFlush(error.cause ?? SyscallError(name: "io_uring_submit", errno: EIO))
                    continue
                }
                if !submitted {
                    if done {
                        try? log.checkpoint.flush()
                        return
                    }
                    sleepRing(timeoutNanos: sync ? 100_000_000 : UInt64(settings.flushIntervalCommitLogMillis) * 1_000_000, sync: sync)
                    continue
                }
            }
            guard let (tag, result) = ring.waitCompletion(timeoutNanos: 50_000_000) else { continue }
            reap(tag: tag, result: result, &state, scratch: &scratch)
        }
    }

    /// Sleeps until an append (or a sync waiter) arrives or the timeout passes.
    private func sleepRing(timeoutNanos: UInt64, sync: Bool) {
        ringWake.lock()
        ringIdle.store(true, ordering: .sequentiallyConsistent)
        let hasWork = log.wroteAtomic.load(ordering: .sequentiallyConsistent) > log.committedAtomic.load(ordering: .relaxed)
            || (sync && log.waiters.hasPending)
        if !hasWork && !stopping.load(ordering: .sequentiallyConsistent) {
            ringWake.wait(untilNanos: monotonicNanos() + timeoutNanos)
        }
        ringIdle.store(false, ordering: .sequentiallyConsistent)
        ringWake.unlock()
    }

    /// Submits the next WRITE (+ FDATASYNC), or a lone FDATASYNC when only a flush is due.
    private func submitNext(
        _ ring: IORing, _ arena: IOArena, _ state: inout RingState, sync: Bool, force: Bool,
        scratch: inout ContiguousArray<DurabilityWaiter>
    ) throws(StoreError) -> Bool {
        let settings = log.settings
        if sync { log.waiters.beginRound() }
        let wrote = log.wroteAtomic.load(ordering: .sequentiallyConsistent)
        let committed = log.committedAtomic.load(ordering: .relaxed)
        let flushed = log.flushedAtomic.load(ordering: .relaxed)
        let now = monotonicNanos()
        let dirty = committed - flushed
        let flushDue = sync || force
            || now - state.lastThorough >= UInt64(settings.flushCommitLogThoroughIntervalMillis) * 1_000_000
            || (now - state.lastFlush >= UInt64(settings.flushIntervalCommitLogMillis) * 1_000_000
                && dirty + (wrote - committed) >= UInt64(settings.flushCommitLogLeastPages * 4096))
        let flushedFile = flushed < committed ? log.queue.file(containing: flushed) : nil
        if let flushedFile, flushDue, committed > flushedFile.fileEndOffset || (wrote > committed && committed == flushedFile.fileEndOffset) {
            // The previous file still has unflushed bytes: sync it on its own before writing on.
            ring.prepareSync(fd: flushedFile.fd)
            state.writeExpected = false
            state.syncExpected = true
            state.syncTarget = min(committed, flushedFile.fileEndOffset)
        } else if wrote > committed {
            guard let file = log.queue.file(containing: committed) else { return false }
            let end = min(wrote, file.fileEndOffset)
            let withSync = flushDue
            guard ring.prepareWrite(fd: file.fd, source: arena.pointer(at: committed), count: Int(end - committed),
                                    offset: committed - file.fileFromOffset, sync: withSync) else { return false }
            state.writeEnd = end
            state.writeExpected = true
            state.syncExpected = withSync
            state.syncTarget = end
        } else if let flushedFile, flushDue {
            ring.prepareSync(fd: flushedFile.fd)
            state.writeExpected = false
            state.syncExpected = true
            state.syncTarget = min(committed, flushedFile.fileEndOffset)
        } else {
            if sync { log.waiters.endRound(.putOK, upTo: flushed, scratch: &scratch) }
            return false
        }
        if state.syncExpected {
            state.lastFlush = now
            if state.syncTarget == committed || wrote == state.syncTarget { state.lastThorough = now }
        }
        try ring.submit()
        state.inflight = true
        return true
    }

    private func reap(tag: UInt64, result rawResult: Int32, _ state: inout RingState, scratch: inout ContiguousArray<DurabilityWaiter>) {
        let result = log.settings.fileIO.ringResult(tag == IORing.writeTag ? .write : .fdatasync, rawResult)
        if tag == IORing.writeTag {
            state.writeExpected = false
            let committed = log.committedAtomic.load(ordering: .relaxed)
            if result < 0 {
                failFlush(SyscallError(name: "io_uring write", errno: -result))
            } else {
                log.committedAtomic.store(committed + UInt64(result), ordering: .releasing)
                log.notifyGrowth()
                if arenaWaiters.load(ordering: .sequentiallyConsistent) > 0 { arenaRoom.withLock { arenaRoom.broadcast() } }
            }
        } else {
            state.syncExpected = false
            if result == 0 {
                let target = min(state.syncTarget, log.committedAtomic.load(ordering: .relaxed))
                log.flushedAtomic.store(target, ordering: .releasing)
                log.countFlush(nanos: monotonicNanos() - state.lastFlush)
                log.notifyGrowth()
                log.checkpoint.physicMsgTimestamp = log.lastStoreTimestamp.load(ordering: .relaxed)
                log.waiters.endRound(.putOK, upTo: target, scratch: &scratch)
            } else if result != -ECANCELED {
                failFlush(SyscallError(name: "io_uring fdatasync", errno: -result))
                log.waiters.endRound(.flushFailed, upTo: .max, scratch: &scratch)
            }
        }
        state.inflight = state.writeExpected || state.syncExpected
    }
}
