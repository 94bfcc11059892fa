#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// A record whose tail never reached the disk is not a record: a segment cut short ends the log at the
/// last record lying wholly inside the bytes that survived, and a record zeroed from anywhere past its
/// body (topic, properties length, properties) is rejected by recovery, after a clean shutdown or a crash.
@Suite(.serialized) struct TornRecordTests {
    /// Appends `count` records with properties into 64 KiB files, closes cleanly, returns what went in.
    func populate(_ root: String, count: Int) throws -> [(AppendResult, TestMessage)] {
        let log = try CommitLog(settings: testSettings(root))
        defer { log.close() }
        return try (0..<count).map { seed in
            var message = TestMessage(size: 100 + seed * 37 % 400, seed: seed)
            message.properties = Array("KEYS\u{1}order-\(seed)\u{2}TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}U\(seed)\u{2}".utf8)
            return (try log.append(message), message)
        }
    }

    /// Opens the log over `root` and checks it holds exactly `expected`, properties and bodies intact.
    func expectRecovered(_ root: String, exactly expected: [(AppendResult, TestMessage)], lines: LogLines,
                         _ context: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let log = try openRetryingWhileLocked(testSettings(root), log: lines.append)
        defer { log.close() }
        let records = try log.allRecords()
        #expect(records.count == expected.count, "\(context)", sourceLocation: sourceLocation)
        for (record, (result, message)) in zip(records, expected) {
            #expect(record.region.physicalOffset == result.physicalOffset, "\(context)", sourceLocation: sourceLocation)
            #expect(Array(record.properties) == message.properties, "\(context)", sourceLocation: sourceLocation)
            #expect(Array(record.body) == message.body, "\(context)", sourceLocation: sourceLocation)
        }
        let end = expected.last.map { $0.0.nextOffset } ?? 0
        #expect(log.wroteOffset == end || log.wroteOffset % 65_536 == 0, "\(context): ends at \(log.wroteOffset), not \(end)",
                sourceLocation: sourceLocation)
    }

    /// Where to cut inside one record: its header, its body, its properties length field, the middle and the
    /// last byte of its properties, and just past it.
    func cutPoints(_ result: AppendResult, _ message: TestMessage, fileStart: UInt64) -> [Int] {
        let start = Int(result.physicalOffset - fileStart)
        let end = start + result.size
        let properties = message.properties.count
        return [start + 1, start + 8, start + 60, start + 88 + message.body.count / 2,
                end - properties - 2, end - properties - 1, end - properties, end - properties / 2, end - 1, end, end + 1]
    }

    @Test(arguments: [false, true])
    func segmentCutShortEndsTheLogAtTheLastRecordWhollyInside(crashed: Bool) throws {
        let dir = TemporaryDirectory()
        let appended = try populate(dir.path, count: 120)
        let lastFile = appended.last!.0.physicalOffset / 65_536 * 65_536
        let path = commitLogFile(dir.path, lastFile)
        let pristine = readFile(path)
        let inLastFile = appended.filter { $0.0.physicalOffset >= lastFile }
        for (result, message) in inLastFile.suffix(4) {
            for cut in cutPoints(result, message, fileStart: lastFile) {
                writeFile(path, Array(pristine[0..<cut]))
                if crashed { leaveAbortMarker(dir.path) }
                let survivors = appended.filter { $0.0.nextOffset <= lastFile + UInt64(cut) }
                let lines = LogLines()
                try expectRecovered(dir.path, exactly: survivors, lines: lines, "cut at \(cut)")
                #expect(lines.contains("shorter than mappedFileSizeCommitLog"), "cut at \(cut): \(lines.all)")
                writeFile(path, pristine)
            }
        }
    }

    @Test(arguments: [false, true])
    func recordZeroedFromItsTopicOrPropertiesIsRejected(crashed: Bool) throws {
        let dir = TemporaryDirectory()
        let appended = try populate(dir.path, count: 120)
        let (victim, message) = appended.last!
        let lastFile = victim.physicalOffset / 65_536 * 65_536
        let path = commitLogFile(dir.path, lastFile)
        let pristine = readFile(path)
        let start = Int(victim.physicalOffset - lastFile)
        let end = start + victim.size
        // From the last body byte on: the topic length, the topic, the properties length and every byte
        // of the properties. The body CRC covers none of them.
        let bodyEnd = start + 88 + message.body.count
        for zeroFrom in (bodyEnd - 1)..<end {
            var damaged = pristine
            for index in zeroFrom..<damaged.count { damaged[index] = 0 }
            writeFile(path, damaged)
            if crashed { leaveAbortMarker(dir.path) }
            try expectRecovered(dir.path, exactly: Array(appended.dropLast()), lines: LogLines(),
                                "zeroed from byte \(zeroFrom - start) of \(victim.size)")
            writeFile(path, pristine)
        }
    }

    /// What recovery would reject must never be stored: the append path refuses it with a clear error.
    @Test func appendRefusesPropertiesOrTopicThatRecoveryWouldReject() throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path))
        defer { log.close() }
        for (topic, properties) in [("T", "KEYS\u{1}a\u{0}b\u{2}"), ("T\u{0}x", "")] {
            do {
                _ = try log.append(TestMessage(topic: topic, body: [1, 2, 3], properties: properties))
                Issue.record("stored a record recovery would reject: topic \(topic.utf8.count) bytes")
            } catch {
                #expect(error.code == .messageIllegal, "\(error)")
            }
        }
        var message = TestMessage(topic: "T", body: [1], queueID: -1)
        #expect(throws: StoreError.self) { _ = try log.append(message) }
        message.queueID = MessageRecord.queueIDMax + 1
        #expect(throws: StoreError.self) { _ = try log.append(message) }
        message.queueID = 0
        message.bornHost = HostAddress(ipv4: 1, 2, 3, 4, port: 70_000)
        #expect(throws: StoreError.self) { _ = try log.append(message) }
        #expect(log.wroteOffset == 0, "nothing was stored")
    }
}

/// Opens a log, retrying for up to 5 s while the lock file is held: a `system()` forked by a test running
/// in parallel holds a copy of the previous log's lock descriptor until it execs.
func openRetryingWhileLocked(_ settings: CommitLogSettings, log: @escaping @Sendable (String) -> Void = { _ in })
    throws(StoreError) -> CommitLog {
    let deadline = monotonicNanos() + 5_000_000_000
    while true {
        do { return try CommitLog(settings: settings, log: log) } catch {
            guard error.code == .locked, monotonicNanos() < deadline else { throw error }
            usleep(1_000)
        }
    }
}

/// Collects a log's lines (the closure the store logs through).
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var append: @Sendable (String) -> Void { { [self] line in lines.withLock { $0.append(line) } } }
    var all: [String] { lines.withLock { $0 } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}

/// Replaces the file at `path` with `bytes` (its length becomes `bytes.count`).
func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0o644)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
