#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Raft
import Synchronization

/// The Raft log on disk: `<directory>/raftlog`, one append-only write-ahead stream of entry, hard-state and
/// truncation records (`RaftLogRecord`). One `Ready` is one write: its truncation, then its entries, then its hard
/// state, so a hard state can never be durable without the log writes it came with (recovery reads the stream
/// in order and stops at the first record that is not whole: a torn tail takes every later record with it).
///
/// Compaction rewrites the file: a new file (`raftlog.compacting`) holds a compaction record, the hard state and
/// the retained entries; it is synced, renamed over `raftlog`, and the directory is synced. A crash at any point
/// leaves either the old file or the new one under the name `raftlog`, each a whole stream (a leftover
/// `raftlog.compacting` is deleted when the disk opens).
///
/// **Thread:** the DLedger driver writes and compacts (recovery before it starts); `sync()` may run on another thread meanwhile
/// (the asynchronous mode's periodic sync must not stall the driver). **Durability:** with `syncEachWrite`, a
/// `write` is durable on return (fdatasync); otherwise it is in the page cache (a killed process loses nothing)
/// until the next `sync()`.
public final class RaftLogDisk: @unchecked Sendable {
    public let path: String
    let directory: String
    /// The open file, for the driver's writes (only compaction, on the driver's thread, replaces it).
    private var fd: Int32
    /// The same descriptor for `sync()`, which holds this lock while it syncs; compaction swaps it under the lock.
    private let file: Mutex<Int32>
    let io: FileIO
    let syncEachWrite: Bool
    /// Where the next record goes: the end of the valid stream.
    public private(set) var end: UInt64 = 0
    /// The stream's content as written so far: its compacted start, last entry and last hard state.
    public private(set) var snapshotIndex = LogIndex.zero
    public private(set) var lastIndex = LogIndex.zero
    private var hardState = HardState()
    /// Written since the last sync began.
    private let dirtyFlag = Atomic<Bool>(false)
    public var dirty: Bool { dirtyFlag.load(ordering: .acquiring) }
    /// Set by the first failed write or sync: the disk refuses everything after it (a failed fdatasync is final).
    private let failureState = Mutex<StoreError?>(nil)
    public var failure: StoreError? { failureState.withLock { $0 } }

    /// What recovery found.
    public struct Recovery: Sendable {
        public var state: DurableState
        /// Records read (entries, hard states and truncations).
        public var recordCount = 0
        /// Bytes cut from the end (a torn or corrupt tail), and why.
        public var truncatedBytes: UInt64 = 0
        public var flaw: String?
        /// Where the compacted entries' records end in the commit log (0 when nothing was compacted).
        public var snapshotEnd: UInt64 = 0
    }

    /// Opens (or creates) the log file. Call `recover()` before the first write.
    /// - Throws: `StoreError(.io)` when the directory or file cannot be made.
    public init(directory: String, io: FileIO = .system, syncEachWrite: Bool) throws(StoreError) {
        let path = directory + "/raftlog"
        self.path = path
        self.directory = directory
        self.io = io
        self.syncEachWrite = syncEachWrite
        do {
            try makeDirectories(directory)
            // A compaction that did not reach its rename: the old file is whole, the new one may not be.
            if fileExists(path + ".compacting") { _ = try syscall("unlink") { unlink(path + ".compacting") } }
            let existed = fileExists(path)
            fd = try syscall("open") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
            file = Mutex(fd)
            if !existed { try fsyncDirectory(directory) }
        } catch {
            throw StoreError(.io, "\(path): cannot open the Raft log", cause: error)
        }
    }

    deinit { close(fd) }

    /// Reads the whole stream, checks every record, and cuts the file at the first one that is not whole
    /// (torn, corrupt, or out of order); the cut is durable on return.
    /// - Throws: `StoreError(.io)` when the file cannot be read or cut.
    public func recover() throws(StoreError) -> Recovery {
        var stat = stat()
        guard fstat(fd, &stat) == 0 else { throw StoreError(.io, "\(path): fstat failed") }
        let size = Int(stat.st_size)
        var replay = Replay()
        var valid = 0
        if size > 0 {
            guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
                throw StoreError(.io, "\(path): cannot map \(size) bytes")
            }
            defer { munmap(mapping, size) }
            valid = replay.scan(UnsafeRawBufferPointer(start: mapping, count: size))
        }
        var recovery = Recovery(state: replay.state, recordCount: replay.records, snapshotEnd: replay.snapshotEnd)
        snapshotIndex = replay.state.snapshotIndex
        lastIndex = replay.state.snapshotIndex.advanced(by: replay.state.entries.count)
        hardState = replay.state.hardState
        if valid < size {
            recovery.truncatedBytes = UInt64(size - valid)
            recovery.flaw = replay.flaw
            do {
                _ = try syscall("ftruncate") { ftruncate(fd, off_t(valid)) }
                try io.fdatasync(fd)
            } catch {
                throw StoreError(.io, "\(path): cannot cut the torn tail at \(valid)", cause: error)
            }
        }
        end = UInt64(valid)
        return recovery
    }

    /// Appends one `Ready`'s writes as one stream write: the cut of a divergent suffix, the entries, the hard
    /// state. With `syncEachWrite` it is durable on return.
    /// - Throws: `StoreError(.io/.diskFull/.flushFailed)`; after a failure every later call throws it again.
    public func write(truncateFrom: LogIndex?, entries: [LogEntry], hardState: HardState?) throws(StoreError) {
        if let failure { throw failure }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(entries.reduce(2 * RaftLogRecord.headerBytes) { $0 + RaftLogRecord.size(of: $1) })
        if let truncateFrom { RaftLogRecord.appendTruncation(from: truncateFrom, at: end + UInt64(buffer.count), to: &buffer) }
        for entry in entries { RaftLogRecord.append(entry, at: end + UInt64(buffer.count), to: &buffer) }
        if let hardState { RaftLogRecord.append(hardState, at: end + UInt64(buffer.count), to: &buffer) }
        guard !buffer.isEmpty else { return }
        let written = buffer.withUnsafeBytes { bytes in Result { () throws(SyscallError) in try io.pwrite(fd, bytes, Int(end)) } }
        if case .failure(let error) = written {
            throw fail(StoreError(error.isDiskFull ? .diskFull : .io, "\(path) @\(end): cannot write \(buffer.count) bytes", cause: error))
        }
        end += UInt64(buffer.count)
        if let truncateFrom { lastIndex = min(lastIndex, truncateFrom.previous) }
        if let last = entries.last { lastIndex = last.index }
        if let hardState { self.hardState = hardState }
        dirtyFlag.store(true, ordering: .releasing)
        if syncEachWrite { try sync() }
    }

    /// Makes every write so far durable.
    /// - Throws: `StoreError(.flushFailed)`, final.
    public func sync() throws(StoreError) {
        if let failure { throw failure }
        // Cleared before the sync: a write landing during it sets it again and is synced next time.
        guard dirtyFlag.exchange(false, ordering: .acquiringAndReleasing) else { return }
        do { try file.withLock { (fd) throws(SyscallError) in try io.fdatasync(fd) } } catch {
            throw fail(StoreError(.flushFailed, "\(path): fdatasync failed; the Raft log refuses writes from now on", cause: error))
        }
    }

    func fail(_ error: StoreError) -> StoreError {
        failureState.withLock { if $0 == nil { $0 = error } }
        return error
    }
}

/// Replays the stream into the state it leaves: its compacted start, the entries after it, the last hard state.
struct Replay {
    var state = DurableState()
    var records = 0
    var flaw: String?
    var snapshotEnd: UInt64 = 0

    /// Scans records from the start; returns where the valid stream ends.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count {
            switch RaftLogRecord.read(bytes, at: offset) {
            case .failure(let problem):
                flaw = "@\(offset): \(problem)"
                return offset
            case .success(let (header, body)):
                if let problem = apply(header, body) {
                    flaw = "@\(offset): \(problem)"
                    return offset
                }
                records += 1
                offset += header.size
            }
        }
        return offset
    }

    /// Applies one record; returns why it does not fit the stream so far (then it and all later ones are cut).
    mutating func apply(_ header: RaftLogRecord.Header, _ body: UnsafeRawBufferPointer) -> String? {
        let start = state.snapshotIndex.rawValue
        let last = start + UInt64(state.entries.count)
        switch header.magic {
        case .entry, .noop:
            guard header.index == last + 1 else { return "entry \(header.index) after \(last)" }
            let previousTerm = state.entries.last?.term.rawValue ?? state.snapshotTerm.rawValue
            guard header.term >= previousTerm, header.term > 0 else { return "entry term \(header.term) after \(previousTerm)" }
            state.entries.append(LogEntry(index: LogIndex(header.index), term: Term(header.term),
                                          kind: header.magic == .noop ? .noop : .normal, payload: [UInt8](body)))
        case .hardState:
            let vote = header.channel == 0 ? nil : NodeID(header.channel - 1)
            state.hardState = HardState(term: Term(header.term), vote: vote, commit: LogIndex(header.index))
        case .truncation:
            guard header.index > start, header.index <= last + 1 else { return "truncation from \(header.index) of \(start + 1)...\(last)" }
            state.entries.removeSubrange(Int(header.index - start - 1)...)
        case .compaction:
            guard records == 0, header.index > 0, header.term > 0, body.count == 8 else { return "a compaction record not at the start" }
            state.snapshotIndex = LogIndex(header.index)
            state.snapshotTerm = Term(header.term)
            snapshotEnd = loadBigEndian(UInt64.self, at: 0, in: body.baseAddress!)
        }
        return nil
    }
}

extension RaftLogDisk {
    /// Rewrites the log to start after `snapshotIndex`: a new file with a compaction record, the last hard state
    /// and `retained` (the entries `snapshotIndex + 1 ... lastIndex`, exactly as written), synced, renamed over the
    /// old file, the directory synced. The commit log must already hold the compacted entries' records durably
    /// through `snapshotEnd` (recovery cannot rebuild them any more).
    ///
    /// **Thread:** the driver (no `write` meanwhile). **Durability:** durable on return; a crash at any point
    /// recovers the old file or the new one.
    /// - Throws: `StoreError(.io/.diskFull)` before the rename (the old file stays in use; a later compaction may
    ///   retry); a failure after it is final, as a failed sync is.
    public func compact(through snapshotIndex: LogIndex, term: Term, snapshotEnd: UInt64, retained: [LogEntry]) throws(StoreError) {
        if let failure { throw failure }
        precondition(snapshotIndex > self.snapshotIndex, "compaction through \(snapshotIndex) does not advance \(self.snapshotIndex)")
        precondition(retained.first.map { $0.index == snapshotIndex.next } ?? (snapshotIndex == lastIndex),
                     "retained entries do not follow \(snapshotIndex)")
        precondition((retained.last?.index ?? snapshotIndex) == lastIndex, "retained entries do not end at the log's end \(lastIndex)")
        var buffer: [UInt8] = []
        buffer.reserveCapacity(retained.reduce(3 * RaftLogRecord.headerBytes + 8) { $0 + RaftLogRecord.size(of: $1) })
        RaftLogRecord.appendCompaction(through: snapshotIndex, term: term, end: snapshotEnd, at: 0, to: &buffer)
        RaftLogRecord.append(hardState, at: UInt64(buffer.count), to: &buffer)
        for entry in retained { RaftLogRecord.append(entry, at: UInt64(buffer.count), to: &buffer) }
        let temporary = path + ".compacting"
        let newFD: Int32
        do {
            newFD = try syscall("open") { open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        } catch {
            throw StoreError(.io, "\(temporary): cannot create the compacted Raft log", cause: error)
        }
        do throws(SyscallError) {
            try buffer.withUnsafeBytes { bytes in Result { () throws(SyscallError) in try io.pwrite(newFD, bytes, 0) } }.get()
            try io.fdatasync(newFD)
            _ = try syscall("rename") { rename(temporary, path) }
        } catch {
            close(newFD)
            unlink(temporary)
            throw StoreError(error.isDiskFull ? .diskFull : .io, "\(temporary): cannot write the compacted Raft log; the old one stays", cause: error)
        }
        // Renamed: the new file is the log from now on, whether or not the rename is durable yet.
        file.withLock { $0 = newFD }
        close(fd)
        fd = newFD
        end = UInt64(buffer.count)
        self.snapshotIndex = snapshotIndex
        do { try fsyncDirectory(directory) } catch {
            throw fail(StoreError(.flushFailed, "\(directory): cannot sync the rename of the compacted Raft log", cause: error))
        }
    }
}
