/// `flushDiskType`: when an append counts as done.
public enum FlushDiskType: String, Sendable, CaseIterable {
    /// Acknowledge at once; a background thread flushes every `flushIntervalCommitLog`.
    case asyncFlush = "ASYNC_FLUSH"
    /// Acknowledge after an fdatasync covers the record (group commit).
    case syncFlush = "SYNC_FLUSH"
}

/// The io path of the commit log.
public enum IOPath: String, Sendable, CaseIterable {
    /// memcpy into the shared mapping; flush by msync or fdatasync.
    case mmap
    /// append into a registered buffer; WRITE (+ linked FDATASYNC) through io_uring; reads from the mapping.
    case ioUring = "io_uring"
}

/// Everything the commit log needs, as one immutable value. Names keep their `broker.conf` spelling.
public struct CommitLogSettings: Sendable {
    public var storePathRootDir: String
    /// Defaults to `<storePathRootDir>/commitlog`.
    public var storePathCommitLog: String
    public var mappedFileSizeCommitLog: Int = 1 << 30
    public var flushDiskType: FlushDiskType = .asyncFlush
    public var ioPath: IOPath = .mmap
    public var flushMethod: FlushMethod = .msync
    public var flushIntervalCommitLogMillis: Int = 500
    public var flushCommitLogLeastPages: Int = 4
    public var flushCommitLogThoroughIntervalMillis: Int = 10_000
    public var syncFlushTimeoutMillis: Int = 5_000
    /// Largest body accepted (`maxMessageSize`); a record may add up to 64 KiB of headers and properties.
    public var maxMessageSize: Int = 4 * 1024 * 1024
    public var warmMapedFileEnable: Bool = false
    /// Each new commit log file has its zeros written out and synced in the background before use, so the
    /// fdatasyncs after appends convert no unwritten extents (ext4): the whole file, or only its head where the
    /// live pre-writer writes the rest (`preWriteHeadBytes`). nil: under SYNC_FLUSH or with
    /// `warmMapedFileEnable`, where flushes are frequent; the cost is writing each file twice.
    public var preWriteNewFiles: Bool?
    /// An opening empty log waits for its first file's pre-write as well (seconds for 1 GiB); off, that file is
    /// handed out after the chunk in progress. `bench store` turns it on to measure a pre-written file, as every
    /// later one is.
    public var preWriteFirstFile = false
    public var preWritesNewFiles: Bool { preWriteNewFiles ?? (flushDiskType == .syncFlush || warmMapedFileEnable) }
    /// Under SYNC_FLUSH with `preWritesNewFiles`: the file being written, when it is not pre-written (a log's first
    /// file, the last one after a restart), has its zeros written out and synced in the background up to this far
    /// ahead of the writer, so the group commits' fdatasyncs convert no unwritten extents. 0 turns it off.
    public var livePreWriteAheadBytes: Int = 64 << 20
    /// Whether the live file is pre-written ahead of the writer (`livePreWriteAheadBytes`); never under ASYNC_FLUSH,
    /// nor with `warmMapedFileEnable` (its warm-up writes every file back whole), nor where appends write the mapping
    /// itself (see `FlushEngine.preWritesLiveFile`).
    public var preWritesLiveFile: Bool {
        flushDiskType == .syncFlush && preWritesNewFiles && !warmMapedFileEnable && livePreWriteAheadBytes > 0
    }
    /// The bytes of each new file the allocator pre-writes, its head, where the live pre-writer runs (the file is
    /// written from an arena: io_uring, or the mmap path's write buffer) and writes the rest ahead of the writer;
    /// nil: the whole file.
    var preWriteHeadBytes: Int? {
        preWritesLiveFile && (ioPath == .ioUring || usesWriteBuffer) ? livePreWriteAheadBytes : nil
    }
    /// mmap path: pages this far ahead of the write position are faulted in (MADV_POPULATE_WRITE) by a
    /// background thread, so appends do not take page faults (and zero pages) inside the append lock.
    /// 0 turns it off.
    public var prefaultAheadBytes: Int = 32 << 20
    public var checkCRCOnRecover: Bool = true
    /// Durability waiters held at once; past it a SYNC_FLUSH put fails fast instead of queueing.
    public var pendingWaitersMax: Int = 65_536
    /// mmap path under SYNC_FLUSH: threads running group-commit rounds (1 or 2). With 2, the next round is written
    /// and synced while the one before it still answers its waiters (`FlushEngine+GroupCommit.swift`). 1 by default:
    /// through the broker (64 x 1 KiB) two lanes cost more CPU per message (8.6-9.5 against 7.0-7.5 us) for no
    /// more msgs/s; `bench store --drivers 2` gains a little from them (README, "How the engine works").
    /// io_uring under SYNC_FLUSH: 2 runs rounds of pwrite + FDATASYNC with two in flight, decided in start order
    /// (`FlushEngine+RingSync.swift`); 1 keeps one linked WRITE + FDATASYNC at a time. Through the broker two
    /// were no faster and cost more (37.2k against 39.4k msgs/s, 13.7 against 12.8 us/msg, medians of 12 alternating
    /// runs); `bench store --drivers 2` gains from them (58.8k against 39.9k msgs/s, median of 3 pairs).
    public var groupCommitLanes: Int = 1
    /// SYNC_FLUSH: a group-commit round waits up to this long (microseconds) for the puts the last round answered
    /// to come back, so it carries them all, ending sooner when they are all there or when none came for 50 us
    /// (`FlushEngine.linger`). A lone sender never waits. 0 (the default) turns it off: at 200 us `bench store
    /// --producers 32` (mmap) went from ~22 to ~31 puts a flush, but through the broker (64 x 1 KiB, 9 same-run pairs)
    /// msgs/s fell in 6 of 9 and p50 rose, for 0.46 us/msg less broker CPU (README, "How the engine works").
    public var groupCommitLingerMicros: Int = 0
    public static let groupCommitLingerMicrosMax = 1_000_000
    /// Size of the io_uring write arena (a power of two, at least twice the largest record).
    public var ioUringArenaSizeBytes: Int = 32 << 20
    /// mmap + SYNC_FLUSH: appends are copied into an anonymous write buffer (an arena of
    /// `ioUringArenaSizeBytes`, grown to twice the largest record) and the group-commit thread writes it to the
    /// file with `pwrite` before each flush, like RocketMQ's transient store pool (`transientStorePoolEnable`).
    /// Nothing writes through the mapping then, so ext4's writeback never write-protects mapped pages under the
    /// appenders (a TLB shoot-down and a fault again per flush). nil: on under SYNC_FLUSH. Under ASYNC_FLUSH the
    /// mmap path writes through the mapping whatever this says (`ioPath=io_uring` is the buffered ASYNC path).
    public var writeBuffer: Bool?
    /// True when appends go through the write buffer on the mmap path (see `writeBuffer`).
    public var usesWriteBuffer: Bool { ioPath == .mmap && flushDiskType == .syncFlush && (writeBuffer ?? true) }
    /// True when the io_uring ring thread runs SYNC_FLUSH rounds two in flight (`groupCommitLanes` 2,
    /// `FlushEngine+RingSync.swift`), waking on an eventfd that appenders write (`DurabilityWaiters.ringWakeFD`).
    var runsRingRounds: Bool { ioPath == .ioUring && flushDiskType == .syncFlush && groupCommitLanes > 1 }
    /// The arena's size: `ioUringArenaSizeBytes` on io_uring (validated); for the mmap write buffer, at least
    /// the next power of two holding two of the largest records.
    public var arenaSizeBytes: Int {
        guard ioPath == .mmap else { return ioUringArenaSizeBytes }
        var size = max(ioUringArenaSizeBytes, 2 * recordSizeMax, 1 << 16)
        if size.nonzeroBitCount != 1 { size = 1 << (Int.bitWidth - size.leadingZeroBitCount) }
        return size
    }
    public var ioUringQueueDepth: Int = 64
    /// io_uring + ASYNC_FLUSH: the ring writes the arena out once `commitCommitLogLeastPages` 4 KiB pages are
    /// pending, or when the oldest pending byte has waited `commitIntervalCommitLog` (RocketMQ's transient-pool
    /// commit; its interval is 200 ms, ours is short because readers see only written bytes; its least is 4 pages,
    /// ours 64: each write wakes the ring thread, and 256 KiB a wake-up cost about 10% less broker CPU per 1 KiB
    /// message than 64 KiB; at 150k msgs/s 64 pages wait under 2 ms, below the interval). Under SYNC_FLUSH, or when
    /// a put waits for a slave, the ring writes at once.
    public var commitIntervalCommitLogMillis: Int = 5
    public var commitCommitLogLeastPages: Int = 64
    /// The broker's address, stored in every record and in offset message ids.
    public var storeHost: HostAddress = .loopback

    // Retention and disk protection.
    /// Hours of the day (0-23) when expired files are deleted (`deleteWhen`, "04" or "04;16").
    public var deleteWhen: [Int] = [4]
    public var fileReservedTimeHours: Int = 72
    public var diskMaxUsedSpaceRatio: Int = 75
    public var diskSpaceCleanForciblyRatio: Int = 85
    public var diskSpaceWarningLevelRatio: Int = 90
    public var cleanFileForciblyEnable: Bool = true
    public var cleanResourceIntervalMillis: Int = 10_000
    /// Commit-log files deleted per cleanup run at most (`deleteFileBatchMax`).
    public var deleteFileBatchMax: Int = 10

    /// Syscalls behind durability, replaceable by a scripted one in tests.
    public var fileIO: FileIO = .system
    /// The wall clock stamped into records as their store time (milliseconds since the epoch); a test sets its
    /// own to move time without sleeping.
    public var storeClock: @Sendable () -> Int64 = { wallClockMillis() }
    /// How full the commit log's file system is; retention re-measures after each file it deletes. A test
    /// scripts it (usage that falls as files go).
    public var diskUsage: DiskUsageProbe = .system

    public init(storePathRootDir: String) {
        self.storePathRootDir = storePathRootDir
        self.storePathCommitLog = storePathRootDir + "/commitlog"
    }

    /// The largest record the log accepts: the largest body plus the largest header (IPv6 hosts and a
    /// V2 topic length), topic (255 bytes) and properties (32,767 bytes).
    public var recordSizeMax: Int { maxMessageSize + MessageRecord.fixedOverheadIPv4 + 24 + 1 + MessageRecord.topicLengthMax + MessageRecord.propertiesLengthMax }

    /// Checks the combination once, before anything opens.
    public func validated() throws(StoreError) -> CommitLogSettings {
        func bad(_ text: String) -> StoreError { StoreError(.badConfig, text) }
        guard mappedFileSizeCommitLog >= 4096 else { throw bad("mappedFileSizeCommitLog must be at least 4096") }
        guard recordSizeMax + MessageRecord.endOfFileMinBlankBytes <= mappedFileSizeCommitLog else {
            throw bad("mappedFileSizeCommitLog \(mappedFileSizeCommitLog) cannot hold the largest record (\(recordSizeMax) bytes for maxMessageSize \(maxMessageSize))")
        }
        guard maxMessageSize > 0 else { throw bad("maxMessageSize must be positive") }
        guard storeHost.hasValidPort else { throw bad("the store host's port \(storeHost.port) is outside 0...65535") }
        guard pendingWaitersMax > 0 else { throw bad("pendingWaitersMax must be positive") }
        guard syncFlushTimeoutMillis > 0 else { throw bad("syncFlushTimeout must be positive") }
        guard flushIntervalCommitLogMillis > 0 else { throw bad("flushIntervalCommitLog must be positive") }
        guard commitIntervalCommitLogMillis > 0 else { throw bad("commitIntervalCommitLog must be positive") }
        guard (0...Self.groupCommitLingerMicrosMax).contains(groupCommitLingerMicros) else {
            throw bad("groupCommitLingerMicros must be 0-\(Self.groupCommitLingerMicrosMax)")
        }
        guard (1...DurabilityWaiters.maxLanes).contains(groupCommitLanes) else {
            throw bad("groupCommitLanes must be 1-\(DurabilityWaiters.maxLanes)")
        }
        guard commitCommitLogLeastPages >= 0 else { throw bad("commitCommitLogLeastPages must not be negative") }
        if ioPath == .ioUring {
            guard ioUringArenaSizeBytes.nonzeroBitCount == 1 else { throw bad("ioUringArenaSizeBytes must be a power of two") }
            guard ioUringArenaSizeBytes >= 2 * recordSizeMax else {
                throw bad("ioUringArenaSizeBytes \(ioUringArenaSizeBytes) must be at least twice the largest record (\(recordSizeMax) bytes)")
            }
        }
        guard (0...100).contains(diskMaxUsedSpaceRatio) else { throw bad("diskMaxUsedSpaceRatio must be 0-100") }
        guard deleteWhen.allSatisfy({ (0...23).contains($0) }) else { throw bad("deleteWhen hours must be 0-23") }
        return self
    }
}
