#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Testing
import TestSupport

/// Disk full and retention: a clear error, nothing stored is lost, reads go on, and old files go.
@Suite(.serialized) struct DiskAndRetentionTests {
    @Test(arguments: IOPath.allCases)
    func fileCreationWithoutSpaceFailsClearlyAndLosesNothing(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        scripted.fallocatesLeft.store(2, ordering: .relaxed)  // the first file and the pre-allocated second
        var settings = testSettings(dir.path, io: io)
        settings.fileIO = scripted.fileIO
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        var stored: [(AppendResult, TestMessage)] = []
        var failure: StoreError?
        for seed in 0..<1000 {
            let message = TestMessage(size: 1000, seed: seed)
            do { stored.append((try log.append(message), message)) } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure, "the third file could not be created, so appends must fail")
        #expect(error.code == .diskFull)
        #expect(error.description.contains("No space left on device"))
        #expect(stored.count > 50)
        try waitUntilCommitted(log)
        for (result, message) in stored { #expect(Array(try log.record(at: result.physicalOffset).body) == message.body) }
        // Space comes back: appends go on where they stopped.
        scripted.fallocatesLeft.store(-1, ordering: .relaxed)
        let message = TestMessage(size: 1000, seed: 5000)
        let next = try log.append(message)
        #expect(next.physicalOffset == 2 * 65_536)
        try waitUntilCommitted(log)
        #expect(Array(try log.record(at: next.physicalOffset).body) == message.body)
    }

    /// A real, small file system: a 1 MiB tmpfs mounted for the test (needs root, as CI has).
    @Test(.enabled(if: canMountTmpfs(), "needs permission to mount a tmpfs (the scripted ENOSPC test covers the path)"))
    func realFullFileSystemFailsAppendsAndKeepsReads() throws {
        let dir = TemporaryDirectory("tmpfs-full")
        try #require(system("mount -t tmpfs -o size=1m tmpfs '\(dir.path)' 2>/dev/null") == 0)
        defer { _ = system("umount '\(dir.path)'") }
        var settings = testSettings(dir.path + "/store", fileSize: 320 * 1024)  // three fill 94% of the disk
        settings.cleanResourceIntervalMillis = 3_600_000
        settings.cleanFileForciblyEnable = false  // else retention frees space and appends go on
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        var stored: [(AppendResult, TestMessage)] = []
        var failure: StoreError?
        for seed in 0..<10_000 {
            let message = TestMessage(size: 2000, seed: seed)
            do { stored.append((try log.append(message), message)) } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure)
        #expect(error.code == .diskFull, "\(error)")
        for (result, message) in stored { #expect(Array(try log.record(at: result.physicalOffset).body) == message.body) }
        // Retention sees the disk above the warning level and refuses appends up front.
        log.runRetention(hour: 12)
        #expect(log.isDiskFull)
        do {
            _ = try log.append(TestMessage(size: 10, seed: 1))
            Issue.record("append on a full disk succeeded")
        } catch {
            #expect(error.code == .diskFull)
        }
    }

    @Test func diskAboveWarningLevelRefusesAppendsUntilItDrops() throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path))
        defer { log.close() }
        let kept = try log.append(TestMessage(size: 100, seed: 1))
        log.runRetention(usedPercent: 95, hour: 12)
        do {
            _ = try log.append(TestMessage(size: 100, seed: 2))
            Issue.record("append above diskSpaceWarningLevelRatio succeeded")
        } catch {
            #expect(error.code == .diskFull)
            #expect(error.message.contains("diskSpaceWarningLevelRatio 90%"))
        }
        #expect(Array(try log.record(at: kept.physicalOffset).body) == TestMessage(size: 100, seed: 1).body)
        log.runRetention(usedPercent: 87, hour: 12)
        #expect(log.isDiskFull, "between the forced-clean and warning levels the flag stays")
        log.runRetention(usedPercent: 50, hour: 12)
        _ = try log.append(TestMessage(size: 100, seed: 3))
    }

    /// Fills several files, flushed, and returns the log and what it holds.
    func filledLog(_ root: String) throws -> CommitLog {
        var settings = testSettings(root)
        settings.fileReservedTimeHours = 48
        settings.deleteWhen = [4]
        let log = try CommitLog(settings: settings)
        for seed in 0..<400 { _ = try log.append(TestMessage(size: 800, seed: seed)) }
        let deadline = monotonicNanos() + 5_000_000_000
        while log.flushedOffset < log.wroteOffset && monotonicNanos() < deadline { usleep(5_000) }
        return log
    }

    func age(_ path: String, hours: Int) {
        var times = [timespec](repeating: timespec(tv_sec: time(nil) - hours * 3600, tv_nsec: 0), count: 2)
        utimensat(AT_FDCWD, path, &times, 0)
    }

    @Test func expiredFilesGoAtDeleteWhenOldestFirstAndNeverTheLast() throws {
        let dir = TemporaryDirectory()
        let log = try filledLog(dir.path)
        defer { log.close() }
        // Paths and offsets only: a reference to a deleted file is a reader mapping it, and disk-pressure
        // deletion waits for a file's space to be freed before deleting the next.
        let files = log.queue.all.map { (path: $0.path, fileFromOffset: $0.fileFromOffset) }
        #expect(files.count >= 5)
        // The two oldest are past fileReservedTime; the third is not, so deletion stops there.
        age(files[0].path, hours: 50)
        age(files[1].path, hours: 49)
        let firstKept = files[2].fileFromOffset
        #expect(log.runRetention(usedPercent: 10, hour: 12) == 0, "outside deleteWhen and below the ratios nothing goes")
        #expect(log.runRetention(usedPercent: 10, hour: 4) == 2)
        #expect(log.minOffset == firstKept)
        #expect(access(files[0].path, F_OK) != 0)
        guard case .end = try log.readRecord(at: 0) else {
            Issue.record("a deleted offset still reads")
            return
        }
        _ = try log.record(at: firstKept)
        // Above the forced-clean ratio age no longer matters, but the file being written stays.
        #expect(log.runRetention(usedPercent: 86, hour: 12) > 0)
        #expect(log.queue.count == 1)
        _ = try log.append(TestMessage(size: 10, seed: 1))
    }

    @Test func highUsageDeletesExpiredFilesOutsideDeleteWhen() throws {
        let dir = TemporaryDirectory()
        let log = try filledLog(dir.path)
        defer { log.close() }
        age(log.queue.all[0].path, hours: 100)
        #expect(log.runRetention(usedPercent: 80, hour: 12) == 1)  // diskMaxUsedSpaceRatio 75
    }

    /// A reader keeps a deleted file mapped: its bytes stay valid until it lets go.
    @Test func readerKeepsADeletedFileReadable() throws {
        let dir = TemporaryDirectory()
        let log = try filledLog(dir.path)
        defer { log.close() }
        let record = try log.record(at: 0)
        let body = Array(record.body)
        age(log.queue.all[0].path, hours: 100)
        #expect(log.deleteExpiredFiles(nowMillis: wallClockMillis(), force: false) >= 1)
        #expect(Array(record.body) == body)
    }
}

/// Whether this process may mount a tmpfs (root in CI; not in every sandbox).
func canMountTmpfs() -> Bool {
    let dir = TemporaryDirectory("tmpfs-probe")
    guard system("mount -t tmpfs -o size=64k tmpfs '\(dir.path)' 2>/dev/null") == 0 else { return false }
    _ = system("umount '\(dir.path)'")
    return true
}
