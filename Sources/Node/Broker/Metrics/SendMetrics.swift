import CommitLog
import Metrics
import Replication
import Synchronization

/// What the message path records when metrics are on, through swift-metrics handles created once at start:
/// the send RT (a Prometheus histogram behind a `Timer`) and one counter per put status. Per send this is a
/// clock read, a histogram update under its lock and a relaxed atomic add; nothing is allocated.
final class SendMetrics: Sendable {
    let rt: CoreMetrics.Timer
    /// One counter per `PutMessageStatus`, in `statusIndex` order.
    let statuses: [CoreMetrics.Counter]

    init(factory: any MetricsFactory) {
        rt = CoreMetrics.Timer(label: "rocketmq_send_rt_seconds", dimensions: [], factory: factory)
        statuses = PutMessageStatus.allCases.map {
            CoreMetrics.Counter(label: "rocketmq_put_status_total", dimensions: [("status", $0.rawValue)], factory: factory)
        }
    }

    /// One send of `count` messages (a batch is one send) answered with `status`, `startedNanos` after it arrived
    /// (from `monotonicNanos()`): one RT sample, `count` puts of that status.
    @inline(__always)
    func record(_ status: PutMessageStatus, count: Int = 1, startedNanos: UInt64) {
        rt.recordNanoseconds(Int64(clamping: monotonicNanos() &- startedNanos))
        statuses[Self.statusIndex(status)].increment(by: Int64(count))
    }

    /// The index of `status` in `PutMessageStatus.allCases` without building that array.
    static func statusIndex(_ status: PutMessageStatus) -> Int {
        switch status {
        case .putOK: 0
        case .flushDiskTimeout: 1
        case .flushSlaveTimeout: 2
        case .slaveNotAvailable: 3
        case .inSyncReplicasNotEnough: 4
        case .serviceNotAvailable: 5
        case .messageIllegal: 6
        case .createMappedFileFailed: 7
        case .unknownError: 8
        }
    }
}

/// Messages pulled per topic. Per successful pull (not per message): one dictionary look-up under a short
/// lock and a relaxed add; a topic's counter is allocated once, the first time it is pulled.
final class TopicCounters: Sendable {
    final class Counter: Sendable {
        let value = Atomic<Int64>(0)
    }
    private let table = Mutex<[String: Counter]>([:])

    func add(_ count: Int, topic: String) {
        let counter = table.withLock { table in
            if let found = table[topic] { return found }
            let created = Counter()
            table[topic] = created
            return created
        }
        counter.value.wrappingAdd(Int64(count), ordering: .relaxed)
    }

    /// Every topic's total so far.
    var totals: [String: Int64] {
        table.withLock { $0.mapValues { $0.value.load(ordering: .relaxed) } }
    }
}
