#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The mmap path's group commit under SYNC_FLUSH (RocketMQ's `GroupCommitService`), with or without the write
/// buffer (`FlushEngine+Buffer.swift`), in two lanes: two threads, each running whole rounds, so the next round's
/// records can be written and synced while the round before it still answers its waiters (or still syncs).
///
/// A round: the lane holding the baton waits for work (a waiter, bytes to write, an appender waiting for arena
/// room), moves the pending waiters into its in-flight list, writes the buffered bytes (or takes the committed
/// end as its target) and passes the baton on; then, without it, syncs the bytes since the end of the round before
/// it and answers its waiters. While another round is open (started, not yet answered), the next one starts only
/// once as many waiters wait as the last round took, else when that round has answered (see `hasRoundWork`): a
/// round started at once would carry the few waiters that came during the sync, not those being answered.
/// With one lane, every producer answered woke and put while no fdatasync ran (`bench store --producers 32`:
/// about 190 us a round for 20 puts, beside 111 us for the ideal round of 32).
///
/// Durability holds as with one lane. An fdatasync (or msync of a range) covers every byte written to the file
/// before it started, and a round's bytes are written before its baton passes on, so a round's sync covers its
/// own bytes and any of the round before it. Rounds are *decided* in the order they started (`decided`): a
/// round publishes `flushedOffset` and answers only after the round before it succeeded, and fails if that one
/// failed. That matters for errors: a write-back error is reported to one fdatasync of the file only, perhaps to
/// the earlier round's while the later one's pages were among those lost.
final class GroupCommitRounds: @unchecked Sendable {
    /// Held by the lane that waits for work and starts the next round (one lane at a time).
    let baton = ConditionLock()
    private var batonHeld = false
    /// Under `baton`: rounds started, and the end of the bytes the last started round covers.
    var started: UInt64 = 0
    var claimed: UInt64
    /// Rounds between their start and their last answer, and the waiters of the last one started.
    let open = Atomic<Int>(0)
    let lastRoundWaiters = Atomic<Int>(0)
    /// Puts outstanding (waiting, or between their reservation and their waiter) when the last round answered:
    /// the batch a linger waits for (`FlushEngine.linger`).
    let population = Atomic<Int>(0)
    /// Rounds decided (published or failed), in order.
    let verdicts = ConditionLock()
    private var decided: UInt64 = 0

    init(claimed: UInt64) { self.claimed = claimed }

    func takeBaton() {
        baton.lock()
        while batonHeld { baton.wait(untilNanos: monotonicNanos() + 100_000_000) }
        batonHeld = true
        baton.unlock()
    }

    func passBaton() {
        baton.withLock {
            batonHeld = false
            baton.signal()
        }
    }

    /// Runs `decide` once every round started before round `number` was decided.
    func decide(_ number: UInt64, _ decide: () -> Void) {
        verdicts.lock()
        defer { verdicts.unlock() }
        while decided != number { verdicts.wait(untilNanos: monotonicNanos() + 100_000_000) }
        decide()
        decided += 1
        verdicts.broadcast()
    }
}

extension FlushEngine {
    /// One round, from its start to its answers.
    struct Round {
        var number: UInt64
        /// Its bytes: from the end of the round before it to `target`.
        var from: UInt64
        var target: UInt64
        var storeTimestamp: Int64
        var error: SyscallError?
    }

    func runGroupCommit(lane: Int) {
        let waiters = log.waiters
        var scratch = waiters.makeBuffer()
        while true {
            rounds.takeBaton()
            sleepUntilRoundWork()
            if stopping.load(ordering: .acquiring) && !hasRoundWork(stopping: true) {
                try? log.checkpoint.flush()
                rounds.passBaton()
                return
            }
            if rounds.open.load(ordering: .sequentiallyConsistent) == 0 { linger() }
            var round = startRound(lane: lane)
            rounds.open.wrappingAdd(1, ordering: .sequentiallyConsistent)
            rounds.passBaton()
            let started = monotonicNanos()
            if round.error == nil && round.target > round.from {
                do { try syncMapped(from: round.from, to: round.target) } catch { round.error = error }
            }
            var failed = false
            rounds.population.store(waiters.outstanding, ordering: .relaxed)  // before the answers release theirs
            rounds.decide(round.number) {
                if let error = round.error { failFlush(error) }
                failed = log.isFlushFailed
                if !failed && round.target > log.flushedAtomic.load(ordering: .relaxed) {
                    publishFlushed(round.target, storeTimestamp: round.storeTimestamp, nanos: monotonicNanos() - started)
                }
            }
            if failed {
                waiters.endRound(lane: lane, .flushFailed, upTo: .max, scratch: &scratch)
            } else {
                if arena == nil { rearmTail(at: round.target) }  // before the answers: woken appenders would fault first
                waiters.endRound(lane: lane, .putOK, upTo: round.target, scratch: &scratch)
            }
            rounds.open.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            waiters.wakeFlusher()  // the baton holder may wait for this round's end
        }
    }

    /// Under the baton: takes the pending waiters into `lane` and writes the buffered bytes (or takes the
    /// committed end). The round's sync covers from the end of the round before it (or the flushed offset, if a
    /// replica moved it past that) to its target.
    private func startRound(lane: Int) -> Round {
        let number = rounds.started
        rounds.started += 1
        // Before reading the target: every swapped waiter is then covered.
        rounds.lastRoundWaiters.store(log.waiters.beginRound(lane: lane), ordering: .relaxed)
        let timestamp = log.lastStoreTimestamp.load(ordering: .relaxed)
        let from = max(rounds.claimed, log.flushedAtomic.load(ordering: .acquiring))
        var round = Round(number: number, from: from, target: from, storeTimestamp: timestamp)
        guard !log.isFlushFailed else { return round }
        if let arena {
            do {
                round.target = try writeBuffered(arena, upTo: log.wroteAtomic.load(ordering: .sequentiallyConsistent))
            } catch {
                round.error = error
            }
        } else {
            round.target = log.committedAtomic.load(ordering: .acquiring)
        }
        round.target = max(round.target, from)
        rounds.claimed = round.target
        return round
    }

    /// Work for a round: a waiter; bytes appended past the last round's (with the write buffer, or when stopping);
    /// an appender waiting for arena room. Nothing but waiters once a flush failed (those bytes are never written).
    /// While another round is open, a second one starts only once as many waiters wait as the last round took
    /// (`wakeAtPending`), or for arena room: otherwise once that round answered, with every waiter that came meanwhile.
    private func hasRoundWork(stopping: Bool) -> Bool {
        if !stopping && rounds.open.load(ordering: .sequentiallyConsistent) > 0 {
            return log.waiters.pendingCount >= log.waiters.wakeAtPending.load(ordering: .relaxed)
                || arenaWaiters.load(ordering: .sequentiallyConsistent) > 0
        }
        if log.waiters.hasPending { return true }
        guard !log.isFlushFailed else { return false }
        if arena != nil {
            return log.wroteAtomic.load(ordering: .sequentiallyConsistent) > rounds.claimed
                || arenaWaiters.load(ordering: .sequentiallyConsistent) > 0
        }
        return stopping && log.committedAtomic.load(ordering: .acquiring) > rounds.claimed
    }

    /// The baton holder sleeps (100 ms at most) while there is no work for a round. An appender stores its waiter
    /// (or its arena-room wait) and then reads `flusherIdle`; this stores `flusherIdle` and then looks again: one of
    /// them sees the other.
    private func sleepUntilRoundWork() {
        let waiters = log.waiters
        waiters.wake.lock()
        defer { waiters.wake.unlock() }
        let threshold = rounds.open.load(ordering: .sequentiallyConsistent) > 0 ? rounds.lastRoundWaiters.load(ordering: .relaxed) : 1
        waiters.wakeAtPending.store(max(1, threshold), ordering: .sequentiallyConsistent)
        guard !stopping.load(ordering: .acquiring), !hasRoundWork(stopping: false) else { return }
        waiters.flusherIdle.store(true, ordering: .sequentiallyConsistent)
        if !hasRoundWork(stopping: false) && !stopping.load(ordering: .sequentiallyConsistent) {
            waiters.wake.wait(untilNanos: monotonicNanos() + 100_000_000)
        }
        waiters.flusherIdle.store(false, ordering: .sequentiallyConsistent)
    }
}

extension FlushEngine {
    /// The linger (`CommitLogSettings.groupCommitLingerMicros`), before a round starts while no other is open: a
    /// round started at the first waiter carries the few puts that came first, while the producers the last round
    /// answered are still coming back. So while fewer waiters wait than puts were outstanding when the last round
    /// answered (`GroupCommitRounds.population`), this waits, up to `lingerNanos` in all, and ends sooner when they
    /// are all there, when an appender waits for arena room, or after a slice (`lingerSliceNanos`) in which no waiter
    /// came and no put was between its reservation and its waiter. A lone sender never waits: its population is 1.
    func linger() {
        guard lingerNanos > 0 else { return }
        let waiters = log.waiters
        let target = rounds.population.load(ordering: .relaxed)
        var seen = waiters.pendingCount
        guard seen > 0, seen < target else { return }
        let deadline = monotonicNanos() + lingerNanos
        waiters.wake.lock()
        defer { waiters.wake.unlock() }
        waiters.wakeAtPending.store(target, ordering: .sequentiallyConsistent)
        while !stopping.load(ordering: .relaxed) && arenaWaiters.load(ordering: .relaxed) == 0 {
            let now = monotonicNanos()
            guard now < deadline else { return }
            // An appender adds its waiter and then reads `flusherIdle`; this stores it and then counts again.
            waiters.flusherIdle.store(true, ordering: .sequentiallyConsistent)
            if waiters.pendingCount < target { waiters.wake.wait(untilNanos: min(deadline, now + lingerSliceNanos)) }
            waiters.flusherIdle.store(false, ordering: .sequentiallyConsistent)
            let count = waiters.pendingCount
            if count >= target || (count == seen && waiters.outstanding <= count) { return }
            seen = count
        }
    }
}
