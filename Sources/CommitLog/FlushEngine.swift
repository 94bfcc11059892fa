#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The flush pipeline of one commit log, by io path and `flushDiskType`:
/// - mmap + ASYNC_FLUSH: `FlushRealTimeService` (a timer thread flushing every `flushIntervalCommitLog`
///   when `flushCommitLogLeastPages` are dirty, or everything every `flushCommitLogThoroughInterval`);
/// - mmap + SYNC_FLUSH: `GroupCommitService` (one flush covers every waiter that arrived before it; two rounds
///   in flight at once, see `FlushEngine+GroupCommit.swift`); with the write buffer (`CommitLogSettings.usesWriteBuffer`, the default) it first writes the appended arena bytes
///   to the file (`FlushEngine+Buffer.swift`);
/// - io_uring (both): the ring thread writes the arena out (WRITE, linked FDATASYNC under SYNC_FLUSH),
///   reaps completions and advances committed/flushed offsets. Under ASYNC_FLUSH it coalesces: an append wakes
///   it only once `commitCommitLogLeastPages` wait, and fewer are written after `commitIntervalCommitLog`
///   (see `FlushEngine+Ring.swift`); under SYNC_FLUSH the first append after a quiet spell wakes it.
/// Under SYNC_FLUSH a watcher completes waiters still pending at their deadline (`FlushDiskWatcher`).
final class FlushEngine: @unchecked Sendable {
    let log: LogShared
    let arena: IOArena?
    let ring: IORing?
    let stopping = Atomic<Bool>(false)
    private var threads: [StoreThread] = []
    /// The mmap group commit's rounds (`FlushEngine+GroupCommit`).
    let rounds: GroupCommitRounds
    /// The ring thread sleeps here when it has nothing to write; appenders signal it.
    let ringWake = ConditionLock()
    /// `RingSleep`: whether the ring thread sleeps, and what an append must bring to wake it.
    let ringSleep = Atomic<UInt8>(RingSleep.awake)
    /// Appenders that ran a whole arena ahead of the ring wait here.
    let arenaRoom = ConditionLock()
    let arenaWaiters = Atomic<Int>(0)
    private let watcherWake = ConditionLock()
    /// The mmap path's pre-faulter: woken when the write position passes `prefaultTrigger`.
    let prefaultWake = ConditionLock()
    let prefaultTrigger = Atomic<UInt64>(0)
    /// The end of every byte an appender may write (stored under the append lock before it writes), and the
    /// start of the chunk the pre-faulter or the live pre-writer is writing zeros over (`.max`: none); see
    /// `beforeWriting`. Kept on the mmap path and wherever the live file is pre-written (`guardsWrites`).
    let reservedEnd: Atomic<UInt64>
    let zeroFillClaim = Atomic<UInt64>(.max)
    /// Appenders publish `reservedEnd` and respect `zeroFillClaim`: something may write zeros into the live file.
    let guardsWrites: Bool
    /// The live file is pre-written ahead of the writer: under `CommitLogSettings.preWritesLiveFile`, where the file
    /// is written from an arena (pwrite or an io_uring WRITE). Where appends write the mapping itself, it doubled
    /// the minor faults of the appenders and the group commit (the zeros' write-back leaves pages read-only; mmap +
    /// SYNC_FLUSH, release, 64 x 1 KiB: 0.29 to 0.63 per message in a same-run pair of 300k; broker CPU median
    /// 15.3 to 20.4 us/msg over 3 alternating pairs of 600k), so it does not run there.
    let preWritesLiveFile: Bool
    /// The live pre-writer sleeps here between rounds (`FlushEngine+PreWrite`).
    let preWriteWake = ConditionLock()
    /// io_uring: an append wakes the idle ring only once this many bytes wait to be written (0 under
    /// SYNC_FLUSH: a waiter follows every append); fewer are written after `commitIntervalNanos`.
    let commitLeastBytes: UInt64
    let commitIntervalNanos: UInt64
    /// io_uring: bytes below this offset are written at once, not coalesced (a put waits for a slave).
    let commitPromptlyUpTo = Atomic<UInt64>(0)
    /// Under SYNC_FLUSH: how long a round may wait for the puts the last one answered (`linger`; 0: never), and the
    /// longest it waits for the next waiter to come.
    let lingerNanos: UInt64
    let lingerSliceNanos: UInt64

    /// The linger's slice: a waiter comes in a few microseconds from each producer being answered and woken (32
    /// blocking producers on 2 cores: about 5 us apart); a slice with none means the rest are not coming soon.
    static let lingerSliceMaxNanos: UInt64 = 50_000

    private init(log: LogShared, arena: IOArena?, ring: IORing?) {
        self.log = log
        self.arena = arena
        self.ring = ring
        rounds = GroupCommitRounds(claimed: log.flushedAtomic.load(ordering: .acquiring))
        let settings = log.settings
        commitLeastBytes = settings.flushDiskType == .syncFlush ? 0 : UInt64(settings.commitCommitLogLeastPages * 4096)
        commitIntervalNanos = UInt64(settings.commitIntervalCommitLogMillis) * 1_000_000
        lingerNanos = settings.flushDiskType == .syncFlush ? UInt64(max(0, settings.groupCommitLingerMicros)) * 1000 : 0
        lingerSliceNanos = min(lingerNanos, FlushEngine.lingerSliceMaxNanos)
        reservedEnd = Atomic(log.wroteAtomic.load(ordering: .acquiring))
        preWritesLiveFile = arena != nil && settings.preWritesLiveFile
        guardsWrites = arena == nil || preWritesLiveFile
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
        } else if settings.usesWriteBuffer {
            engine = FlushEngine(log: log, arena: try IOArena(size: settings.arenaSizeBytes), ring: nil)
            engine.startGroupCommit()
        } else {
            engine = FlushEngine(log: log, arena: nil, ring: nil)
            switch settings.flushDiskType {
            case .asyncFlush: engine.threads.append(StoreThread(name: "flush-realtime") { [engine] in engine.runRealTime() })
            case .syncFlush: engine.startGroupCommit()
            }
            if settings.prefaultAheadBytes > 0 {
                engine.threads.append(StoreThread(name: "prefault") { [engine] in engine.runPrefault() })
            }
        }
        if settings.flushDiskType == .syncFlush {
            engine.threads.append(StoreThread(name: "flush-watcher") { [engine] in engine.runWatcher() })
        }
        if engine.preWritesLiveFile {
            engine.threads.append(StoreThread(name: "live-prewrite") { [engine] in engine.runLivePreWrite() })
        }
        return engine
    }

    /// The mmap group commit (SYNC_FLUSH): its lanes (`groupCommitLanes`, as `DurabilityWaiters.lanes` holds them).
    private func startGroupCommit() {
        for lane in 0..<log.waiters.lanes {
            threads.append(StoreThread(name: "group-commit-\(lane)") { [self] in runGroupCommit(lane: lane) })
        }
    }

    /// Writes and flushes everything appended, completes every waiter, and joins the threads.
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        ringWake.withLock { ringWake.broadcast() }
        log.waiters.wake.withLock { log.waiters.wake.broadcast() }
        watcherWake.withLock { watcherWake.broadcast() }
        prefaultWake.withLock { prefaultWake.broadcast() }
        preWriteWake.withLock { preWriteWake.broadcast() }
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
        // The position was stored (sequentially consistent) before this load: either the ring, going to
        // sleep, sees it, or this sees the ring idle. One appender takes the wake-up; the rest see it taken.
        let sleep = ringSleep.load(ordering: .sequentiallyConsistent)
        guard sleep != RingSleep.awake else { return }
        guard sleep == RingSleep.deep || wrote - log.committedAtomic.load(ordering: .relaxed) >= commitLeastBytes
                || wrote <= commitPromptlyUpTo.load(ordering: .relaxed) else { return }
        wakeRing()
    }

    /// Wakes the ring thread if it sleeps (one caller wins the wake-up).
    @inline(__always)
    func wakeRing() {
        guard ringSleep.exchange(RingSleep.awake, ordering: .sequentiallyConsistent) != RingSleep.awake else { return }
        ringWake.withLock { ringWake.signal() }
    }

    /// io_uring: writes the log up to `offset` without waiting for more bytes to coalesce (a reader, such as
    /// a slave's connection, waits for them).
    func commitPromptly(upTo offset: UInt64) {
        guard arena != nil, commitLeastBytes > 0 else { return }
        var current = commitPromptlyUpTo.load(ordering: .relaxed)
        while current < offset {
            let (exchanged, original) = commitPromptlyUpTo.compareExchange(expected: current, desired: offset, ordering: .sequentiallyConsistent)
            if exchanged { break }
            current = original
        }
        if log.committedAtomic.load(ordering: .sequentiallyConsistent) < offset { wakeRing() }
    }

    /// Blocks the appender while the arena holds `size` bytes not yet written to the file.
    func waitForArenaRoom(end: UInt64) throws(StoreError) {
        guard let arena else { return }
        let limit = UInt64(arena.size)
        if end - log.committedAtomic.load(ordering: .acquiring) <= limit { return }
        arenaWaiters.wrappingAdd(1, ordering: .sequentiallyConsistent)
        wakeWriter()  // coalescing holds nothing back while an appender waits for room
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
    func flushMapped(to target: UInt64, storeTimestamp: Int64) throws(SyscallError) {
        let started = monotonicNanos()
        try syncMapped(from: log.flushedAtomic.load(ordering: .relaxed), to: target)
        publishFlushed(target, storeTimestamp: storeTimestamp, nanos: monotonicNanos() - started)
    }

    /// Makes the log's bytes from `from` to `target` durable, file by file (msync of the range or fdatasync).
    func syncMapped(from start: UInt64, to target: UInt64) throws(SyscallError) {
        var from = start
        while from < target {
            guard let file = log.queue.file(containing: from) else { break }
            let to = min(target, file.fileEndOffset)
            try file.flush(from: Int(from - file.fileFromOffset), to: Int(to - file.fileFromOffset),
                           method: log.settings.flushMethod, io: log.settings.fileIO)
            from = to
        }
    }

    /// Publishes `target` as flushed after a flush that took `nanos`, with the store time of its last message.
    func publishFlushed(_ target: UInt64, storeTimestamp: Int64, nanos: UInt64) {
        log.flushedAtomic.store(target, ordering: .releasing)
        log.countFlush(nanos: nanos)
        if log.settings.flushDiskType == .syncFlush { log.notifyGrowth(flushed: true) }
        if storeTimestamp > 0 { log.checkpoint.physicMsgTimestamp = storeTimestamp }
    }

    /// A flush to `target` left the page being appended to (and maybe pages after it) clean and read-only:
    /// fault the next 64 KiB back in here, after the waiters were answered, not in the appends into them.
    func rearmTail(at target: UInt64) {
        let window = min(64 << 10, log.settings.prefaultAheadBytes)
        guard window > 0, let file = log.queue.file(containing: target) else { return }
        file.rearm(from: Int(target - file.fileFromOffset), bytes: window)
    }

    func failFlush(_ error: SyscallError) {
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
}

extension CommitLog {
    /// io_uring + ASYNC_FLUSH: writes the log up to `offset` to the file at once instead of coalescing it with
    /// later appends, for a reader that waits for those bytes (a slave's connection sends written bytes only).
    /// Nothing happens on the mmap path or under SYNC_FLUSH, where appends are written at once.
    public func commitPromptly(upTo offset: UInt64) {
        flushEngine?.commitPromptly(upTo: offset)
    }
}
