#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// Disk pressure frees only the space it needs: the oldest files go one at a time, usage is measured
/// again after each, and deletion stops as soon as usage is below the level that started it; each
/// deletion is logged with the file, its age and the usage before and after.
@Suite(.serialized) struct DiskPressureTests {
    /// Usage that falls by `percentPerFile` for each segment deleted: `start` with the files there now.
    final class ScriptedDisk: Sendable {
        let directory: String
        let base = Atomic<Int>(0)
        let percentPerFile: Int

        init(directory: String, percentPerFile: Int = 5) {
            self.directory = directory
            self.percentPerFile = percentPerFile
        }

        var segments: Int { (listDirectory(directory) ?? []).filter { $0.count == 20 && UInt64($0) != nil }.count }
        func start(atPercent percent: Int) { base.store(percent - percentPerFile * segments, ordering: .relaxed) }
        var probe: DiskUsageProbe {
            DiskUsageProbe { [self] _ in base.load(ordering: .relaxed) + percentPerFile * segments }
        }
    }

    /// Fills seven or so 64 KiB files, all flushed.
    func filledLog(_ root: String, disk: ScriptedDisk, lines: LogLines) throws -> CommitLog {
        var settings = testSettings(root)
        settings.fileReservedTimeHours = 48
        settings.deleteWhen = [4]
        settings.diskUsage = disk.probe
        settings.flushCommitLogLeastPages = 0
        let log = try CommitLog(settings: settings, log: lines.append)
        for seed in 0..<450 { _ = try log.append(TestMessage(size: 800, seed: seed)) }
        let deadline = monotonicNanos() + 5_000_000_000
        while log.flushedOffset < log.wroteOffset && monotonicNanos() < deadline { usleep(5_000) }
        #expect(log.flushedOffset == log.wroteOffset)
        return log
    }

    @Test func fullDiskDeletesOldestFilesOnlyUntilBelowTheForcedCleanLevel() throws {
        let dir = TemporaryDirectory()
        let disk = ScriptedDisk(directory: dir.path + "/commitlog")
        let lines = LogLines()
        let log = try filledLog(dir.path, disk: disk, lines: lines)
        defer { log.close() }
        // Offsets only: a reference to a file would be a reader mapping it (see the last test).
        let files = log.queue.all.map { (path: $0.path, fileFromOffset: $0.fileFromOffset) }
        #expect(files.count >= 6)
        disk.start(atPercent: 92)
        // 92% -> 87% -> 82%: below diskSpaceCleanForciblyRatio (85) after two files; none is older than
        // fileReservedTime, so the 75% level deletes nothing more.
        #expect(log.runRetention(hour: 12) == 2)
        #expect(log.minOffset == files[2].fileFromOffset)
        #expect(!log.isDiskFull, "usage fell below the forced-clean level: appends are accepted again")
        _ = try log.append(TestMessage(size: 10, seed: 1))
        let deleted = lines.all.filter { $0.contains("deleted") }
        #expect(deleted.count == 2, "\(lines.all)")
        #expect(deleted.first?.contains(offsetFileName(files[0].fileFromOffset)) == true)
        #expect(deleted.first?.contains("92% -> 87%") == true, "\(deleted)")
        #expect(deleted.first?.contains("diskSpaceCleanForciblyRatio") == true, "\(deleted)")
        #expect(deleted.last?.contains("87% -> 82%") == true, "\(deleted)")
    }

    @Test func usageAboveMaxUsedRatioDeletesExpiredFilesOnlyUntilBelowIt() throws {
        let dir = TemporaryDirectory()
        let disk = ScriptedDisk(directory: dir.path + "/commitlog")
        let lines = LogLines()
        let log = try filledLog(dir.path, disk: disk, lines: lines)
        defer { log.close() }
        let files = log.queue.all.map { (path: $0.path, fileFromOffset: $0.fileFromOffset) }
        for file in files.prefix(4) { age(file.path, hours: 100) }
        disk.start(atPercent: 80)
        // Four files are expired, but 80% -> 75% -> 70%: below diskMaxUsedSpaceRatio after two.
        #expect(log.runRetention(hour: 12) == 2)
        #expect(log.minOffset == files[2].fileFromOffset)
        #expect(lines.all.filter { $0.contains("deleted") }.allSatisfy { $0.contains("diskMaxUsedSpaceRatio") })
        // At a deleteWhen hour every expired file goes, whatever the usage.
        #expect(log.runRetention(hour: 4) == 2)
        #expect(log.minOffset == files[4].fileFromOffset)
    }

    @Test func fullDiskRefusesPutsWithDiskFullAndKeepsServingReads() throws {
        let dir = TemporaryDirectory()
        let disk = ScriptedDisk(directory: dir.path + "/commitlog", percentPerFile: 0)
        let lines = LogLines()
        let log = try filledLog(dir.path, disk: disk, lines: lines)
        defer { log.close() }
        let kept = try log.append(TestMessage(size: 100, seed: 7))
        try waitUntilCommitted(log)
        disk.start(atPercent: 95)  // deleting files does not help here: the disk stays full
        log.runRetention(hour: 12)
        #expect(log.isDiskFull)
        #expect(log.queue.count == 1, "all but the file being written went, one at a time")
        do {
            _ = try log.append(TestMessage(size: 100, seed: 8))
            Issue.record("an append on a full disk succeeded")
        } catch {
            #expect(error.code == .diskFull)
            #expect(error.description.contains("diskSpaceWarningLevelRatio"))
        }
        #expect(Array(try log.record(at: kept.physicalOffset).body) == TestMessage(size: 100, seed: 7).body)
    }

    /// A reader mapping the oldest file (a slow pull, a slave catching up): deleting it frees nothing yet,
    /// so disk pressure stops after it instead of deleting the next file on a usage that cannot have fallen.
    @Test func pressureStopsAfterAFileAReaderStillMaps() throws {
        let dir = TemporaryDirectory()
        let disk = ScriptedDisk(directory: dir.path + "/commitlog", percentPerFile: 0)
        let lines = LogLines()
        let log = try filledLog(dir.path, disk: disk, lines: lines)
        defer { log.close() }
        let record = try log.record(at: 0)
        let body = Array(record.body)
        disk.start(atPercent: 88)
        #expect(log.runRetention(hour: 12) == 1)
        #expect(lines.contains("still mapped by a reader"), "\(lines.all)")
        #expect(Array(record.body) == body, "the reader's bytes stay valid")
    }

    func age(_ path: String, hours: Int) {
        var times = [timespec](repeating: timespec(tv_sec: time(nil) - hours * 3600, tv_nsec: 0), count: 2)
        utimensat(AT_FDCWD, path, &times, 0)
    }
}
