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

/// Where retention learns how full the disk is: `usedPercent(path)` for the file system holding `path`,
/// nil when it cannot tell. A value, like `FileIO`, so a test can script it.
public struct DiskUsageProbe: Sendable {
    public var usedPercent: @Sendable (_ path: String) -> Int?

    public init(usedPercent: @escaping @Sendable (_ path: String) -> Int?) {
        self.usedPercent = usedPercent
    }

    /// `statvfs` of the path's file system (`diskUsedPercent`).
    public static let system = DiskUsageProbe(usedPercent: { diskUsedPercent($0) })
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

/// A deleted file, watched until its last reader lets go.
struct WeakFile {
    weak var file: MappedFile?
}

/// Why retention deletes a file; the text is built only when the line is logged.
enum DeletionReason {
    /// Usage at or above `diskSpaceCleanForciblyRatio`: age no longer matters.
    case cleanForcibly
    /// Expired, and usage at or above `diskMaxUsedSpaceRatio`.
    case maxUsedSpace
    /// Expired, at a `deleteWhen` hour.
    case deleteWhen
    /// Asked for directly (`deleteExpiredFiles`).
    case requested(force: Bool)

    /// Pressure-driven deletions stop when a deleted file stays mapped: usage cannot fall until it is let go.
    var isPressure: Bool {
        switch self {
        case .cleanForcibly, .maxUsedSpace: true
        case .deleteWhen, .requested: false
        }
    }
}

extension LogShared {
    /// One retention pass, as the background service runs it every `cleanResourceInterval`:
    /// marks the disk full above `diskSpaceWarningLevelRatio` (appends refused until it drops below
    /// `diskSpaceCleanForciblyRatio`), then deletes the oldest file while one of these holds, measuring
    /// usage again after each: usage is at or above the forced-clean ratio (any age); the file is expired
    /// and usage is at or above `diskMaxUsedSpaceRatio`; the file is expired and it is a `deleteWhen` hour.
    /// So disk pressure frees only what it needs: deletion stops once usage is below the level that
    /// started it. Never the file being written, never unflushed data, at most `deleteFileBatchMax` files.
    /// - Parameters: `usedPercent` and `hour` replace the measured values (tests; `usedPercent` then
    ///   stays the same after each deletion).
    /// - Returns: files deleted.
    func runRetention(nowMillis: Int64, usedPercent: Int?, hour: Int?) -> Int {
        let measure = { usedPercent ?? self.settings.diskUsage.usedPercent(self.settings.storePathCommitLog) ?? 0 }
        let used = measure()
        updateDiskFull(used: used)
        let timeToDelete = settings.deleteWhen.contains(hour ?? localHour(nowMillis))
        let reservedMillis = Int64(settings.fileReservedTimeHours) * 3_600_000
        let (deleted, usedAfter) = deleteOldest(nowMillis: nowMillis, used: used, measure: measure) { used, ageMillis in
            let expired = ageMillis >= reservedMillis
            if settings.cleanFileForciblyEnable && used >= settings.diskSpaceCleanForciblyRatio {
                return .cleanForcibly
            }
            if expired && used >= settings.diskMaxUsedSpaceRatio { return .maxUsedSpace }
            if expired && timeToDelete { return .deleteWhen }
            return nil
        }
        if deleted > 0 { updateDiskFull(used: usedAfter) }
        return deleted
    }

    /// Sets the disk-full flag at or above `diskSpaceWarningLevelRatio`, clears it below the forced-clean ratio.
    private func updateDiskFull(used: Int) {
        if used >= settings.diskSpaceWarningLevelRatio {
            if !diskFullFlag.exchange(true, ordering: .relaxed) {
                log("commitlog: disk \(used)% used, above diskSpaceWarningLevelRatio \(settings.diskSpaceWarningLevelRatio)%: appends refused")
            }
        } else if used < settings.diskSpaceCleanForciblyRatio {
            if diskFullFlag.exchange(false, ordering: .relaxed) { log("commitlog: disk \(used)% used: appends accepted again") }
        }
    }

    /// Deletes the oldest files whose age passed `fileReservedTime` (any age with `force`), oldest first,
    /// stopping at the first one to keep; never the file being written, never unflushed data.
    /// Readers holding a deleted file keep their mapping until they let go.
    func deleteExpiredFiles(nowMillis: Int64, force: Bool) -> Int {
        let reservedMillis = Int64(settings.fileReservedTimeHours) * 3_600_000
        let measure = { self.settings.diskUsage.usedPercent(self.settings.storePathCommitLog) ?? 0 }
        return deleteOldest(nowMillis: nowMillis, used: measure(), measure: measure) { _, ageMillis in
            force || ageMillis >= reservedMillis ? .requested(force: force) : nil
        }.deleted
    }

    /// Deletes the oldest file while `reason(usage, age of the oldest)` gives a reason, one file at a time,
    /// measuring usage after each and logging file, age, usage before and after, and the reason.
    /// - Returns: files deleted and the last usage measured.
    private func deleteOldest(
        nowMillis: Int64, used: Int, measure: () -> Int, reason: (_ used: Int, _ ageMillis: Int64) -> DeletionReason?
    ) -> (deleted: Int, used: Int) {
        var used = used
        var deleted = 0
        while deleted < settings.deleteFileBatchMax {
            guard let removed = removeOldest(nowMillis: nowMillis, used: used, reason: reason) else { break }
            let (ageMillis, why) = (removed.ageMillis, removed.why)
            deleted += 1
            let after = measure()
            let held = removed.watch.file != nil  // a reader still maps it: its blocks are not free yet
            log("commitlog: deleted \(removed.path) (age \(LogShared.duration(ageMillis)); disk \(used)% -> \(after)% used; \(text(why))\(held ? "; still mapped by a reader, its space frees when the reader lets go" : ""))")
            used = after
            if held && why.isPressure { break }  // measuring again now would only delete more
        }
        if deleted > 0 { try? fsyncDirectory(settings.storePathCommitLog) }
        return (deleted, used)
    }

    /// Takes the oldest file out of the queue and unlinks it, if it may go (not the last, which is being
    /// written; wholly flushed) and `reason` gives a reason. Returns its path, age, the reason and a weak
    /// reference that is nil once no reader maps it (this function's own references end with it).
    private func removeOldest(nowMillis: Int64, used: Int, reason: (Int, Int64) -> DeletionReason?)
        -> (path: String, ageMillis: Int64, why: DeletionReason, watch: WeakFile)? {
        guard let oldest = queue.first, queue.count > 1 else { return nil }
        guard oldest.fileEndOffset <= flushedAtomic.load(ordering: .acquiring) else { return nil }
        let ageMillis = nowMillis - oldest.lastModifiedMillis
        guard let why = reason(used, ageMillis), queue.removeFirst(oldest) else { return nil }
        oldest.unlinkFromDisk()
        return (oldest.path, ageMillis, why, WeakFile(file: oldest))
    }

    private func text(_ reason: DeletionReason) -> String {
        switch reason {
        case .cleanForcibly: "disk at or above diskSpaceCleanForciblyRatio \(settings.diskSpaceCleanForciblyRatio)%: age ignored"
        case .maxUsedSpace: "older than fileReservedTime \(settings.fileReservedTimeHours)h, disk at or above diskMaxUsedSpaceRatio \(settings.diskMaxUsedSpaceRatio)%"
        case .deleteWhen: "older than fileReservedTime \(settings.fileReservedTimeHours)h, at a deleteWhen hour"
        case .requested(let force): force ? "deletion forced" : "older than fileReservedTime \(settings.fileReservedTimeHours)h"
        }
    }

    /// "3h07m" (or "42s" under a minute).
    static func duration(_ millis: Int64) -> String {
        let seconds = max(0, millis / 1000)
        guard seconds >= 60 else { return "\(seconds)s" }
        let minutes = seconds / 60 % 60
        return "\(seconds / 3600)h\(minutes < 10 ? "0" : "")\(minutes)m"
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
        appendLock.withLock { sequencer.drain($0.nextTicket) }  // appends in progress finish before the flushers drain
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
