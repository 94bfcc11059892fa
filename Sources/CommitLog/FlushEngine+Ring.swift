#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The io_uring half of `FlushEngine`: the ring thread writes the arena out (coalescing small writes under
/// ASYNC_FLUSH), links an FDATASYNC under SYNC_FLUSH, reaps completions and moves the positions. Under SYNC_FLUSH
/// with `groupCommitLanes` 2 it runs `runSyncRing` instead.
extension FlushEngine {
    /// How the ring thread sleeps: `nap`, while a few bytes wait for more to coalesce with (an append wakes it
    /// once `commitLeastBytes` wait), or `deep`, when the log is quiet (any append wakes it).
    enum RingSleep {
        static let awake: UInt8 = 0
        static let nap: UInt8 = 1
        static let deep: UInt8 = 2
    }

    private struct RingState {
        var inflight = false
        /// When the ring first saw the bytes now waiting to be written (0: none wait).
        var pendingSince: UInt64 = 0
        /// Naps in a row that ended with nothing to write: after one, the ring sleeps deep.
        var idleNaps = 0
        var writeEnd: UInt64 = 0
        var writeExpected = false
        var syncExpected = false
        var syncTarget: UInt64 = 0
        var lastFlush: UInt64 = 0
        var lastThorough: UInt64 = 0
    }

    func runRing() {
        guard let ring, let arena else { return }
        let settings = log.settings
        let sync = settings.flushDiskType == .syncFlush
        // Two lanes: rounds of pwrite + FDATASYNC, two in flight (`FlushEngine+RingSync.swift`); one lane keeps the
        // linked WRITE + FDATASYNC below, one round at a time (through the broker, the pwrite rounds in one lane were no
        // faster and cost 13.50 against 12.80 us/msg, medians of 9 alternating runs).
        if settings.runsRingRounds { return runSyncRing(ring, arena) }
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
                    sleepRing(timeoutNanos: 100_000_000, sleep: RingSleep.deep, sync: sync)
                    continue
                }
                if sync && !done { linger() }
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
                    sleepIdle(&state, sync: sync)
                    continue
                }
                if !state.inflight { continue }  // written by the ring thread itself (see `writeDirectly`)
            }
            guard let (tag, result) = ring.waitCompletion(timeoutNanos: 50_000_000) else { continue }
            reap(tag: tag, result: result, &state, scratch: &scratch)
        }
    }

    /// With nothing submitted: under SYNC_FLUSH sleeps until an append or a waiter arrives; under ASYNC_FLUSH
    /// naps until the bytes waiting are due (or enough arrive), or after a quiet nap sleeps until the next append.
    private func sleepIdle(_ state: inout RingState, sync: Bool) {
        if sync { return sleepRing(timeoutNanos: 100_000_000, sleep: RingSleep.deep, sync: true) }
        let now = monotonicNanos()
        if state.pendingSince != 0 {
            let due = state.pendingSince + commitIntervalNanos
            sleepRing(timeoutNanos: due > now ? due - now : 0, sleep: RingSleep.nap, sync: false)
        } else if state.idleNaps == 0 {
            state.idleNaps = 1
            sleepRing(timeoutNanos: commitIntervalNanos, sleep: RingSleep.nap, sync: false)
        } else {
            sleepRing(timeoutNanos: UInt64(log.settings.flushIntervalCommitLogMillis) * 1_000_000, sleep: RingSleep.deep, sync: false)
        }
    }

    /// Sleeps until an append wakes the ring (see `appended`), a sync waiter arrives, or the timeout passes.
    func sleepRing(timeoutNanos: UInt64, sleep: UInt8, sync: Bool) {
        guard timeoutNanos > 0 else { return }
        ringWake.lock()
        ringSleep.store(sleep, ordering: .sequentiallyConsistent)
        let wrote = log.wroteAtomic.load(ordering: .sequentiallyConsistent)
        let committed = log.committedAtomic.load(ordering: .relaxed)
        let hasWork = wrote - committed >= commitLeastBytes && wrote > committed
            || (sleep == RingSleep.deep && wrote > committed)
            || commitPromptlyUpTo.load(ordering: .sequentiallyConsistent) > committed
            || arenaWaiters.load(ordering: .sequentiallyConsistent) > 0
            || (sync && log.waiters.hasPending)
        if !hasWork && !stopping.load(ordering: .sequentiallyConsistent) {
            ringWake.wait(untilNanos: monotonicNanos() + timeoutNanos)
        }
        ringSleep.store(RingSleep.awake, ordering: .sequentiallyConsistent)
        ringWake.unlock()
    }

    /// ASYNC_FLUSH: true while the bytes waiting should wait for more (fewer than `commitLeastBytes`, younger
    /// than `commitIntervalNanos`, nobody waiting for them).
    private func coalesces(wrote: UInt64, committed: UInt64, now: UInt64, _ state: inout RingState) -> Bool {
        guard wrote > committed else {
            state.pendingSince = 0
            return false
        }
        state.idleNaps = 0
        if state.pendingSince == 0 { state.pendingSince = now }
        return wrote - committed < commitLeastBytes && now - state.pendingSince < commitIntervalNanos
            && commitPromptlyUpTo.load(ordering: .relaxed) <= committed
            && arenaWaiters.load(ordering: .relaxed) == 0
    }

    /// Submits the next WRITE (+ FDATASYNC), or a lone FDATASYNC when only a flush is due.
    private func submitNext(
        _ ring: IORing, _ arena: IOArena, _ state: inout RingState, sync: Bool, force: Bool,
        scratch: inout ContiguousArray<DurabilityWaiter>
    ) throws(StoreError) -> Bool {
        let settings = log.settings
        if sync { log.waiters.beginRound() }
        var wrote = log.wroteAtomic.load(ordering: .sequentiallyConsistent)
        let committed = log.committedAtomic.load(ordering: .relaxed)
        let flushed = log.flushedAtomic.load(ordering: .relaxed)
        let now = monotonicNanos()
        if !sync && !force && coalesces(wrote: wrote, committed: committed, now: now, &state) { wrote = committed }
        let dirty = committed - flushed
        let flushDue = sync || force
            || now - state.lastThorough >= UInt64(settings.flushCommitLogThoroughIntervalMillis) * 1_000_000
            || (now - state.lastFlush >= UInt64(settings.flushIntervalCommitLogMillis) * 1_000_000
                && dirty + (wrote - committed) >= UInt64(settings.flushCommitLogLeastPages * 4096))
        let flushedFile = flushed < committed ? log.queue.file(containing: flushed) : nil
        if let flushedFile, flushDue, wrote <= committed || committed >= flushedFile.fileEndOffset {
            // A flush alone: nothing new to write, or the previous file still has unflushed bytes (synced on its
            // own before writing on).
            ring.prepareSync(fd: flushedFile.fd)
            state.writeExpected = false
            state.syncExpected = true
            state.syncTarget = min(committed, flushedFile.fileEndOffset)
        } else if wrote > committed {
            guard let file = log.queue.file(containing: committed) else { return false }
            let end = min(wrote, file.fileEndOffset)
            let withSync = flushDue
            if !sync && !withSync {
                writeDirectly(file, arena, from: committed, to: end, wrote: wrote, now: now, &state)
                return true
            }
            guard ring.prepareWrite(fd: file.fd, source: arena.pointer(at: committed), count: Int(end - committed),
                                    offset: committed - file.fileFromOffset, sync: withSync) else { return false }
            state.writeEnd = end
            state.pendingSince = end < wrote ? now : 0
            state.writeExpected = true
            state.syncExpected = withSync
            state.syncTarget = end
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

    /// ASYNC_FLUSH without a flush due: the ring thread copies the coalesced bytes into the page cache itself.
    /// A buffered WRITE on the ring is punted to an io-wq worker (ext4 cannot take it without blocking), so the
    /// same copy would cost two more thread hand-offs: waking the worker, and the worker waking the ring.
    private func writeDirectly(_ file: MappedFile, _ arena: IOArena, from committed: UInt64, to end: UInt64,
                               wrote: UInt64, now: UInt64, _ state: inout RingState) {
        state.pendingSince = end < wrote ? now : 0
        let bytes = UnsafeRawBufferPointer(start: arena.pointer(at: committed), count: Int(end - committed))
        do {
            try log.settings.fileIO.pwrite(file.fd, bytes, Int(committed - file.fileFromOffset))
            advanceCommitted(by: bytes.count)
        } catch {
            failFlush(error)
        }
    }

    /// The bytes after `committed` are in the file: readers and appenders waiting for arena room may go on.
    func advanceCommitted(by count: Int) {
        log.committedAtomic.store(log.committedAtomic.load(ordering: .relaxed) + UInt64(count), ordering: .releasing)
        log.notifyGrowth()
        if arenaWaiters.load(ordering: .sequentiallyConsistent) > 0 { arenaRoom.withLock { arenaRoom.broadcast() } }
    }

    private func reap(tag: UInt64, result rawResult: Int32, _ state: inout RingState, scratch: inout ContiguousArray<DurabilityWaiter>) {
        let result = log.settings.fileIO.ringResult(tag == IORing.writeTag ? .write : .fdatasync, rawResult)
        if tag == IORing.writeTag {
            state.writeExpected = false
            if result < 0 {
                failFlush(SyscallError(name: "io_uring write", errno: -result))
            } else {
                advanceCommitted(by: Int(result))
            }
        } else {
            state.syncExpected = false
            if result == 0 {
                let target = min(state.syncTarget, log.committedAtomic.load(ordering: .relaxed))
                log.flushedAtomic.store(target, ordering: .releasing)
                log.countFlush(nanos: monotonicNanos() - state.lastFlush)
                log.notifyGrowth(flushed: true)
                log.checkpoint.physicMsgTimestamp = log.lastStoreTimestamp.load(ordering: .relaxed)
                rounds.population.store(log.waiters.outstanding, ordering: .relaxed)  // before the answers release theirs
                log.waiters.endRound(.putOK, upTo: target, scratch: &scratch)
            } else if result != -ECANCELED {
                failFlush(SyscallError(name: "io_uring fdatasync", errno: -result))
                log.waiters.endRound(.flushFailed, upTo: .max, scratch: &scratch)
            }
        }
        state.inflight = state.writeExpected || state.syncExpected
    }
}
