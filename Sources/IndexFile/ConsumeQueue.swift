#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// One 20-byte consume-queue unit: where a message lies in the commit log and its tags code.
///
/// ```
/// +0 commit-log physical offset i64 | +8 size i32 | +12 tags code i64
/// ```
public struct ConsumeQueueUnit: Equatable, Sendable {
    public static let size = 20
    public var physicalOffset: Int64
    public var messageSize: Int32
    public var tagsCode: Int64

    public init(physicalOffset: Int64, messageSize: Int32, tagsCode: Int64) {
        self.physicalOffset = physicalOffset
        self.messageSize = messageSize
        self.tagsCode = tagsCode
    }

    /// A filler unit (pads a queue that starts past offset 0).
    public static let filler = ConsumeQueueUnit(physicalOffset: 0, messageSize: Int32.max, tagsCode: 0)
    var isValid: Bool { physicalOffset >= 0 && messageSize > 0 }
    /// Where the unit's message ends in the log; `Int64.max` when a garbage unit's sum overflows (it lies
    /// past every end then, and nothing traps).
    var endOffset: Int64 {
        let (end, overflow) = physicalOffset.addingReportingOverflow(Int64(messageSize))
        return overflow ? .max : end
    }
}

/// The units of one (topic, queue) in files of `mappedFileSizeConsumeQueue` bytes under
/// `consumequeue/<topic>/<queueId>/`, named by the logical byte offset of their first unit.
/// Only the dispatcher writes; readers read concurrently up to the published end.
public final class ConsumeQueue: @unchecked Sendable {
    public let topic: String
    public let queueID: Int32
    let files: MappedFileQueue
    let fileSize: Int
    let io: FileIO
    /// Units written (the queue's max offset), published after each unit is complete.
    private let maxOffsetAtomic = Atomic<Int64>(0)
    /// First unit still pointing at stored data (the queue's min offset).
    private let minOffsetAtomic = Atomic<Int64>(0)
    /// End (offset + size) of the last unit's message in the commit log.
    private let maxPhysicOffsetAtomic = Atomic<Int64>(0)
    /// Bytes flushed (logical), for the flush service.
    private var flushedBytes: Int64 = 0
    /// Set when its topic is deleted, so cached references stop being used.
    let deleted = Atomic<Bool>(false)
    /// The file the dispatcher last wrote into (only the dispatcher touches it).
    private var writeFile: MappedFile?

    init(topic: String, queueID: Int32, directory: String, fileSize: Int, io: FileIO) {
        self.topic = topic
        self.queueID = queueID
        self.fileSize = (fileSize + ConsumeQueueUnit.size - 1) / ConsumeQueueUnit.size * ConsumeQueueUnit.size
        self.files = MappedFileQueue(directory: directory, fileSize: self.fileSize)
        self.io = io
    }

    /// True when `bytes` spell this queue's topic (no String is built).
    func topicMatches(_ bytes: UnsafeRawBufferPointer) -> Bool { utf8Equals(topic, bytes) }

    public var maxOffset: Int64 { maxOffsetAtomic.load(ordering: .acquiring) }
    public var minOffset: Int64 { minOffsetAtomic.load(ordering: .acquiring) }
    public var maxPhysicOffset: Int64 { maxPhysicOffsetAtomic.load(ordering: .acquiring) }

    /// The unit at queue offset `offset`, if written and not deleted.
    public func unit(at offset: Int64) -> ConsumeQueueUnit? {
        guard offset >= minOffset else { return nil }
        return unit(atRaw: offset)
    }

    /// The unit at `offset` regardless of the min offset (fillers included).
    func unit(atRaw offset: Int64) -> ConsumeQueueUnit? {
        guard offset >= 0, offset < maxOffset else { return nil }
        let logical = UInt64(offset) * UInt64(ConsumeQueueUnit.size)
        guard let file = files.file(containing: logical) else { return nil }
        let at = Int(logical - file.fileFromOffset)
        let base = UnsafeRawPointer(file.base)
        return ConsumeQueueUnit(physicalOffset: loadBigEndian(Int64.self, at: at, in: base),
                                messageSize: loadBigEndian(Int32.self, at: at + 8, in: base),
                                tagsCode: loadBigEndian(Int64.self, at: at + 12, in: base))
    }

    /// Appends the unit for queue offset `offset` (dispatcher only). Idempotent: a unit whose message
    /// ends at or before this queue's `maxPhysicOffset` is already there and is skipped.
    /// - Returns: false when it was skipped.
    @discardableResult
    func put(offset: Int64, unit: ConsumeQueueUnit) throws(StoreError) -> Bool {
        let end = unit.endOffset
        if end <= maxPhysicOffset { return false }
        var current = maxOffset
        if offset < current { return false }  // already written (a duplicate)
        if current == 0 && offset > 0 && files.count == 0 {
            // A queue that starts past 0 (older messages deleted): its first file starts padded.
            minOffsetAtomic.store(offset, ordering: .releasing)
            current = offset - offset % Int64(fileSize / ConsumeQueueUnit.size)
            maxOffsetAtomic.store(current, ordering: .releasing)
        }
        while current < offset {
            try write(ConsumeQueueUnit.filler, at: current)  // a hole: keep offset -> unit positions exact
            current += 1
            maxOffsetAtomic.store(current, ordering: .releasing)
        }
        try write(unit, at: offset)
        maxPhysicOffsetAtomic.store(end, ordering: .releasing)
        maxOffsetAtomic.store(offset + 1, ordering: .releasing)
        return true
    }

    private func write(_ unit: ConsumeQueueUnit, at offset: Int64) throws(StoreError) {
        let logical = UInt64(offset) * UInt64(ConsumeQueueUnit.size)
        let file: MappedFile
        if let cached = writeFile, logical >= cached.fileFromOffset, logical < cached.fileEndOffset {
            file = cached
        } else if let existing = files.file(containing: logical) {
            file = existing
        } else {
            let from = logical - logical % UInt64(fileSize)
            if files.count == 0 {
                do { try makeDirectories(files.directory) } catch {
                    throw StoreError(error.isDiskFull ? .diskFull : .io, "\(files.directory): cannot create", cause: error)
                }
            }
            file = try MappedFile(create: files.directory + "/" + offsetFileName(from), fileFromOffset: from,
                                  fileSize: fileSize, io: io, warmUp: false)
            files.append(file)
        }
        writeFile = file
        let at = Int(logical - file.fileFromOffset)
        storeBigEndian(unit.physicalOffset, at: at, in: file.base)
        storeBigEndian(unit.messageSize, at: at + 8, in: file.base)
        storeBigEndian(unit.tagsCode, at: at + 12, in: file.base)
    }

    func setMaxPhysicOffset(_ value: Int64) { maxPhysicOffsetAtomic.store(value, ordering: .releasing) }

    /// Loads the files and finds the end: the first invalid (zero) unit, scanning from the third-to-last
    /// file (in a file cut short, the first unit not wholly inside the bytes that survived). Units past it
    /// are zeroed; files after it deleted.
    func recover() throws(StoreError) {
        try files.load()
        let all = files.all
        guard let first = all.first else { return }
        var end = first.fileFromOffset
        var lastEnd: Int64 = 0
        let short = files.shortFile
        scan: for file in all[max(0, all.count - 3)...] {
            end = file.fileFromOffset
            var at = 0
            let limit = short?.fileFromOffset == file.fileFromOffset ? short!.survivingBytes : file.fileSize
            while at + ConsumeQueueUnit.size <= limit {
                let base = UnsafeRawPointer(file.base)
                let unit = ConsumeQueueUnit(physicalOffset: loadBigEndian(Int64.self, at: at, in: base),
                                            messageSize: loadBigEndian(Int32.self, at: at + 8, in: base),
                                            tagsCode: loadBigEndian(Int64.self, at: at + 12, in: base))
                guard unit.isValid else { break scan }
                if unit != .filler { lastEnd = unit.endOffset }
                at += ConsumeQueueUnit.size
                end = file.fileFromOffset + UInt64(at)
            }
        }
        try cut(atLogical: end)
        maxPhysicOffsetAtomic.store(lastEnd, ordering: .releasing)
        // The min offset: the first non-filler unit of the first file.
        var minimum = Int64(first.fileFromOffset) / Int64(ConsumeQueueUnit.size)
        while minimum < maxOffset, unit(atRaw: minimum) == .filler { minimum += 1 }
        minOffsetAtomic.store(minimum, ordering: .releasing)
        flushedBytes = Int64(end)
    }

    /// Sets the end to `logical` bytes: later files are deleted and the rest of its file is zeroed.
    func cut(atLogical logical: UInt64) throws(StoreError) {
        writeFile = nil
        let keep = logical - logical % UInt64(fileSize)
        for file in files.removeFiles(startingAtOrAfter: keep + UInt64(fileSize)) { file.unlinkFromDisk() }
        if let file = files.file(containing: logical) {
            do { try file.zeroTail(from: Int(logical - file.fileFromOffset), io: io) } catch {
                throw StoreError(.io, "\(file.path): cannot truncate", cause: error)
            }
        }
        maxOffsetAtomic.store(Int64(logical) / Int64(ConsumeQueueUnit.size), ordering: .releasing)
        flushedBytes = min(flushedBytes, Int64(logical))  // units written again here get flushed again
    }

    /// Drops every unit pointing at or past `physicalEnd` (the commit log was cut there).
    func truncate(physicalEnd: Int64) throws(StoreError) {
        var offset = maxOffset
        let floor = minOffset
        var lastEnd: Int64 = 0
        while offset > floor, let unit = unit(at: offset - 1) {
            if unit.endOffset <= physicalEnd || unit == .filler {
                lastEnd = unit.endOffset
                break
            }
            offset -= 1
        }
        guard offset < maxOffset else { return }
        try cut(atLogical: UInt64(offset) * UInt64(ConsumeQueueUnit.size))
        maxPhysicOffsetAtomic.store(offset == floor ? 0 : lastEnd, ordering: .releasing)
    }

    /// Flushes written units (msync) when at least `leastPages` pages are dirty, or any with 0.
    func flush(leastPages: Int) throws(SyscallError) {
        let end = maxOffset * Int64(ConsumeQueueUnit.size)
        guard end > flushedBytes, end - flushedBytes >= Int64(leastPages * 4096) else { return }
        var from = flushedBytes
        while from < end {
            guard let file = files.file(containing: UInt64(from)) else { break }
            let to = min(end, Int64(file.fileEndOffset))
            try file.flush(from: Int(UInt64(from) - file.fileFromOffset), to: Int(UInt64(to) - file.fileFromOffset),
                           method: .msync, io: io)
            from = to
        }
        flushedBytes = end
    }

    /// Deletes files whose every unit points below `commitLogMinOffset` (never the last one), then moves
    /// the min offset to the first unit still pointing at stored data.
    func deleteExpired(commitLogMinOffset: Int64) -> Int {
        var deleted = 0
        while let first = files.first, files.count > 1 {
            let lastUnitAt = Int64(first.fileEndOffset) / Int64(ConsumeQueueUnit.size) - 1
            guard let last = unit(atRaw: lastUnitAt), last.endOffset <= commitLogMinOffset,
                  files.removeFirst(first) else { break }
            first.unlinkFromDisk()
            deleted += 1
        }
        var minimum = max(minOffset, Int64(files.first?.fileFromOffset ?? 0) / Int64(ConsumeQueueUnit.size))
        while minimum < maxOffset, let unit = unit(atRaw: minimum), unit == .filler || unit.physicalOffset < commitLogMinOffset {
            minimum += 1
        }
        minOffsetAtomic.store(minimum, ordering: .releasing)
        return deleted
    }
}
