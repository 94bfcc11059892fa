#if canImport(Glibc)
import Glibc
#endif

/// What a slave's log needs from the commit log: raw bytes appended at the master's offsets, and a cut
/// back to an offset when its log ran ahead of a new master. The HA stream above decides when; this
/// file only keeps the log's positions, files and flushing right.
extension CommitLog {
    /// Appends `bytes` a master pushed, so that they lie at exactly `offset`: the slave's log becomes a
    /// byte-for-byte copy of the master's, record fields included (the dispatcher then builds the
    /// slave's own consume queues and index from them, as from local appends).
    ///
    /// `offset` must be the current write position (`wroteOffset`). A log that stores nothing accepts any
    /// later file start instead: an empty slave starts at its master's last file. The bytes may end in the
    /// middle of a record and may not cross a file's end; a transfer that starts exactly at a file's end
    /// opens the next file. The bytes are copied once (into the mapping, or the write arena).
    /// - Throws: `StoreError` with `.offsetMismatch` (nothing appended) when `offset` is not where the
    ///   log ends or the bytes would cross a file; `.storeClosed`, `.flushFailed`, `.diskFull`,
    ///   `.createMappedFileFailed` as `append`.
    /// - Thread: one replicating thread at a time (appends from elsewhere would break the copy).
    ///   **Durability:** none on return; the log's `flushDiskType` flushes the bytes as it would a put's
    ///   (under SYNC_FLUSH the flusher is woken at once).
    public func appendReplicated(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        let fileSize = UInt64(settings.mappedFileSizeCommitLog)
        try appendLock.withLock { (state) throws(StoreError) in
            sequencer.drain(state.nextTicket)
            if let refusal = refusal() { throw refusal }
            if offset > state.wrote && holdsNothing(state) {
                try startEmptyLog(at: offset, &state)
            }
            guard offset == state.wrote else { throw mismatch(offset, expected: state.wrote) }
            guard UInt64(bytes.count) <= fileSize - offset % fileSize else { throw crossesFile(offset, bytes.count) }
            if state.file == nil || state.wrote == state.file!.fileEndOffset {
                state.file = try nextFile(at: state.wrote)
            }
            if state.replicaEnd != state.wrote { state.replicaCursor = state.wrote }
            // The write arena holds at most its size ahead of the bytes written to the file: copy in halves of it at most.
            let chunkMax = flushEngine?.arena.map { $0.size / 2 } ?? bytes.count
            var done = 0
            while done < bytes.count {
                let chunk = min(chunkMax, bytes.count - done)
                try flushEngine?.beforeWriting(upTo: state.wrote + UInt64(chunk))
                memcpy(writePointer(at: state.wrote, in: state.file!), source + done, chunk)
                state.wrote += UInt64(chunk)
                done += chunk
                publish(wrote: state.wrote, storeTimestamp: latestReplicatedTimestamp(&state))
            }
            state.replicaEnd = state.wrote
        }
        if settings.flushDiskType == .syncFlush && settings.ioPath == .mmap && waiters.flusherIdle.load(ordering: .sequentiallyConsistent) {
            waiters.wake.withLock { waiters.wake.signal() }  // group commit has no waiter to wake it
        }
    }

    /// True when the log stores nothing: no file, or only the empty one recovery found (a file the
    /// allocator prepared before a restart), where the log ends at the first file's start.
    private func holdsNothing(_ state: AppendState) -> Bool {
        guard let first = queue.first else { return true }
        return first.fileFromOffset == state.wrote && shared.committedAtomic.load(ordering: .acquiring) == state.wrote
    }

    /// An empty log moves forward to `offset` (a file start) before its first replicated bytes; its
    /// empty files go. Flushed and committed move first, so no flusher ever sees bytes below them as
    /// unflushed.
    private func startEmptyLog(at offset: UInt64, _ state: inout AppendState) throws(StoreError) {
        guard offset % UInt64(settings.mappedFileSizeCommitLog) == 0 else { throw mismatch(offset, expected: state.wrote) }
        let emptyFiles = queue.removeFiles(startingAtOrAfter: 0)
        for file in emptyFiles { file.unlinkFromDisk() }
        if !emptyFiles.isEmpty { try? fsyncDirectory(settings.storePathCommitLog) }
        state.file = nil
        shared.flushedAtomic.store(offset, ordering: .releasing)
        shared.committedAtomic.store(offset, ordering: .releasing)
        shared.wroteAtomic.store(offset, ordering: .releasing)
        state.wrote = offset
        shared.log("commitlog: empty log starts at \(offset) (replicated from a master)")
    }

    /// Walks the records completed by the last copy and returns the store time of the newest one (the
    /// checkpoint's `physicMsgTimestamp` follows it, so abnormal recovery of a slave starts where it
    /// should). Reads only header fields; bytes that are no record stop the walk for good (dispatch
    /// reports them).
    private func latestReplicatedTimestamp(_ state: inout AppendState) -> Int64 {
        var timestamp = shared.lastStoreTimestamp.load(ordering: .relaxed)
        let fileSize = UInt64(settings.mappedFileSizeCommitLog)
        while state.replicaCursor < state.wrote && state.wrote - state.replicaCursor >= 8 {
            let at = state.replicaCursor
            guard let header = replicatedBytes(at: at, current: state.file!) else { break }
            let size = Int(loadBigEndian(Int32.self, at: 0, in: header))
            let magic = loadBigEndian(UInt32.self, at: 4, in: header)
            if magic == MessageRecord.blankMagic {
                state.replicaCursor = at - at % fileSize + fileSize
                continue
            }
            guard magic == MessageRecord.magicV1 || magic == MessageRecord.magicV2,
                  size >= MessageRecord.fixedOverheadIPv4, size <= settings.recordSizeMax else {
                state.replicaCursor = .max
                break
            }
            guard at + UInt64(size) <= state.wrote else { break }
            let bornV6 = loadBigEndian(Int32.self, at: 36, in: header) & MessageRecord.bornHostV6Flag != 0
            timestamp = loadBigEndian(Int64.self, at: 48 + (bornV6 ? 20 : 8), in: header)
            state.replicaCursor = at + UInt64(size)
        }
        return timestamp
    }

    /// Where the replicated byte at `position` can be read now: the arena (it holds the last arena-size
    /// bytes, more than a record plus a copy), or the mapping of the file holding it.
    private func replicatedBytes(at position: UInt64, current: MappedFile) -> UnsafeRawPointer? {
        if let arena = flushEngine?.arena { return UnsafeRawPointer(arena.pointer(at: position)) }
        if position >= current.fileFromOffset && position < current.fileEndOffset {
            return UnsafeRawPointer(current.base + Int(position - current.fileFromOffset))
        }
        guard let file = queue.file(containing: position) else { return nil }
        return UnsafeRawPointer(file.base + Int(position - file.fileFromOffset))
    }

    @inline(never)
    private func mismatch(_ offset: UInt64, expected: UInt64) -> StoreError {
        StoreError(.offsetMismatch, "replicated bytes at \(offset), but the log ends at \(expected)\(expected == 0 ? " (an empty log starts at a file start only)" : ""); nothing appended")
    }

    @inline(never)
    private func crossesFile(_ offset: UInt64, _ count: Int) -> StoreError {
        StoreError(.offsetMismatch, "\(count) replicated bytes at \(offset) cross the end of a \(settings.mappedFileSizeCommitLog)-byte file; nothing appended")
    }

    // MARK: Truncation

    /// Cuts the log back to the last record boundary at or before `offset` (a slave whose log ran ahead
    /// of its new master): later files are deleted, the rest of the file is zeroed and made durable,
    /// and every position moves back to the new end. Appends continue from there.
    ///
    /// The flush engine is drained and restarted around the cut (every durability waiter completes
    /// first), so no write in flight lands behind the new end. Readers still holding a `MappedRegion`
    /// past the cut may see zeros. The layer above cuts its consume queues to the returned end
    /// (`MessageStore.truncate(to:)` does).
    /// - Returns: the new end (`offset` itself when it is a record boundary; the log's end when `offset`
    ///   is not below it: nothing is cut then; `minOffset` when `offset` lies below the files kept).
    /// - Throws: `StoreError` (`.storeClosed`, `.flushFailed`, `.io`); after a failed restart of the flush
    ///   engine the log refuses appends.
    /// - Thread: any, but not concurrently with `close()`; appends wait for it.
    ///   **Durability:** the cut is durable on return.
    @discardableResult
    public func truncate(to offset: UInt64) throws(StoreError) -> UInt64 {
        try appendLock.withLock { (state) throws(StoreError) -> UInt64 in
            sequencer.drain(state.nextTicket)
            if let refusal = shared.refusal(), refusal.code != .diskFull { throw refusal }
            guard offset < state.wrote else { return state.wrote }
            flushEngine?.stop()
            flushEngine = nil
            let (end, timestamp) = lastRecordBoundary(atOrBefore: max(offset, minOffset))
            var report = RecoveryReport()
            report.endOffset = end
            do throws(StoreError) { try truncate(at: end, report: &report, zeroing: true) } catch {
                try restartFlushEngine()
                throw error
            }
            shared.flushedAtomic.store(end, ordering: .releasing)
            shared.committedAtomic.store(end, ordering: .releasing)
            shared.wroteAtomic.store(end, ordering: .releasing)
            state.wrote = end
            state.file = queue.file(containing: end)
            state.replicaEnd = .max
            // Kept records are at least this old; the checkpoint must not vouch for anything newer.
            shared.lastStoreTimestamp.store(timestamp, ordering: .relaxed)
            checkpoint.physicMsgTimestamp = timestamp
            try? checkpoint.flush()
            try restartFlushEngine()
            allocator.prepare(offset: end, fileExists: state.file != nil)
            shared.log("commitlog: truncated to \(end) (asked for \(offset))")
            return end
        }
    }

    private func restartFlushEngine() throws(StoreError) {
        do { flushEngine = try FlushEngine.start(for: shared) } catch {
            shared.flushFailedFlag.store(true, ordering: .sequentiallyConsistent)
            shared.log("commitlog: the flush engine did not restart after a truncation: \(error); appends are refused")
            throw error
        }
    }

    /// The last record boundary at or before `offset`, and the store time of the first record of the file
    /// holding it (a lower bound for every record kept in that file). Scans that file's headers.
    private func lastRecordBoundary(atOrBefore offset: UInt64) -> (UInt64, Int64) {
        let fileSize = UInt64(settings.mappedFileSizeCommitLog)
        let fileStart = offset % fileSize == 0 && offset > 0 ? offset - fileSize : offset - offset % fileSize
        guard let file = queue.file(containing: fileStart) else { return (offset, 0) }
        let target = Int(offset - file.fileFromOffset)
        var position = 0
        var firstTimestamp: Int64 = 0
        while position < target {
            let bytes = file.bytes(from: position, to: file.fileSize)
            guard case .message(let header) = RecordDecoder.check(bytes, expectedPhysicalOffset: Int64(file.fileFromOffset) + Int64(position), checkCRC: false) else {
                // A blank, zeros or a broken record: the cut is at its start, unless `offset` is the
                // file's end (the file is whole: keep it).
                return (target == file.fileSize ? offset : file.fileFromOffset + UInt64(position), firstTimestamp)
            }
            guard position + header.totalSize <= target else { break }
            if firstTimestamp == 0 { firstTimestamp = header.storeTimestamp }
            position += header.totalSize
        }
        return (file.fileFromOffset + UInt64(position), firstTimestamp)
    }
}
