#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// A FileIO whose pwrites wait while the gate is shut: the write buffer's group commit then holds appended
/// bytes in its arena, not yet in the file.
final class WriteGate: @unchecked Sendable {
    private let shut = Atomic<Bool>(false)
    private let lock = ConditionLock()
    /// pwrites of records (not of the pre-write's zeros) that started.
    let recordWrites = Atomic<Int>(0)

    var fileIO: FileIO {
        let system = FileIO.system
        return FileIO(
            fallocate: system.fallocate,
            pwrite: { [self] (fd, bytes, offset) throws(SyscallError) in
                if bytes.contains(where: { $0 != 0 }) {
                    recordWrites.wrappingAdd(1, ordering: .relaxed)
                    lock.withLock {
                        while shut.load(ordering: .relaxed) { lock.wait(untilNanos: monotonicNanos() + 10_000_000_000) }
                    }
                }
                try system.pwrite(fd, bytes, offset)
            },
            fdatasync: system.fdatasync, msync: system.msync)
    }

    func close() { shut.store(true, ordering: .relaxed) }

    func open() {
        lock.withLock {
            shut.store(false, ordering: .relaxed)
            lock.broadcast()
        }
    }
}

/// mmap + SYNC_FLUSH with the write buffer (the default): appends go into an arena, the group commit writes them
/// to the file, and readers see them through the mapping once committed.
@Suite(.serialized) struct WriteBufferTests {
    func bufferedSettings(_ root: String, gate: WriteGate, fileSize: Int = 64 * 1024) -> CommitLogSettings {
        var settings = testSettings(root, path: .writeBuffer, fileSize: fileSize)
        settings.fileIO = gate.fileIO
        return settings
    }

    @Test func theWriteBufferIsOnUnderSyncFlushOnMmapOnly() {
        var settings = CommitLogSettings(storePathRootDir: "/tmp/unused")
        #expect(!settings.usesWriteBuffer, "ASYNC_FLUSH writes through the mapping")
        settings.flushDiskType = .syncFlush
        #expect(settings.usesWriteBuffer)
        settings.writeBuffer = false
        #expect(!settings.usesWriteBuffer)
        settings.writeBuffer = true
        settings.ioPath = .ioUring
        #expect(!settings.usesWriteBuffer, "io_uring has its own arena")
        settings.ioPath = .mmap
        settings.flushDiskType = .asyncFlush
        #expect(!settings.usesWriteBuffer)
        settings.maxMessageSize = 40 << 20
        #expect(settings.arenaSizeBytes == 128 << 20, "two of the largest records fit")
    }

    @Test func readersSeeAppendsThroughTheMappingOnlyOnceWrittenToTheFile() throws {
        let dir = TemporaryDirectory()
        let gate = WriteGate()
        let log = try CommitLog(settings: bufferedSettings(dir.path, gate: gate))
        defer { log.close() }
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        let first = try log.put(TestMessage(size: 500, seed: 1), token: 1)
        #expect(recorder.wait(forCount: 1)[1] == [.putOK])
        gate.close()
        let second = try log.put(TestMessage(size: 700, seed: 2), token: 2)
        #expect(log.wroteOffset == second.nextOffset)
        #expect(log.committedOffset == first.nextOffset, "committed before the pwrite returned")
        guard case .end = try log.readRecord(at: second.physicalOffset) else {
            Issue.record("a record still in the arena was readable")
            return
        }
        #expect(recorder.wait(forCount: 2, seconds: 0)[2] == nil, "answered before it was written")
        gate.open()
        #expect(recorder.wait(forCount: 2)[2] == [.putOK])
        #expect(log.flushedOffset >= second.nextOffset && log.committedOffset >= second.nextOffset)
        #expect(Array(try log.record(at: second.physicalOffset).body) == TestMessage(size: 700, seed: 2).body)
        // The bytes are in the file itself (pwrite), not only in the mapping.
        let file = readFile(dir.path + "/commitlog/" + offsetFileName(0))
        let region = try #require(log.region(at: first.physicalOffset, count: Int(second.nextOffset - first.physicalOffset)))
        #expect(Array(file[Int(first.physicalOffset)..<Int(second.nextOffset)]) == Array(region.bytes))
    }

    /// A SIGKILL keeps the page cache: a copy of the files taken while bytes wait in the arena is what a restart
    /// finds. Every acknowledged record is there, and the log ends on a record boundary before the buffered ones.
    @Test func aCrashWithBufferedBytesLosesNothingAcknowledged() throws {
        let dir = TemporaryDirectory()
        let copy = TemporaryDirectory()
        let gate = WriteGate()
        let log = try CommitLog(settings: bufferedSettings(dir.path, gate: gate))
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        var acknowledged: [(AppendResult, TestMessage)] = []
        for seed in 0..<120 {
            let message = TestMessage(size: 300 + seed * 7 % 500, seed: seed)
            acknowledged.append((try log.put(message, token: UInt64(seed)), message))
        }
        #expect(recorder.wait(forCount: 120).values.allSatisfy { $0 == [.putOK] })
        gate.close()
        for seed in 120..<140 { _ = try log.put(TestMessage(size: 400, seed: seed), token: UInt64(seed)) }
        #expect(log.committedOffset == acknowledged.last!.0.nextOffset && log.wroteOffset > log.committedOffset)
        copyStore(from: dir.path, to: copy.path)
        gate.open()
        log.close()
        let reopened = try CommitLog(settings: testSettings(copy.path, path: .writeBuffer))
        defer { reopened.close() }
        #expect(reopened.recoveryReport.abnormal)
        let records = try reopened.allRecords()
        #expect(records.count == acknowledged.count)
        for (record, (result, message)) in zip(records, acknowledged) {
            #expect(record.region.physicalOffset == result.physicalOffset && Array(record.body) == message.body)
        }
        #expect(reopened.wroteOffset == acknowledged.last!.0.nextOffset)
    }

    /// `close()` writes and flushes what the arena holds: appends without a waiter included.
    @Test func closeWritesAndFlushesEverythingBuffered() throws {
        let dir = TemporaryDirectory()
        let gate = WriteGate()
        let settings = bufferedSettings(dir.path, gate: gate)
        let log = try CommitLog(settings: settings)
        gate.close()
        var appended: [(AppendResult, TestMessage)] = []
        for seed in 0..<200 {
            let message = TestMessage(size: 200 + seed % 300, seed: seed)
            appended.append((try log.append(message), message))  // crosses files: blanks and roll-overs too
        }
        #expect(log.flushedOffset < log.wroteOffset)
        let closer = StoreThread(name: "closer") { log.close() }
        gate.open()
        closer.join()
        #expect(log.committedOffset == log.wroteOffset && log.flushedOffset == log.wroteOffset)
        let reopened = try CommitLog(settings: settings)
        defer { reopened.close() }
        #expect(!reopened.recoveryReport.abnormal)
        let records = try reopened.allRecords()
        #expect(records.count == appended.count)
        for (record, (result, message)) in zip(records, appended) {
            #expect(record.region.physicalOffset == result.physicalOffset && Array(record.body) == message.body)
        }
    }

    /// With a 128 KiB arena and 96 KiB files, one write of the buffered bytes wraps the arena and crosses a file
    /// end (a blank, then the next file); every record reads back, before and after a restart.
    @Test func aWriteThatWrapsTheArenaAcrossAFileRollOver() throws {
        let dir = TemporaryDirectory()
        let gate = WriteGate()
        var settings = bufferedSettings(dir.path, gate: gate, fileSize: 96 << 10)
        settings.ioUringArenaSizeBytes = 64 << 10
        #expect(settings.arenaSizeBytes == 128 << 10, "grown to two of the largest records")
        var log: CommitLog? = try CommitLog(settings: settings)
        let recorder = DurabilityRecorder()
        log!.onDurable { recorder.record($0, $1) }
        var appended: [(AppendResult, TestMessage)] = []
        func put(until offset: UInt64) throws {
            while log!.wroteOffset < offset {
                let message = TestMessage(size: 900 + appended.count * 31 % 700, seed: appended.count)
                appended.append((try log!.put(message, token: UInt64(appended.count)), message))
            }
        }
        try put(until: 60 << 10)
        #expect(recorder.wait(forCount: appended.count).count == appended.count)
        let writesBefore = gate.recordWrites.load(ordering: .relaxed)
        gate.close()
        try put(until: 150 << 10)  // 90 KiB buffered: past the file end at 96 KiB and the arena's wrap at 128 KiB
        #expect(log!.committedOffset < 96 << 10)
        gate.open()
        let statuses = recorder.wait(forCount: appended.count)
        #expect(statuses.count == appended.count && statuses.values.allSatisfy { $0 == [.putOK] })
        #expect(gate.recordWrites.load(ordering: .relaxed) - writesBefore <= 3, "the buffered bytes went out in a few writes")
        for (result, message) in appended {
            #expect(Array(try log!.record(at: result.physicalOffset).body) == message.body)
        }
        log!.close()
        log = try CommitLog(settings: settings)
        defer { log!.close() }
        let records = try log!.allRecords()
        #expect(records.count == appended.count)
        #expect(zip(records, appended).allSatisfy { $0.region.physicalOffset == $1.0.physicalOffset && Array($0.body) == $1.1.body })
    }

    /// A slave's log on this path: bytes a master pushed (in pieces that end inside records) are written from the
    /// arena to the files and flushed without any put waiting, and read back as the master's records.
    @Test func replicatedAppendsGoThroughTheWriteBuffer() throws {
        let masterDir = TemporaryDirectory()
        let slaveDir = TemporaryDirectory()
        let master = try CommitLog(settings: testSettings(masterDir.path, flush: .asyncFlush))
        defer { master.close() }
        for seed in 0..<300 { _ = try master.append(TestMessage(size: 100 + seed * 11 % 600, seed: seed)) }
        try waitUntilCommitted(master)
        let slave = try CommitLog(settings: testSettings(slaveDir.path, path: .writeBuffer))
        defer { slave.close() }
        let fileSize = UInt64(master.settings.mappedFileSizeCommitLog)
        var at: UInt64 = 0
        while at < master.wroteOffset {
            let count = Int(min(5_000, master.wroteOffset - at, fileSize - at % fileSize))
            let region = try #require(master.region(at: at, count: count))
            try slave.appendReplicated(region.bytes, at: at)
            at += UInt64(count)
        }
        let deadline = monotonicNanos() + 10_000_000_000
        while slave.flushedOffset < master.wroteOffset && monotonicNanos() < deadline {
            slave.waitForData(beyond: slave.flushedOffset, untilNanos: deadline)  // a flush wakes it
        }
        #expect(slave.flushedOffset == master.wroteOffset && slave.committedOffset == master.wroteOffset)
        let masterRecords = try master.allRecords()
        let slaveRecords = try slave.allRecords()
        #expect(slaveRecords.count == 300 && masterRecords.count == 300)
        #expect(zip(masterRecords, slaveRecords).allSatisfy { Array($0.region.bytes) == Array($1.region.bytes) })
    }

    /// Copies every file of the store (commit log included), as a SIGKILL would leave them in the page cache.
    func copyStore(from source: String, to target: String) {
        for name in listDirectory(source) ?? [] {
            let path = source + "/" + name
            if listDirectory(path) != nil {
                _ = mkdir(target + "/" + name, 0o755)
                copyStore(from: path, to: target + "/" + name)
            } else {
                let bytes = readFile(path)
                let fd = Glibc.open(target + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                Glibc.close(fd)
            }
        }
    }
}
