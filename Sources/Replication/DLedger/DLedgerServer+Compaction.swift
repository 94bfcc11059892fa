import Raft

// Compaction: the driver drops applied entries that every member holds (the core's safe point), first from memory
// (every `raftLogKeepEntriesMax` entries or `raftLogKeepBytesMax` bytes applied), then from the file once it
// reaches `raftLogFileBytesMax`, through the last entry the commit log holds durably (recovery can no longer write
// compacted entries again). Memory is compacted that far first, so the new file holds only the entries after it
// (what the commit log has not flushed yet, and what some member may still need): the rewrite, which runs on the
// driver's thread, stays small. While a member lags, the others keep what it needs: a rewrite that would keep more
// than half of the file is skipped until the file grew by another quarter of the limit.
extension DLedgerServer {
    /// After each cycle, on the driver's thread.
    func compactIfDue() {
        if compactedIndex.distance(to: appliedIndex) >= settings.raftLogKeepEntriesMax
            || retainedAppliedBytes >= settings.raftLogKeepBytesMax
        {
            compactMemory()
        }
        guard disk.end >= fileCompactionDueAt, disk.failure == nil else { return }
        let flushed = store.commitLog.flushedOffset
        compactMemory(durableEnd: flushed)
        if compactedIndex > disk.snapshotIndex, flushed >= compactedEnd { compactFile() }
    }

    /// Drops applied entries through the safe point from the core (and, given `durableEnd`, only entries whose
    /// records end there or before); remembers the commit log's end after them.
    private func compactMemory(durableEnd: UInt64? = nil) {
        let applied = appliedIndex
        let dropped = core.withLock { core -> (index: LogIndex, term: Term, end: UInt64?, bytes: Int)? in
            var target = min(applied, core.safeCompactionIndex)
            if let durableEnd {
                while target > core.snapshotIndex, let entry = core.entry(at: target),
                    let (offset, count) = Self.span(of: entry), offset + UInt64(count) > durableEnd
                {
                    target = target.previous
                }
            }
            guard target > core.snapshotIndex, let term = core.term(at: target) else { return nil }
            var end: UInt64?
            var bytes = 0
            var index = target
            while index > core.snapshotIndex, let entry = core.entry(at: index) {
                if end == nil, let (offset, count) = Self.span(of: entry) { end = offset + UInt64(count) }
                bytes += entry.sizeBytes
                index = index.previous
            }
            core.compact(through: target)
            return (target, term, end, bytes)
        }
        guard let dropped else { return }
        compactedIndex = dropped.index
        compactedTerm = dropped.term
        if let end = dropped.end { compactedEnd = end }
        retainedAppliedBytes = max(0, retainedAppliedBytes - dropped.bytes)
    }

    /// Rewrites the Raft log file from the compacted start.
    private func compactFile() {
        let first = compactedIndex.next
        let last = disk.lastIndex
        let retained = core.withLock { core in
            first <= last ? (first.rawValue...last.rawValue).compactMap { core.entry(at: LogIndex($0)) } : []
        }
        precondition(retained.count == max(0, first.distance(to: last) + 1), "the written entries \(first)...\(last) are not all in the core")
        let before = disk.end
        let retainedBytes = retained.reduce(0) { $0 + $1.sizeBytes }
        guard UInt64(retainedBytes) <= before / 2 else {
            fileCompactionDueAt = before + UInt64(settings.raftLogFileBytesMax / 4)
            log("dledger: \(disk.path): \(retainedBytes) of \(before) bytes are still needed (a member lags?); "
                + "compacting the file again at \(fileCompactionDueAt) bytes")
            return
        }
        fileCompactionDueAt = UInt64(settings.raftLogFileBytesMax)
        do {
            try disk.compact(through: compactedIndex, term: compactedTerm, snapshotEnd: compactedEnd, retained: retained)
            fileCompactedIndex.store(compactedIndex.rawValue, ordering: .releasing)
            log("dledger: \(disk.path) compacted through \(compactedIndex): \(before) -> \(disk.end) bytes, \(retained.count) entries kept")
        } catch {
            log("dledger: \(error)")
            if disk.failure != nil { closeGate(because: "the Raft log failed") }
        }
    }
}
