#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Where one appended record went.
public struct AppendResult: Sendable, Equatable {
    public var physicalOffset: UInt64
    public var size: Int
    public var storeTimestamp: Int64
    public var queueOffset: Int64
    public var storeHost: HostAddress
    /// Offset just past the record: the position it is durable at.
    @inlinable public var nextOffset: UInt64 { physicalOffset + UInt64(size) }
}

/// Where one appended batch went (its records lie back to back from `physicalOffset`).
public struct BatchAppendResult: Sendable, Equatable {
    public var physicalOffset: UInt64
    public var totalSize: Int
    public var count: Int
    public var storeTimestamp: Int64
    @inlinable public var nextOffset: UInt64 { physicalOffset + UInt64(totalSize) }
}

/// Stored bytes handed out without a copy: the file stays mapped while this value lives.
public struct MappedRegion: @unchecked Sendable {
    public let file: MappedFile
    public let physicalOffset: UInt64
    public let bytes: UnsafeRawBufferPointer

    public init(file: MappedFile, physicalOffset: UInt64, bytes: UnsafeRawBufferPointer) {
        self.file = file
        self.physicalOffset = physicalOffset
        self.bytes = bytes
    }
}

/// One validated record read back from the log.
public struct StoredRecord: @unchecked Sendable {
    public let region: MappedRegion
    public let header: StoredRecordHeader

    public init(region: MappedRegion, header: StoredRecordHeader) {
        self.region = region
        self.header = header
    }
    public var body: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: region.bytes[header.body]) }
    public var topic: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: region.bytes[header.topic]) }
    public var properties: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: region.bytes[header.properties]) }
    public var topicString: String { String(decoding: topic, as: UTF8.self) }
    @inlinable public var nextOffset: UInt64 { region.physicalOffset + UInt64(header.totalSize) }
}

/// The append-only log of every message: fixed-size mapped segments, one short append lock, flush by
/// `flushDiskType` on the chosen io path, recovery on open, retention in the background.
///
/// Positions (global byte offsets), each never moving backwards while open:
/// - `wroteOffset`: appended (in the mapping, or in the write arena);
/// - `committedOffset`: in the page cache, readable through the mapping (= wrote on the mmap path);
/// - `flushedOffset`: durable;
/// - `confirmOffset`: set from above (replication) and otherwise equal to the flush-mode's visible end.
public final class CommitLog: @unchecked Sendable {
    /// What the log's background threads share with it; they hold this, never the log itself, so the
    /// log can be released (and close itself) while they run.
    let shared: LogShared
    let allocator: AllocateMappedFileService

    struct AppendState {
        /// The file appends go to. Its bounds and base are kept beside it as plain values, so an append reads
        /// them without retaining the file.
        var file: MappedFile? {
            didSet {
                fileFrom = file?.fileFromOffset ?? 0
                fileEnd = file?.fileEndOffset ?? 0
                fileBase = file?.base
            }
        }
        var fileFrom: UInt64 = 0
        var fileEnd: UInt64 = 0
        var fileBase: UnsafeMutableRawPointer?
        var wrote: UInt64 = 0
        /// Replicated appends (`appendReplicated`) only: where the next record starts (`.max`: stop
        /// looking), and the write position the last replicated append left. When `wrote` differs from
        /// it, something else moved the log (an append, a truncation) and `wrote` is a record boundary.
        var replicaCursor: UInt64 = 0
        var replicaEnd: UInt64 = .max
        /// The next `sequencer` ticket, and the store timestamp of the last reservation.
        var nextTicket: UInt64 = 0
        var timestamp: Int64 = 0
    }
    let appendLock = AppendMutex(AppendState())
    /// Publishes appends copied outside the lock in reservation order (see `AppendSequencer`).
    let sequencer = AppendSequencer()

    public var settings: CommitLogSettings { shared.settings }
    public var queue: MappedFileQueue { shared.queue }
    public var checkpoint: StoreCheckpoint { shared.checkpoint }
    var waiters: DurabilityWaiters { shared.waiters }

    var flushEngine: FlushEngine? {
        didSet { engine = flushEngine.map { Unmanaged.passUnretained($0) } }
    }
    /// `flushEngine` for the append path, without a retain and release per append: the engine is replaced
    /// only under the append lock with no append in flight (`sequencer.drain`), and the log holds it meanwhile.
    private(set) var engine: Unmanaged<FlushEngine>?
    /// Sees local appends under the append lock (DLedger); set once before traffic (`observeAppends`).
    nonisolated(unsafe) var observer: AppendObserver?
    var retention: PeriodicThread?
    var lockFD: Int32 = -1
    /// What recovery found when the log opened.
    public internal(set) var recoveryReport = RecoveryReport()

    /// Opens (and recovers) the log under `settings.storePathRootDir`.
    /// - Parameter log: where the store's rare log lines go (recovery, truncation, failures).
    /// - Throws: `StoreError` with `.locked` when another process holds the store, `.corruptRecord` for a
    ///   segment of the wrong size, `.badConfig` for bad settings.
    public init(settings: CommitLogSettings, log: @escaping @Sendable (String) -> Void = { _ in }) throws(StoreError) {
        let settings = try settings.validated()
        let queue = MappedFileQueue(directory: settings.storePathCommitLog, fileSize: settings.mappedFileSizeCommitLog)
        do { try makeDirectories(settings.storePathRootDir) } catch {
            throw StoreError(.io, "\(settings.storePathRootDir): cannot create", cause: error)
        }
        let checkpoint = try StoreCheckpoint(path: settings.storePathRootDir + "/checkpoint", io: settings.fileIO)
        let logShared = LogShared(settings: settings, queue: queue, checkpoint: checkpoint, log: log)
        shared = logShared
        allocator = AllocateMappedFileService(queue: queue, io: settings.fileIO, warmUp: settings.warmMapedFileEnable,
                                              preWrite: settings.preWritesNewFiles, preWriteFirst: settings.preWriteFirstFile,
                                              preWriteHeadBytes: settings.preWriteHeadBytes,
                                              populateBytes: settings.ioPath == .mmap && !settings.usesWriteBuffer ? settings.prefaultAheadBytes : 0,
                                              writePosition: { [logShared] in logShared.wroteAtomic.load(ordering: .relaxed) })
        try takeLock()
        try queue.load()
        try recover()
        try markRunning()
        allocator.start()
        let end = shared.wroteAtomic.load(ordering: .relaxed)
        let endFileExists = queue.file(containing: end) != nil
        allocator.prepare(offset: end, fileExists: endFileExists)
        if !endFileExists { allocator.awaitPrepared() }
        flushEngine = try FlushEngine.start(for: shared)
        engine = flushEngine.map { Unmanaged.passUnretained($0) }  // observers do not run in the class's own init
        retention = CleanCommitLogService.start(for: shared)
        shared.closedFlag.store(false, ordering: .releasing)
    }

    deinit {
        if !shared.closedFlag.load(ordering: .acquiring) { close() }
        if lockFD >= 0 { Glibc.close(lockFD) }
    }

    /// Installs the function that hears when a `SYNC_FLUSH` put became durable (or timed out, or failed).
    /// Call once, before the first put. It runs on a store thread: keep it short (complete a promise).
    public func onDurable(_ handler: @escaping @Sendable (_ token: UInt64, _ status: DurabilityStatus) -> Void) {
        waiters.handler = handler
    }

    // MARK: Positions

    public var wroteOffset: UInt64 { shared.wroteAtomic.load(ordering: .acquiring) }
    public var committedOffset: UInt64 { shared.committedAtomic.load(ordering: .acquiring) }
    public var flushedOffset: UInt64 { shared.flushedAtomic.load(ordering: .acquiring) }
    /// The first offset still stored (retention moves it forward).
    public var minOffset: UInt64 { queue.first?.fileFromOffset ?? recoveryReport.endOffset }
    /// Flushes completed since open (msync/fdatasync rounds).
    public var flushCount: Int { shared.flushCount.load(ordering: .relaxed) }
    /// Nanoseconds spent flushing since open (the sum over `flushCount` flushes), and the last flush's.
    public var flushNanos: (total: UInt64, last: UInt64) {
        (shared.flushNanosTotal.load(ordering: .relaxed), shared.flushNanosLast.load(ordering: .relaxed))
    }
    /// Durability waiters currently outstanding.
    public var pendingDurabilityWaiters: Int { waiters.outstanding }
    /// True once an fdatasync failed: appends are refused, reads go on.
    public var isFlushFailed: Bool { shared.flushFailedFlag.load(ordering: .relaxed) }
    public var isDiskFull: Bool { shared.diskFullFlag.load(ordering: .relaxed) }
    /// True once `close()` ran (or before the log finished opening): appends throw `.storeClosed`.
    public var isClosed: Bool { shared.closedFlag.load(ordering: .acquiring) }

    // MARK: Append

    /// Appends one message under the append lock.
    /// - Returns: the record's physical offset, size, store timestamp and message id.
    /// - Throws: `StoreError` (.messageTooLarge, .topicTooLong, .propertiesTooLong, .messageIllegal, .diskFull,
    ///   .storeClosed, .flushFailed, .createMappedFileFailed); nothing is stored then.
    /// - Thread: any. **Durability:** none on return; see `put(_:token:)` for SYNC_FLUSH waits.
    public func append(_ message: MessageView) throws(StoreError) -> AppendResult {
        try append(message) { _ in }
    }

    /// Appends one message, letting the caller fill in its queue offset under the append lock, after room
    /// was found (so nothing is assigned when the append fails). The layer above keeps its queue-offset
    /// table consistent with log order this way, without a lock of its own around the append.
    /// - Parameter assign: runs under the append lock; keep it short (a table lookup and increment).
    public func append(_ message: MessageView, assign: (inout MessageView) -> Void) throws(StoreError) -> AppendResult {
        try append(message, token: 0, assign: assign)
    }

    /// `append(_:assign:)` that hands `token` to the append observer (see `observeAppends`).
    /// Under the lock only the room, the queue offset, the store time and a ticket are taken; the record is
    /// encoded after, unless an observer must see it under the lock (see `AppendSequencer`).
    func append(_ message: MessageView, token: UInt64, assign: (inout MessageView) -> Void) throws(StoreError) -> AppendResult {
        let size = try checkedSize(of: message)
        let bodyCRC = rocketCRC32(message.body)
        var message = message
        let now = settings.storeClock()
        let reserved = try appendLock.withLock { (state) throws(StoreError) -> Reservation in
            if let refusal = observer?.admit(sizeBytes: size, token: token) { throw refusal }
            let reserved = try reservation(&state, bytes: size, now: now)
            assign(&message)
            if let observer {
                writeRecord(message, size: size, bodyCRC: bodyCRC, reserved)
                observer.appended(UnsafeRawBufferPointer(start: reserved.target, count: size), at: reserved.position, token: token)
            }
            return reserved
        }
        if observer == nil { writeRecord(message, size: size, bodyCRC: bodyCRC, reserved) }
        return AppendResult(physicalOffset: reserved.position, size: size, storeTimestamp: reserved.timestamp,
                            queueOffset: message.queueOffset, storeHost: settings.storeHost)
    }

    /// Appends and, under `SYNC_FLUSH`, registers for the durability callback (`onDurable`) with `token`.
    /// - Returns: the result and whether a callback will follow (false under ASYNC_FLUSH: done now).
    /// - Throws: as `append`, plus `.waitersFull` (nothing stored) when `pendingWaitersMax` are waiting.
    public func put(_ message: MessageView, token: UInt64) throws(StoreError) -> (AppendResult, durabilityPending: Bool) {
        try put(message, token: token) { _ in }
    }

    /// `put` with the queue offset assigned under the append lock (see `append(_:assign:)`).
    public func put(_ message: MessageView, token: UInt64, assign: (inout MessageView) -> Void) throws(StoreError)
        -> (AppendResult, durabilityPending: Bool) {
        let result = try awaitingDurability(token: token) { () throws(StoreError) in
            let result = try append(message, token: token, assign: assign)
            return (result, result.nextOffset)
        }
        return (result, settings.flushDiskType == .syncFlush)
    }

    /// Appends a batch under one lock: all of it in one file, or a blank and all of it in the next.
    /// Each message keeps the queue offset its view carries.
    public func appendBatch<Messages: Collection>(_ messages: Messages) throws(StoreError) -> BatchAppendResult
    where Messages.Element == MessageView {
        try appendBatch(messages) { _ in nil }
    }

    /// A batch whose first queue offset is chosen under the append lock: `assign(count)` returns it (the
    /// messages then get consecutive offsets), or nil to keep the offsets the views carry.
    public func appendBatch<Messages: Collection>(_ messages: Messages, assign: (Int) -> Int64?) throws(StoreError)
        -> BatchAppendResult where Messages.Element == MessageView {
        try appendBatch(messages, token: 0, assign: assign)
    }

    func appendBatch<Messages: Collection>(_ messages: Messages, token: UInt64, assign: (Int) -> Int64?) throws(StoreError)
        -> BatchAppendResult where Messages.Element == MessageView {
        let count = messages.count
        guard count > 0 else { throw StoreError(.messageTooLarge, "empty batch") }
        return try withUnsafeTemporaryAllocation(of: (size: Int, crc: UInt32).self, capacity: count) { (prepared) throws(StoreError) -> BatchAppendResult in
            var total = 0
            for (index, message) in messages.enumerated() {
                let size = try checkedSize(of: message)
                prepared[index] = (size, rocketCRC32(message.body))
                total += size
            }
            guard total <= settings.recordSizeMax else {
                throw StoreError(.messageTooLarge, "batch of \(count) is \(total) bytes, above \(settings.recordSizeMax)")
            }
            var firstQueueOffset: Int64?
            let now = settings.storeClock()
            let reserved = try appendLock.withLock { (state) throws(StoreError) -> Reservation in
                if let refusal = observer?.admit(sizeBytes: total, token: token) { throw refusal }
                let reserved = try reservation(&state, bytes: total, now: now)
                firstQueueOffset = assign(count)
                if let observer {
                    writeBatch(messages, prepared, firstQueueOffset: firstQueueOffset, total: total, reserved)
                    observer.appended(UnsafeRawBufferPointer(start: reserved.target, count: total), at: reserved.position, token: token)
                }
                return reserved
            }
            if observer == nil { writeBatch(messages, prepared, firstQueueOffset: firstQueueOffset, total: total, reserved) }
            return BatchAppendResult(physicalOffset: reserved.position, totalSize: total, count: count, storeTimestamp: reserved.timestamp)
        }
    }

    /// Encodes a reserved batch back to back and returns once the log's end covers it.
    private func writeBatch<Messages: Collection>(
        _ messages: Messages, _ prepared: UnsafeMutableBufferPointer<(size: Int, crc: UInt32)>, firstQueueOffset: Int64?,
        total: Int, _ reserved: Reservation
    ) where Messages.Element == MessageView {
        var position = reserved.position
        for (index, original) in messages.enumerated() {
            var message = original
            if let firstQueueOffset { message.queueOffset = firstQueueOffset + Int64(index) }
            let (size, crc) = prepared[index]
            MessageRecord.encode(message, size: size, bodyCRC: crc, storeHost: settings.storeHost,
                                 physicalOffset: Int64(position), storeTimestamp: reserved.timestamp,
                                 into: reserved.target + Int(position - reserved.position))
            position += UInt64(size)
        }
        finish(reserved.ticket, end: reserved.position + UInt64(total), timestamp: reserved.timestamp)
    }

    /// `appendBatch` that, under `SYNC_FLUSH`, registers `token` for the durability callback once the
    /// whole batch is durable.
    public func putBatch<Messages: Collection>(_ messages: Messages, token: UInt64, assign: (Int) -> Int64?) throws(StoreError)
        -> (BatchAppendResult, durabilityPending: Bool) where Messages.Element == MessageView {
        let result = try awaitingDurability(token: token) { () throws(StoreError) in
            let result = try appendBatch(messages, token: token, assign: assign)
            return (result, result.nextOffset)
        }
        return (result, settings.flushDiskType == .syncFlush)
    }

    /// Under SYNC_FLUSH: reserves a waiter slot (or fails fast, storing nothing), runs `append`, and
    /// registers `token` for the durability answer at the end offset it returns.
    private func awaitingDurability<R>(token: UInt64, _ append: () throws(StoreError) -> (R, UInt64)) throws(StoreError) -> R {
        guard settings.flushDiskType == .syncFlush else { return try append().0 }
        guard waiters.reserve() else { throw waitersFull() }
        let appended: (R, UInt64)
        do { appended = try append() } catch {
            waiters.cancelReservation()
            throw error
        }
        waiters.add(DurabilityWaiter(offset: appended.1, token: token,
                                     deadlineNanos: monotonicNanos() + UInt64(settings.syncFlushTimeoutMillis) * 1_000_000))
        return appended.0
    }

    @usableFromInline @inline(never)
    func waitersFull() -> StoreError {
        StoreError(.waitersFull, "\(settings.pendingWaitersMax) puts already wait for a flush (pendingWaitersMax); nothing stored")
    }

    /// Under the append lock: makes room for `bytes` in the current file (writing a blank and rolling to
    /// the next file when it does not fit) and returns the position to write at.
    @inline(__always)
    func reserve(_ state: inout AppendState, bytes: Int) throws(StoreError) -> UInt64 {
        if let refusal = refusal() { throw refusal }
        if state.fileBase == nil || state.wrote == state.fileEnd || bytes + MessageRecord.endOfFileMinBlankBytes > Int(state.fileEnd - state.wrote) {
            try roll(&state, bytes: bytes)
        }
        let end = state.wrote + UInt64(bytes)
        if engine?._withUnsafeGuaranteedRef({ $0.announceMappedWrite(upTo: end) }) == false {
            try flushEngine?.waitForArenaRoom(end: end)
        }
        return state.wrote
    }

    /// `reserve` when there is no current file, or `bytes` do not fit in it: ends the file with a blank and
    /// moves to the next.
    @inline(never)
    private func roll(_ state: inout AppendState, bytes: Int) throws(StoreError) {
        if state.file == nil || state.wrote == state.file!.fileEndOffset {
            state.file = try nextFile(at: state.wrote)
        }
        let file = state.file!
        let left = Int(file.fileEndOffset - state.wrote)
        if bytes + MessageRecord.endOfFileMinBlankBytes > left {
            try flushEngine?.beforeWriting(upTo: file.fileEndOffset)
            let target = writePointer(at: state.wrote, in: file)
            MessageRecord.encodeBlank(remainingBytes: left, into: target)
            if flushEngine?.arena != nil { memset(target + 8, 0, left - 8) }  // the ring writes these bytes too
            state.wrote = file.fileEndOffset
            completeBlank(&state)
            state.file = try nextFile(at: state.wrote)
        }
    }

    func refusal() -> StoreError? { shared.refusal() }

    func nextFile(at offset: UInt64) throws(StoreError) -> MappedFile {
        if let existing = queue.last, existing.fileFromOffset <= offset, offset < existing.fileEndOffset {
            return existing
        }
        let file = try allocator.take(offset: offset)
        queue.append(file)
        return file
    }

    /// Where the bytes of `position ..< position + count` are written: the mapping, or the write arena.
    @inline(__always)
    func writePointer(at position: UInt64, in state: AppendState) -> UnsafeMutableRawPointer {
        if let pointer = engine?._withUnsafeGuaranteedRef({ $0.arena?.pointer(at: position) }) { return pointer }
        assert(position >= state.fileFrom && position < state.fileEnd, "write outside the current file")
        return state.fileBase! + Int(position - state.fileFrom)
    }

    @inline(__always)
    func writePointer(at position: UInt64, in file: MappedFile) -> UnsafeMutableRawPointer {
        if let arena = flushEngine?.arena { return arena.pointer(at: position) }
        assert(position >= file.fileFromOffset && position < file.fileEndOffset, "write outside the current file")
        return file.base + Int(position - file.fileFromOffset)
    }

    /// The end of what readers may see under the flush mode: the committed offset, or under
    /// `SYNC_FLUSH` the flushed one (consumers never see a message before it is durable).
    public var visibleOffset: UInt64 {
        min(settings.flushDiskType == .syncFlush ? flushedOffset : committedOffset, shared.visibleLimit.load(ordering: .acquiring))
    }
}
