import CommitLog
import Common
import IndexFile
import Replication
import Synchronization

/// Delivers delayed messages (RocketMQ's `ScheduleMessageService`: the DELAY property, and consumer retries):
/// they wait in `SCHEDULE_TOPIC_XXXX` queue `level - 1`, whose units carry the delivery time; every 100 ms each
/// level's queue is read from its saved offset and due messages are put, through the put pipeline, to their
/// `REAL_TOPIC`/`REAL_QID`. Progress is kept in `config/delayOffset.json` (every 10 s and at close), so it
/// survives restarts.
///
/// **Thread:** its own store threads (delivery puts into the store and persisting fsyncs a file).
final class ScheduleMessageService: @unchecked Sendable {
    private let pipeline: PutPipeline
    private var store: MessageStore { pipeline.store }
    private struct State {
        var wrapper = DelayOffsetSerializeWrapper()
        var file: ConfigBodyFile<DelayOffsetSerializeWrapper>
    }
    private let state: Mutex<State>
    private let log: @Sendable (String) -> Void
    private let threads = Mutex<[PeriodicThread]>([])

    init(pipeline: PutPipeline, log: @escaping @Sendable (String) -> Void) throws(StoreError) {
        self.pipeline = pipeline
        self.log = log
        var file = ConfigBodyFile<DelayOffsetSerializeWrapper>(storePathRootDir: pipeline.store.config.storePathRootDir,
                                                                name: "delayOffset.json", log: log)
        let wrapper = try file.load() ?? DelayOffsetSerializeWrapper()
        state = Mutex(State(wrapper: wrapper, file: file))
    }

    /// Starts delivering (a master); a slave only keeps the master's offsets.
    /// Starts delivering (a master's job); starting twice is harmless.
    func start() {
        threads.withLock { threads in
            guard threads.isEmpty else { return }
            threads = [
                PeriodicThread(name: "schedule", intervalNanos: 100_000_000) { [self] in deliverDue() },
                PeriodicThread(name: "delay-offsets", intervalNanos: 10_000_000_000) { [self] in persist() },
            ]
        }
    }

    /// Stops delivering (the broker stops, or a DLedger member stops leading); stopping twice is harmless.
    func stop() {
        let running = threads.withLock { threads in
            defer { threads.removeAll() }
            return threads
        }
        for thread in running { thread.stop() }
        persist()
    }

    func persist() {
        state.withLock { state in
            do { try state.file.persist(state.wrapper) } catch { log("broker: cannot persist delayOffset.json: \(error)") }
        }
    }

    /// Every level's progress (GET_ALL_DELAY_OFFSET, a slave's sync).
    var wrapper: DelayOffsetSerializeWrapper { state.withLock { $0.wrapper } }

    func replaceAll(with wrapper: DelayOffsetSerializeWrapper) {
        state.withLock { $0.wrapper = wrapper }
    }

    /// The levels' count (`messageDelayLevel`).
    var levels: Int { store.config.messageDelayLevelMillis.count }

    /// When a message of `level` is due, from its store time.
    func deliverTime(level: Int, storeTimestamp: Int64) -> Int64 {
        storeTimestamp + store.config.messageDelayLevelMillis[max(1, min(level, levels)) - 1]
    }

    private func deliverDue() {
        let topic = TopicValidator.scheduleTopic
        let now = currentTimeMillis()
        for level in 1...levels {
            let queueID = Int32(level - 1)
            var offset = state.withLock { $0.wrapper.offsetTable[Int32(level)] ?? 0 }
            offset = max(offset, store.minOffset(topic: topic, queueID: queueID))
            let start = offset
            let end = store.maxOffset(topic: topic, queueID: queueID)
            while offset < end, let unit = store.unit(topic: topic, queueID: queueID, offset: offset), unit.tagsCode <= now {
                // A unit that does not match its record is skipped (the store logs it), never delivered.
                if let record = store.record(topic: topic, queueID: queueID, offset: offset) {
                    guard deliver(record) else { break }  // the store refuses puts now: try again later
                }
                offset += 1
            }
            if offset != start { state.withLock { $0.wrapper.offsetTable[Int32(level)] = offset } }
        }
    }

    /// Puts a copy of `record` into its real topic and queue; false when the store refused it.
    private func deliver(_ record: StoredRecord) -> Bool {
        var properties = MessageProperties(bytes: record.properties)
        guard let realTopic = properties[MessageConst.realTopic],
              let realQueue = properties[MessageConst.realQueueID].flatMap({ Int32($0) }) else {
            log("schedule: message at \(record.region.physicalOffset) lacks REAL_TOPIC/REAL_QID; skipped")
            return true
        }
        properties[MessageConst.delayTimeLevel] = nil
        var copy = StoredCopy(record)
        copy.queueID = realQueue
        let outcome = copy.put(through: pipeline, topic: realTopic, properties: properties.bytes, on: nil)
        if case .failed(let failure) = outcome {
            log("schedule: cannot deliver to \(realTopic): \(failure)")
            return false
        }
        return true
    }
}
