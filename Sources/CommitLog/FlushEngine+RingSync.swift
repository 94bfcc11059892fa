#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// io_uring under SYNC_FLUSH with `groupCommitLanes` 2: group-commit rounds on the ring thread, two in flight.
///
/// A round: the ring thread moves the pending waiters into the round's lane (`DurabilityWaiters.beginRound`), then
/// reads the write position, `pwrite`s the arena's bytes from the end of the round before it up to there (or to the
/// file's end) itself, and submits one FDATASYNC of that file tagged with the lane. While a round's FDATASYNC is in
/// flight the ring thread also waits (in io_uring, through an eventfd READ) for as many new waiters as that round
/// took, and then starts the next round beside it: concurrent fdatasyncs of one file overlap on this VM (two threads
/// each writing 32 KiB and syncing: ~1.45x the syncs/s of one). A second round started at the first waiter carried
/// 15-16 puts a flush against 25-28 and was no faster (`bench store --producers 32`, 3 runs each way).
/// The bytes are written with `pwrite` on the ring thread, not a linked WRITE, so the committed offset moves in log
/// order without tracking two rounds' write completions; a linked WRITE + FDATASYNC per round measured the same
/// (`bench store --drivers 2`, medians of 3: 54.8k against 55.5k msgs/s; through the broker 39.6k against 42.2k).
/// Measured against one lane (main's linked WRITE + FDATASYNC, one round at a time; release, the shared 2-core VM,
/// alternating runs, noisy): `bench store --producers 32 --drivers 2` medians 55.5k/57.8k/58.8k against
/// 47.5k/52.5k/39.9k msgs/s (three sets of 3; ratio to the ideal 0.458x against 0.326x in the last); blocking
/// `--producers 32` 42.5k/28.8k/35.3k against 31.2k/26.3k/41.4k; through the broker (64 x 1 KiB, 300k messages,
/// 12 alternating runs) 37.2k against 39.4k msgs/s and 13.72 against 12.82 us of broker CPU per message (not
/// profiled; likely the eventfd write and READ completion, and more rounds).
/// So two lanes stay an option, not the default.
///
/// Durability. An fdatasync covers every byte written to the file before it started. A round's bytes are
/// written (`pwrite` returned) before its FDATASYNC is submitted, and rounds are started one after another on one
/// thread, so each round's own sync covers its own bytes (and those of the rounds before it in the same file);
/// no round relies on another's sync for its bytes. A round's waiters all ended at or before the write position it
/// read after taking them, so its sync covers them, except those past the file's end it stopped at, which go back
/// to the pending waiters (`requeue`). Rounds are *decided* in the order they started (`RingRounds.popDecided`),
/// whatever order the kernel completes their syncs in: a round publishes `flushedOffset` and answers PUT_OK only
/// after every round before it succeeded, and answers FLUSH_DISK_FAILED if one failed (`failFlush` is final). That
/// matters for errors: a write-back error is reported to one fdatasync of the file only, perhaps to the earlier
/// round's while the later one's pages were among those lost; and a later round must never be acknowledged while
/// an earlier one (whose bytes precede its own in the log) could still fail.
struct RingRounds {
    struct Round {
        var lane: Int
        /// The start of its bytes (the end of the round before it).
        var from: UInt64 = 0
        /// The end of its bytes: `flushedOffset` once it is decided successful.
        var target: UInt64
        var storeTimestamp: Int64
        var startedNanos: UInt64
        /// Its FDATASYNC's result (0 or -errno); nil while in flight. A round without new bytes has none to wait for.
        var result: Int32?
        /// Whether `result` is an FDATASYNC's (seen through `FileIO.ringResult` when decided, so a test scripts
        /// the result of the oldest round in flight).
        var synced = false
    }

    let lanes: Int
    private var older: Round?
    private var newer: Round?

    init(lanes: Int) { self.lanes = lanes }

    var isEmpty: Bool { older == nil }
    var hasRoom: Bool { older == nil || (lanes > 1 && newer == nil) }
    /// The lane a new round takes: the one the round in flight does not hold.
    var freeLane: Int { older.map { 1 - $0.lane } ?? 0 }

    mutating func start(_ round: Round) {
        precondition(hasRoom, "a round started with every lane in flight")
        if older == nil { older = round } else { newer = round }
    }

    /// Records `lane`'s sync result; false when no round in flight waits for one there.
    mutating func complete(lane: Int, result: Int32) -> Bool {
        if older?.lane == lane && older?.result == nil {
            older?.result = result
        } else if newer?.lane == lane && newer?.result == nil {
            newer?.result = result
        } else {
            return false
        }
        return true
    }

    /// The oldest round and its result, once its sync completed: rounds leave in the order they started.
    mutating func popDecided() -> (round: Round, result: Int32)? {
        guard let first = older, let result = first.result else { return nil }
        older = newer
        newer = nil
        return (first, result)
    }
}

extension FlushEngine {
    func runSyncRing(_ ring: IORing, _ arena: IOArena) {
        let waiters = log.waiters
        var scratch = waiters.makeBuffer()
        var rounds = RingRounds(lanes: waiters.lanes)
        var wakeArmed = false
        var lastTaken = 1
        while true {
            let threshold = lastTaken
            let done = stopping.load(ordering: .sequentiallyConsistent)
            if rounds.isEmpty && log.isFlushFailed {
                for lane in 0..<waiters.lanes { waiters.endRound(lane: lane, .flushFailed, upTo: .max, scratch: &scratch) }
                if done { return }
                sleepRing(timeoutNanos: 100_000_000, sleep: RingSleep.deep, sync: true)
                continue
            }
            if rounds.hasRoom && hasSyncRoundWork(rounds, threshold: threshold) {
                if rounds.isEmpty && !done { linger() }
                let started = startSyncRound(ring, arena, &rounds, armWake: waiters.lanes > 1 && !wakeArmed)
                lastTaken = started.taken
                wakeArmed = wakeArmed || started.armedWake
                decideSyncRounds(&rounds, scratch: &scratch)
                continue
            }
            if rounds.isEmpty {
                if done {
                    try? log.checkpoint.flush()
                    return
                }
                sleepRing(timeoutNanos: 100_000_000, sleep: RingSleep.deep, sync: true)
                continue
            }
            guard let (tag, result) = waitSyncCompletion(ring, rounds, watch: rounds.hasRoom && wakeArmed, threshold: threshold) else {
                continue
            }
            if tag == IORing.wakeTag {
                wakeArmed = false
            } else if tag & 0xff == IORing.syncTag {
                _ = rounds.complete(lane: Int(tag >> IORing.laneShift), result: result)
                decideSyncRounds(&rounds, scratch: &scratch)
            }
        }
    }

    /// Work for a new round. With none in flight: a waiter, bytes not yet written, an appender waiting for arena
    /// room. Beside a round in flight: as many waiters as the last round took (`threshold`), or an appender waiting
    /// for arena room (and bytes to free it). Nothing while a flush failed.
    private func hasSyncRoundWork(_ rounds: RingRounds, threshold: Int) -> Bool {
        guard !log.isFlushFailed else { return false }
        let waiters = log.waiters
        let bytes = log.wroteAtomic.load(ordering: .sequentiallyConsistent) > log.committedAtomic.load(ordering: .acquiring)
        let roomWanted = arenaWaiters.load(ordering: .sequentiallyConsistent) > 0
        if rounds.isEmpty { return bytes || roomWanted || waiters.hasPending }
        return waiters.pendingCount >= max(1, threshold) || (bytes && roomWanted)
    }

    /// Waits up to 50 ms for a completion. With `watch` (a lane free, the wake-up READ armed), an appender whose
    /// waiter brings the pending ones to `threshold` writes the eventfd, which completes that READ. The ring stores
    /// `flusherIdle` and then counts the pending waiters; an appender adds its waiter and then reads `flusherIdle`.
    private func waitSyncCompletion(_ ring: IORing, _ rounds: RingRounds, watch: Bool, threshold: Int) -> (tag: UInt64, result: Int32)? {
        let waiters = log.waiters
        if watch {
            waiters.wakeAtPending.store(max(1, threshold), ordering: .sequentiallyConsistent)
            waiters.ringWaits.store(true, ordering: .sequentiallyConsistent)
            waiters.flusherIdle.store(true, ordering: .sequentiallyConsistent)
            if hasSyncRoundWork(rounds, threshold: threshold) {
                waiters.flusherIdle.store(false, ordering: .sequentiallyConsistent)
                waiters.ringWaits.store(false, ordering: .sequentiallyConsistent)
                return nil
            }
        }
        let completion = ring.waitCompletion(timeoutNanos: 50_000_000)
        if watch {
            waiters.flusherIdle.store(false, ordering: .sequentiallyConsistent)
            waiters.ringWaits.store(false, ordering: .sequentiallyConsistent)
        }
        return completion
    }

    /// Starts a round in the free lane: takes the pending waiters, writes the arena's bytes up to the write position
    /// (or the file's end) with `pwrite`, submits their file's FDATASYNC (and the wake-up READ when `armWake`).
    /// A round without new bytes (its waiters' records are in rounds in flight) or whose write failed is complete at
    /// once, and decided in its turn. Returns how many waiters the round took, and whether the READ was queued.
    private func startSyncRound(_ ring: IORing, _ arena: IOArena, _ rounds: inout RingRounds, armWake: Bool) -> (taken: Int, armedWake: Bool) {
        let lane = rounds.freeLane
        let taken = log.waiters.beginRound(lane: lane)  // before reading the write position: each waiter is covered
        let timestamp = log.lastStoreTimestamp.load(ordering: .relaxed)
        let wrote = log.wroteAtomic.load(ordering: .sequentiallyConsistent)
        let from = log.committedAtomic.load(ordering: .acquiring)  // the end of the round before (written by this thread)
        var round = RingRounds.Round(lane: lane, from: from, target: from, storeTimestamp: timestamp, startedNanos: monotonicNanos(), result: 0)
        guard wrote > from, let file = log.queue.file(containing: from) else {
            rounds.start(round)
            return (taken, false)
        }
        let end = min(wrote, file.fileEndOffset)
        let bytes = UnsafeRawBufferPointer(start: arena.pointer(at: from), count: Int(end - from))
        do {
            try log.settings.fileIO.pwrite(file.fd, bytes, Int(from - file.fileFromOffset))
        } catch {
            failFlush(error)
            round.result = -error.errno
            rounds.start(round)
            return (taken, false)
        }
        advanceCommitted(by: bytes.count)
        let queued = ring.prepareSync(fd: file.fd, tag: IORing.syncTag | UInt64(lane) << IORing.laneShift)
        round.target = end
        round.result = nil
        round.synced = true
        let armed = armWake && log.waiters.ringWakeFD >= 0 && ring.prepareWakeRead(fd: log.waiters.ringWakeFD)
        do throws(StoreError) {
            guard queued else { throw StoreError(.io, "io_uring: no room for an FDATASYNC") }
            try ring.submit()
        } catch {
            failFlush(error.cause ?? SyscallError(name: "io_uring_submit", errno: EIO))
            round.result = -EIO
        }
        rounds.start(round)
        return (taken, armed)
    }

    /// Decides the rounds whose syncs completed, oldest first, stopping at the first still in flight: each publishes
    /// its target and answers its waiters only if it and every round before it succeeded.
    private func decideSyncRounds(_ inFlight: inout RingRounds, scratch: inout ContiguousArray<DurabilityWaiter>) {
        let waiters = log.waiters
        while let decided = inFlight.popDecided() {
            let round = decided.round
            var result = decided.result
            if round.synced { result = log.settings.fileIO.ringResult(.fdatasync, result) }
            if result != 0 {
                failFlush(SyscallError(name: "io_uring fdatasync", errno: -result))
            }
            rounds.population.store(waiters.outstanding, ordering: .relaxed)  // for `linger`, before the answers
            if log.isFlushFailed {
                waiters.endRound(lane: round.lane, .flushFailed, upTo: .max, scratch: &scratch)
                continue
            }
            if round.target > log.flushedAtomic.load(ordering: .relaxed) {
                publishFlushed(round.target, storeTimestamp: round.storeTimestamp, nanos: monotonicNanos() - round.startedNanos)
            }
            waiters.endRound(lane: round.lane, .putOK, upTo: round.target, scratch: &scratch)
            waiters.requeue(lane: round.lane)
        }
    }
}
