#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// Under SYNC_FLUSH new commit log files are pre-written (their zeros written out before use), but for the
/// file an opening log waits for; the next file's pre-write starts once the writer is half way through the file
/// before it; no record is lost to it.
@Suite(.serialized) struct PreWriteTests {
    /// Counts the bytes of large pwrites of zeros (the pre-write's chunks; the checkpoint's writes are small, the
    /// write buffer's are records).
    final class CountingIO: @unchecked Sendable {
        let zeroBytes = Atomic<Int>(0)
        var fileIO: FileIO {
            let system = FileIO.system
            return FileIO(
                fallocate: system.fallocate,
                pwrite: { [self] (fd, bytes, offset) throws(SyscallError) in
                    if bytes.count >= 64 << 10 && !bytes.contains(where: { $0 != 0 }) { zeroBytes.wrappingAdd(bytes.count, ordering: .relaxed) }
                    try system.pwrite(fd, bytes, offset)
                },
                fdatasync: system.fdatasync, msync: system.msync)
        }

        /// Waits (10 s at most) until `bytes` were pre-written.
        func wait(for bytes: Int) -> Int {
            let deadline = monotonicNanos() + 10_000_000_000
            while zeroBytes.load(ordering: .relaxed) < bytes && monotonicNanos() < deadline { usleep(1_000) }
            return zeroBytes.load(ordering: .relaxed)
        }
    }

    /// Opening an empty log waits for its first file but not for that file's pre-write (seconds for 1 GiB):
    /// under SYNC_FLUSH it is handed out after the chunk in progress; under ASYNC_FLUSH nothing is pre-written.
    @Test(arguments: [FlushDiskType.syncFlush, .asyncFlush])
    func openingAnEmptyLogDoesNotWaitForAPreWrite(flush: FlushDiskType) throws {
        let dir = TemporaryDirectory()
        let counting = CountingIO()
        var settings = testSettings(dir.path, flush: flush, fileSize: 64 << 20)
        settings.fileIO = counting.fileIO
        settings.livePreWriteAheadBytes = 0  // counts the allocator's pre-writes only (LivePreWriteTests: the live file's)
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        let written = counting.zeroBytes.load(ordering: .relaxed)
        if flush == .syncFlush {
            #expect(written < 64 << 20, "the open stopped the first file's pre-write")
        } else {
            #expect(written == 0)
        }
    }

    @Test(arguments: SyncWritePath.allCases)
    func theNextFileIsPreWrittenFromHalfWayAndRecordsSurviveRollOvers(path: SyncWritePath) throws {
        let dir = TemporaryDirectory()
        let counting = CountingIO()
        let fileSize = 1 << 20
        var settings = testSettings(dir.path, path: path, fileSize: fileSize)
        settings.fileIO = counting.fileIO
        settings.livePreWriteAheadBytes = 0  // counts the allocator's pre-writes only (LivePreWriteTests: the live file's)
        var log: CommitLog? = try CommitLog(settings: settings)
        let recorder = DurabilityRecorder()
        log!.onDurable { recorder.record($0, $1) }
        var token = 0
        func put(until offset: UInt64) throws {
            while log!.wroteOffset < offset {
                _ = try log!.put(TestMessage(size: 2_000, seed: token), token: UInt64(token))
                token += 1
            }
        }
        let first = counting.zeroBytes.load(ordering: .relaxed)  // the first file's pre-write stopped when the log opened
        try put(until: UInt64(fileSize / 4))
        #expect(counting.wait(for: 0) == first, "the next file waits until the writer is half way")
        try put(until: UInt64(fileSize / 2 + 4096))
        #expect(counting.wait(for: first + fileSize) == first + fileSize, "the next file is pre-written from half way")
        try put(until: UInt64(fileSize * 5 / 2))  // two roll-overs
        let statuses = recorder.wait(forCount: token)
        #expect(statuses.count == token && statuses.values.allSatisfy { $0 == [.putOK] })
        log!.close()
        log = try CommitLog(settings: settings)
        defer { log!.close() }
        let records = try log!.allRecords()
        #expect(records.count == token, "every record is read back after reopening")
        for (index, record) in records.enumerated() {
            #expect(Array(record.body) == TestMessage(size: 2_000, seed: index).body)
        }
    }
}
