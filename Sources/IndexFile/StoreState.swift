#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// What the store's parts share: consume queues, the index, the queue-offset table behind puts.
final class StoreState: @unchecked Sendable {
    let config: MessageStoreConfig
    let commitLog: CommitLog
    let index: IndexService
    let log: @Sendable (String) -> Void
    /// Next queue offset per (topic, queue), assigned under the commit log's append lock.
    let queueOffsets: QueueOffsetTable
    private let queueTable = Mutex(QueueTable<ConsumeQueue>())
    var arriving: @Sendable (String, Int32, Int64) -> Void = { _, _, _ in }
    /// Store time of the last dispatched message (for the checkpoint's logicsMsgTimestamp).
    let lastDispatchedTimestamp = Atomic<Int64>(0)
    /// Where readers report consume-queue units that do not match the log (rate-limited lines).
    let badUnits: BadUnitLog
    /// Bad units at a queue's end that recovery drops before rebuilding the queue from the log instead.
    static let badTailUnitsMax = 1_024

    var queueRoot: String { config.storePathRootDir + "/consumequeue" }
    var manifestPath: String { config.storePathRootDir + "/config/consumeQueueManifest" }

    init(config: MessageStoreConfig, commitLog: CommitLog, log: @escaping @Sendable (String) -> Void) {
        self.config = config
        self.commitLog = commitLog
        self.log = log
        queueOffsets = QueueOffsetTable(commitLog: commitLog)
        badUnits = BadUnitLog(log: log)
        index = IndexService(directory: config.storePathRootDir + "/index", hashSlotNum: config.maxHashSlotNum,
                             indexNum: config.maxIndexNum, io: config.commitLog.fileIO, log: log)
    }

    func queue(topic: String, queueID: Int32) -> ConsumeQueue? {
        queueTable.withLock { $0.value(topic: topic, queueID: queueID) }
    }

    var allQueues: [ConsumeQueue] { queueTable.withLock { $0.all.map(\.value) } }

    /// The queue for a dispatched record, created on first use (no allocation once it exists).
    func queueForDispatch(topic: UnsafeRawBufferPointer, queueID: Int32) -> ConsumeQueue {
        queueTable.withLock { table in
            (try? table.withValue(topic: topic, queueID: queueID, make: {
                makeQueue(topic: String(decoding: topic, as: UTF8.self), queueID: queueID)
            }) { (queue) throws(StoreError) in queue })!
        }
    }

    /// A consume queue object for `consumequeue/<topic>/<queueID>` (files are opened by `recover` or
    /// created by the first put).
    private func makeQueue(topic: String, queueID: Int32, directory: String? = nil) -> ConsumeQueue {
        ConsumeQueue(topic: topic, queueID: queueID, directory: directory ?? queueRoot + "/" + topic + "/" + String(queueID),
                     fileSize: config.mappedFileSizeConsumeQueue, io: config.commitLog.fileIO)
    }

    /// The tags code the dispatcher gives `record` in a queue of `queueTopic`: the Java hash of its TAGS, or
    /// in the schedule topic its delivery time (level = queue id + 1).
    func unitTagsCode(of record: StoredRecord, queueTopic: String) -> Int64 {
        unitTagsCode(of: record, queueTopic: queueTopic, tags: propertyValue(record.properties, "TAGS"))
    }

    /// `unitTagsCode` with the record's TAGS value already found.
    func unitTagsCode(of record: StoredRecord, queueTopic: String, tags: UnsafeRawBufferPointer?) -> Int64 {
        guard queueTopic == MessageStoreConfig.scheduleTopic else { return tagsCode(tags: tags) }
        let levels = config.messageDelayLevelMillis
        return record.header.storeTimestamp + levels[min(levels.count - 1, max(0, Int(record.header.queueID)))]
    }

    /// What recovering the consume queues found.
    struct QueuesRecovered {
        var rebuildAll = false
        /// The largest end (offset + size) of a queue's last unit.
        var maxQueueEnd: Int64 = 0
        /// Where dispatch must start at the latest to rebuild units dropped from queue tails.
        var rebuildFrom: UInt64?
    }

    /// Loads and checks every consume queue and the index against the recovered log.
    /// - Returns: the log offset dispatch must resume from.
    func recover() throws(StoreError) -> UInt64 {
        let report = commitLog.recoveryReport
        let manifest = StoreManifest.load(manifestPath)
        var recovered = recoverQueues()
        for entry in manifest?.queues ?? [] where queue(topic: entry.topic, queueID: entry.queueID) == nil {
            log("consumequeue \(entry.topic)/\(entry.queueID) is missing; rebuilding it from the commit log")
            recovered.rebuildAll = true
        }
        try index.load(abnormal: report.abnormal, indexMsgTimestamp: commitLog.checkpoint.indexMsgTimestamp,
                       logEnd: Int64(commitLog.wroteOffset))
        let minimum = commitLog.minOffset
        var from: UInt64
        if recovered.rebuildAll {
            from = minimum
        } else if report.abnormal || manifest == nil {
            // After a crash only what the checkpoint vouches for is trusted: start where commit-log
            // recovery started (bounded by the time of the last flushed queue units) or earlier.
            from = min(report.startOffset, UInt64(max(0, recovered.maxQueueEnd)))
            if config.messageIndexEnable { from = min(from, UInt64(max(0, index.endPhyOffset))) }
        } else {
            from = min(manifest!.dispatchedOffset, commitLog.wroteOffset)
        }
        from = min(from, recovered.rebuildFrom ?? from)
        from = max(from, minimum)
        // Dispatch resumes at a record boundary: the start of the file holding `from`, when `from` is
        // not the end of a dispatched record we can vouch for (a manifest's offset must start a record too).
        if from != manifest?.dispatchedOffset || recovered.rebuildAll || report.abnormal || !startsRecord(from) {
            from = from - from % UInt64(config.commitLog.mappedFileSizeCommitLog)
            from = max(from, minimum)
        }
        StoreManifest.remove(manifestPath)  // only a clean close writes it again
        return from
    }

    /// True when a record, a blank or the log's end lies at `offset`.
    private func startsRecord(_ offset: UInt64) -> Bool {
        if offset == commitLog.wroteOffset { return true }
        guard let result = try? commitLog.readRecord(at: offset, checkCRC: false) else {
            log("config/consumeQueueManifest.json: dispatchedOffset \(offset) is not a record boundary; dispatch starts at its file")
            return false
        }
        if case .end = result { return false }
        return true
    }

    /// Loads every consume queue, cuts it at the log's end and drops units at its end that do not match
    /// the log (after a clean shutdown too); dispatch starts early enough to rebuild whatever a queue lost.
    /// A queue that cannot be loaded is deleted and rebuilt.
    private func recoverQueues() -> QueuesRecovered {
        var recovered = QueuesRecovered()
        for topic in (listDirectory(queueRoot) ?? []) {
            for name in listDirectory(queueRoot + "/" + topic) ?? [] {
                guard let queueID = Int32(name) else { continue }
                let directory = queueRoot + "/" + topic + "/" + name
                let queue = makeQueue(topic: topic, queueID: queueID, directory: directory)
                do {
                    try queue.recover()
                    let loaded = queue.maxOffset
                    try queue.truncate(physicalEnd: Int64(commitLog.wroteOffset))
                    try trimBadTail(queue)
                    if queue.maxOffset < loaded {
                        // Units the log may still hold went (a unit past the end can be garbage too).
                        let from = UInt64(max(0, queue.maxPhysicOffset))
                        recovered.rebuildFrom = min(recovered.rebuildFrom ?? from, from)
                    }
                } catch {
                    log("consumequeue \(topic)/\(queueID): \(error); rebuilding it from the commit log")
                    _ = system("rm -rf '\(directory)'")
                    recovered.rebuildAll = true
                    continue
                }
                recovered.maxQueueEnd = max(recovered.maxQueueEnd, queue.maxPhysicOffset)
                queueTable.withLock { $0.set(topic: topic, queueID: queueID, queue) }
            }
        }
        return recovered
    }

    /// `ConsumeQueue.trimBadTail` with the store's tags codes and log lines; dispatch then rebuilds the
    /// dropped units from the log.
    private func trimBadTail(_ queue: ConsumeQueue) throws(StoreError) {
        let dropped = try queue.trimBadTail(
            log: commitLog, unitsMax: StoreState.badTailUnitsMax,
            expectedTagsCode: { unitTagsCode(of: $0, queueTopic: queue.topic) },
            report: { offset, unit, flaw in
                badUnits.report(topic: queue.topic, queueID: queue.queueID, offset: offset, unit: unit, flaw: flaw,
                                action: "dropped from the queue's end")
            })
        guard let dropped else {
            throw StoreError(.corruptRecord, "more than \(StoreState.badTailUnitsMax) units at its end do not match the log")
        }
        guard dropped > 0 else { return }
        log("consumequeue \(queue.topic)/\(queue.queueID): dropped \(dropped) units at its end that did not match the log; dispatch rebuilds them from offset \(queue.maxPhysicOffset)")
    }

    /// Sets the next queue offset of every queue to its max offset (after dispatch caught up).
    func rebuildQueueOffsets() {
        queueOffsets.set(allQueues.map { (topic: $0.topic, queueID: $0.queueID, next: $0.maxOffset) })
    }

    /// Flushes every queue and the index, then records in the checkpoint how far they are durable.
    func flushQueues(leastPages: Int) {
        let timestamp = lastDispatchedTimestamp.load(ordering: .acquiring)
        var failed = false
        for queue in allQueues {
            do { try queue.flush(leastPages: leastPages) } catch {
                failed = true
                log("consumequeue \(queue.topic)/\(queue.queueID): flush failed: \(error)")
            }
        }
        if leastPages == 0 && !failed {
            if let indexEnd = index.flushAll() { commitLog.checkpoint.indexMsgTimestamp = indexEnd }
            if timestamp > 0 { commitLog.checkpoint.logicsMsgTimestamp = timestamp }
            try? commitLog.checkpoint.flush()
        }
    }

    func closeQueues(dispatchedOffset: UInt64) {
        flushQueues(leastPages: 0)
        let queues = allQueues.map { StoreManifest.Queue(topic: $0.topic, queueID: $0.queueID) }
        StoreManifest(dispatchedOffset: dispatchedOffset, queues: queues).save(manifestPath)
    }

    /// Deletes queue files and index files that only point below the commit log's min offset.
    func deleteExpired() {
        let minimum = Int64(commitLog.minOffset)
        for queue in allQueues { _ = queue.deleteExpired(commitLogMinOffset: minimum) }
        _ = index.deleteExpired(commitLogMinOffset: minimum)
    }

    func deleteTopic(_ topic: String) {
        let removed = queueTable.withLock { table -> [ConsumeQueue] in
            let queues = table.all.filter { $0.topic == topic }.map(\.value)
            table.remove(topic: topic)
            return queues
        }
        queueOffsets.remove(topic: topic)
        for queue in removed {
            queue.deleted.store(true, ordering: .relaxed)
            for file in queue.files.all { file.unlinkFromDisk() }
        }
        _ = system("rm -rf '\(queueRoot)/\(topic)'")
    }
}

/// `config/consumeQueueManifest.json`, written at a clean close: how far dispatch got and which queues
/// existed, so the next start resumes exactly and notices a queue directory that went missing.
struct StoreManifest {
    struct Queue { var topic: String; var queueID: Int32 }
    var dispatchedOffset: UInt64
    var queues: [Queue]

    /// Line-based text: `dispatchedOffset <n>`, then `queue <id> <topic>` per queue (topic names hold no spaces).
    func save(_ path: String) {
        var text = "dispatchedOffset \(dispatchedOffset)\n"
        for queue in queues { text += "queue \(queue.queueID) \(queue.topic)\n" }
        try? writeFileAtomically(path, text, backupCurrent: false)
    }

    /// The manifest, or nil when it is missing or any line does not parse (the store then checks every queue).
    static func load(_ path: String) -> StoreManifest? {
        guard let text = readTextFile(path) else { return nil }
        var offset: UInt64?
        var queues: [Queue] = []
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 2)
            switch (words.first, words.count) {
            case ("dispatchedOffset"?, 2):
                guard let value = UInt64(words[1]) else { return nil }
                offset = value
            case ("queue"?, 3):
                guard let id = Int32(words[1]) else { return nil }
                queues.append(Queue(topic: String(words[2]), queueID: id))
            default:
                return nil
            }
        }
        return offset.map { StoreManifest(dispatchedOffset: $0, queues: queues) }
    }

    static func remove(_ path: String) {
        if fileExists(path) { unlink(path) }
    }
}
