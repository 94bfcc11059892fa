#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// Under SYNC_FLUSH the file being written, when it was not pre-written before use (a log's first file, the last
/// one after a restart), has its zeros written out and synced in the background ahead of the writer where the file
/// is written from an arena (io_uring, and the mmap path's write buffer); the zeros never land on a record, and
/// closing the log stops it.
@Suite(.serialized) struct LivePreWriteTests {
    static let fileSize = 32 << 20
    static let ahead = 8 << 20

    func settings(_ dir: String, io: IOPath, flush: FlushDiskType = .syncFlush) -> CommitLogSettings {
        var settings = testSettings(dir, io: io, flush: flush, fileSize: Self.fileSize)
        settings.livePreWriteAheadBytes = Self.ahead
        settings.prefaultAheadBytes = 4 << 20  // mmap: the pre-faulter claims chunks too, close behind the appenders
        return settings
    }

    /// Four producers append (about 12 MiB, within the first file) while the live file is pre-written; every record
    /// reads back with its CRC checked and its body intact, before and after reopening, and once the appends stop
    /// the file is written out (no unwritten extent, by FIEMAP) to `ahead` past the writer (the chunk holding that end).
    @Test(arguments: [IOPath.ioUring, .mmap])
    func appendsSurviveTheLivePreWriteAndItKeepsAhead(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let settings = settings(dir.path, io: io)
        let log = try CommitLog(settings: settings)
        let failed = Atomic<Int>(0)
        let threads = (0..<4).map { producer in
            StoreThread(name: "lp\(producer)") {
                for sequence in 0..<3000 {
                    let seed = producer * 10_000 + sequence
                    if (try? log.append(TestMessage(size: 100 + seed % 1900, seed: seed))) == nil { failed.wrappingAdd(1, ordering: .relaxed) }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(failed.load(ordering: .relaxed) == 0)
        try waitUntilCommitted(log)
        let wrote = log.wroteOffset
        #expect(wrote < UInt64(Self.fileSize), "the appends stay in the first file")
        let target = min(UInt64(Self.fileSize), wrote + UInt64(Self.ahead))
        let deadline = monotonicNanos() + 20_000_000_000
        while log.livePreWrittenRange(inFileHolding: wrote).upperBound < target && monotonicNanos() < deadline { usleep(2_000) }
        let range = log.livePreWrittenRange(inFileHolding: wrote)
        #expect(range.upperBound >= target && range.upperBound < target + (1 << 20), "pre-written \(range) with the writer at \(wrote)")
        #expect(range.lowerBound >= 4 << 20, "never started within the margin past the reserved end")
        #expect(log.livePreWrittenBytes >= Int(target - wrote))
        let path = settings.storePathCommitLog + "/" + offsetFileName(0)
        if let unwritten = unwrittenBytes(path, from: Int(max(range.lowerBound, wrote)), to: Int(range.upperBound)) {
            #expect(unwritten == 0, "the pre-written zeros are written extents")
            // The check can see unwritten extents: past the pre-written end the file is as fallocated.
            #expect(unwrittenBytes(path, from: Int(range.upperBound) + (2 << 20), to: Self.fileSize) ?? 0 > 0)
        }
        try expectEveryRecord(log, count: 12_000)
        log.close()
        let reopened = try CommitLog(settings: settings)
        defer { reopened.close() }
        try expectEveryRecord(reopened, count: 12_000)
    }

    func expectEveryRecord(_ log: CommitLog, count: Int) throws {
        var records = 0, wrong = 0
        let end = try log.forEachRecord(from: log.minOffset, checkCRC: true) { record in
            let seed = Int(record.header.queueOffset)
            if Array(record.body) != TestMessage(size: 100 + seed % 1900, seed: seed).body { wrong += 1 }
            records += 1
            return true
        }
        #expect(wrong == 0)
        #expect(records == count)
        #expect(end == log.wroteOffset)
    }

    /// Nothing is pre-written ahead of the writer under ASYNC_FLUSH, while the same appends under SYNC_FLUSH are, on
    /// io_uring and through the mmap path's write buffer (its default under SYNC_FLUSH).
    @Test(arguments: [(IOPath.ioUring, FlushDiskType.asyncFlush), (.mmap, .syncFlush), (.mmap, .asyncFlush), (.ioUring, .syncFlush)])
    func onlyArenaPathsUnderSyncFlushPreWriteTheLiveFile(io: IOPath, flush: FlushDiskType) throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: settings(dir.path, io: io, flush: flush))
        defer { log.close() }
        for seed in 0..<2000 { _ = try log.append(TestMessage(size: 1000, seed: seed)) }
        if flush == .syncFlush {
            let deadline = monotonicNanos() + 10_000_000_000
            while log.livePreWrittenBytes == 0 && monotonicNanos() < deadline { usleep(2_000) }
            #expect(log.livePreWrittenBytes > 0)
        } else {
            try waitUntilCommitted(log)
            #expect(log.livePreWrittenBytes == 0)
        }
    }
}

extension LivePreWriteTests {
    /// Where appends write the mapping itself (mmap + SYNC_FLUSH without the write buffer) nothing is pre-written
    /// ahead of the writer: the zeros' write-back would leave the pages ahead read-only for the appenders.
    @Test func appendsThroughTheMappingAreNotPreWrittenAhead() throws {
        let dir = TemporaryDirectory()
        var settings = settings(dir.path, io: .mmap)
        settings.writeBuffer = false
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        for seed in 0..<2000 { _ = try log.append(TestMessage(size: 1000, seed: seed)) }
        try waitUntilCommitted(log)
        #expect(log.livePreWrittenBytes == 0)
    }

    /// A close while the live pre-write is in a chunk (its pwrite held until the close began) ends it after that
    /// chunk: the close returns, the window is left unfinished, and the reopened log (whose last file, opened as it
    /// is, is pre-written again) holds every record.
    @Test(arguments: [IOPath.ioUring, .mmap])
    func closeDuringALivePreWriteIsClean(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let gate = PreWriteGate()
        var settings = settings(dir.path, io: io)
        settings.fileIO = gate.fileIO
        settings.livePreWriteAheadBytes = 24 << 20  // about 20 MiB to pre-write: far more than the chunk held
        let log = try CommitLog(settings: settings)
        for seed in 0..<500 { _ = try log.append(TestMessage(size: 100 + seed % 1900, seed: seed)) }
        #expect(gate.waitUntilEntered(), "a live pre-write chunk started")
        let closed = Atomic<Bool>(false)
        let closer = StoreThread(name: "closer") {
            log.close()
            closed.store(true, ordering: .releasing)
        }
        let deadline = monotonicNanos() + 10_000_000_000
        while !log.isClosed && monotonicNanos() < deadline { usleep(1_000) }
        gate.release.store(true, ordering: .releasing)
        while !closed.load(ordering: .acquiring) && monotonicNanos() < deadline { usleep(1_000) }
        let closeReturned = closed.load(ordering: .acquiring)
        #expect(closeReturned, "close returned")
        closer.join()
        #expect(log.livePreWrittenBytes <= 3 << 20, "the pre-write stopped early: \(log.livePreWrittenBytes)")
        var reopenedSettings = settings
        reopenedSettings.fileIO = .system
        let reopened = try CommitLog(settings: reopenedSettings)
        defer { reopened.close() }
        try expectEveryRecord(reopened, count: 500)
        let again = monotonicNanos() + 10_000_000_000
        while reopened.livePreWrittenBytes == 0 && monotonicNanos() < again { usleep(2_000) }
        #expect(reopened.livePreWrittenBytes > 0, "the reopened log's live file is pre-written")
    }

    /// Holds the live pre-writer's first pwrite (1 MiB into a file under its final name; the allocator writes
    /// `.tmp` files) until `release`.
    final class PreWriteGate: @unchecked Sendable {
        let entered = Atomic<Bool>(false)
        let release = Atomic<Bool>(false)
        var fileIO: FileIO {
            let system = FileIO.system
            return FileIO(
                fallocate: system.fallocate,
                pwrite: { [self] (fd, bytes, offset) throws(SyscallError) in
                    if bytes.count == 1 << 20 && !Self.path(of: fd).hasSuffix(".tmp") && !entered.exchange(true, ordering: .acquiringAndReleasing) {
                        let deadline = monotonicNanos() + 10_000_000_000
                        while !release.load(ordering: .acquiring) && monotonicNanos() < deadline { usleep(1_000) }
                    }
                    try system.pwrite(fd, bytes, offset)
                },
                fdatasync: system.fdatasync, msync: system.msync)
        }

        func waitUntilEntered() -> Bool {
            let deadline = monotonicNanos() + 10_000_000_000
            while !entered.load(ordering: .acquiring) && monotonicNanos() < deadline { usleep(1_000) }
            return entered.load(ordering: .acquiring)
        }

        static func path(of fd: Int32) -> String {
            var buffer = [CChar](repeating: 0, count: 4096)
            let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
            return count > 0 ? String(cString: buffer) : ""
        }
    }
}

extension LivePreWriteTests {
    /// Where the live pre-writer runs, a file made in the background is pre-written only at its head
    /// (`livePreWriteAheadBytes`; its chunks are buffered writes, the live pre-writer's O_DIRECT ones cost half the
    /// CPU); once the writer is in it, the live pre-writer goes on from the head's end, leaving no unwritten extent
    /// between, and every record reads back after reopening.
    @Test(arguments: [IOPath.ioUring, .mmap])
    func aNewFileIsPreWrittenAtItsHeadAndTheLivePreWriterWritesTheRest(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let fileSize = 16 << 20, ahead = 4 << 20
        let counting = TemporaryZeros()
        var settings = testSettings(dir.path, io: io, flush: .syncFlush, fileSize: fileSize)
        settings.livePreWriteAheadBytes = ahead
        settings.fileIO = counting.fileIO
        var log: CommitLog? = try CommitLog(settings: settings)
        var seed = 0
        func append(until offset: UInt64) throws {
            while log!.wroteOffset < offset {
                _ = try log!.append(TestMessage(size: 100 + seed % 1900, seed: seed))
                seed += 1
            }
        }
        let first = counting.bytes.load(ordering: .relaxed)  // the first file's, stopped when the log opened
        try append(until: UInt64(fileSize / 2 + 4096))
        #expect(counting.wait(for: first + ahead) == first + ahead, "the next file is pre-written from half way")
        try append(until: UInt64(fileSize + (1 << 20)))  // 1 MiB into the second file
        // The file was handed out whole (its pre-write ends before it is), and the next one waits for half way.
        #expect(counting.bytes.load(ordering: .relaxed) == first + ahead, "only the head is pre-written")
        try waitUntilCommitted(log!)
        let wrote = log!.wroteOffset
        let target = wrote + UInt64(ahead)
        let deadline = monotonicNanos() + 20_000_000_000
        while log!.livePreWrittenRange(inFileHolding: wrote).upperBound < target && monotonicNanos() < deadline { usleep(2_000) }
        let range = log!.livePreWrittenRange(inFileHolding: wrote)
        #expect(range.lowerBound == UInt64(fileSize + ahead) && range.upperBound >= target, "\(range), writer at \(wrote)")
        let path = settings.storePathCommitLog + "/" + offsetFileName(UInt64(fileSize))
        if let unwritten = unwrittenBytes(path, from: 0, to: Int(range.upperBound) - fileSize) {
            #expect(unwritten == 0, "the head and the live pre-write leave no unwritten extent")
        }
        log!.close()
        log = try CommitLog(settings: settings)
        defer { log!.close() }
        try expectEveryRecord(log!, count: seed)
    }

    /// Counts the bytes of large pwrites of zeros into `.tmp` files: the allocator's pre-writes (the live pre-writer
    /// writes files under their final names).
    final class TemporaryZeros: @unchecked Sendable {
        let bytes = Atomic<Int>(0)
        var fileIO: FileIO {
            let system = FileIO.system
            return FileIO(
                fallocate: system.fallocate,
                pwrite: { [self] (fd, data, offset) throws(SyscallError) in
                    if data.count >= 64 << 10 && PreWriteGate.path(of: fd).hasSuffix(".tmp") && !data.contains(where: { $0 != 0 }) {
                        bytes.wrappingAdd(data.count, ordering: .relaxed)
                    }
                    try system.pwrite(fd, data, offset)
                },
                fdatasync: system.fdatasync, msync: system.msync)
        }

        /// Waits (5 s at most) until `count` bytes were pre-written; returns the count reached.
        func wait(for count: Int) -> Int {
            let deadline = monotonicNanos() + 5_000_000_000
            while bytes.load(ordering: .relaxed) < count && monotonicNanos() < deadline { usleep(1_000) }
            return bytes.load(ordering: .relaxed)
        }
    }
}

/// Bytes of `[from, to)` of the file at `path` in unwritten (fallocated, never written) extents, by FIEMAP (synced
/// first); nil where the file system does not map extents.
func unwrittenBytes(_ path: String, from: Int, to: Int) -> Int? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0, to > from else { return nil }
    defer { close(fd) }
    let extents = 512, headerSize = 32, extentSize = 56
    let size = headerSize + extentSize * extents
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
    defer { buffer.deallocate() }
    memset(buffer, 0, size)
    buffer.storeBytes(of: UInt64(from), toByteOffset: 0, as: UInt64.self)  // fm_start
    buffer.storeBytes(of: UInt64(to - from), toByteOffset: 8, as: UInt64.self)  // fm_length
    buffer.storeBytes(of: UInt32(1), toByteOffset: 16, as: UInt32.self)  // FIEMAP_FLAG_SYNC
    buffer.storeBytes(of: UInt32(extents), toByteOffset: 24, as: UInt32.self)  // fm_extent_count
    guard ioctl(fd, 0xC020_660B, buffer) == 0 else { return nil }  // FS_IOC_FIEMAP
    let mapped = Int(buffer.load(fromByteOffset: 20, as: UInt32.self))
    var unwritten = 0
    for index in 0..<mapped {
        let extent = buffer + headerSize + extentSize * index
        let logical = Int(extent.load(fromByteOffset: 0, as: UInt64.self))
        let length = Int(extent.load(fromByteOffset: 16, as: UInt64.self))
        if extent.load(fromByteOffset: 40, as: UInt32.self) & 0x800 != 0 {  // FIEMAP_EXTENT_UNWRITTEN
            unwritten += max(0, min(to, logical + length) - max(from, logical))
        }
    }
    return unwritten
}
