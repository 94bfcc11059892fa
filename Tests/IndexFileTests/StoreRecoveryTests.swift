#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Testing
import TestSupport

/// Queues and the index agree with the log after crashes, deletions and retention.
@Suite(.serialized) struct StoreRecoveryTests {
    /// Every unit of every queue: (topic, queue) -> [(physical offset, size, tags code)].
    func snapshot(_ store: MessageStore) -> [String: [ConsumeQueueUnit]] {
        var units: [String: [ConsumeQueueUnit]] = [:]
        for (topic, queueID) in store.queues {
            let key = "\(topic)/\(queueID)"
            var offset = store.minOffset(topic: topic, queueID: queueID)
            let maxOffset = store.maxOffset(topic: topic, queueID: queueID)
            var list: [ConsumeQueueUnit] = []
            while offset < maxOffset {
                let result = store.get(topic: topic, queueID: queueID, offset: offset, maxMsgNums: 32)
                for region in result.records {
                    list.append(ConsumeQueueUnit(physicalOffset: Int64(region.physicalOffset), messageSize: Int32(region.bytes.count), tagsCode: 0))
                }
                guard result.nextBeginOffset > offset else { break }
                offset = result.nextBeginOffset
            }
            units[key] = list
        }
        return units
    }

    /// A fresh store over a copy of the commit log alone: what dispatch builds from the log.
    func rebuiltFromLog(_ root: String, _ configure: (String) -> MessageStoreConfig) throws -> [String: [ConsumeQueueUnit]] {
        let copy = TemporaryDirectory("store-rebuild")
        #expect(system("cp -r '\(root)/commitlog' '\(copy.path)/commitlog'") == 0)
        let store = try MessageStore(config: configure(copy.path))
        defer { store.close() }
        return snapshot(store)
    }

    @Test func millionMessagesOverSixteenQueuesReadBackExactlyByQueueAndTag() throws {
        let dir = TemporaryDirectory()
        var config = storeConfig(dir.path)
        config.commitLog.mappedFileSizeCommitLog = 64 << 20
        config.mappedFileSizeConsumeQueue = 100_000 * 20
        let store = try MessageStore(config: config)
        defer { store.close() }
        let tags = ["TagA", "TagB", "TagC", "TagD"]
        let tagProperties = tags.map { Array("TAGS\u{1}\($0)\u{2}".utf8) }
        let topic = Array("BigTopic".utf8)
        var random = SeededGenerator(seed: 42)
        let count = 1_000_000
        var expectedTags = [[UInt8]](repeating: [], count: 16)  // per queue: tag index of each message
        var body = [UInt8](repeating: 0, count: 8)
        try topic.withUnsafeBytes { t in
            for index in 0..<count {
                let queue = Int(random.next() % 16)
                let tag = Int(random.next() % 4)
                expectedTags[queue].append(UInt8(tag))
                body.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(index).bigEndian, as: UInt64.self) }
                _ = try body.withUnsafeBytes { b in
                    try tagProperties[tag].withUnsafeBytes { p in
                        try store.put(MessageView(topic: t, body: b, properties: p, queueID: Int32(queue)))
                    }
                }
            }
        }
        store.waitForDispatch(seconds: 120)
        var seen = 0
        for queue in 0..<16 {
            #expect(store.maxOffset(topic: "BigTopic", queueID: Int32(queue)) == Int64(expectedTags[queue].count))
            var offset: Int64 = 0
            var previous: UInt64 = 0
            var index = 0
            while true {
                let result = store.get(topic: "BigTopic", queueID: Int32(queue), offset: offset, maxMsgNums: 32)
                guard result.status == .found else { break }
                for region in result.records {
                    guard case .message(let header) = RecordDecoder.check(region.bytes, checkCRC: false) else {
                        Issue.record("queue \(queue) offset \(offset): not a record")
                        return
                    }
                    let sequence = UInt64(bigEndian: region.bytes.loadUnaligned(fromByteOffset: header.body.lowerBound, as: UInt64.self))
                    #expect(index == 0 || sequence > previous, "queue \(queue) out of order")
                    previous = sequence
                    let tagText = String(decoding: region.bytes[header.properties], as: UTF8.self)
                    #expect(tagText == "TAGS\u{1}\(tags[Int(expectedTags[queue][index])])\u{2}")
                    index += 1
                }
                offset = result.nextBeginOffset
            }
            #expect(index == expectedTags[queue].count)
            seen += index
            // By tag filter: exactly the messages of that tag, in order.
            let tag = queue % 4
            let filtered = store.readAll(topic: "BigTopic", queueID: Int32(queue), tagsCodes: [javaHashCode(tags[tag])])
            #expect(filtered.count == expectedTags[queue].filter { Int($0) == tag }.count)
            #expect(filtered.allSatisfy { propertiesText($0) == "TAGS\u{1}\(tags[tag])\u{2}" })
        }
        #expect(seen == count)
    }

    /// The geometry `bench crash-child --store` uses.
    func crashConfig(_ root: String) -> MessageStoreConfig {
        var config = storeConfig(root)
        config.commitLog.mappedFileSizeCommitLog = 256 * 1024
        config.commitLog.maxMessageSize = 4096
        config.mappedFileSizeConsumeQueue = 500 * 20
        config.maxHashSlotNum = 500
        config.maxIndexNum = 2000
        return config
    }

    @Test func sigkillBetweenAppendAndDispatchLeavesQueuesEqualToAFreshRebuild() throws {
        guard let bench = builtExecutable("bench") else {
            Issue.record("the bench executable is not built next to the tests; run `swift build` first")
            return
        }
        let dir = TemporaryDirectory("store-crash")
        var random = SeededGenerator(seed: 7)
        var puts: [(physical: UInt64, queue: Int32, offset: Int64)] = []
        for round in 0..<6 {
            let (ready, lines) = try ChildProcess.runThenKill(
                [bench, "crash-child", "--store", "--dir", dir.path, "--producers", "4", "--size", "300",
                 "--file-size", String(256 * 1024), "--first-sequence", String(round * 1_000_000)],
                afterMillis: Int.random(in: 100...600, using: &random))
            #expect(ready, "round \(round): the child did not start")
            for line in lines where line.hasPrefix("PUT ") {
                let parts = line.split(separator: " ")
                if parts.count == 4, let physical = UInt64(parts[1]), let queue = Int32(parts[2]), let offset = Int64(parts[3]) {
                    puts.append((physical, queue, offset))
                }
            }
            let store = try MessageStore(config: crashConfig(dir.path))
            let recovered = snapshot(store)
            // Every put the child saw returned is in its queue at its offset (the page cache kept it).
            for put in puts {
                let result = store.get(topic: "CrashTopic", queueID: put.queue, offset: put.offset, maxMsgNums: 1)
                #expect(result.records.first?.physicalOffset == put.physical, "round \(round): put at \(put.physical)")
            }
            for index in stride(from: 0, to: puts.count, by: max(1, puts.count / 50)) {
                let put = puts[index]
                guard let record = try store.lookMessage(physicalOffset: put.physical) else { continue }
                let properties = String(decoding: record.properties, as: UTF8.self)
                guard let pair = properties.split(separator: "\u{2}").first(where: { $0.hasPrefix("KEYS\u{1}") }) else { continue }
                let key = String(pair.dropFirst(5))
                #expect(store.queryMessage(topic: "CrashTopic", key: key, maxNum: 8).contains { $0.region.physicalOffset == put.physical },
                        "round \(round): \(key) is not found by key")
            }
            store.close()
            #expect(recovered == (try rebuiltFromLog(dir.path, crashConfig)), "round \(round): queues differ from a rebuild")
        }
        #expect(puts.count > 100)
    }

    @Test func deletedOrCorruptQueueIsRebuiltFromTheLog() throws {
        let dir = TemporaryDirectory()
        var expected: [String: [ConsumeQueueUnit]] = [:]
        do {
            let store = try MessageStore(config: storeConfig(dir.path))
            for index in 0..<5000 {
                _ = try store.put(Outgoing(topic: "T", queueID: Int32(index % 4), body: Array(repeating: 7, count: 100),
                                           tag: "t\(index % 3)", keys: []))
            }
            store.waitForDispatch()
            expected = snapshot(store)
            store.close()
        }
        #expect(system("rm -rf '\(dir.path)/consumequeue/T/2'") == 0)
        // And a file of another queue cut short: its size no longer matches.
        #expect(truncate(dir.path + "/consumequeue/T/1/00000000000000000000", 1000) == 0)
        let store = try MessageStore(config: storeConfig(dir.path))
        defer { store.close() }
        #expect(store.maxOffset(topic: "T", queueID: 2) == 1250)
        #expect(snapshot(store) == expected)
    }

    @Test func queueAndIndexFilesGoWithTheCommitLogFilesTheyPointInto() throws {
        let dir = TemporaryDirectory()
        var config = storeConfig(dir.path)
        config.flushIntervalConsumeQueueMillis = 20
        let minOffset = try deleteOldFilesAndCheck(config)
        // After a restart the queue still starts at the first message the log holds.
        let reopened = try MessageStore(config: config)
        defer { reopened.close() }
        #expect(reopened.minOffset(topic: "T", queueID: 0) == minOffset)
        #expect(reopened.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 1).status == .offsetTooSmall)
    }

    /// Fills a queue over several log files, deletes the old files, checks the queue follows; returns its min offset.
    func deleteOldFilesAndCheck(_ config: MessageStoreConfig) throws -> Int64 {
        let root = config.storePathRootDir
        let store = try MessageStore(config: config)
        defer { store.close() }
        for index in 0..<6000 {
            _ = try store.put(Outgoing(topic: "T", queueID: 0, body: Array(repeating: 1, count: 900), tag: nil, keys: ["k\(index)"]))
        }
        store.waitForDispatch()
        let deadline = monotonicNanos() + 10_000_000_000
        while store.commitLog.flushedOffset < store.commitLog.wroteOffset && monotonicNanos() < deadline { usleep(10_000) }
        let filesBefore = listDirectory(root + "/consumequeue/T/0")?.count ?? 0
        let deleted = store.commitLog.deleteExpiredFiles(nowMillis: wallClockMillis(), force: true)
        #expect(deleted >= 3)
        let minPhysical = Int64(store.commitLog.minOffset)
        // The store's service notices the new minimum and moves queues and the index along.
        // The service follows the log's start within a few runs (the deletion above removed several files,
        // one at a time, so it may see an intermediate start first): wait until the queue's first unit is
        // readable again.
        var minOffset: Int64 = 0
        var first = store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 1)
        while monotonicNanos() < deadline {
            minOffset = store.minOffset(topic: "T", queueID: 0)
            first = store.get(topic: "T", queueID: 0, offset: minOffset, maxMsgNums: 1)
            if minOffset > 0 && first.status == .found { break }
            usleep(10_000)
        }
        #expect(minOffset > 0)
        #expect(first.status == .found)
        let tooSmall = store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 8)
        #expect(tooSmall.status == .offsetTooSmall)
        #expect(tooSmall.nextBeginOffset == minOffset)
        let firstRecord = try #require(first.records.first)
        #expect(Int64(firstRecord.physicalOffset) >= minPhysical)
        #expect((listDirectory(root + "/consumequeue/T/0")?.count ?? 0) < filesBefore)
        #expect(store.queryMessage(topic: "T", key: "k5999", maxNum: 4).count == 1)
        return minOffset
    }
}
