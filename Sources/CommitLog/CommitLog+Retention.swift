#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Disk usage of the file system holding `path`, in whole percent rounded up (RocketMQ's formula:
/// used / (used + available to us)).
public func diskUsedPercent(_ path: String) -> Int? {
    var info = statvfs()
    guard statvfs(path, &info) == 0 else { return nil }
    let total = Double(info.f_blocks) * Double(info.f_frsize)
    let free = Double(info.f_bfree) * Double(info.f_frsize)
    let available = Double(info.f_bavail) * Double(info.f_frsize)
    let used = total - free
    guard used + available > 0 else { return nil }
    return Int((used / (used + available) * 100).rounded(.up))
}

extension CommitLog {
    /// One retention pass, as the background service runs it every `cleanResourceInterval`; see
    /// `deleteExpiredFiles`. `usedPercent` and `hour` replace the measured values (tests).
    @discardableResult
    public func runRetention(nowMillis: Int64 = wallClockMillis(), usedPercent: Int? = nil, hour: Int? = nil) -> Int {
        shared.runRetention(nowMillis: nowMillis, usedPercent: usedPercent, hour: hour)
    }

    /// Deletes the oldest files whose age passed `fileReservedTime` (any age with `force`).
    @discardableResult
    public func deleteExpiredFiles(nowMillis: Int64, force: Bool) -> Int {
        shared.deleteExpiredFiles(nowMillis: nowMillis, force: force)
    }
}

extension LogShared {
    /// One retention pass, as the background service runs it every `cleanResourceInterval`:
    /// marks the disk full above `diskSpaceWarningLevelRatio` (appends refused until it drops below
    /// `diskSpaceCleanForciblyRatio`), and deletes expired files at a `deleteWhen` hour or above
    /// `diskMaxUsedSpaceRatio`, and any old file above the forced-clean ratio.
    /// - Parameters: `usedPercent` and `hour` replace the measured values (tests).
    /// - Returns: files deleted.
    func runRetention(nowMillis: Int64, usedPercent: Int?, hour: Int?) -> Int {
        let used = usedPercent ?? diskUsedPercent(settings.storePathCommitLog) ?? 0
        if used >= settings.diskSpaceWarningLevelRatio {
            if !diskFullFlag.exchange(true, ordering: .relaxed) {
                log("commitlog: disk \(used)% used, above diskSpaceWarningLevelRatio \(settings.diskSpaceWarningLevelRatio)%: appends refused")
            }
        } else if used < settings.diskSpaceCleanForciblyRatio {
            if diskFullFlag.exchange(false, ordering: .relaxed) { log("commitlog: disk \(used)% used: appends accepted again") }
        }
        let cleanForcibly = used >= settings.diskSpaceCleanForciblyRatio && settings.cleanFileForciblyEnable
        let timeToDelete = settings.deleteWhen.contains(hour ?? localHour(nowMillis))
        guard timeToDelete || used >= settings.diskMaxUsedSpaceRatio || cleanForcibly else { return 0 }
        return deleteExpiredFiles(nowMillis: nowMillis, force: cleanForcibly)
    }

    /// Deletes the oldest files whose age passed `fileReservedTime` (any age with `force`), oldest first,
    /// stopping at the first one to keep; never the file being written, never unflushed data.
    /// Readers holding a deleted file keep their mapping until they let go.
    func deleteExpiredFiles(nowMillis: Int64, force: Bool) -> Int {
        let reservedMillis = Int64(settings.fileReservedTimeHours) * 3_600_000
        var deleted = 0
        while deleted < settings.deleteFileBatchMax {
            let files = queue.all
            guard files.count > 1, let oldest = files.first else { break }
            guard oldest.fileEndOffset <= flushedAtomic.load(ordering: .acquiring) else { break }
            guard force || oldest.lastModifiedMillis + reservedMillis <= nowMillis else { break }
            guard queue.removeFirst(oldest) else { break }
            oldest.unlinkFromDisk()
            deleted += 1
            log("commitlog: deleted \(oldest.path) (\(force ? "disk above diskSpaceCleanForciblyRatio" : "older than fileReservedTime"))")
        }
        if deleted > 0 { try? fsyncDirectory(settings.storePathCommitLog) }
        return deleted
    }

    private func localHour(_ millis: Int64) -> Int {
        var seconds = time_t(millis / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return Int(parts.tm_hour)
    }

}

extension CommitLog {
    /// Stops the background threads after writing and flushing everything appended (every durability
    /// waiter is completed), flushes the checkpoint, removes the `abort` marker and releases the lock.
    /// Reads of `MappedRegion`s handed out before stay valid. Appends after this throw `.storeClosed`.
    public func close() {
        guard !shared.closedFlag.exchange(true, ordering: .sequentiallyConsistent) else { return }
        appendLock.withLock { _ in }  // appends in progress finish before the flushers drain
        flushEngine?.stop()
        retention?.stop()
        allocator.stop()
        try? checkpoint.flush()
        if !isFlushFailed {
            unlink(abortPath)
            try? fsyncDirectory(settings.storePathRootDir)
        }
        if lockFD >= 0 {
            Glibc.close(lockFD)
            lockFD = -1
        }
    }
}

/// Runs `runRetention` every `cleanResourceInterval` on its own thread.
enum CleanCommitLogService {
    static func start(for log: LogShared) -> PeriodicThread {
        PeriodicThread(name: "clean-commitlog", intervalNanos: UInt64(log.settings.cleanResourceIntervalMillis) * 1_000_000) {
            _ = log.runRetention(nowMillis: wallClockMillis(), usedPercent: nil, hour: nil)
        }
    }
}
