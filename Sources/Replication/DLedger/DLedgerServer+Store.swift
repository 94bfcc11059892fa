#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Raft

/// The commit log as Raft's state machine. An entry's payload is the physical offset of its records (u64,
/// big-endian) followed by the records' bytes exactly as the leader's commit log holds them (offsets, queue
/// offsets, store time and host included). The leader's own appends are already in place when they commit;
/// every other member writes them at that offset (`appendReplicated`), after a blank record where the leader
/// rolled to a new file. So every member's commit log is the same bytes at the same offsets, and holds nothing
/// past the committed entries except, on the leader, its own proposals of its current term.
extension DLedgerServer: AppendObserver {
    static let offsetBytes = 8

    /// Under the append lock: a put is admitted only while the gate is open (this member leads and caught up),
    /// a waiter slot is free and the core would take the proposal.
    public func admit(sizeBytes: Int, token: UInt64) -> StoreError? {
        guard gateTerm.load(ordering: .acquiring) != 0 else { return notLeader() }
        if token != 0 && !waiters.hasRoom {
            return StoreError(.waitersFull, "\(settings.commitWaitersMax) puts already wait for a DLedger commit; nothing stored")
        }
        switch core.withLock({ $0.proposeRefusal(payloadBytes: sizeBytes + Self.offsetBytes) }) {
        case nil: return nil
        case .notLeader?: return notLeader()
        case .transferInProgress?: return StoreError(.notLeader, "\(me.name) is handing leadership over; nothing stored")
        case .uncommittedBytesOverLimit?:
            return StoreError(.waitersFull, "\(settings.uncommittedBytesMax) bytes already wait for a DLedger commit; nothing stored")
        }
    }

    /// Under the append lock: proposes the record's bytes at their offset, and registers the put's wait.
    public func appended(_ bytes: UnsafeRawBufferPointer, at position: UInt64, token: UInt64) {
        let payload = [UInt8](unsafeUninitializedCapacity: Self.offsetBytes + bytes.count) { buffer, count in
            storeBigEndian(position, at: 0, in: UnsafeMutableRawPointer(buffer.baseAddress!))
            UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[Self.offsetBytes...]).copyMemory(from: bytes)
            count = Self.offsetBytes + bytes.count
        }
        switch core.withLock({ $0.propose(payload) }) {
        case .accepted:
            if token != 0 {
                waiters.add(offset: position + UInt64(bytes.count), token: token,
                            deadlineNanos: monotonicNanos() + settings.commitTimeoutNanos)
            }
        case .dropped(let reason):
            // Admitted under this lock a moment ago, so only a transfer started from another thread gets here:
            // the record is in the commit log but not in Raft's log. The driver cuts it back.
            needsRepair.store(true, ordering: .releasing)
            log("dledger: a proposal was dropped after its append (\(reason)); cutting the commit log back")
            if token != 0 { waiters.handler(token, .inSyncReplicasNotEnough) }
        }
        signalDriver()
    }

    @inline(never)
    private func notLeader() -> StoreError {
        let leader = publishedRole.withLock { $0 }.leader.map { "\($0.name) (\($0.address))" } ?? "unknown"
        return StoreError(.notLeader, "\(me.name) of DLedger group \(settings.group) does not take writes now (leader: \(leader))")
    }

    // MARK: Applying one entry

    /// Writes a committed entry's records where the leader put them, unless they are there already.
    /// - Throws: `StoreError` from the commit log (disk full, flush failed); nothing is applied then.
    func applyEntry(_ entry: LogEntry) throws(StoreError) {
        guard let (offset, count) = Self.span(of: entry) else { return }  // a no-op
        precondition(offset >= appliedEnd, "entry \(entry.index) at \(offset) lies before the applied end \(appliedEnd)")
        let commitLog = store.commitLog
        if commitLog.wroteOffset >= offset + UInt64(count) && holds(entry, at: offset) {
            appliedEnd = offset + UInt64(count)  // the leader's own append
            return
        }
        if commitLog.wroteOffset > appliedEnd {
            // Bytes past the applied end that are not this entry: proposals of a leadership that ended.
            if gateTerm.load(ordering: .acquiring) != 0 {
                closeGate(because: "entry \(entry.index) is not where this leader appended it")
            } else {
                cutUncommitted()
            }
        }
        guard commitLog.wroteOffset == appliedEnd else {
            throw StoreError(.offsetMismatch, "the commit log ends at \(commitLog.wroteOffset), not at the applied end \(appliedEnd)")
        }
        if offset > appliedEnd { try fillToFileEnd(from: appliedEnd, to: offset) }
        try entry.payload.withUnsafeBytes { raw in
            Result { () throws(StoreError) in
                try commitLog.appendReplicated(UnsafeRawBufferPointer(rebasing: raw[Self.offsetBytes...]), at: offset)
            }
        }.get()
        appliedEnd = offset + UInt64(count)
    }

    /// The physical offset and byte count of an entry's records; nil for a no-op.
    static func span(of entry: LogEntry) -> (offset: UInt64, count: Int)? {
        guard entry.kind == .normal, entry.payload.count > offsetBytes else { return nil }
        let offset = entry.payload.withUnsafeBytes { loadBigEndian(UInt64.self, at: 0, in: $0.baseAddress!) }
        return (offset, entry.payload.count - offsetBytes)
    }

    /// Whether the commit log holds the entry's records at `offset`, byte for byte.
    func holds(_ entry: LogEntry, at offset: UInt64) -> Bool {
        Self.holds(entry, at: offset, in: store.commitLog) ?? false
    }

    /// Byte-for-byte comparison; nil when those bytes cannot be read (deleted by retention).
    static func holds(_ entry: LogEntry, at offset: UInt64, in commitLog: CommitLog) -> Bool? {
        let count = entry.payload.count - offsetBytes
        guard let region = commitLog.region(at: offset, count: count) else { return nil }
        return entry.payload.withUnsafeBytes { raw in memcmp(raw.baseAddress! + offsetBytes, region.bytes.baseAddress!, count) == 0 }
    }

    /// The leader rolled to a new file at `offset`: the rest of the current file becomes a blank record, as the
    /// leader's own append wrote it.
    private func fillToFileEnd(from start: UInt64, to offset: UInt64) throws(StoreError) {
        let fileSize = UInt64(store.config.commitLog.mappedFileSizeCommitLog)
        let gap = offset - start
        guard offset % fileSize == 0, gap < fileSize, gap >= UInt64(MessageRecord.endOfFileMinBlankBytes) else {
            throw StoreError(.offsetMismatch, "an entry at \(offset) cannot follow the applied end \(start): not the next file's start")
        }
        var blank = [UInt8](repeating: 0, count: Int(gap))
        blank.withUnsafeMutableBytes { MessageRecord.encodeBlank(remainingBytes: Int(gap), into: $0.baseAddress!) }
        try blank.withUnsafeBytes { raw in Result { () throws(StoreError) in try store.commitLog.appendReplicated(raw, at: start) } }.get()
    }

    // MARK: Recovery

    /// Brings the commit log in line with the recovered Raft log: it keeps the records of the committed entries
    /// it holds whole (checking the last one byte for byte) and loses everything after them (a leader's
    /// proposals that never committed, a torn tail). Entries committed after that are applied again from the
    /// Raft log. A log that starts after `snapshotIndex` (compacted) has its compacted entries in the commit log
    /// already, through `snapshotEnd` (the driver flushed them before it compacted the file).
    /// - Returns: the last applied index and where its records end.
    /// - Throws: `StoreError(.badConfig)` when the commit log holds data but the Raft log is empty (a store not
    ///   written by DLedger); `.corruptRecord` when the commit log ends before the compacted entries' records;
    ///   errors of the truncation.
    static func reconcile(store: MessageStore, state: DurableState, snapshotEnd: UInt64, log: (String) -> Void)
        throws(StoreError) -> (LogIndex, UInt64)
    {
        let commitLog = store.commitLog
        let wrote = commitLog.wroteOffset
        guard wrote >= snapshotEnd else {
            throw StoreError(.corruptRecord, "the commit log ends at \(wrote), before \(snapshotEnd) where the entries the DLedger "
                             + "log compacted (through \(state.snapshotIndex)) end; rebuild this member from another member's store")
        }
        if state.snapshotIndex == .zero && state.entries.isEmpty && wrote > commitLog.minOffset {
            throw StoreError(.badConfig, "the commit log holds \(wrote - commitLog.minOffset) bytes but the DLedger log is empty: "
                             + "start DLedger on an empty store (migrating a classic commit log is not supported)")
        }
        let committed = min(Int(state.hardState.commit.rawValue), Int(state.snapshotIndex.rawValue) + state.entries.count)
        var applied = Int(state.snapshotIndex.rawValue)
        var end = snapshotEnd
        var lastHeld: LogEntry?
        for entry in state.entries.prefix(max(0, committed - applied)) {
            if let (offset, count) = span(of: entry) {
                guard offset + UInt64(count) <= wrote else { break }
                end = offset + UInt64(count)
                lastHeld = entry
            }
            applied += 1
        }
        if let lastHeld, let (offset, _) = span(of: lastHeld), holds(lastHeld, at: offset, in: commitLog) == false {
            log("dledger: the commit log differs from entry \(lastHeld.index) at \(offset); rebuilding it from the Raft log")
            applied = Int(state.snapshotIndex.rawValue)
            end = snapshotEnd
        }
        if wrote > end {
            let cut = try store.truncate(to: end)
            log("dledger: commit log cut from \(wrote) to \(cut): bytes past the last committed entry it held whole")
            if cut != end {
                throw StoreError(.corruptRecord, "the commit log could not be cut at \(end) (it ends at \(cut)); move it aside")
            }
        }
        return (LogIndex(UInt64(applied)), end)
    }
}
