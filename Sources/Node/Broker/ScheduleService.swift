import CommitLog
import IndexFile
import NIOCore
import Synchronization

/// Delivers delayed messages (DELAY property, and consumer retries): they wait in
/// `SCHEDULE_TOPIC_XXXX` queue `level - 1` whose units carry the delivery time; every 100 ms each level's
/// queue is read from its saved offset and due messages are put to their `REAL_TOPIC`/`REAL_QID`.
/// Progress is kept in `config/delayOffset.json` (every 10 s and at close), so it survives restarts.
final class ScheduleService: @unchecked Sendable {
    let store: MessageStore
    let lock = Mutex(())
    var offsets: DelayOffsetFile
    let log: @Sendable (String) -> Void
    /// Store threads, not event loops: delivery puts into the store and persisting fsyncs a file.
    var threads: [PeriodicThread] = []

    init(store: MessageStore, log: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.log = log
        offsets = DelayOffsetFile(storePathRootDir: store.config.storePathRootDir, log: log)
    }

    func start() {
        threads = [
            PeriodicThread(name: "schedule", intervalNanos: 100_000_000) { [self] in deliverDue() },
            PeriodicThread(name: "delay-offsets", intervalNanos: 10_000_000_000) { [self] in persist() },
        ]
    }

    func stop() {
        for thread in threads { thread.stop() }
        threads.removeAll()
        persist()
    }

    func persist() {
        lock.withLock { _ in
            do { try offsets.persist() } catch { log("broker: cannot persist delayOffset.json: \(error)") }
        }
    }

    /// The levels' count (`messageDelayLevel`).
    var levels: Int { store.config.messageDelayLevelMillis.count }

    func deliverDue() {
        let topic = MessageStoreConfig.scheduleTopic
        let now = wallClockMillis()
        for level in 1...levels {
            let queueID = Int32(level - 1)
            var offset = lock.withLock { _ in offsets.offsets[Int32(level)] ?? 0 }
            offset = max(offset, store.minOffset(topic: topic, queueID: queueID))
            let start = offset
            let end = store.maxOffset(topic: topic, queueID: queueID)
            while offset < end, let unit = store.unit(topic: topic, queueID: queueID, offset: offset), unit.tagsCode <= now {
                if case .record(let record)? = try? store.commitLog.readRecord(at: UInt64(unit.physicalOffset)) {
                    guard deliver(record) else { break }  // the store refuses puts now: try again later
                }
                offset += 1
            }
            if offset != start { lock.withLock { _ in offsets.offsets[Int32(level)] = offset } }
        }
    }

    /// Puts a copy of `record` into its real topic and queue; false when the store refused it.
    private func deliver(_ record: StoredRecord) -> Bool {
        var properties = MessageProperties(record.properties)
        guard let realTopic = properties["REAL_TOPIC"], let realQueue = properties["REAL_QID"].flatMap({ Int32($0) }) else {
            log("schedule: message at \(record.region.physicalOffset) lacks REAL_TOPIC/REAL_QID; skipped")
            return true
        }
        properties["DELAY"] = nil
        let header = record.header
        let topic = Array(realTopic.utf8)
        let bytes = properties.bytes
        let result = topic.withUnsafeBytes { t in bytes.withUnsafeBytes { p in
            Result { () throws(StoreError) in
                try store.put(MessageView(topic: t, body: record.body, properties: p, queueID: realQueue, flag: header.flag,
                                          sysFlag: header.sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost,
                                          reconsumeTimes: header.reconsumeTimes))
            }
        } }
        if case .failure(let error) = result {
            log("schedule: cannot deliver to \(realTopic): \(error)")
            return false
        }
        return true
    }
}
