#if canImport(Glibc)
import Glibc
#endif
import CLiburing
import Synchronization

/// The 20-digit, zero-padded file name of a log segment starting at `offset`.
public func offsetFileName(_ offset: UInt64) -> String {
    let digits = String(offset)
    return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
}

/// `MappedFile.zeroFillChunkBytes` of zeros, the source of `zeroFill`'s writes (never written to).
nonisolated(unsafe) private let zeroFillSource: UnsafeMutableRawPointer = {
    let bytes = UnsafeMutableRawPointer.allocate(byteCount: MappedFile.zeroFillChunkBytes, alignment: 4096)
    bytes.initializeMemory(as: UInt8.self, repeating: 0, count: MappedFile.zeroFillChunkBytes)
    return bytes
}()

/// One fixed-size segment of a log: created at full size (fallocate), mapped shared, named by its first
/// byte's global offset. Readers share it (a `final class`: ARC is the reference count), so a deleted
/// file stays mapped until the last reader lets go, and `deinit` unmaps it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// Global offset of this file's first byte.
    public let fileFromOffset: UInt64
    public let fileSize: Int
    public let fd: Int32
    public let base: UnsafeMutableRawPointer
    /// Bytes from the start written out with zeros when the file was made (`writeZeros`; 0 when opened).
    let preWrittenBytes: Int
    /// The bytes the live pre-writer wrote zeros over and synced while the file was in use (`FlushEngine+PreWrite`).
    let liveZeros = Atomic<UInt64>(0)

    /// Opens an existing segment; its size must be `fileSize`.
    public init(openExisting path: String, fileFromOffset: UInt64, fileSize: Int) throws(StoreError) {
        let fd: Int32
        do { fd = try syscall("open") { open(path, O_RDWR | O_CLOEXEC) } } catch {
            throw StoreError(.io, "\(path): cannot open", cause: error)
        }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) == fileSize else {
            close(fd)
            throw StoreError(.corruptRecord, "\(path): size \(info.st_size) is not mappedFileSize \(fileSize)")
        }
        self.path = path
        self.fileFromOffset = fileFromOffset
        self.fileSize = fileSize
        self.fd = fd
        self.preWrittenBytes = 0
        self.base = try MappedFile.map(fd: fd, size: fileSize, path: path)
    }

    /// Creates a segment at full size: written under a temporary name, reserved with fallocate, made
    /// durable and renamed, so a crash never leaves a short segment behind.
    /// - Parameters:
    ///   - preWriteUntil: when given, the file's zeros are written out before it is used (see `writeZeros`),
    ///     stopping early once it returns true (the file is wanted now).
    ///   - preWriteBytes: how much of the file from its start is pre-written (nil: all of it).
    public init(create path: String, fileFromOffset: UInt64, fileSize: Int, io: FileIO, warmUp: Bool,
                preWriteUntil: (() -> Bool)? = nil, preWriteBytes: Int? = nil) throws(StoreError) {
        let temporary = path + ".tmp"
        let fd: Int32
        var preWritten = 0
        do { fd = try syscall("open") { open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } } catch {
            throw StoreError(error.isDiskFull ? .diskFull : .createMappedFileFailed, "\(path): cannot create", cause: error)
        }
        do {
            try io.fallocate(fd, 0, fileSize)
            if let preWriteUntil {
                preWritten = try MappedFile.writeZeros(fd: fd, size: min(fileSize, preWriteBytes ?? fileSize), io: io, until: preWriteUntil)
            }
            try io.fdatasync(fd)
            _ = try syscall("rename") { rename(temporary, path) }
            // The new name is durable only once its directory is: without this, a power cut could keep the
            // segment's synced bytes under no name (found by the power-loss harness).
            try fsyncDirectory(parentDirectory(of: path))
        } catch {
            close(fd)
            unlink(temporary)
            throw StoreError(error.isDiskFull ? .diskFull : .createMappedFileFailed,
                             "\(path): cannot reserve \(fileSize) bytes", cause: error)
        }
        self.path = path
        self.fileFromOffset = fileFromOffset
        self.fileSize = fileSize
        self.fd = fd
        self.preWrittenBytes = preWritten
        do { self.base = try MappedFile.map(fd: fd, size: fileSize, path: path) } catch {
            close(fd)
            throw error
        }
        if warmUp { self.warmUp(writeBack: preWritten < fileSize) }
    }

    /// Writes zeros over the reserved file, `preWriteChunk` bytes at a time, each chunk made durable before
    /// the next: ext4 turns the fallocated (unwritten) extents into written ones now, so an fdatasync after
    /// appends carries their pages and a cache flush only, not an extent conversion and a journal commit
    /// (half the kernel CPU of each group commit's fdatasync, and less latency). Small chunks keep the
    /// disk queue short for the log's own flushes meanwhile. Stops after the chunk during which `until`
    /// turned true. Returns the bytes written.
    public static func writeZeros(fd: Int32, size: Int, io: FileIO, until: () -> Bool) throws(SyscallError) -> Int {
        let chunk = min(size, preWriteChunk)
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var written = 0
        while written < size && !until() {
            let count = min(chunk, size - written)
            try io.pwrite(fd, UnsafeRawBufferPointer(rebasing: zeros[0..<count]), written)
            try io.fdatasync(fd)
            written += count
        }
        return written
    }

    /// Bytes of zeros `writeZeros` writes (and syncs) at a time.
    static let preWriteChunk = 1 << 20

    private static func map(fd: Int32, size: Int, path: String) throws(StoreError) -> UnsafeMutableRawPointer {
        guard let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), address != MAP_FAILED else {
            throw StoreError(.io, "\(path): mmap of \(size) bytes failed",
                             cause: SyscallError(name: "mmap", errno: errno))
        }
        return address
    }

    deinit {
        munmap(base, fileSize)
        close(fd)
    }

    /// Global offset just past this file.
    @inlinable public var fileEndOffset: UInt64 { fileFromOffset + UInt64(fileSize) }

    /// Touches every page so appends do not fault on fresh pages (`warmMapedFileEnable`).
    func warmUp(writeBack: Bool) {
        let page = Int(getpagesize())
        var at = 0
        while at < fileSize {
            base.storeBytes(of: 0, toByteOffset: at, as: UInt8.self)
            at += page
        }
        _ = madvise(base, fileSize, MADV_WILLNEED)
        // Writing the zeros back turns the file's unwritten extents into written ones now, in the
        // background, so a later fdatasync carries data pages only, not extent conversions (done already
        // when the file was pre-written).
        if writeBack { _ = msync(base, fileSize, MS_SYNC) }
    }

    /// Faults in the first `bytes` of the mapping as writable (MADV_POPULATE_WRITE, Linux 5.14; ignored
    /// where unsupported): the page cache pages are made now (by `zeroFill`: nobody writes the new file
    /// yet), not by the appends that reach them.
    func populate(bytes: Int) {
        let length = min(bytes, fileSize)
        guard length > 0 else { return }
        _ = zeroFill(from: 0, count: length)
        _ = madvise(base, length, 23)  // MADV_POPULATE_WRITE
    }

    /// The size of the zero-filled pieces: small enough for the page cache to use small folios, large
    /// enough to take one syscall per ~55 messages of 1 KiB.
    static let zeroFillChunkBytes = 64 << 10

    /// Writes zeros over `[position, position + count)` with pwrite, `zeroFillChunkBytes` at a time, so the
    /// page cache pages are made by a write (no zeroing pass) rather than by faults (see `FlushEngine+Prefault`).
    /// The bytes must be zeros already (never written) and nobody may write them meanwhile.
    /// - Returns: false when a pwrite failed (nothing is lost: the pages are then faulted in as before).
    /// Bytes the file was pre-written with, or the live pre-writer wrote, are skipped: their pages are made
    /// already (or read back as written).
    func zeroFill(from position: Int, count: Int) -> Bool {
        var at = max(position, preWrittenBytes)
        let end = min(fileSize, position + count)
        while at < end {
            let length = min(MappedFile.zeroFillChunkBytes, end - at)
            if liveZerosRange.contains(at) && liveZerosRange.contains(at + length - 1) {
                at += length  // the live pre-writer wrote these zeros already
                continue
            }
            guard (try? syscall("pwrite") { pwrite(fd, zeroFillSource, length, off_t(at)) }) == length else { return false }
            at += length
        }
        return true
    }

    /// Makes the pages of `[position, position + bytes)` writable again after a flush wrote them back (which
    /// write-protects them; the file system's journal commit may write back pages ahead of the flushed
    /// range too): the write faults (ext4's page_mkwrite, which may wait for the journal) are taken here,
    /// on the flusher, not by the appends into those pages. Pages still writable cost a page-table walk.
    /// The bytes are not touched.
    func rearm(from position: Int, bytes: Int) {
        guard position >= 0 && position < fileSize && bytes > 0 else { return }
        let page = Int(getpagesize())
        let start = position / page * page
        _ = madvise(base + start, min(fileSize, position + bytes) - start, 23)  // MADV_POPULATE_WRITE
    }

    /// Bytes `[from, to)` of this file as a buffer over the mapping (no copy).
    @inlinable
    public func bytes(from: Int, to: Int) -> UnsafeRawBufferPointer {
        precondition(from >= 0 && from <= to && to <= fileSize, "range outside the mapped file")
        return UnsafeRawBufferPointer(start: base + from, count: to - from)
    }

    /// Forces `[from, to)` (file positions) to disk with msync or fdatasync.
    public func flush(from: Int, to: Int, method: FlushMethod, io: FileIO) throws(SyscallError) {
        guard to > from else { return }
        switch method {
        case .fdatasync:
            try io.fdatasync(fd)
        case .msync:
            let page = Int(getpagesize())
            let start = from - from % page
            try io.msync(base + start, to - start)
        }
    }

    /// Zeroes the file from `position` to its end, so bytes left behind a truncation can never be read
    /// as records. Whole pages are returned to the file system as zeroed (unwritten) extents.
    public func zeroTail(from position: Int, io: FileIO) throws(SyscallError) {
        let page = Int(getpagesize())
        let pageEnd = min(fileSize, (position + page - 1) / page * page)
        if pageEnd > position { memset(base + position, 0, pageEnd - position) }
        if pageEnd < fileSize {
            let length = fileSize - pageEnd
            if cliburing_fallocate(fd, cliburing_falloc_zero_range(), off_t(pageEnd), off_t(length)) != 0 {
                // tmpfs and some others lack ZERO_RANGE: punch a hole, then reserve the blocks again.
                if cliburing_fallocate(fd, cliburing_falloc_punch_hole(), off_t(pageEnd), off_t(length)) == 0 {
                    try io.fallocate(fd, pageEnd, length)
                } else {
                    memset(base + pageEnd, 0, length)
                }
            }
        }
        try io.msync(base + (position - position % page), pageEnd - (position - position % page))
        try io.fdatasync(fd)
    }

    /// Last modification time in ms since the epoch (retention's file age).
    public var lastModifiedMillis: Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return 0 }
        return Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec / 1_000_000)
    }

    /// Removes the file's name; the mapping lives on until the last reader drops its reference.
    public func unlinkFromDisk() {
        unlink(path)
    }
}

/// How the `mmap` io path makes bytes durable.
public enum FlushMethod: String, Sendable, CaseIterable {
    case msync, fdatasync
}
