#if canImport(Glibc)
import Glibc
#endif
import CStoreKernels
import Synchronization

/// The in-order "written up to" mark of appends that copy outside the append lock.
///
/// Under the lock an append only reserves its bytes and takes the next sequence number (a ticket);
/// it encodes and copies after releasing the lock, then completes its ticket. The log's end
/// (`wroteOffset`, and `committedOffset` on the mmap path) moves only over completed tickets, in
/// ticket order: a reader or flusher never sees, nor persists as committed, a record whose bytes are
/// still being written, nor one behind such a hole. Whoever completes the ticket the mark waits for
/// publishes it and every later ticket already completed, so a preempted copier holds the mark back
/// only until it runs again. An append returns once the mark covers it (as when it published under
/// the lock), so `append` returned means readable, and a SYNC_FLUSH waiter is always covered by the
/// next group commit's target.
///
/// A crash meanwhile leaves at most unpublished bytes past the mark, possibly with holes; recovery
/// stops at the first invalid record, as it does at any torn tail.
final class AppendSequencer: @unchecked Sendable {
    /// Tickets in flight at most (reserved, not yet published); a power of two.
    static let slotCount = 256
    /// Each slot takes a cache line: [0] the end offset of a completed ticket, [1] its store timestamp, [2] the
    /// completed ticket + 1 (0: none). The claim compares [2] with the exact ticket wanted: a slot is shared by
    /// tickets `slotCount` apart, and a completer that read `published` long ago must not take a later
    /// ticket's slot for the one it read. Neighbouring tickets are completed by different threads.
    private static let stride = 8
    private let slots: UnsafeMutablePointer<Atomic<UInt64>>
    /// The first ticket not yet published: every ticket below it is covered by the log's end.
    let published = Atomic<UInt64>(0)

    init() {
        let count = AppendSequencer.slotCount * AppendSequencer.stride
        slots = .allocate(capacity: count)
        for index in 0..<count { (slots + index).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: AppendSequencer.slotCount * AppendSequencer.stride)
        slots.deallocate()
    }

    @inline(__always)
    private func slot(_ ticket: UInt64) -> Int { Int(ticket & UInt64(AppendSequencer.slotCount - 1)) * AppendSequencer.stride }

    /// Under the append lock: the next ticket. Waits (without the lock being needed by anyone it waits
    /// for) while `slotCount` tickets are in flight.
    @inline(__always)
    func take(_ next: inout UInt64) -> UInt64 {
        let ticket = next
        if ticket - published.load(ordering: .acquiring) >= UInt64(AppendSequencer.slotCount) {
            pause { ticket - published.load(ordering: .acquiring) >= UInt64(AppendSequencer.slotCount) }
        }
        next += 1
        return ticket
    }

    /// Records that `ticket`'s bytes, up to `end`, are written, then publishes every ticket now
    /// complete in order: `publish(end, timestamp)` one ticket at a time, in ticket order, never
    /// concurrently; `announce(end)` after the last of a run (wake-ups). Both run before the ticket
    /// counts as published, so `drain` returns only once no thread is inside either.
    ///
    /// The head of the line (`published` is its ticket: the usual case, and always with one appender) publishes
    /// itself without marking its slot: no other thread can claim a slot not marked complete, so no claim is
    /// needed. Its slot is marked only when it must wait for tickets before it.
    @inline(__always)
    func complete(_ ticket: UInt64, end: UInt64, timestamp: Int64, publish: (UInt64, Int64) -> Void,
                  announce: (UInt64) -> Void) {
        if published.load(ordering: .sequentiallyConsistent) == ticket {
            publishOne(ticket, end: end, timestamp: timestamp, publish: publish, announce: announce)
        } else {
            let at = slot(ticket)
            slots[at].store(end, ordering: .relaxed)
            slots[at + 1].store(UInt64(bitPattern: timestamp), ordering: .relaxed)
            slots[at + 2].store(ticket + 1, ordering: .sequentiallyConsistent)
        }
        while true {
            let next = published.load(ordering: .sequentiallyConsistent)
            let index = slot(next)
            // Not completed yet (its completer will carry on), or claimed by another thread (which will). The
            // plain look first: a failed compare-exchange costs as much as a successful one.
            guard slots[index + 2].load(ordering: .sequentiallyConsistent) == next + 1,
                  slots[index + 2].compareExchange(expected: next + 1, desired: 0, ordering: .sequentiallyConsistent).exchanged
            else { return }
            publishOne(next, end: slots[index].load(ordering: .relaxed),
                       timestamp: Int64(bitPattern: slots[index + 1].load(ordering: .relaxed)), publish: publish, announce: announce)
        }
    }

    /// Publishes `ticket` (this thread alone may: it claimed it, or is the head of the line), announcing when it
    /// ends a run; when the next completes after this look, its claimer (or itself, as the head) announces.
    @inline(__always)
    private func publishOne(_ ticket: UInt64, end: UInt64, timestamp: Int64, publish: (UInt64, Int64) -> Void,
                            announce: (UInt64) -> Void) {
        publish(end, timestamp)
        if slots[slot(ticket + 1) + 2].load(ordering: .sequentiallyConsistent) != ticket + 2 { announce(end) }
        published.store(ticket + 1, ordering: .sequentiallyConsistent)
    }

    /// Waits until `ticket` is published (the log's end covers it).
    @inline(__always)
    func waitPublished(_ ticket: UInt64) {
        if published.load(ordering: .acquiring) > ticket { return }
        pause { published.load(ordering: .acquiring) <= ticket }
    }

    /// Under the append lock: waits until every ticket taken so far is published, so the caller sees the
    /// log's end equal to the reserved end (truncation, replicated appends, close).
    func drain(_ next: UInt64) {
        if published.load(ordering: .acquiring) >= next { return }
        pause { published.load(ordering: .acquiring) < next }
    }

    /// Spins briefly, then yields the CPU, while `condition` holds. What it waits for is a copy of at
    /// most one record (or batch) by a running or runnable thread.
    @inline(never)
    private func pause(while condition: () -> Bool) {
        var spins = 0
        while condition() {
            if spins < 100 {
                spins += 1
            } else {
                sched_yield()
            }
        }
    }
}

extension CommitLog {
    /// Room for `bytes` taken under the append lock, to be written (`writeRecord`) with or without it.
    struct Reservation: @unchecked Sendable {
        var ticket: UInt64
        var position: UInt64
        var target: UnsafeMutableRawPointer
        var timestamp: Int64
    }

    /// Under the append lock: reserves `bytes` (`reserve`), stamps the store time and takes a ticket.
    /// - Parameter now: the store clock, read before the lock (a clock read takes as long as the rest of the
    ///   critical section). The stamp is never before the previous record's, as if read under the lock: an
    ///   appender that read the clock first may take the lock second. A clock stepped back by more than a
    ///   second is followed at once.
    @inline(__always)
    func reservation(_ state: inout AppendState, bytes: Int, now: Int64) throws(StoreError) -> Reservation {
        let position = try reserve(&state, bytes: bytes)
        let timestamp = now >= state.timestamp || state.timestamp - now > 1_000 ? now : state.timestamp
        let reserved = Reservation(ticket: sequencer.take(&state.nextTicket), position: position,
                                   target: writePointer(at: position, in: state), timestamp: timestamp)
        state.wrote = position + UInt64(bytes)
        state.timestamp = timestamp
        return reserved
    }

    /// Encodes one reserved record and returns once the log's end covers it.
    ///
    /// The bytes after it, where the next append most likely goes, are fetched for writing first: publishing
    /// (`finish`) fences, and a fence waits until every store before it reached the cache, so a record written
    /// over lines not yet in the cache made each append wait for its own misses, one record at a time (the
    /// `xchg` that moves `published` took ~40% of `append`'s own time in `bench store --flush async`).
    @inline(__always)
    func writeRecord(_ message: MessageView, size: Int, bodyCRC: UInt32, _ reserved: Reservation) {
        store_prefetch_for_write(reserved.target + size, size)
        MessageRecord.encode(message, size: size, bodyCRC: bodyCRC, storeHost: settings.storeHost,
                             physicalOffset: Int64(reserved.position), storeTimestamp: reserved.timestamp, into: reserved.target)
        finish(reserved.ticket, end: reserved.position + UInt64(size), timestamp: reserved.timestamp)
    }

    /// Completes `ticket` (its bytes up to `end` are written), publishes what is now complete in order,
    /// and waits until the log's end covers `ticket`.
    @inline(__always)
    func finish(_ ticket: UInt64, end: UInt64, timestamp: Int64) {
        complete(ticket, end: end, timestamp: timestamp)
        sequencer.waitPublished(ticket)
    }

    /// Under the append lock: the blank that ends a file is written; its ticket completes now (published
    /// once the records before it are).
    func completeBlank(_ state: inout AppendState) {
        complete(sequencer.take(&state.nextTicket), end: state.wrote, timestamp: state.timestamp)
    }

    @inline(__always)
    private func complete(_ ticket: UInt64, end: UInt64, timestamp: Int64) {
        sequencer.complete(ticket, end: end, timestamp: timestamp,
                           publish: { end, timestamp in publishPosition(end, storeTimestamp: timestamp) },
                           announce: { end in announce(wrote: end) })
    }

    /// Moves the log's end to `wrote` and wakes whoever waits for it. Under the append lock, with no
    /// ticket in flight (`sequencer.drain`), or from the sequencer.
    @inline(__always)
    func publish(wrote: UInt64, storeTimestamp: Int64) {
        publishPosition(wrote, storeTimestamp: storeTimestamp)
        announce(wrote: wrote)
    }

    @inline(__always)
    func publishPosition(_ wrote: UInt64, storeTimestamp: Int64) {
        shared.lastStoreTimestamp.store(storeTimestamp, ordering: .relaxed)
        if engine?._withUnsafeGuaranteedRef({ $0.arena == nil }) ?? true {
            shared.wroteAtomic.store(wrote, ordering: .releasing)
            shared.committedAtomic.store(wrote, ordering: .releasing)
        } else {
            shared.wroteAtomic.store(wrote, ordering: .sequentiallyConsistent)
        }
    }

    @inline(__always)
    func announce(wrote: UInt64) {
        guard let engine else { return shared.notifyGrowth() }
        let ring = engine._withUnsafeGuaranteedRef { engine in
            engine.appended(wrote: wrote)
            return engine.arena != nil
        }
        if !ring { shared.notifyGrowth() }
    }
}
