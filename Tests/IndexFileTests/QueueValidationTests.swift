#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Synchronization
import Testing
import TestSupport

/// A consume-queue unit is a claim about the log, checked on every read: a unit whose record is not
/// there, has another size, or belongs to another queue is skipped with a (rate-limited) log line and
/// the read moves on, so one corrupt unit never blocks its queue; a restart, clean or not, drops bad
/// units at a queue's end and rebuilds them from the log.
@Suite(.serialized) struct QueueValidationTests {
    /// The ways a unit can lie about its record.
    enum Damage: String, CaseIterable {
        case sizeTooLarge, sizeTooSmall, intoTheMiddle, otherQueue, pastTheEnd, negativeOffset, filler, zeroSize
    }

    func damaged(_ unit: ConsumeQueueUnit, _ damage: Damage, other: ConsumeQueueUnit, logEnd: UInt64) -> ConsumeQueueUnit {
        var bad = unit
        switch damage {
        case .sizeTooLarge: bad.messageSize += 40  // would hand out a neighbour's bytes
        case .sizeTooSmall: bad.messageSize -= 10
        case .intoTheMiddle: bad.physicalOffset += 8
        case .otherQueue: bad = ConsumeQueueUnit(physicalOffset: other.physicalOffset, messageSize: other.messageSize, tagsCode: unit.tagsCode)
        case .pastTheEnd: bad.physicalOffset = Int64(logEnd) + 1_000
        case .negativeOffset: bad.physicalOffset = -5
        case .filler: bad = .filler
        case .zeroSize: bad.messageSize = 0
        }
        return bad
    }

    /// Puts 10 messages in each of T/0 and T/1 (bodies "q<queue>-m<index>"), dispatched.
    func filledStore(_ root: String, lines: LogLines) throws -> MessageStore {
        let store = try MessageStore(config: storeConfig(root), log: lines.append)
        for index in 0..<20 {
            let queue = Int32(index % 2)
            _ = try store.put(Outgoing(topic: "T", queueID: queue, body: Array("q\(queue)-m\(index / 2)".utf8),
                                       tag: "tag\(index % 3)", keys: []))
        }
        store.waitForDispatch()
        return store
    }

    func bodies(_ regions: [MappedRegion]) -> [String] {
        regions.map { region in
            guard case .message(let header) = RecordDecoder.check(region.bytes, checkCRC: false) else { return "not a record" }
            return String(decoding: region.bytes[header.body], as: UTF8.self)
        }
    }

    @Test(arguments: Damage.allCases)
    func badUnitIsSkippedWithALogLineAndGetMovesOn(damage: Damage) throws {
        let dir = TemporaryDirectory()
        let lines = LogLines()
        let store = try filledStore(dir.path, lines: lines)
        defer { store.close() }
        let other = try #require(store.unit(topic: "T", queueID: 1, offset: 5))
        for offset: Int64 in [3, 9] {
            let unit = try #require(store.unit(topic: "T", queueID: 0, offset: offset))
            writeUnit(dir.path, queueID: 0, offset: offset, damaged(unit, damage, other: other, logEnd: store.commitLog.wroteOffset))
        }
        let all = store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 32)
        #expect(all.status == .found)
        #expect(all.queueOffsets == [0, 1, 2, 4, 5, 6, 7, 8])
        #expect(bodies(all.records) == [0, 1, 2, 4, 5, 6, 7, 8].map { "q0-m\($0)" })
        #expect(all.nextBeginOffset == 10)
        let one = store.get(topic: "T", queueID: 0, offset: 3, maxMsgNums: 1)
        #expect(one.queueOffsets == [4])
        #expect(one.nextBeginOffset == 5)
        // The last unit is bad: nothing to return, but the consumer is moved past it.
        let last = store.get(topic: "T", queueID: 0, offset: 9, maxMsgNums: 32)
        #expect(last.records.isEmpty)
        #expect(last.status == .noMatchedMessage)
        #expect(last.nextBeginOffset == 10)
        #expect(store.storeTime(topic: "T", queueID: 0, offset: 3) == nil)
        #expect(store.storeTime(topic: "T", queueID: 0, offset: 4) != nil)
        #expect(store.record(topic: "T", queueID: 0, offset: 3) == nil)
        #expect(store.record(topic: "T", queueID: 0, offset: 4).map { Array($0.body) } == Array("q0-m4".utf8))
        #expect(lines.contains("consumequeue T/0 offset 3"), "\(lines.all)")
    }

    @Test func badUnitLinesAreRateLimited() throws {
        let dir = TemporaryDirectory()
        let lines = LogLines()
        let store = try filledStore(dir.path, lines: lines)
        defer { store.close() }
        for offset: Int64 in 0..<10 {
            let unit = try #require(store.unit(topic: "T", queueID: 0, offset: offset))
            writeUnit(dir.path, queueID: 0, offset: offset, ConsumeQueueUnit(physicalOffset: unit.physicalOffset + 1,
                                                                            messageSize: unit.messageSize, tagsCode: 0))
        }
        let started = monotonicNanos()
        for _ in 0..<100 {
            let result = store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 32)
            #expect(result.records.isEmpty)
            #expect(result.nextBeginOffset == 10)
        }
        let seconds = Int((monotonicNanos() - started) / 1_000_000_000)
        let logged = lines.all.filter { $0.contains("consumequeue T/0") }
        #expect(logged.count >= 1)
        #expect(logged.count <= 1 + seconds + 1, "1,000 bad reads logged \(logged.count) lines in \(seconds) s")
    }

    @Test func earliestMessageTimeLooksPastBadUnits() throws {
        let dir = TemporaryDirectory()
        let store = try filledStore(dir.path, lines: LogLines())
        defer { store.close() }
        for offset: Int64 in [0, 1] { writeUnit(dir.path, queueID: 0, offset: offset, .filler) }
        #expect(store.earliestMessageTime(topic: "T", queueID: 0) == store.storeTime(topic: "T", queueID: 0, offset: 2))
        #expect(store.earliestMessageTime(topic: "T", queueID: 0) != nil)
    }

    /// After a clean shutdown the queue's last units point into a record and past another's size; the
    /// restart drops them and dispatch rebuilds them from the log, so the queue reads exactly as before.
    @Test(arguments: [false, true])
    func restartDropsAQueueTailPointingIntoGarbageAndRebuildsIt(crashed: Bool) throws {
        let dir = TemporaryDirectory()
        let lines = LogLines()
        do {
            let store = try filledStore(dir.path, lines: lines)
            let eight = try #require(store.unit(topic: "T", queueID: 0, offset: 8))
            let nine = try #require(store.unit(topic: "T", queueID: 0, offset: 9))
            store.close()
            writeUnit(dir.path, queueID: 0, offset: 8, ConsumeQueueUnit(physicalOffset: eight.physicalOffset + 12,
                                                                        messageSize: eight.messageSize, tagsCode: eight.tagsCode))
            writeUnit(dir.path, queueID: 0, offset: 9, ConsumeQueueUnit(physicalOffset: nine.physicalOffset,
                                                                        messageSize: nine.messageSize + 30, tagsCode: nine.tagsCode))
        }
        if crashed { _ = system("touch '\(dir.path)/abort'") }
        let store = try MessageStore(config: storeConfig(dir.path), log: lines.append)
        defer { store.close() }
        #expect(store.maxOffset(topic: "T", queueID: 0) == 10)
        let all = store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 32)
        #expect(all.queueOffsets == Array(0..<10))
        #expect(bodies(all.records) == (0..<10).map { "q0-m\($0)" })
        #expect(bodies(store.get(topic: "T", queueID: 1, offset: 0, maxMsgNums: 32).records) == (0..<10).map { "q1-m\($0)" })
        #expect(lines.contains("dropped 2 units at its end"), "\(lines.all)")
    }

    /// A unit whose offset plus size overflows (garbage near Int64.max) is past every end, not a trap.
    @Test(arguments: [false, true])
    func unitOffsetNearInt64MaxNeitherTrapsRecoveryNorReads(crashed: Bool) throws {
        let dir = TemporaryDirectory()
        let lines = LogLines()
        do {
            let store = try filledStore(dir.path, lines: lines)
            store.close()
        }
        writeUnit(dir.path, queueID: 0, offset: 9, ConsumeQueueUnit(physicalOffset: .max - 5, messageSize: 100, tagsCode: 0))
        writeUnit(dir.path, queueID: 1, offset: 4, ConsumeQueueUnit(physicalOffset: .max - 5, messageSize: .max, tagsCode: 0))
        if crashed { _ = system("touch '\(dir.path)/abort'") }
        let store = try MessageStore(config: storeConfig(dir.path), log: lines.append)
        defer { store.close() }
        #expect(bodies(store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 32).records) == (0..<10).map { "q0-m\($0)" })
        let other = store.get(topic: "T", queueID: 1, offset: 0, maxMsgNums: 32)
        #expect(bodies(other.records) == [0, 1, 2, 3, 5, 6, 7, 8, 9].map { "q1-m\($0)" })
        #expect(other.nextBeginOffset == 10)
    }

    /// A clean-shutdown manifest whose dispatch offset lies inside a record does not stop the store from
    /// opening: dispatch resumes at a record boundary.
    @Test func manifestOffsetInsideARecordStillOpens() throws {
        let dir = TemporaryDirectory()
        let lines = LogLines()
        var expected: [String] = []
        do {
            let store = try filledStore(dir.path, lines: lines)
            expected = bodies(store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 32).records)
            store.close()
        }
        let path = dir.path + "/config/consumeQueueManifest"
        let text = String(decoding: readAll(path), as: UTF8.self)
        // The first line is `dispatchedOffset <n>`: point it 7 bytes into the first record.
        let patched = "dispatchedOffset 7\n" + text.split(separator: "\n").dropFirst().map { $0 + "\n" }.joined()
        #expect(text.hasPrefix("dispatchedOffset "))
        #expect(patched != text)
        let fd = open(path, O_WRONLY | O_TRUNC)
        _ = patched.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let store = try MessageStore(config: storeConfig(dir.path), log: lines.append)
        defer { store.close() }
        #expect(bodies(store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 32).records) == expected)
        _ = try store.put(Outgoing(topic: "T", queueID: 0, body: Array("after".utf8), tag: nil, keys: []))
        store.waitForDispatch()
        #expect(store.maxOffset(topic: "T", queueID: 0) == 11)
    }
}

/// Overwrites the unit at `offset` of consume queue T/`queueID` on disk (the store's mapping sees it).
func writeUnit(_ root: String, queueID: Int32, offset: Int64, _ unit: ConsumeQueueUnit) {
    var bytes = [UInt8](repeating: 0, count: ConsumeQueueUnit.size)
    bytes.withUnsafeMutableBytes { target in
        storeBigEndian(unit.physicalOffset, at: 0, in: target.baseAddress!)
        storeBigEndian(unit.messageSize, at: 8, in: target.baseAddress!)
        storeBigEndian(unit.tagsCode, at: 12, in: target.baseAddress!)
    }
    let fd = open(root + "/consumequeue/T/\(queueID)/00000000000000000000", O_WRONLY)
    precondition(fd >= 0, "no consume queue file")
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset) * off_t(ConsumeQueueUnit.size)) }
}

func readAll(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 1 << 20)
    let n = read(fd, &bytes, bytes.count)
    return Array(bytes[0..<max(0, n)])
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let start = indices.first(where: { self[$0...].hasPrefix(target) }) else { return self }
        return String(self[..<start]) + replacement + String(self[index(start, offsetBy: target.count)...])
    }
}

/// Collects a store's log lines.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var append: @Sendable (String) -> Void { { [self] line in lines.withLock { $0.append(line) } } }
    var all: [String] { lines.withLock { $0 } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}
