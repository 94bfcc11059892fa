import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting
import Replication
import Synchronization

/// Transactional messages (RocketMQ 4.x's `TransactionalMessageServiceImpl` with its bridge and check service).
///
/// A half message waits in `RMQ_SYS_TRANS_HALF_TOPIC` queue 0 with its destination in REAL_TOPIC/REAL_QID,
/// invisible to consumers. END_TRANSACTION commits it (a copy with the COMMIT sysFlag is put to its real topic
/// and queue) or rolls it back; either decision is recorded as an op message in `RMQ_SYS_TRANS_OP_HALF_TOPIC`
/// (same queue id, tag `d`, body the half message's queue offset in decimal). The check service scans the half
/// queue every `transactionCheckInterval` from its saved progress, skips what has an op, asks a live producer
/// of the group about every half message older than `transactionTimeOut` (or its CHECK_IMMUNITY_TIME_IN_SECONDS)
/// after putting it back with TRANSACTION_CHECK_TIMES + 1, and moves those asked `transactionCheckMax` times to
/// `TRANS_CHECK_MAX_TIME_TOPIC`. Progress is kept as group `CID_RMQ_SYS_TRANS`'s consumer offsets of both topics,
/// so it survives restarts with `consumerOffset.json`.
///
/// A commit is done at most once per transaction: a decision already recorded for the half offset is not
/// repeated, and before a commit the real topic is searched by the message's UNIQ_KEY (the key index, plus the
/// keys committed recently in memory) for a COMMIT copy, so a put-back copy or an END_TRANSACTION arriving
/// again after a restart never commits a second time.
///
/// **Thread:** any; decisions and check rounds are serialised by one lock (every put under it is one append).
final class TransactionalMessageService: Sendable {
    static let consumerGroup = "CID_RMQ_SYS_TRANS"
    static let removeTag = "d"
    static let halfQueueID: Int32 = 0
    /// How many committed keys are remembered in memory besides the key index.
    static let recentCommitsMax = 16_384

    let pipeline: PutPipeline
    var store: MessageStore { pipeline.store }
    let settings: TransactionSettings
    let offsets: ConsumerOffsetManager
    let producers: ProducerManager
    let storeHost: HostAddress
    /// Creates a broker-made topic unless it exists (and re-registers with the NameServers).
    let createTopic: @Sendable (String, Int) -> Void
    let log: @Sendable (String) -> Void

    struct State {
        /// The next half queue offset the check service looks at.
        var halfProgress: Int64
        /// Every op below this refers to a half offset below `halfProgress`.
        var opProgress: Int64
        /// Ops below this were read into `decided`.
        var opScanned: Int64
        /// Half offsets at or above `halfProgress` that have a decision.
        var decided: Set<Int64> = []
        var recentCommits = RecentKeys(capacity: TransactionalMessageService.recentCommitsMax)
    }
    let state: Mutex<State>
    private let checker = Mutex<PeriodicThread?>(nil)

    init(pipeline: PutPipeline, settings: TransactionSettings, offsets: ConsumerOffsetManager, producers: ProducerManager,
         storeHost: HostAddress, createTopic: @escaping @Sendable (String, Int) -> Void, log: @escaping @Sendable (String) -> Void) {
        self.pipeline = pipeline
        self.settings = settings
        self.offsets = offsets
        self.producers = producers
        self.storeHost = storeHost
        self.createTopic = createTopic
        self.log = log
        let group = Self.consumerGroup
        let half = offsets.committed(group: group, topic: TopicValidator.transactionHalfTopic, queueID: Self.halfQueueID)
            ?? pipeline.store.minOffset(topic: TopicValidator.transactionHalfTopic, queueID: Self.halfQueueID)
        let op = offsets.committed(group: group, topic: TopicValidator.transactionOpHalfTopic, queueID: Self.halfQueueID)
            ?? pipeline.store.minOffset(topic: TopicValidator.transactionOpHalfTopic, queueID: Self.halfQueueID)
        state = Mutex(State(halfProgress: half, opProgress: op, opScanned: op))
    }

    /// Starts the check service (a master's job; it does nothing while the broker takes no writes).
    func start() {
        checker.withLock { checker in
            guard checker == nil else { return }
            let interval = UInt64(settings.transactionCheckIntervalMillis) * 1_000_000
            checker = PeriodicThread(name: "transaction-check", intervalNanos: interval) { [self] in checkRound() }
        }
    }

    func stop() {
        checker.withLock { checker in
            defer { checker = nil }
            return checker
        }?.stop()
    }

    /// Whether puts are taken now (a master, or the DLedger member that leads).
    var isWritable: Bool { pipeline.dledger?.isWritableNow ?? (pipeline.role != .slave) }

    // MARK: Decisions

    /// What END_TRANSACTION's caller hears: a response code and remark.
    struct EndAnswer: Error, Equatable {
        var code: Int32
        var remark: String?
    }

    /// Commits or rolls back the half message at `commitLogOffset` (queue offset `halfOffset`) of `group`.
    /// A half offset already decided is answered SUCCESS without acting again.
    func end(commitLogOffset: Int64, halfOffset: Int64, group: String, commit: Bool, fromCheck: Bool) -> EndAnswer {
        let half: StoredRecord
        switch findHalf(commitLogOffset: commitLogOffset, halfOffset: halfOffset, group: group) {
        case .failure(let refusal): return refusal
        case .success(let found): half = found
        }
        let properties = MessageProperties(bytes: half.properties)
        return state.withLock { state in
            loadOps(&state)
            if state.decided.contains(halfOffset) {
                log("transaction: half message \(halfOffset) was already decided; \(commit ? "COMMIT" : "ROLLBACK") ignored")
                return EndAnswer(code: ResponseCode.success, remark: "already decided")
            }
            if commit, let failure = commitOnce(half, properties: properties, state: &state) {
                return EndAnswer(code: ResponseCode.of(failure.status), remark: failure.message)
            }
            recordDecision(half, properties: properties, state: &state)
            return EndAnswer(code: ResponseCode.success, remark: nil)
        }
    }

    /// The half message END_TRANSACTION names, checked as RocketMQ's `checkPrepareMessage` does.
    private func findHalf(commitLogOffset: Int64, halfOffset: Int64, group: String) -> Result<StoredRecord, EndAnswer> {
        let record: StoredRecord?
        do { record = commitLogOffset < 0 ? nil : try store.lookMessage(physicalOffset: UInt64(commitLogOffset)) } catch {
            return .failure(EndAnswer(code: ResponseCode.systemError, remark: "Find prepared transaction message failed: \(error)"))
        }
        guard let record, record.topicString == TopicValidator.transactionHalfTopic else {
            return .failure(EndAnswer(code: ResponseCode.systemError,
                                      remark: "Find prepared transaction message failed: no half message at commitLogOffset \(commitLogOffset)"))
        }
        guard record.header.queueOffset == halfOffset else {
            return .failure(EndAnswer(code: ResponseCode.systemError,
                                      remark: "The prepare message's queue offset is \(record.header.queueOffset), not tranStateTableOffset \(halfOffset)"))
        }
        let owner = MessageProperties.value(of: "PGROUP", in: record.properties).map { String(decoding: $0, as: UTF8.self) }
        guard owner == group else {
            return .failure(EndAnswer(code: ResponseCode.systemError,
                                      remark: "The producer group wrong: the half message belongs to \(owner ?? "no group"), not \(group)"))
        }
        return .success(record)
    }

    /// Puts the committed copy unless the transaction was committed already; the failure when the store refused it.
    func commitOnce(_ half: StoredRecord, properties: MessageProperties, state: inout State) -> PutFailure? {
        let key = properties[MessageConst.uniqueClientMessageIDKeyIndex]
        if let key, committedAlready(key: key, properties: properties, state: state) {
            log("transaction: \(key) is committed already; not committed again")
            return nil
        }
        if let failure = putCommitted(half, properties: properties) { return failure }
        if let key { state.recentCommits.insert(key) }
        return nil
    }

    /// Whether a COMMIT copy of transaction `key` is in its real topic (in memory, or found through the key index).
    func committedAlready(key: String, properties: MessageProperties, state: State) -> Bool {
        if state.recentCommits.contains(key) { return true }
        guard let realTopic = properties[MessageConst.realTopic] else { return false }
        return store.queryMessage(topic: realTopic, key: key, maxNum: 64).contains { record in
            MessageSysFlag(rawValue: record.header.sysFlag).transactionType == .transactionCommit
                && MessageProperties.value(of: "UNIQ_KEY", in: record.properties).map { $0.elementsEqual(key.utf8) } == true
        }
    }

    /// Writes the op message that marks `half` decided and remembers it.
    func recordDecision(_ half: StoredRecord, properties: MessageProperties, state: inout State) {
        if let failure = putOp(half, key: properties[MessageConst.uniqueClientMessageIDKeyIndex]) {
            log("transaction: cannot record the decision on half message \(half.header.queueOffset): \(failure); it is checked again later")
            return
        }
        if half.header.queueOffset >= state.halfProgress { state.decided.insert(half.header.queueOffset) }
    }

    /// Reads the op messages stored since the last look into `decided`.
    func loadOps(_ state: inout State) {
        let end = store.maxOffset(topic: TopicValidator.transactionOpHalfTopic, queueID: Self.halfQueueID)
        state.opScanned = max(state.opScanned, store.minOffset(topic: TopicValidator.transactionOpHalfTopic, queueID: Self.halfQueueID))
        while state.opScanned < end {
            if let offset = opHalfOffset(at: state.opScanned), offset >= state.halfProgress { state.decided.insert(offset) }
            state.opScanned += 1
        }
    }

    /// The half queue offset an op message names; nil for a missing or malformed op.
    func opHalfOffset(at offset: Int64) -> Int64? {
        guard let record = store.record(topic: TopicValidator.transactionOpHalfTopic, queueID: Self.halfQueueID, offset: offset) else {
            return nil
        }
        guard let value = Int64(String(decoding: record.body, as: UTF8.self)) else {
            log("transaction: op message \(offset) has no half offset in its body; ignored")
            return nil
        }
        return value
    }
}

/// A bounded set of recent keys: the oldest is forgotten when a new one does not fit.
struct RecentKeys {
    private var order: [String] = []
    private var members: Set<String> = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0, "RecentKeys needs room for one key")
        self.capacity = capacity
    }

    func contains(_ key: String) -> Bool { members.contains(key) }

    mutating func insert(_ key: String) {
        guard !members.contains(key) else { return }
        if order.count < capacity {
            order.append(key)
        } else {
            members.remove(order[next])
            order[next] = key
            next = (next + 1) % capacity
        }
        members.insert(key)
    }
}
