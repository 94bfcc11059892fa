#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// RocketMQ's `ReputMessageService`: one thread follows the commit log's visible end (committed, or
/// flushed under SYNC_FLUSH) and, in log order, appends each record's consume-queue unit and index
/// entries, then tells the arrival listener. It parks on the log's growth signal when caught up.
final class Dispatcher: @unchecked Sendable {
    let state: StoreState
    private let reputAtomic: Atomic<UInt64>
    private let stopping = Atomic<Bool>(false)
    private var thread: StoreThread?
    private var loggedFailure = false

    init(state: StoreState, from: UInt64) {
        self.state = state
        reputAtomic = Atomic(from)
    }

    /// Where the next record to dispatch starts.
    var reputFrom: UInt64 { reputAtomic.load(ordering: .acquiring) }

    /// Dispatches everything up to the log's end now (start-up).
    func catchUp() throws(StoreError) {
        let end = state.commitLog.wroteOffset
        try dispatch(upTo: end)
    }

    func start() {
        thread = StoreThread(name: "dispatch") { [self] in
            while !stopping.load(ordering: .acquiring) {
                let visible = state.commitLog.waitForData(beyond: reputFrom, untilNanos: monotonicNanos() + 200_000_000)
                guard visible > reputFrom else { continue }
                do { try dispatch(upTo: visible) } catch {
                    if !loggedFailure { state.log("dispatch stopped at \(reputFrom): \(error); retrying") }
                    loggedFailure = true
                    usleep(100_000)
                }
            }
        }
    }

    /// Stops after dispatching what the (closing) log has made visible.
    func stop(drainUpTo log: CommitLog) {
        stopping.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
        try? dispatch(upTo: log.visibleOffset)
    }

    private func dispatch(upTo end: UInt64) throws(StoreError) {
        var at = reputFrom
        let log = state.commitLog
        while at < end {
            switch try log.readRecord(at: at, checkCRC: false) {
            case .record(let record):
                guard record.nextOffset <= end else { return }
                try dispatch(record)
                at = record.nextOffset
            case .blank(let next):
                at = next
            case .end:
                reputAtomic.store(at, ordering: .releasing)
                return
            }
            reputAtomic.store(at, ordering: .releasing)
        }
    }

    private func dispatch(_ record: StoredRecord) throws(StoreError) {
        let header = record.header
        let properties = record.properties
        if !transactionPrepared(header.sysFlag) {
            let queue = state.queueForDispatch(topic: record.topic, queueID: header.queueID)
            let unit = ConsumeQueueUnit(physicalOffset: header.physicalOffset, messageSize: Int32(header.totalSize),
                                        tagsCode: tagsCode(properties: properties))
            if try queue.put(offset: header.queueOffset, unit: unit) {
                state.arriving(queue.topic, header.queueID, queue.maxOffset)
            }
        }
        if state.config.messageIndexEnable && header.sysFlag & MessageRecord.transactionTypeMask != 0xC {
            let keys = propertyValue(properties, "KEYS")
            let uniqueKey = propertyValue(properties, "UNIQ_KEY")
            if keys != nil || uniqueKey != nil {
                try state.index.build(topic: record.topicString, keys: keys, uniqueKey: uniqueKey,
                                      physicalOffset: header.physicalOffset, storeTimestamp: header.storeTimestamp)
            }
        }
        state.lastDispatchedTimestamp.store(header.storeTimestamp, ordering: .releasing)
    }
}

/// The store's periodic work on its own threads: flushing consume queues (and, every thorough interval,
/// the index and the checkpoint), and deleting queue and index files the commit log no longer backs.
final class StoreServices: @unchecked Sendable {
    private let stopping = Atomic<Bool>(false)
    private let wake = ConditionLock()
    private var thread: StoreThread?

    static func start(state: StoreState) -> StoreServices {
        let services = StoreServices()
        let config = state.config
        let intervalNanos = UInt64(config.flushIntervalConsumeQueueMillis) * 1_000_000
        let thoroughNanos = UInt64(config.flushConsumeQueueThoroughIntervalMillis) * 1_000_000
        services.thread = StoreThread(name: "flush-cq") { [services, state] in
            var lastThorough = monotonicNanos()
            var lastMinOffset = state.commitLog.minOffset
            while !services.stopping.load(ordering: .acquiring) {
                services.wake.withLock {
                    if !services.stopping.load(ordering: .relaxed) { services.wake.wait(untilNanos: monotonicNanos() + intervalNanos) }
                }
                let now = monotonicNanos()
                let thorough = now - lastThorough >= thoroughNanos
                state.flushQueues(leastPages: thorough ? 0 : config.flushConsumeQueueLeastPages)
                if thorough { lastThorough = now }
                let minOffset = state.commitLog.minOffset
                if minOffset != lastMinOffset {
                    state.deleteExpired()
                    lastMinOffset = minOffset
                }
            }
        }
        return services
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wake.withLock { wake.broadcast() }
        thread?.join()
        thread = nil
    }
}
