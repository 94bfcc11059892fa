#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// Settings for tests: small files so roll-overs happen, short intervals.
func testSettings(_ root: String, io: IOPath = .mmap, flush: FlushDiskType = .asyncFlush, fileSize: Int = 64 * 1024) -> CommitLogSettings {
    var settings = CommitLogSettings(storePathRootDir: root)
    settings.ioPath = io
    settings.flushDiskType = flush
    settings.mappedFileSizeCommitLog = fileSize
    settings.maxMessageSize = 8 * 1024
    settings.ioUringArenaSizeBytes = 1 << 20
    settings.flushIntervalCommitLogMillis = 20
    settings.syncFlushTimeoutMillis = 5_000
    settings.cleanResourceIntervalMillis = 3_600_000
    return settings
}

/// How appends reach the file under SYNC_FLUSH: through the mmap path's write buffer (its default), stored into
/// the mapping (`writeBuffer = false`), or through io_uring.
enum SyncWritePath: String, CaseIterable, Sendable {
    case writeBuffer, mapping, ioUring
}

/// `testSettings` under SYNC_FLUSH on one of the write paths.
func testSettings(_ root: String, path: SyncWritePath, fileSize: Int = 64 * 1024) -> CommitLogSettings {
    var settings = testSettings(root, io: path == .ioUring ? .ioUring : .mmap, flush: .syncFlush, fileSize: fileSize)
    settings.writeBuffer = path == .writeBuffer
    return settings
}

/// A message whose bytes the test owns.
struct TestMessage {
    var topic: [UInt8]
    var body: [UInt8]
    var properties: [UInt8]
    var queueID: Int32 = 0
    var queueOffset: Int64 = 0
    var bornHost: HostAddress = .loopback

    init(topic: String = "TopicTest", body: [UInt8], properties: String = "", queueID: Int32 = 0, queueOffset: Int64 = 0) {
        self.topic = Array(topic.utf8)
        self.body = body
        self.properties = Array(properties.utf8)
        self.queueID = queueID
        self.queueOffset = queueOffset
    }

    init(size: Int, seed: Int) {
        var generator = SeededGenerator(seed: UInt64(seed))
        self.init(body: (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) },
                  properties: "KEYS\u{1}k\(seed)\u{2}TAGS\u{1}TagA\u{2}", queueID: Int32(seed % 4), queueOffset: Int64(seed))
    }

    func withView<R>(_ body: (MessageView) throws -> R) rethrows -> R {
        try topic.withUnsafeBytes { t in
            try self.body.withUnsafeBytes { b in
                try properties.withUnsafeBytes { p in
                    try body(MessageView(topic: t, body: b, properties: p, queueID: queueID, flag: 7,
                                         queueOffset: queueOffset, bornTimestamp: 1_700_000_000_000, bornHost: bornHost,
                                         reconsumeTimes: 2, preparedTransactionOffset: 0))
                }
            }
        }
    }
}

extension CommitLog {
    func append(_ message: TestMessage) throws(StoreError) -> AppendResult {
        let result = message.withView { view in Result { () throws(StoreError) in try append(view) } }
        return try result.get()
    }

    func put(_ message: TestMessage, token: UInt64) throws(StoreError) -> AppendResult {
        let result = message.withView { view in Result { () throws(StoreError) in try put(view, token: token).0 } }
        return try result.get()
    }

    /// The record at `offset`, or a test failure.
    func record(at offset: UInt64, sourceLocation: SourceLocation = #_sourceLocation) throws -> StoredRecord {
        guard case .record(let record) = try readRecord(at: offset) else {
            Issue.record("no record at \(offset)", sourceLocation: sourceLocation)
            throw StoreError(.corruptRecord, "missing")
        }
        return record
    }

    /// Every record from the first stored offset to the readable end.
    func allRecords() throws -> [StoredRecord] {
        var records: [StoredRecord] = []
        try forEachRecord(from: minOffset) { records.append($0); return true }
        return records
    }
}

/// Collects durability callbacks and lets a test wait for them with a deadline.
final class DurabilityRecorder: @unchecked Sendable {
    private let lock = ConditionLock()
    private var statuses: [UInt64: [DurabilityStatus]] = [:]

    func record(_ token: UInt64, _ status: DurabilityStatus) {
        lock.withLock {
            statuses[token, default: []].append(status)
            lock.broadcast()
        }
    }

    /// Waits until `count` callbacks arrived (at most `seconds`), and returns them all.
    func wait(forCount count: Int, seconds: Double = 10) -> [UInt64: [DurabilityStatus]] {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        return lock.withLock {
            while statuses.values.reduce(0, { $0 + $1.count }) < count && monotonicNanos() < deadline {
                lock.wait(untilNanos: deadline)
            }
            return statuses
        }
    }
}

/// Reads a file's bytes.
func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var info = stat()
    fstat(fd, &info)
    var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
    _ = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    return bytes
}

/// Overwrites `bytes` at `offset` of the file at `path`.
func patchFile(_ path: String, at offset: Int, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
}

func commitLogFile(_ root: String, _ offset: UInt64) -> String {
    root + "/commitlog/" + offsetFileName(offset)
}

/// Simulates a crash for an in-process log: the `abort` marker stays, as after SIGKILL.
func leaveAbortMarker(_ root: String) {
    let fd = open(root + "/abort", O_RDWR | O_CREAT, 0o644)
    close(fd)
}
