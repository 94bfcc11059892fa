#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// RocketMQ's `ReputMessageService`: one thread follows the commit log's visible end (committed, or
/// flushed under SYNC_FLUSH) and, in log order, appends each record's consume-queue unit and index
/// entries, then tells the arrival listener. Under load it looks again every millisecond; idle, it parks on
/// the log's growth signal.
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

    /// After a round that dispatched records, the thread sleeps this long before looking again instead of
    /// parking on the log's growth signal (RocketMQ's reput service polls every millisecond): under load the
    /// records of a millisecond are dispatched together, and appenders have no parked reader to wake per append.
    /// A round that finds nothing parks, so an idle store costs nothing and its first record is dispatched at once.
    static let busyPauseNanos = 1_000_000

    func start() {
        thread = StoreThread(name: "dispatch") { [self] in
            var busy = false
            while !stopping.load(ordering: .acquiring) {
                let visible: UInt64
                if busy {
                    var pause = timespec(tv_sec: 0, tv_nsec: Self.busyPauseNanos)
                    nanosleep(&pause, nil)
                    visible = state.commitLog.visibleOffset
                } else {
                    visible = state.commitLog.waitForData(beyond: reputFrom, untilNanos: monotonicNanos() + 200_000_000) {
                        !stopping.load(ordering: .acquiring)
                    }
                }
                busy = visible > reputFrom
                guard busy else { continue }
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
        log.wakeDataWaiters()
        thread?.join()
        thread = nil
        try? dispatch(upTo: log.visibleOffset)
    }

    /// How many records ahead `dispatch(upTo:)` fetches the lines it will read.
    static let prefetchRecords = 6

    /// Dispatches records from `reputFrom` to `end`, walking each file's mapping directly (one file
    /// look-up per file, not per record).
    private func dispatch(upTo end: UInt64) throws(StoreError) {
        var at = reputFrom
        let log = state.commitLog
        while at < end {
            guard let file = log.queue.file(containing: at) else {
                // Below the first file (an empty replica starts at its master's last file; retention
                // deletes old files): nothing there to dispatch, go on from the first file.
                guard let first = log.queue.first, at < first.fileFromOffset else { return }
                at = first.fileFromOffset
                reputAtomic.store(at, ordering: .releasing)
                continue
            }
            let stop = min(end, file.fileEndOffset)
            while at < stop {
                let position = Int(at - file.fileFromOffset)
                let bytes = file.bytes(from: position, to: Int(stop - file.fileFromOffset))
                switch RecordDecoder.check(bytes, expectedPhysicalOffset: Int64(at), checkCRC: false) {
                case .message(let header):
                    // The records just behind the writer are mostly not in this core's cache: asking for those a few
                    // records ahead (assuming sizes alike) overlaps their misses with this one's work.
                    let ahead = Dispatcher.prefetchRecords * header.totalSize
                    if ahead + header.totalSize <= bytes.count {
                        RecordDecoder.prefetch(bytes.baseAddress! + ahead, size: header.totalSize)
                    }
                    let region = MappedRegion(file: file, physicalOffset: at,
                                              bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<header.totalSize]))
                    try dispatch(StoredRecord(region: region, header: header))
                    at += UInt64(header.totalSize)
                case .blank:
                    at = file.fileEndOffset
                case .endOfData:
                    reputAtomic.store(at, ordering: .releasing)
                    return
                case .corrupt(let field, let detail):
                    // A blank is only whole against the file's end, which may lie past `stop`.
                    if case .blank = RecordDecoder.check(file.bytes(from: position, to: file.fileSize), checkCRC: false) {
                        at = file.fileEndOffset
                    } else if at + UInt64(bytes.count) < file.fileEndOffset && stop == end {
                        reputAtomic.store(at, ordering: .releasing)
                        return  // a record past the visible end: wait for more
                    } else {
                        reputAtomic.store(at, ordering: .releasing)
                        throw StoreError(.corruptRecord, "\(file.path) @\(position): bad \(field): \(detail)")
                    }
                }
                reputAtomic.store(at, ordering: .releasing)
            }
        }
    }

    /// A small direct-mapped cache in front of the store's queue table (only this thread uses it).
    private var cache = [ConsumeQueue?](repeating: nil, count: 64)

    private func cachedQueue(topic: UnsafeRawBufferPointer, queueID: Int32) -> ConsumeQueue {
        let slot = Int(QueueTable<ConsumeQueue>.hash(topic, queueID) & 63)
        if let queue = cache[slot], queue.queueID == queueID, !queue.deleted.load(ordering: .relaxed), queue.topicMatches(topic) {
            return queue
        }
        let queue = state.queueForDispatch(topic: topic, queueID: queueID)
        cache[slot] = queue
        return queue
    }

    private func dispatch(_ record: StoredRecord) throws(StoreError) {
        let header = record.header
        let properties = DispatchProperties(record.properties)  // one walk for the unit's tags and the index's keys
        if !transactionPrepared(header.sysFlag) {
            let queue = cachedQueue(topic: record.topic, queueID: header.queueID)
            let code = state.unitTagsCode(of: record, queueTopic: queue.topic, tags: properties.tags)
            let unit = ConsumeQueueUnit(physicalOffset: header.physicalOffset, messageSize: Int32(header.totalSize), tagsCode: code)
            if try queue.put(offset: header.queueOffset, unit: unit) {
                state.arriving(queue.topic, header.queueID, queue.maxOffset)
            }
        }
        if state.config.messageIndexEnable && header.sysFlag & MessageRecord.transactionTypeMask != 0xC {
            let keys = properties.keys
            let uniqueKey = properties.uniqueKey
            if keys != nil || uniqueKey != nil {
                try state.index.build(topic: record.topic, keys: keys, uniqueKey: uniqueKey,
                                      physicalOffset: header.physicalOffset, storeTimestamp: header.storeTimestamp)
            }
        }
        state.lastDispatchedTimestamp.store(header.storeTimestamp, ordering: .releasing)
    }
}

/// The store's periodic work on its own thread: flushing consume queues (and, every thorough interval,
/// the index and the checkpoint), and deleting queue and index files the commit log no longer backs.
enum StoreServices {
    static func start(state: StoreState) -> PeriodicThread {
        let config = state.config
        let thoroughNanos = UInt64(config.flushConsumeQueueThoroughIntervalMillis) * 1_000_000
        let progress = Mutex((lastThorough: monotonicNanos(), lastMinOffset: state.commitLog.minOffset))
        return PeriodicThread(name: "flush-cq", intervalNanos: UInt64(config.flushIntervalConsumeQueueMillis) * 1_000_000) {
            let now = monotonicNanos()
            let thorough = progress.withLock { now - $0.lastThorough >= thoroughNanos }
            state.flushQueues(leastPages: thorough ? 0 : config.flushConsumeQueueLeastPages)
            let minOffset = state.commitLog.minOffset
            let moved = progress.withLock { progress -> Bool in
                if thorough { progress.lastThorough = now }
                defer { progress.lastMinOffset = minOffset }
                return minOffset != progress.lastMinOffset
            }
            if moved { state.deleteExpired() }
        }
    }
}
