#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The ordered segments of one log directory. Lookups take a short lock and return a retained file.
public final class MappedFileQueue: @unchecked Sendable {
    public let directory: String
    public let fileSize: Int
    private let files = Mutex<[MappedFile]>([])

    public init(directory: String, fileSize: Int) {
        self.directory = directory
        self.fileSize = fileSize
    }

    /// Opens every segment in the directory, oldest first; checks names and sizes.
    public func load() throws(StoreError) {
        do { try makeDirectories(directory) } catch {
            throw StoreError(.io, "\(directory): cannot create", cause: error)
        }
        var loaded: [MappedFile] = []
        let names = (listDirectory(directory) ?? []).sorted()
        for name in names {
            if name.hasSuffix(".tmp") {
                unlink(directory + "/" + name)  // a creation interrupted by a crash
                continue
            }
            guard name.count == 20, let offset = UInt64(name) else { continue }
            guard offset % UInt64(fileSize) == 0 else {
                throw StoreError(.corruptRecord, "\(directory)/\(name): offset is not a multiple of file size \(fileSize)")
            }
            if let previous = loaded.last, previous.fileEndOffset != offset {
                throw StoreError(.corruptRecord, "\(directory)/\(name): gap after \(offsetFileName(previous.fileFromOffset))")
            }
            let path = directory + "/" + name
            let later = names.filter { $0 > name && $0.count == 20 && UInt64($0) != nil }
            if later.allSatisfy({ startsEmpty(directory + "/" + $0) }) { try extendShortLastFile(path, fileFromOffset: offset) }
            loaded.append(try MappedFile(openExisting: path, fileFromOffset: offset, fileSize: fileSize))
        }
        files.withLock { $0 = loaded }
    }

    /// True when the file's first record slot is zeros: a pre-allocated segment never written.
    private func startsEmpty(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var head: UInt64 = 0
        return pread(fd, &head, 8, 0) == 8 && head == 0
    }

    /// The last written segment cut short (a crash while the file system grew it, or a copy cut off) is extended
    /// with zeros to full size, so it maps like any other; `shortFile` remembers how many bytes survived, and
    /// recovery trusts no record reaching past them (their zeros were never written by us).
    private func extendShortLastFile(_ path: String, fileFromOffset: UInt64) throws(StoreError) {
        var info = stat()
        guard stat(path, &info) == 0, Int(info.st_size) < fileSize else { return }
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(.io, "\(path): cannot open", cause: SyscallError(name: "open", errno: errno)) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(fileSize)) == 0 else {
            throw StoreError(.io, "\(path): cannot extend a short last file", cause: SyscallError(name: "ftruncate", errno: errno))
        }
        shortFile = ShortFile(path: path, fileFromOffset: fileFromOffset, survivingBytes: Int(info.st_size))
    }

    /// A segment `load` found shorter than `fileSize` and extended with zeros.
    public struct ShortFile: Sendable, Equatable {
        public var path: String
        public var fileFromOffset: UInt64
        /// Bytes the file held on disk: nothing past them was ever written there.
        public var survivingBytes: Int
    }

    /// The short last segment that `load` extended, if any.
    public private(set) var shortFile: ShortFile?

    public var first: MappedFile? { files.withLock { $0.first } }
    public var last: MappedFile? { files.withLock { $0.last } }
    public var count: Int { files.withLock { $0.count } }
    public var all: [MappedFile] { files.withLock { $0 } }

    /// The segment holding global `offset`, if it still exists.
    public func file(containing offset: UInt64) -> MappedFile? {
        files.withLock { files -> MappedFile? in
            guard let first = files.first, offset >= first.fileFromOffset else { return nil }
            let index = Int((offset - first.fileFromOffset) / UInt64(fileSize))
            return index < files.count ? files[index] : nil
        }
    }

    public func append(_ file: MappedFile) {
        files.withLock { files in
            precondition(files.last.map { $0.fileEndOffset == file.fileFromOffset } ?? true, "segment gap")
            files.append(file)
        }
    }

    /// Drops every segment that starts at or after `offset` (recovery's truncation).
    public func removeFiles(startingAtOrAfter offset: UInt64) -> [MappedFile] {
        files.withLock { files in
            let removed = files.filter { $0.fileFromOffset >= offset }
            files.removeAll { $0.fileFromOffset >= offset }
            return removed
        }
    }

    /// Drops the oldest segment if it is `file` (retention never leaves holes).
    public func removeFirst(_ file: MappedFile) -> Bool {
        files.withLock { files in
            guard let first = files.first, first === file, files.count > 1 else { return false }
            files.removeFirst()
            return true
        }
    }
}

/// Creates the next segment in the background so a roll-over never waits for fallocate (RocketMQ's
/// `AllocateMappedFileService`). One request at a time: the file after the one just taken.
final class AllocateMappedFileService: @unchecked Sendable {
    private let condition = ConditionLock()
    private var requested: UInt64?
    private var inProgress: UInt64?
    private var ready: (offset: UInt64, result: Result<MappedFile, StoreError>)?
    private var stopping = false
    private var thread: StoreThread?
    private let queue: MappedFileQueue
    private let io: FileIO
    private let warmUp: Bool
    /// New files are pre-written (`MappedFile.writeZeros`) before they are handed out.
    private let preWrite: Bool
    /// Where the live pre-writer writes the rest of the file ahead of the writer (`FlushEngine+PreWrite`): the
    /// bytes of a new file pre-written here, its head (nil: the whole file; the first file under `preWriteFirst`
    /// is always written whole). Its O_DIRECT writes took half the CPU of these buffered ones (1 MiB pwrite +
    /// fdatasync a chunk): 0.33 against 0.66 us per 1 KiB message, SYNC_FLUSH mmap, 64 senders.
    private let preWriteHeadBytes: Int?
    /// Set (under `condition`) when the file being made is wanted now, or the service stops: its
    /// pre-write ends after the current chunk.
    private let wanted = Atomic<Bool>(false)
    /// The file an opening log waits for (`awaitPrepared`): made without waiting for a pre-write.
    private var wantedAtOnce: UInt64?
    /// `awaitPrepared` waits for the pre-write too (`CommitLogSettings.preWriteFirstFile`).
    private let preWriteFirst: Bool
    /// The log's write position: a file to pre-write is started only once the writer is half way through
    /// the file before it, so its disk writes (and their CPU) are spread over the log's own, not done all
    /// at once when the file before it is taken.
    private let writePosition: (@Sendable () -> UInt64)?
    /// Bytes at the start of each segment made in the background that are faulted in (writable) before it
    /// is handed out, so the appends after a roll-over take no page faults while the pre-faulter catches up.
    private let populateBytes: Int

    init(queue: MappedFileQueue, io: FileIO, warmUp: Bool, preWrite: Bool = false, preWriteFirst: Bool = false,
         preWriteHeadBytes: Int? = nil, populateBytes: Int = 0,
         writePosition: (@Sendable () -> UInt64)? = nil) {
        self.queue = queue
        self.io = io
        self.warmUp = warmUp
        self.preWrite = preWrite
        self.preWriteHeadBytes = preWriteHeadBytes
        self.preWriteFirst = preWriteFirst
        self.writePosition = writePosition
        self.populateBytes = warmUp ? 0 : populateBytes
    }

    func start() {
        thread = StoreThread(name: "allocate-file") { [self] in run() }
    }

    func stop() {
        condition.withLock {
            stopping = true
            wanted.store(true, ordering: .relaxed)
            condition.broadcast()
        }
        thread?.join()
        thread = nil
        // A prepared but unused file is left on disk: it is all zeros and recovery treats it as empty.
    }

    private func path(for offset: UInt64) -> String { queue.directory + "/" + offsetFileName(offset) }

    private func run() {
        var first = true
        condition.lock()
        while !stopping {
            guard let offset = requested else {
                condition.wait(untilNanos: monotonicNanos() + 1_000_000_000)
                continue
            }
            requested = nil
            inProgress = offset
            wanted.store(offset == wantedAtOnce, ordering: .relaxed)
            if preWrite, let writePosition {
                while !stopping && !wanted.load(ordering: .relaxed) && writePosition() + UInt64(queue.fileSize / 2) < offset {
                    condition.wait(untilNanos: monotonicNanos() + 100_000_000)
                }
            }
            condition.unlock()
            let result: Result<MappedFile, StoreError>
            do {
                let until = { [self] in wanted.load(ordering: .relaxed) }
                let file = try MappedFile(create: path(for: offset), fileFromOffset: offset, fileSize: queue.fileSize,
                                          io: io, warmUp: warmUp, preWriteUntil: preWrite ? until : nil,
                                          preWriteBytes: first && preWriteFirst ? nil : preWriteHeadBytes)
                file.populate(bytes: populateBytes)
                result = .success(file)
            } catch { result = .failure(error) }
            first = false
            condition.lock()
            inProgress = nil
            ready = (offset, result)
            condition.broadcast()
        }
        condition.unlock()
    }

    /// Asks for the segment at `offset` in the background unless it exists (the first file of an empty
    /// log, or the next one after recovery), so the first append does not wait for it either.
    func prepare(offset: UInt64, fileExists: Bool) {
        let next = fileExists ? offset - offset % UInt64(queue.fileSize) + UInt64(queue.fileSize) : offset
        condition.withLock {
            requested = next
            condition.broadcast()
        }
    }

    /// Waits (5 s at most, plus 1 s per 32 MiB with `preWriteFirst`) until the segment asked for by `prepare` is
    /// ready: an empty log opens with its first segment made, so the first append does not wait for fallocate and
    /// fdatasync. Unless `preWriteFirst`, it does not wait for the file's pre-write (seconds for a large file): the
    /// file is made with what was written so far, and the ones after it are pre-written from half way.
    func awaitPrepared() {
        condition.withLock {
            if !preWriteFirst {
                wantedAtOnce = requested ?? inProgress
                if inProgress != nil { wanted.store(true, ordering: .relaxed) }
            }
            let deadline = monotonicNanos() + 5_000_000_000 + (preWrite && preWriteFirst ? UInt64(queue.fileSize >> 25) * 1_000_000_000 : 0)
            while (requested != nil || inProgress != nil) && monotonicNanos() < deadline {
                condition.wait(untilNanos: deadline)
            }
        }
    }

    /// The segment for `offset`: the pre-allocated one when ready, else created now (waiting at most 5 s
    /// for one in progress, whichever it is: a segment prepared for another offset, as when an empty
    /// replica starts at its master's last file, is then deleted, never left behind as a gap). Then asks
    /// for the one after it.
    func take(offset: UInt64) throws(StoreError) -> MappedFile {
        let file: MappedFile = try condition.withLock { () throws(StoreError) -> MappedFile in
            let deadline = monotonicNanos() + 5_000_000_000
            if inProgress != nil {  // a pre-write stops after its chunk, or is not started
                wanted.store(true, ordering: .relaxed)
                condition.broadcast()
            }
            while inProgress != nil && monotonicNanos() < deadline {
                condition.wait(untilNanos: deadline)
            }
            if inProgress != nil {
                throw StoreError(.createMappedFileFailed, "\(path(for: offset)): not created within 5 s")
            }
            if requested == offset { requested = nil }
            if let prepared = ready {
                ready = nil
                if prepared.offset == offset, case .success(let file) = prepared.result { return file }
                // A failed attempt (the disk may have room now) or a file for another offset: start over.
                if case .success(let stale) = prepared.result { stale.unlinkFromDisk() }
            }
            return try MappedFile(create: path(for: offset), fileFromOffset: offset, fileSize: queue.fileSize,
                                  io: io, warmUp: warmUp)
        }
        condition.withLock {
            if thread != nil {
                requested = offset + UInt64(queue.fileSize)
                condition.broadcast()
            }
        }
        return file
    }
}
