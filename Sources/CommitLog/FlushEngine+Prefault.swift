#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The mmap path's pre-faulter: keeps the pages from the write position to `prefaultAheadBytes` beyond it in
/// the page cache and mapped writable, so appends take no page faults inside the append lock.
///
/// A page of the mapping faulted in for the first time is made by reading the file: the kernel allocates it
/// (in large folios, following the sequential pattern) and zeroes it, as the extents are unwritten. On this
/// path's usual machine that costs 5-10 times a `pwrite` of the same zeros in 64 KiB pieces, which makes small
/// folios without a zeroing pass (`bench`: the pre-faulter took ~1.1 us of ~5 us of broker CPU per 1 KiB
/// message). So whole 64 KiB chunks ahead of every appender are written with zeros first (`zeroFill`), then
/// mapped (MADV_POPULATE_WRITE, which then only fills in page tables).
///
/// A pwrite of zeros must never land on bytes an appender writes: under the append lock an appender stores the
/// end of what it may write (`reservedEnd`, rounded up: see `announceMappedWrite`) before writing and then reads
/// the chunk being zero-filled (`zeroFillClaim`); the pre-faulter stores its claim and then reads `reservedEnd`, and writes only when that
/// end is at or below the chunk. Both are sequentially consistent, so at least one of them sees the other:
/// either the pre-faulter skips the chunk, or the appender waits until the pwrite is done (`beforeWriting`).
extension FlushEngine {
    /// Zero-filled and mapped per step of this many bytes.
    static let prefaultStepBytes: UInt64 = 1 << 20

    func runPrefault() {
        let window = UInt64(log.settings.prefaultAheadBytes)
        let page = UInt64(getpagesize())
        let chunk = UInt64(MappedFile.zeroFillChunkBytes)
        var populated = log.wroteAtomic.load(ordering: .acquiring)
        populated -= populated % page
        let populateWrite: Int32 = 23  // MADV_POPULATE_WRITE (Linux 5.14)
        while !stopping.load(ordering: .acquiring) {
            let wrote = log.wroteAtomic.load(ordering: .acquiring)
            if populated < wrote { populated = wrote - wrote % page }
            let target = (wrote + window + chunk - 1) / chunk * chunk
            while populated < target, let file = log.queue.file(containing: populated) {
                // A step at a time, so the mapped end moves on steadily rather than after the whole window.
                let end = min(target, file.fileEndOffset, (populated / Self.prefaultStepBytes + 1) * Self.prefaultStepBytes)
                zeroFill(file, from: populated, to: end)
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

    /// Writes zeros over the whole chunks of `[from, to)` (global offsets inside `file`) that no appender may
    /// write yet, one claimed chunk at a time; a chunk an appender reached is left to MADV_POPULATE_WRITE.
    /// Chunks closer than a quarter window (1 MiB at least) to the end appenders may write are only faulted in:
    /// an appender reaching a chunk being zero-filled waits for that pwrite under the append lock, as long as
    /// this thread is preempted (4 producers on 2 cores at 1 GB/s covered 1 MiB within one time slice). In step
    /// with the writer the pre-faulter works a half window ahead, so only a pre-faulter behind takes this path.
    private func zeroFill(_ file: MappedFile, from: UInt64, to: UInt64) {
        let chunk = UInt64(MappedFile.zeroFillChunkBytes)
        let margin = max(1 << 20, UInt64(log.settings.prefaultAheadBytes) / 4)
        var at = (from + chunk - 1) / chunk * chunk
        while at + chunk <= to && !stopping.load(ordering: .relaxed) {
            takeZeroFillClaim(at)
            let reserved = reservedEnd.load(ordering: .sequentiallyConsistent)
            let clear = reserved + margin <= at
            let written = clear && file.zeroFill(from: Int(at - file.fileFromOffset), count: Int(chunk))
            zeroFillClaim.store(.max, ordering: .sequentiallyConsistent)
            if !clear {
                at = (reserved + margin + chunk - 1) / chunk * chunk  // too close: go on past it
            } else if written {
                at += chunk
            } else {
                return  // pwrite failed (the file system may refuse): the pages are faulted in instead
            }
        }
    }

    /// Under the append lock, before bytes up to `end` are written: publishes `end` to the zero writers (the
    /// pre-faulter, the live pre-writer) and, if one is writing a chunk below `end`, waits until it is done; on
    /// an arena path then waits for arena room (the ring writes only bytes reserved this way).
    @inline(__always)
    func beforeWriting(upTo end: UInt64) throws(StoreError) {
        if !announceMappedWrite(upTo: end) { try waitForArenaRoom(end: end) }
    }

    /// `beforeWriting`'s claim part (it cannot fail): false on an arena path, where the caller waits for arena
    /// room next. Where nothing writes zeros into the live file (an arena path without a live pre-write) it
    /// publishes nothing.
    ///
    /// The end published is rounded up to `reservedEndStepBytes`, so the appends up to it publish nothing: a zero
    /// writer that claimed a chunk before the publication was waited for then, and any later claim sees an end at
    /// or past theirs (`reservedEnd` only grows, under the append lock, so this relaxed look reads the last store).
    /// The fence of a sequentially consistent store after every append stalled the appender until its record's
    /// stores left the store buffer.
    @inline(__always)
    func announceMappedWrite(upTo end: UInt64) -> Bool {
        if guardsWrites && end > reservedEnd.load(ordering: .relaxed) { publishReservedEnd(covering: end) }
        return arena == nil
    }

    /// The zero writers keep a margin of 1 MiB or more past the published end, so rounding it up this much moves
    /// them on hardly at all.
    static let reservedEndStepBytes: UInt64 = 256 << 10

    @inline(never)
    private func publishReservedEnd(covering end: UInt64) {
        let published = (end / Self.reservedEndStepBytes + 1) * Self.reservedEndStepBytes
        reservedEnd.store(published, ordering: .sequentiallyConsistent)
        if published > zeroFillClaim.load(ordering: .sequentiallyConsistent) { waitForZeroFill(below: published) }
    }

    /// Claims the chunk at `at` for a write of zeros (sequentially consistent, before the caller reads
    /// `reservedEnd`); the pre-faulter and the live pre-writer share the one claim, so each waits while the other
    /// holds it (one pwrite). Released by storing `.max`.
    func takeZeroFillClaim(_ at: UInt64) {
        while !zeroFillClaim.compareExchange(expected: .max, desired: at, ordering: .sequentiallyConsistent).exchanged {
            sched_yield()
        }
    }

    /// Waits for one pwrite of zeros (64 KiB, or a live pre-write's 1 MiB; the claim is cleared right after it).
    @inline(never)
    private func waitForZeroFill(below end: UInt64) {
        while end > zeroFillClaim.load(ordering: .sequentiallyConsistent) { sched_yield() }
    }
}
