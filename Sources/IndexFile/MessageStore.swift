#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// The facade the broker uses: puts assign queue offsets and append to the commit log; a dispatcher
/// turns the log into consume queues and the key index; gets read queues back as stored records.
///
/// **Thread:** every method may be called from any thread. **Durability:** as the commit log's flush
/// mode; consume queues and the index are rebuilt from the log after a crash.
public final class MessageStore: @unchecked Sendable {
    public let config: MessageStoreConfig
    public let commitLog: CommitLog
    let state: StoreState
    private var dispatcher: Dispatcher?
    private var services: PeriodicThread?

    /// Opens the store: the commit log recovers first, then consume queues and the index are checked
    /// against it (truncated past its end, rebuilt where missing), and dispatch catches up before this
    /// returns, so queue offsets continue exactly where the log left them.
    public init(config: MessageStoreConfig, log: @escaping @Sendable (String) -> Void = { _ in }) throws(StoreError) {
        self.config = config
        commitLog = try CommitLog(settings: config.commitLog, log: log)
        state = StoreState(config: config, commitLog: commitLog, log: log)
        do {
            let from = try state.recover()
            let dispatcher = Dispatcher(state: state, from: from)
            try dispatcher.catchUp()
            state.rebuildQueueOffsets()
            state.deleteExpired()  // queue min offsets follow the log's retained start again
            dispatcher.start()
            self.dispatcher = dispatcher
            services = StoreServices.start(state: state)
        } catch {
            commitLog.close()
            throw error
        }
    }

    deinit { close() }

    /// Flushes queues and index, records where dispatch stopped, and closes the commit log.
    public func close() {
        guard let dispatcher else { return }
        self.dispatcher = nil
        dispatcher.stop(drainUpTo: commitLog)
        services?.stop()
        services = nil
        commitLog.close()
        state.closeQueues(dispatchedOffset: dispatcher.reputFrom)
    }

    /// Cuts the store back to the last record boundary at or before `offset`: a slave whose log ran
    /// ahead of its (new) master calls this before its HA client connects, then catches up from the
    /// returned end. Dispatch stops, the commit log is cut (`CommitLog.truncate(to:)`), every consume
    /// queue drops the units pointing at or past the end and queue offsets follow; dispatch resumes.
    /// The key index keeps entries past the cut, as RocketMQ's does (a query reads the record at such an
    /// offset and, like a hash collision, callers check the key); new entries go to a fresh index file.
    /// - Returns: the new end of the log (its current end when `offset` is not below it).
    /// - Throws: `StoreError` from the commit log or a consume queue (`.storeClosed` once closed).
    /// - Thread: any, but not concurrently with `close()` or with puts.
    ///   **Durability:** the cut commit log and consume queues are durable on return.
    @discardableResult
    public func truncate(to offset: UInt64) throws(StoreError) -> UInt64 {
        guard let dispatcher else { throw StoreError(.storeClosed, "the store is closed; nothing truncated") }
        dispatcher.stop(drainUpTo: commitLog)
        defer {
            let resumed = Dispatcher(state: state, from: min(dispatcher.reputFrom, commitLog.wroteOffset))
            resumed.start()
            self.dispatcher = resumed
        }
        let end = try commitLog.truncate(to: offset)
        for queue in state.allQueues { try queue.truncate(physicalEnd: Int64(end)) }
        state.rebuildQueueOffsets()
        try state.index.truncate(physicalEnd: Int64(end))
        return end
    }

    /// Sets every queue's next queue offset to its consume queue's end. A DLedger member that starts to lead calls
    /// this once everything committed is dispatched: as a follower its queue units came from dispatch only.
    /// - Thread: any, but not concurrently with puts.
    public func resetQueueOffsetsFromQueues() {
        state.rebuildQueueOffsets()
    }

    /// Installs the durability handler (see `CommitLog.onDurable`).
    public func onDurable(_ handler: @escaping @Sendable (_ token: UInt64, _ status: DurabilityStatus) -> Void) {
        commitLog.onDurable(handler)
    }

    /// Installs the handler called after each batch of durability calls (see `CommitLog.onDurableBatchEnd`).
    public func onDurableBatchEnd(_ handler: @escaping @Sendable () -> Void) {
        commitLog.onDurableBatchEnd(handler)
    }

    /// Called after dispatch adds units to a queue (the broker wakes long-polling pulls): topic, queue id,
    /// the queue's new max offset. Runs on the dispatch thread; install once, before traffic.
    public func onMessageArriving(_ listener: @escaping @Sendable (_ topic: String, _ queueID: Int32, _ maxOffset: Int64) -> Void) {
        state.arriving = listener
    }

    // MARK: Put

    /// Assigns the next queue offset of (topic, queue) and appends, under one lock so queue offsets
    /// follow log order. Under SYNC_FLUSH the handler hears `token` when the record is durable.
    public func put(_ message: MessageView, token: UInt64 = 0) throws(StoreError) -> PutMessageResult {
        let offsets = state.queueOffsets
        let (append, pending) = try commitLog.put(message, token: token) { message in
            message.queueOffset = offsets.take(topic: message.topic, queueID: message.queueID,
                                               count: transactionPrepared(message.sysFlag) ? 0 : 1)
        }
        return PutMessageResult(append: append, queueOffset: append.queueOffset, durabilityPending: pending)
    }

    /// Puts a batch for one (topic, queue): consecutive queue offsets, one append. Under SYNC_FLUSH the
    /// handler hears `token` once the whole batch is durable.
    public func putBatch(_ messages: [MessageView], token: UInt64 = 0) throws(StoreError)
        -> (BatchAppendResult, firstQueueOffset: Int64, durabilityPending: Bool) {
        guard let first = messages.first else { throw StoreError(.messageTooLarge, "empty batch") }
        let offsets = state.queueOffsets
        var start: Int64 = 0
        let (result, pending) = try commitLog.putBatch(messages, token: token) { count in
            start = offsets.take(topic: first.topic, queueID: first.queueID, count: count)
            return start
        }
        return (result, start, pending)
    }

    // MARK: Get

    /// Up to `maxMsgNums` records of (topic, queue) from queue offset `offset` whose tags hash is in
    /// `tagsCodes` (nil: all), as RocketMQ's `getMessage` answers a pull.
    public func get(topic: String, queueID: Int32, offset: Int64, maxMsgNums: Int, tagsCodes: Set<Int32>? = nil) -> GetMessageResult {
        guard let queue = state.queue(topic: topic, queueID: queueID) else {
            return GetMessageResult(status: .noMatchedLogicQueue, records: [], queueOffsets: [], nextBeginOffset: 0, minOffset: 0, maxOffset: 0)
        }
        let minOffset = queue.minOffset
        let maxOffset = queue.maxOffset
        var result = GetMessageResult(status: .noMatchedMessage, records: [], queueOffsets: [], nextBeginOffset: offset,
                                      minOffset: minOffset, maxOffset: maxOffset)
        if maxOffset == 0 {
            result.status = .noMessageInQueue
            result.nextBeginOffset = 0
        } else if offset < minOffset {
            result.status = .offsetTooSmall
            result.nextBeginOffset = minOffset
        } else if offset == maxOffset {
            result.status = .offsetOverflowOne
        } else if offset > maxOffset {
            result.status = .offsetOverflowBadly
            result.nextBeginOffset = minOffset == 0 ? minOffset : maxOffset
        } else {
            read(queue, from: offset, maxMsgNums: maxMsgNums, tagsCodes: tagsCodes, into: &result)
        }
        return result
    }

    private func read(_ queue: ConsumeQueue, from offset: Int64, maxMsgNums: Int, tagsCodes: Set<Int32>?,
                      into result: inout GetMessageResult) {
        let wanted = max(1, min(maxMsgNums, config.maxTransferCountOnMessageInMemory))
        let scanMax = Int64(max(config.maxFilterMessageSize / ConsumeQueueUnit.size, wanted))
        let minPhysical = Int64(commitLog.minOffset)
        var current = offset
        var removed = false
        scan: while current < result.maxOffset && current - offset < scanMax && result.records.count < wanted {
            guard let unit = queue.unit(at: current) else { break }
            if let tagsCodes, !tagsCodes.contains(Int32(truncatingIfNeeded: unit.tagsCode)) {
                current += 1
                continue
            }
            if unit.physicalOffset >= 0 && unit.physicalOffset < minPhysical {
                removed = true
                current += 1
                continue
            }
            // Every unit is checked against the record it points at; a bad one is skipped (RocketMQ
            // moves on past a unit whose record it cannot read), so a corrupt unit never blocks its queue.
            switch queue.check(unit, in: commitLog) {
            case .record(let record):
                let region = record.region
                if !result.records.isEmpty && result.totalBytes + region.bytes.count > config.maxTransferBytesOnMessageInMemory {
                    break scan
                }
                result.records.append(region)
                result.queueOffsets.append(current)
            case .removed:
                removed = true
            case .bad(let flaw):
                state.badUnits.report(topic: queue.topic, queueID: queue.queueID, offset: current, unit: unit, flaw: flaw,
                                      action: "skipped")
            }
            current += 1
        }
        result.nextBeginOffset = current
        result.status = result.records.isEmpty ? (removed ? .messageWasRemoving : .noMatchedMessage) : .found
    }

    // MARK: Queries

    /// The consume-queue unit at `offset` of a queue, as stored (the schedule service reads delivery times);
    /// read its message with `record(topic:queueID:offset:)`, which checks the unit against the log.
    public func unit(topic: String, queueID: Int32, offset: Int64) -> ConsumeQueueUnit? {
        state.queue(topic: topic, queueID: queueID)?.unit(at: offset)
    }

    public func maxOffset(topic: String, queueID: Int32) -> Int64 { state.queue(topic: topic, queueID: queueID)?.maxOffset ?? 0 }
    public func minOffset(topic: String, queueID: Int32) -> Int64 { state.queue(topic: topic, queueID: queueID)?.minOffset ?? 0 }

    /// Store time of the message at `offset` of a queue (nil when its unit is bad or its record gone).
    public func storeTime(topic: String, queueID: Int32, offset: Int64) -> Int64? {
        record(topic: topic, queueID: queueID, offset: offset)?.header.storeTimestamp
    }

    /// The record at queue offset `offset`, checked against its unit (offset, size, topic and queue); nil
    /// when the unit is bad (logged, rate-limited) or the record was deleted.
    public func record(topic: String, queueID: Int32, offset: Int64) -> StoredRecord? {
        guard let queue = state.queue(topic: topic, queueID: queueID), let unit = queue.unit(at: offset) else { return nil }
        switch queue.check(unit, in: commitLog) {
        case .record(let record):
            return record
        case .removed:
            return nil
        case .bad(let flaw):
            state.badUnits.report(topic: topic, queueID: queueID, offset: offset, unit: unit, flaw: flaw, action: "not read")
            return nil
        }
    }

    /// Store time of the oldest message still in the queue (past bad units, looking at 32 at most).
    public func earliestMessageTime(topic: String, queueID: Int32) -> Int64? {
        let first = minOffset(topic: topic, queueID: queueID)
        let end = min(maxOffset(topic: topic, queueID: queueID), first + 32)
        return (first..<max(first, end)).lazy.compactMap { self.storeTime(topic: topic, queueID: queueID, offset: $0) }.first
    }

    /// The first queue offset whose message was stored at or after `timestamp` (the max offset if none).
    public func offset(forTimestamp timestamp: Int64, topic: String, queueID: Int32) -> Int64 {
        var low = minOffset(topic: topic, queueID: queueID)
        var high = maxOffset(topic: topic, queueID: queueID)
        while low < high {
            let middle = low + (high - low) / 2
            if let time = storeTime(topic: topic, queueID: queueID, offset: middle), time < timestamp {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }

    /// The record at a physical offset (VIEW_MESSAGE_BY_ID), validated.
    public func lookMessage(physicalOffset: UInt64) throws(StoreError) -> StoredRecord? {
        if case .record(let record) = try commitLog.readRecord(at: physicalOffset) { return record }
        return nil
    }

    /// Records of `topic` indexed under `key` (UNIQ_KEY or one of KEYS) stored within [begin, end].
    /// Hash collisions can return other keys' messages: callers check the key, as RocketMQ clients do.
    public func queryMessage(topic: String, key: String, maxNum: Int, begin: Int64 = 0, end: Int64 = .max) -> [StoredRecord] {
        let offsets = state.index.query(topic: topic, key: key, maxNum: min(maxNum, config.maxMsgsNumBatch), begin: begin, end: end)
        return offsets.compactMap { offset in
            if offset >= 0, case .record(let record)? = try? commitLog.readRecord(at: UInt64(offset)) { return record }
            return nil
        }
    }

    /// Bytes of the log not yet turned into queue units.
    public var dispatchBehindBytes: UInt64 {
        let dispatched = dispatcher?.reputFrom ?? commitLog.visibleOffset
        return commitLog.visibleOffset &- min(dispatched, commitLog.visibleOffset)
    }

    /// Every (topic, queue) with a consume queue.
    public var queues: [(topic: String, queueID: Int32)] { state.allQueues.map { ($0.topic, $0.queueID) } }

    /// Deletes a topic's consume queues (the log keeps its records until retention).
    public func deleteTopic(_ topic: String) {
        state.deleteTopic(topic)
    }
}

@inline(__always)
func transactionPrepared(_ sysFlag: Int32) -> Bool {
    let type = sysFlag & MessageRecord.transactionTypeMask
    return type == 0x4 || type == 0xC
}
