/// What `readRecord(at:)` found.
public enum ReadResult: @unchecked Sendable {
    case record(StoredRecord)
    /// The blank record that ends a file: the next record starts at `nextOffset`.
    case blank(nextOffset: UInt64)
    /// Nothing readable at or after this offset (yet).
    case end
}

extension CommitLog {
    /// `count` stored bytes from `offset` without copying, if all of them are readable (committed, not yet
    /// deleted) and inside one file. The file stays mapped while the region lives.
    /// - Thread: any.
    public func region(at offset: UInt64, count: Int) -> MappedRegion? {
        guard count >= 0, offset + UInt64(count) <= committedOffset, let file = queue.file(containing: offset) else { return nil }
        let start = Int(offset - file.fileFromOffset)
        guard start + count <= file.fileSize else { return nil }
        return MappedRegion(file: file, physicalOffset: offset, bytes: file.bytes(from: start, to: start + count))
    }

    /// The record at `offset`, validated (magic, lengths, its own offset field and, by default, the body
    /// CRC): a corrupt record is never handed out.
    /// - Throws: `.corruptRecord` naming the file, position and field.
    /// - Thread: any.
    public func readRecord(at offset: UInt64, checkCRC: Bool = true) throws(StoreError) -> ReadResult {
        let readable = committedOffset
        guard offset < readable, let file = queue.file(containing: offset) else { return .end }
        let start = Int(offset - file.fileFromOffset)
        let end = readable >= file.fileEndOffset ? file.fileSize : Int(readable - file.fileFromOffset)
        let bytes = file.bytes(from: start, to: end)
        let blankBytes = file.bytes(from: start, to: file.fileSize)
        switch RecordDecoder.check(bytes, expectedPhysicalOffset: Int64(offset), checkCRC: checkCRC) {
        case .message(let header):
            let region = MappedRegion(file: file, physicalOffset: offset,
                                      bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<header.totalSize]))
            return .record(StoredRecord(region: region, header: header))
        case .blank:
            return .blank(nextOffset: file.fileEndOffset)
        case .endOfData:
            return .end
        case .corrupt(let field, let detail):
            // A blank is checked against the file's end, which may lie past the readable bytes.
            if case .blank = RecordDecoder.check(blankBytes, checkCRC: false) { return .blank(nextOffset: file.fileEndOffset) }
            throw StoreError(.corruptRecord, "\(file.path) @\(start): bad \(field): \(detail)")
        }
    }

    /// Calls `body` for each record from `offset` (a record boundary) up to the readable end, stepping
    /// over blank records; stops early when `body` returns false. Returns where it stopped.
    @discardableResult
    public func forEachRecord(from offset: UInt64, checkCRC: Bool = true, _ body: (StoredRecord) throws -> Bool) throws -> UInt64 {
        var at = offset
        while true {
            switch try readRecord(at: at, checkCRC: checkCRC) {
            case .record(let record):
                at = record.nextOffset
                if try !body(record) { return at }
            case .blank(let next):
                at = next
            case .end:
                return at
            }
        }
    }

    // MARK: Waiting for growth

    /// Parks the caller until `visibleOffset` passes `offset`, the deadline passes, the log closes or
    /// `wakeDataWaiters` is called; with `keepWaiting` false (checked under the wake-up lock, so set it before
    /// `wakeDataWaiters`) it does not park at all.
    /// - Returns: the visible offset then. **Thread:** a background reader (the dispatcher).
    @discardableResult
    public func waitForData(beyond offset: UInt64, untilNanos deadline: UInt64, while keepWaiting: () -> Bool = { true }) -> UInt64 {
        waitForGrowth(beyond: offset, untilNanos: deadline, keepWaiting) { $0.visibleOffset }
    }

    /// Parks the caller until `committedOffset` passes `offset` (bytes readable through the mapping, flushed
    /// or not), the deadline passes, the log closes or `wakeDataWaiters` is called.
    /// - Returns: the committed offset then. **Thread:** a background reader (an HA master's sender).
    @discardableResult
    public func waitForCommitted(beyond offset: UInt64, untilNanos deadline: UInt64) -> UInt64 {
        shared.committedWaiters.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { shared.committedWaiters.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        return waitForGrowth(beyond: offset, untilNanos: deadline, { true }) { $0.committedOffset }
    }

    /// Wakes every thread parked in `waitForData` or `waitForCommitted`, so one that is stopping need not
    /// wait for its deadline. **Thread:** any.
    public func wakeDataWaiters() {
        shared.growth.withLock { shared.growth.broadcast() }
    }

    private func waitForGrowth(beyond offset: UInt64, untilNanos deadline: UInt64, _ keepWaiting: () -> Bool,
                               _ position: (CommitLog) -> UInt64) -> UInt64 {
        var current = position(self)
        if current > offset { return current }
        shared.growthWaiters.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { shared.growthWaiters.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        shared.growth.withLock {
            current = position(self)
            if current <= offset && monotonicNanos() < deadline && !shared.closedFlag.load(ordering: .relaxed) && keepWaiting() {
                // One wait: a wake-up (growth, or `wakeDataWaiters`) returns to the caller, who re-checks
                // its own reasons to stop as well as the position.
                shared.growth.wait(untilNanos: deadline)
                current = position(self)
            }
        }
        return current
    }
}
