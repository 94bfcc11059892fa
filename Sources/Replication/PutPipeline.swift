import CommitLog
import IndexFile
import NIOCore
import Synchronization

/// A put that the store took: the store's result, and whether the answer waits.
public enum PutOutcome<Stored: Sendable>: Sendable {
    /// The message is not stored.
    case failed(PutFailure)
    /// Stored; the status is final now (ASYNC_FLUSH on an ASYNC_MASTER answers here, allocating nothing).
    case done(Stored, PutMessageStatus)
    /// Stored; the status arrives when the flush (SYNC_FLUSH) and the slave (SYNC_MASTER) confirm.
    case pending(Stored, EventLoopFuture<PutMessageStatus>)
    /// Stored; as `pending`, but the status goes to the put's `PutAnswerQueue` with its slot.
    case queued(Stored)
}

/// Where a waiting put's status goes: a promise made on an event loop, or a slot of an answer queue (no
/// allocation per put; see `PutAnswerQueue`).
public enum PutAnswerRoute: Sendable {
    case promise(on: EventLoop)
    case queue(PutAnswerQueue, slot: UInt32)
}

/// The one door into the store. Every message a broker stores goes through here (sends, batches, retries sent
/// back, dead letters, delayed messages coming due): the pipeline appends, then waits for what the modes
/// promise (the flush under SYNC_FLUSH, a slave under SYNC_MASTER, both at once as promises) and answers with
/// one `PutMessageStatus`.
///
/// **Thread:** any. **Durability:** a `.done(_, .putOK)` or a pending status of `.putOK` means the flush mode's
/// and the role's promises hold; the other "stored" statuses mean the message is in the log but a promise did
/// not hold in time.
public final class PutPipeline: Sendable {
    public let store: MessageStore
    public let role: BrokerRole
    public let flushDiskType: FlushDiskType
    private let replicas: ReplicaAcknowledging?
    /// DLedger mode: the Raft group a put's entry must commit in (then `role` says nothing; the member's role moves).
    public let dledger: DLedgerServer?
    private let waits = Mutex<[UInt64: PendingPut]>([:])
    private let nextToken = Atomic<UInt64>(1)
    /// The answer queues made by `makeAnswerQueue`, by index (one per event loop that answers waiting sends).
    let answerQueues = Mutex<ContiguousArray<PutAnswerQueue>>([])

    /// One put waiting: where its answer goes, how many confirmations are still due, and the worst status so far.
    struct PendingPut {
        var waiter: Waiter
        var outstanding: Int
        var status: PutMessageStatus

        /// Answers the put. `deferred` (a group commit's confirmation): a pipeline's queue waits for the commit's
        /// `publishAnswerQueues`, so the commit's answers reach each event loop in one hop.
        func finish(deferred: Bool) {
            switch waiter {
            case .promise(let promise): promise.succeed(status)
            case .queue(let queue, let slot):
                if deferred && queue.index != nil {
                    _ = queue.completeDeferred(slot: slot, status: status)
                } else {
                    queue.complete(slot: slot, status: status)
                }
            }
        }
    }

    enum Waiter {
        case promise(EventLoopPromise<PutMessageStatus>)
        case queue(PutAnswerQueue, UInt32)
    }

    /// - Parameters:
    ///   - replicas: the HA service on a SYNC_MASTER (nil otherwise; a SYNC_MASTER without one answers
    ///     SLAVE_NOT_AVAILABLE).
    public init(store: MessageStore, role: BrokerRole, replicas: ReplicaAcknowledging? = nil) {
        self.store = store
        self.role = role
        self.flushDiskType = store.config.commitLog.flushDiskType
        self.replicas = replicas
        dledger = nil
        store.onDurable { [weak self] token, status in
            self?.confirm(token, status == .putOK ? .putOK : .flushDiskTimeout, deferred: true)
        }
        store.onDurableBatchEnd { [weak self] in self?.publishAnswerQueues() }
        replicas?.onReplicated { [weak self] token, status in
            self?.confirm(token, status == .replicated ? .putOK : .flushSlaveTimeout)
        }
    }

    /// DLedger mode: a put is answered when its entry commits in `dledger`'s group (PUT_OK), or when the wait
    /// ends without it (IN_SYNC_REPLICAS_NOT_ENOUGH); a member that does not lead refuses puts. The commit log
    /// must flush asynchronously: the Raft log carries the durability.
    public init(store: MessageStore, dledger: DLedgerServer) {
        precondition(store.config.commitLog.flushDiskType == .asyncFlush, "DLedger mode: the commit log flushes asynchronously")
        self.store = store
        self.role = .syncMaster
        self.flushDiskType = .asyncFlush
        self.replicas = nil
        self.dledger = dledger
        dledger.onCommitted { [weak self] token, status in self?.confirm(token, status) }
    }

    /// Whether a put's answer can wait for anything (SYNC_FLUSH, SYNC_MASTER or a DLedger commit).
    public var answersWait: Bool { flushDiskType == .syncFlush || role == .syncMaster }

    /// Puts one message.
    /// - Parameters:
    ///   - eventLoop: where a waiting answer completes; nil puts without waiting (the schedule service).
    public func put(_ message: MessageView, on eventLoop: EventLoop?) -> PutOutcome<PutMessageResult> {
        put(message, answering: eventLoop.map { .promise(on: $0) })
    }

    /// Puts one message; a waiting answer goes where `route` says (nil: puts without waiting).
    public func put(_ message: MessageView, answering route: PutAnswerRoute?) -> PutOutcome<PutMessageResult> {
        if let refusal = refusal() { return .failed(refusal) }
        guard answersWait, let route else {
            do { return .done(try store.put(message), .putOK) } catch { return .failed(PutFailure(error)) }
        }
        let (token, future) = register(route)
        let result: PutMessageResult
        do { result = try store.put(message, token: token) } catch {
            forget(token)
            return .failed(PutFailure(error))
        }
        return settle(result, token: token, future: future, nextOffset: result.append.nextOffset,
                      flushPending: result.durabilityPending)
    }

    /// Puts a batch for one (topic, queue): consecutive queue offsets, one append, one answer.
    public func putBatch(_ messages: [MessageView], on eventLoop: EventLoop?)
        -> PutOutcome<(BatchAppendResult, firstQueueOffset: Int64)> {
        putBatch(messages, answering: eventLoop.map { .promise(on: $0) })
    }

    /// `putBatch(_:on:)` with the waiting answer going where `route` says.
    public func putBatch(_ messages: [MessageView], answering route: PutAnswerRoute?)
        -> PutOutcome<(BatchAppendResult, firstQueueOffset: Int64)> {
        if let refusal = refusal() { return .failed(refusal) }
        guard answersWait, let route else {
            do {
                let (result, first, _) = try store.putBatch(messages)
                return .done((result, first), .putOK)
            } catch { return .failed(PutFailure(error)) }
        }
        let (token, future) = register(route)
        let stored: (BatchAppendResult, Int64, Bool)
        do { stored = try store.putBatch(messages, token: token) } catch {
            forget(token)
            return .failed(PutFailure(error))
        }
        return settle((stored.0, stored.1), token: token, future: future, nextOffset: stored.0.nextOffset, flushPending: stored.2)
    }

    /// A slave takes no puts from clients (RocketMQ: "message store is slave mode, so putMessage is forbidden").
    private func refusal() -> PutFailure? {
        if let dledger {
            return dledger.isWritableNow ? nil : PutFailure(.serviceNotAvailable, "the broker is a DLedger follower: putMessage is forbidden")
        }
        guard role == .slave else { return nil }
        return PutFailure(.serviceNotAvailable, "the broker is a slave: putMessage is forbidden")
    }

    /// A token whose confirmations answer where `route` says (the future: for a promise). Every confirmation
    /// that may come is counted before the append, so an early one (the flush beating `settle`) cannot finish
    /// the put too soon.
    private func register(_ route: PutAnswerRoute) -> (UInt64, EventLoopFuture<PutMessageStatus>?) {
        let expected = dledger != nil ? 1 : (flushDiskType == .syncFlush ? 1 : 0) + (role == .syncMaster ? 1 : 0)
        if case .queue(let queue, let slot) = route, let index = queue.index, expected == 1, dledger == nil {
            return (Self.directToken(queue: index, slot: slot), nil)
        }
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        let waiter: Waiter, future: EventLoopFuture<PutMessageStatus>?
        switch route {
        case .promise(let eventLoop):
            let promise = eventLoop.makePromise(of: PutMessageStatus.self)
            (waiter, future) = (.promise(promise), promise.futureResult)
        case .queue(let queue, let slot):
            (waiter, future) = (.queue(queue, slot), nil)
        }
        waits.withLock { $0[token] = PendingPut(waiter: waiter, outstanding: expected, status: .putOK) }
        return (token, future)
    }

    /// After the append: takes back the confirmations that will not come and answers now when none are due.
    private func settle<Stored>(_ stored: Stored, token: UInt64, future: EventLoopFuture<PutMessageStatus>?, nextOffset: UInt64,
                                flushPending: Bool) -> PutOutcome<Stored> {
        var skipped = flushDiskType == .syncFlush && !flushPending ? 1 : 0
        var status = PutMessageStatus.putOK
        if role == .syncMaster && dledger == nil {
            switch replicas?.awaitReplica(upTo: nextOffset, token: token) ?? .slaveNotAvailable {
            case .done: skipped += 1
            case .pending: store.commitLog.commitPromptly(upTo: nextOffset)  // the slave is sent written bytes only
            case .slaveNotAvailable:
                skipped += 1
                status = .slaveNotAvailable
            case .waitersFull:
                // Stored, but too many puts already wait for a slave: the promise cannot be kept in time.
                skipped += 1
                status = .flushSlaveTimeout
            }
        }
        if Self.isDirect(token) {
            // The one confirmation either comes (to the queue, maybe already) or was skipped: then answer now.
            return skipped > 0 ? .done(stored, status) : .queued(stored)
        }
        let finished: PendingPut? = waits.withLock { table in
            // Confirmations that came before now already counted down; the last one to arrive answers.
            guard var pending = table[token] else { return nil }
            pending.outstanding -= skipped
            pending.status = Self.worse(pending.status, status)
            guard pending.outstanding <= 0 else {
                table[token] = pending
                return nil
            }
            table[token] = nil
            return pending
        }
        if let finished {
            if case .promise(let promise) = finished.waiter { promise.succeed(finished.status) }  // nobody listens yet
            return .done(stored, finished.status)
        }
        guard let future else { return .queued(stored) }
        return .pending(stored, future)
    }

    /// One confirmation arrived (flush or replica); the answer goes out with the last one. `deferred`: a group
    /// commit's, published with the commit's others (`publishAnswerQueues`).
    private func confirm(_ token: UInt64, _ status: PutMessageStatus, deferred: Bool = false) {
        if Self.isDirect(token) {
            let queue = answerQueues.withLock { $0[Int(token >> 32 & 0x7FFF_FFFF)] }
            let slot = UInt32(truncatingIfNeeded: token)
            if deferred {
                _ = queue.completeDeferred(slot: slot, status: status)
            } else {
                queue.complete(slot: slot, status: status)
            }
            return
        }
        let finished: PendingPut? = waits.withLock { table in
            guard var pending = table[token] else { return nil }
            pending.outstanding -= 1
            pending.status = Self.worse(pending.status, status)
            guard pending.outstanding <= 0 else {
                table[token] = pending
                return nil
            }
            table[token] = nil
            return pending
        }
        finished?.finish(deferred: deferred)
    }

    private func forget(_ token: UInt64) {
        if Self.isDirect(token) { return }  // no entry; the queue's slot is its owner's to free
        let pending = waits.withLock { $0.removeValue(forKey: token) }
        // Nobody listens: the put failed before anyone could (a queue's slot is its owner's to free).
        if case .promise(let promise)? = pending?.waiter { promise.succeed(.unknownError) }
    }

    /// The answer when two confirmations disagree: a missed flush outranks a missed slave (RocketMQ checks the
    /// flush first), and any miss outranks PUT_OK.
    static func worse(_ a: PutMessageStatus, _ b: PutMessageStatus) -> PutMessageStatus {
        rank(a) >= rank(b) ? a : b
    }

    /// The order of `worse` (a switch: a put must not build an array to compare two statuses).
    private static func rank(_ status: PutMessageStatus) -> Int {
        switch status {
        case .slaveNotAvailable: 1
        case .flushSlaveTimeout: 2
        case .flushDiskTimeout: 3
        case .inSyncReplicasNotEnough: 4
        default: 0
        }
    }
}

extension PutPipeline {
    /// An answer queue for puts answered on `eventLoop` (see `PutAnswerQueue`), numbered in this pipeline: a put
    /// routed to it that waits for one confirmation only carries its queue and slot in its token (no entry in the
    /// pipeline's table, no lock on the event loop), and a group commit hands the answers it made durable to
    /// each queue once.
    /// - Parameters:
    ///   - deliver: runs on `eventLoop` with each batch of answers (one call per batch).
    public func makeAnswerQueue(eventLoop: EventLoop, capacity: Int,
                                deliver: @escaping (UnsafeBufferPointer<PutAnswerQueue.Answer>) -> Void) -> PutAnswerQueue {
        answerQueues.withLock { queues in
            precondition(queues.count < 1 << 31, "answer queues are numbered in 31 bits")
            let queue = PutAnswerQueue(eventLoop: eventLoop, index: UInt32(queues.count), capacity: capacity, deliver: deliver)
            queues.append(queue)
            return queue
        }
    }

    /// After a group commit confirmed its puts (`MessageStore.onDurableBatchEnd`): schedules each queue's delivery.
    func publishAnswerQueues() {
        let queues = answerQueues.withLock { $0 }
        for queue in queues { queue.publish() }
    }

    /// A token naming an answer queue and a slot: bit 63 set, the queue's index in bits 32..<63, the slot below.
    /// Counted tokens (`nextToken`) never reach bit 63.
    static func directToken(queue index: UInt32, slot: UInt32) -> UInt64 {
        directFlag | UInt64(index) << 32 | UInt64(slot)
    }

    static func isDirect(_ token: UInt64) -> Bool { token & directFlag != 0 }

    static let directFlag: UInt64 = 1 << 63
}
