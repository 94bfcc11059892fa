#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// Recovery: a clean restart keeps everything; a torn or bit-flipped tail is cut back to the last valid
/// record, the bytes after it are zeroed, and nothing corrupt is ever served.
@Suite(.serialized) struct RecoveryTests {
    /// Appends `count` records (files of 64 KiB), closes, and returns what was appended.
    func populate(_ root: String, count: Int, io: IOPath = .mmap) throws -> [(AppendResult, TestMessage)] {
        let log = try CommitLog(settings: testSettings(root, io: io))
        defer { log.close() }
        return try (0..<count).map { seed in
            let message = TestMessage(size: 200 + seed * 13 % 700, seed: seed)
            return (try log.append(message), message)
        }
    }

    /// Checks the reopened log holds exactly `expected` records, intact, and ends right after the last.
    func expectLog(_ log: CommitLog, holdsExactly expected: ArraySlice<(AppendResult, TestMessage)>,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        let records = try log.allRecords()
        #expect(records.count == expected.count, sourceLocation: sourceLocation)
        for (record, (result, message)) in zip(records, expected) {
            #expect(record.region.physicalOffset == result.physicalOffset, sourceLocation: sourceLocation)
            #expect(Array(record.body) == message.body, sourceLocation: sourceLocation)
        }
        // The log ends right after the last valid record, or at the next file when a blank follows it.
        let end = expected.last?.0.nextOffset ?? 0
        if log.wroteOffset != end {
            guard case .blank(let next) = try log.readRecord(at: end) else {
                Issue.record("the log ends at \(log.wroteOffset), not after the last valid record (\(end))",
                             sourceLocation: sourceLocation)
                return
            }
            #expect(log.wroteOffset == next, sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: IOPath.allCases)
    func cleanRestartKeepsEverythingAndAppendsContinue(io: IOPath) throws {
        let dir = TemporaryDirectory()
        var appended = try populate(dir.path, count: 400, io: io)
        let log = try CommitLog(settings: testSettings(dir.path, io: io))
        #expect(!log.recoveryReport.abnormal)
        try expectLog(log, holdsExactly: appended[...])
        let message = TestMessage(size: 100, seed: 999)
        appended.append((try log.append(message), message))
        try waitUntilCommitted(log)
        try expectLog(log, holdsExactly: appended[...])
        log.close()
    }

    @Test(arguments: 0 as UInt64 ..< 6)
    func tornTailIsTruncatedToTheLastWholeRecord(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        let dir = TemporaryDirectory()
        let appended = try populate(dir.path, count: 300)
        let lastFile = appended.last!.0.physicalOffset / 65_536 * 65_536
        let end = Int(appended.last!.0.nextOffset - lastFile)
        let cut = Int.random(in: 1..<end, using: &random)
        let path = commitLogFile(dir.path, lastFile)
        if seed % 2 == 0 {
            // The file itself is cut short at a random byte.
            #expect(truncate(path, off_t(cut)) == 0)
        } else {
            // The bytes after the cut are garbage (a torn write).
            patchFile(path, at: cut, (cut..<end).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
        leaveAbortMarker(dir.path)
        let survivors = appended.prefix { $0.0.nextOffset <= lastFile + UInt64(cut) }
        let log = try CommitLog(settings: testSettings(dir.path))
        #expect(log.recoveryReport.abnormal)
        try expectLog(log, holdsExactly: survivors)
        // After the cut the file reads as zeros, so later appends never meet stale records.
        if log.wroteOffset > lastFile {
            let tail = readFile(path)[Int(log.wroteOffset - lastFile)...]
            #expect(tail.allSatisfy { $0 == 0 })
            #expect(tail.count == 65_536 - Int(log.wroteOffset - lastFile), "the file is whole again")
        }
        let message = TestMessage(size: 50, seed: 5000)
        let added = try log.append(message)
        log.close()
        let reopened = try CommitLog(settings: testSettings(dir.path))
        defer { reopened.close() }
        try expectLog(reopened, holdsExactly: (Array(survivors) + [(added, message)])[...])
    }

    @Test(arguments: 0 as UInt64 ..< 8)
    func flippedBitInTheLastRecordsTruncatesBeforeIt(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        let dir = TemporaryDirectory()
        let appended = try populate(dir.path, count: 300)
        let victimIndex = appended.count - Int.random(in: 1...5, using: &random)
        let (victim, _) = appended[victimIndex]
        let file = victim.physicalOffset / 65_536 * 65_536
        let position = Int(victim.physicalOffset - file)
        // A bit in a field the format protects: TOTALSIZE, MAGICCODE, BODYCRC, PHYSICALOFFSET, BODYLENGTH
        // or the body itself (covered by the CRC).
        let fieldBytes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 28, 29, 30, 31, 32, 33, 34, 35, 84, 85, 86, 87]
        let bodyStart = 88
        let byte = seed % 2 == 0 ? fieldBytes.randomElement(using: &random)!
                                 : bodyStart + Int.random(in: 0..<(victim.size - 91 - 9 - 30), using: &random)
        var contents = readFile(commitLogFile(dir.path, file))
        contents[position + byte] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
        patchFile(commitLogFile(dir.path, file), at: position + byte, [contents[position + byte]])
        let log = try CommitLog(settings: testSettings(dir.path))
        defer { log.close() }
        #expect(log.recoveryReport.corruption != nil, "byte \(byte) of record \(victimIndex)")
        try expectLog(log, holdsExactly: appended.prefix(victimIndex))
    }

    /// A corrupt record is never handed out, even when it is inside the readable range.
    @Test func readRefusesACorruptRecordWithFileAndPosition() throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path))
        defer { log.close() }
        let result = try log.append(TestMessage(size: 100, seed: 1))
        result.physicalOffset == 0 ? log.queue.first!.base.storeBytes(of: 0xFF, toByteOffset: 100, as: UInt8.self) : ()
        do {
            _ = try log.readRecord(at: result.physicalOffset)
            Issue.record("a corrupt record was served")
        } catch {
            #expect(error.code == .corruptRecord)
            #expect(error.message.contains("00000000000000000000 @0: bad BODYCRC"))
        }
    }

    /// Empty files left by pre-allocation and files beyond the end are handled.
    @Test func preallocatedEmptyFileAfterTheEndIsHarmless() throws {
        let dir = TemporaryDirectory()
        let appended = try populate(dir.path, count: 100)
        let last = appended.last!.0.physicalOffset / 65_536 * 65_536
        // A zero-filled next file (as pre-allocation leaves it) and a stray one after it.
        for extra in [last + 65_536, last + 131_072] {
            let fd = open(commitLogFile(dir.path, extra), O_RDWR | O_CREAT, 0o644)
            ftruncate(fd, 65_536)
            close(fd)
        }
        leaveAbortMarker(dir.path)
        let log = try CommitLog(settings: testSettings(dir.path))
        defer { log.close() }
        try expectLog(log, holdsExactly: appended[...])
        #expect(access(commitLogFile(dir.path, last + 131_072), F_OK) != 0, "files past the end are deleted")
    }

    /// The checkpoint records the store time of flushed data; abnormal recovery starts from a file at
    /// or before it, so it does not rescan the whole log.
    @Test func abnormalRecoveryStartsNearTheCheckpoint() throws {
        let dir = TemporaryDirectory()
        var settings = testSettings(dir.path, flush: .syncFlush)
        settings.flushCommitLogThoroughIntervalMillis = 10
        // Store times come from this clock: it jumps 4 s between the halves, past the checkpoint's 3 s margin.
        let skew = Atomic<Int64>(0)
        settings.storeClock = { wallClockMillis() + skew.load(ordering: .relaxed) }
        let log = try CommitLog(settings: settings)
        log.onDurable { _, _ in }
        for seed in 0..<150 { _ = try log.put(TestMessage(size: 600, seed: seed), token: 0) }
        skew.store(4_000, ordering: .relaxed)
        for seed in 150..<300 { _ = try log.put(TestMessage(size: 600, seed: seed), token: 0) }
        log.close()
        #expect(log.checkpoint.physicMsgTimestamp > 0)
        leaveAbortMarker(dir.path)
        let reopened = try CommitLog(settings: testSettings(dir.path))
        defer { reopened.close() }
        #expect(reopened.recoveryReport.abnormal)
        #expect(reopened.recoveryReport.startOffset > 0, "started at \(reopened.recoveryReport.startOffset)")
        #expect(try reopened.allRecords().count == 300)
    }
}
