#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// Append, read, batches and roll-over on both io paths.
@Suite struct AppendTests {
    @Test(arguments: IOPath.allCases)
    func appendedRecordsReadBackIntact(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path, io: io))
        defer { log.close() }
        var results: [(AppendResult, TestMessage)] = []
        for seed in 0..<300 {
            let message = TestMessage(size: 50 + seed * 7 % 900, seed: seed)
            results.append((try log.append(message), message))
        }
        try waitUntilCommitted(log)
        var expectedOffset: UInt64 = 0
        for (result, message) in results {
            if result.physicalOffset != expectedOffset {
                // Only a roll-over may skip ahead, to the next file's start.
                #expect(result.physicalOffset % 65_536 == 0)
            }
            let record = try log.record(at: result.physicalOffset)
            #expect(Array(record.body) == message.body)
            #expect(Array(record.properties) == message.properties)
            #expect(record.header.queueOffset == message.queueOffset)
            #expect(record.header.storeTimestamp == result.storeTimestamp)
            #expect(record.header.totalSize == result.size)
            expectedOffset = result.nextOffset
        }
        #expect(try log.allRecords().count == 300)
    }

    @Test(arguments: IOPath.allCases)
    func rollOverAtExactBoundaries(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let fileSize = 64 * 1024
        let log = try CommitLog(settings: testSettings(dir.path, io: io, fileSize: fileSize))
        defer { log.close() }
        let overhead = TestMessage(body: []).withView { MessageRecord.size(of: $0, storeHost: .loopback) }
        // Fill to leave exactly 8 bytes: the record fits and the file ends with the minimum blank.
        let filler = TestMessage(body: Array(repeating: 1, count: 4000))
        var position = 0
        while fileSize - position - 8 - overhead > 8000 { position = Int(try log.append(filler).nextOffset) }
        let exact = TestMessage(body: Array(repeating: 2, count: fileSize - position - 8 - overhead))
        let fits = try log.append(exact)
        #expect(fits.physicalOffset == UInt64(position))
        #expect(fits.nextOffset == UInt64(fileSize - 8))
        // The next record does not fit in 8 bytes: a blank fills them and it starts the next file.
        let next = try log.append(TestMessage(body: [3]))
        #expect(next.physicalOffset == UInt64(fileSize))
        try waitUntilCommitted(log)
        guard case .blank(let nextOffset) = try log.readRecord(at: fits.nextOffset) else {
            Issue.record("no blank record at the file's end")
            return
        }
        #expect(nextOffset == UInt64(fileSize))
        // One byte more than fits with 8 spare: it must go to the next file too.
        let record = try log.record(at: next.physicalOffset)
        #expect(Array(record.body) == [3])
        #expect(log.queue.count >= 2)
        #expect(access(commitLogFile(dir.path, UInt64(fileSize)), F_OK) == 0)
    }

    @Test(arguments: IOPath.allCases)
    func batchGoesWholeIntoOneFile(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path, io: io, fileSize: 64 * 1024))
        defer { log.close() }
        var lastBatch: BatchAppendResult?
        for round in 0..<20 {
            let messages = (0..<10).map { TestMessage(size: 500, seed: round * 10 + $0) }
            let batch = try withViews(messages) { try log.appendBatch($0) }
            #expect(batch.count == 10)
            // Never straddles: first and last byte in the same file.
            #expect(batch.physicalOffset / 65_536 == (batch.nextOffset - 1) / 65_536)
            lastBatch = batch
        }
        try waitUntilCommitted(log)
        let records = try log.allRecords()
        #expect(records.count == 200)
        #expect(records.last?.nextOffset == lastBatch?.nextOffset)
        for (index, record) in records.enumerated() {
            #expect(Array(record.body) == TestMessage(size: 500, seed: index).body)
        }
    }

    @Test func tooLargeTopicAndPropertiesAreRefusedAndNothingIsStored() throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path))
        defer { log.close() }
        #expect(throws: StoreError.self) { try log.append(TestMessage(body: Array(repeating: 0, count: 8 * 1024 + 1))) }
        #expect(throws: StoreError.self) { try log.append(TestMessage(topic: String(repeating: "x", count: 256), body: [1])) }
        #expect(throws: StoreError.self) { try log.append(TestMessage(topic: "", body: [1])) }
        do {
            _ = try log.append(TestMessage(body: Array(repeating: 0, count: 9000)))
        } catch {
            #expect(error.code == .messageTooLarge)
            #expect(error.description.contains("maxMessageSize 8192"))
        }
        #expect(log.wroteOffset == 0)
    }

    @Test func secondOpenOfTheSameStoreIsRefused() throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path))
        defer { log.close() }
        do {
            _ = try CommitLog(settings: testSettings(dir.path))
            Issue.record("a second open succeeded")
        } catch {
            #expect(error.code == .locked)
        }
    }

    /// A lock held only briefly (a child this process is spawning shares the lock's open file until its exec) is
    /// waited for, not refused.
    @Test func aLockHeldBrieflyIsWaitedFor() throws {
        let dir = TemporaryDirectory()
        let holder = open(dir.path + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        try #require(holder >= 0 && flock(holder, LOCK_EX | LOCK_NB) == 0)
        let release = StoreThread(name: "lock-holder") {
            usleep(50_000)  // the holder's exec: the lock goes while the open below is trying
            close(holder)
        }
        defer { release.join() }
        let log = try CommitLog(settings: testSettings(dir.path))
        log.close()
    }

    @Test func appendsAfterCloseThrowStoreClosed() throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path))
        let kept = try log.append(TestMessage(size: 10, seed: 1))
        log.close()
        do {
            _ = try log.append(TestMessage(size: 10, seed: 2))
            Issue.record("append after close succeeded")
        } catch {
            #expect(error.code == .storeClosed)
        }
        #expect(Array(try log.record(at: kept.physicalOffset).body) == TestMessage(size: 10, seed: 1).body)
    }

    /// Many threads append at once; every record is intact and the log has no gaps or overlaps.
    @Test(arguments: IOPath.allCases)
    func concurrentAppendersInterleaveWholeRecords(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path, io: io, fileSize: 256 * 1024))
        defer { log.close() }
        let threads = (0..<8).map { producer in
            StoreThread(name: "t\(producer)") {
                for sequence in 0..<250 { _ = try? log.append(TestMessage(size: 100 + sequence % 300, seed: producer * 1000 + sequence)) }
            }
        }
        for thread in threads { thread.join() }
        try waitUntilCommitted(log)
        let records = try log.allRecords()
        #expect(records.count == 2000)
        #expect(records.last?.nextOffset == log.wroteOffset)
        for record in records {
            let seed = Int(record.header.queueOffset)
            #expect(Array(record.body) == TestMessage(size: 100 + seed % 1000 % 300, seed: seed).body)
        }
    }

    /// Appenders copy outside the append lock: the readable end must still move over whole records only (a
    /// reader walking up to `committedOffset` never meets a hole, a torn record or a blank not yet written),
    /// and the log's end covers an append or batch once it returned (readable at once on the mmap path).
    @Test(arguments: IOPath.allCases)
    func readersNeverSeeRecordsStillBeingCopied(io: IOPath) throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path, io: io, fileSize: 128 * 1024))
        defer { log.close() }
        let producing = Atomic<Int>(4)
        let unreadable = Atomic<Int>(0), holes = Atomic<Int>(0)
        let threads = (0..<4).map { producer in
            StoreThread(name: "p\(producer)") {
                defer { producing.wrappingSubtract(1, ordering: .relaxed) }
                for sequence in 0..<400 {
                    let seed = producer * 1000 + sequence
                    let end: UInt64?
                    if sequence % 5 == 0 {
                        let messages = (0..<3).map { TestMessage(size: 200 + $0, seed: seed) }
                        end = (try? withViews(messages) { try log.appendBatch($0) })?.nextOffset
                    } else {
                        end = (try? log.append(TestMessage(size: 100 + sequence % 700, seed: seed)))?.nextOffset
                    }
                    if let end, log.wroteOffset < end { unreadable.wrappingAdd(1, ordering: .relaxed) }
                }
            }
        }
        var cursor: UInt64 = 0, records = 0
        let deadline = monotonicNanos() + 20_000_000_000
        // Until the producers are done and the readable end (on io_uring: the ring's) reached the log's end.
        while (producing.load(ordering: .relaxed) > 0 || cursor < log.wroteOffset) && monotonicNanos() < deadline {
            let end = log.committedOffset
            while cursor < end {
                switch try log.readRecord(at: cursor) {
                case .record(let record):
                    cursor = record.nextOffset
                    records += 1
                case .blank(let next): cursor = next
                case .end:
                    holes.wrappingAdd(1, ordering: .relaxed)
                    cursor = end
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(holes.load(ordering: .relaxed) == 0)
        #expect(unreadable.load(ordering: .relaxed) == 0)
        #expect(records == 4 * (320 + 80 * 3))
        #expect(cursor == log.wroteOffset)
    }
}

extension AppendTests {
    /// mmap: the pre-faulter writes zeros (pwrite) over whole chunks ahead of the appenders; it must never land
    /// on bytes an appender reserved, however the two interleave. Four producers append through a small window
    /// while it zero-fills (and the allocator fills each next file); then every record reads back intact.
    @Test func zeroFillAheadNeverOverwritesAppends() throws {
        let dir = TemporaryDirectory()
        var settings = testSettings(dir.path, fileSize: 8 << 20)
        settings.prefaultAheadBytes = 4 << 20
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        let failed = Atomic<Int>(0)
        let threads = (0..<4).map { producer in
            StoreThread(name: "z\(producer)") {
                for sequence in 0..<3000 {
                    let seed = producer * 10_000 + sequence
                    if (try? log.append(TestMessage(size: 100 + seed % 1900, seed: seed))) == nil { failed.wrappingAdd(1, ordering: .relaxed) }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(failed.load(ordering: .relaxed) == 0)
        var cursor = log.minOffset, records = 0, wrong = 0
        reading: while true {
            switch try log.readRecord(at: cursor) {
            case .record(let record):
                let seed = Int(record.header.queueOffset)
                if Array(record.body) != TestMessage(size: 100 + seed % 1900, seed: seed).body { wrong += 1 }
                records += 1
                cursor = record.nextOffset
            case .blank(let next): cursor = next
            case .end: break reading
            }
        }
        #expect(wrong == 0)
        #expect(records == 12_000)
        #expect(cursor == log.wroteOffset)
    }
}

func withViews<R>(_ messages: [TestMessage], _ body: ([MessageView]) throws -> R) rethrows -> R {
    func nest(_ index: Int, _ views: [MessageView]) throws -> R {
        if index == messages.count { return try body(views) }
        return try messages[index].withView { try nest(index + 1, views + [$0]) }
    }
    return try nest(0, [])
}

/// Waits (bounded) until everything appended is readable (the io_uring ring writes asynchronously).
func waitUntilCommitted(_ log: CommitLog, seconds: Double = 10) throws {
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    while log.committedOffset < log.wroteOffset {
        guard monotonicNanos() < deadline else {
            Issue.record("committed \(log.committedOffset) never reached wrote \(log.wroteOffset)")
            return
        }
        usleep(1000)
    }
}
