import CommitLog
import Synchronization

/// Messages in and out per topic right now: in is the sum of the topic's queues' max offsets (every stored
/// message advanced one), out the pull counters.
struct TopicTotals: Sendable {
    var put: [String: Int64] = [:]
    var get: [String: Int64] = [:]
    var nanos = monotonicNanos()

    init(put: [String: Int64] = [:], get: [String: Int64] = [:]) {
        self.put = put
        self.get = get
    }

    init(services: BrokerServices) {
        for (topic, queueID) in services.store.queues {
            put[topic, default: 0] += services.store.maxOffset(topic: topic, queueID: queueID)
        }
        get = services.stats.getByTopic?.totals ?? [:]
    }
}

/// TPS per topic over the last `span` samples (one a second): RocketMQ's `putTps`/`getTransferedTps`, per topic.
final class TPSWindow: Sendable {
    static let span = 10
    private let samples = Mutex<[TopicTotals]>([])

    func sample(_ totals: TopicTotals) {
        samples.withLock { samples in
            samples.append(totals)
            if samples.count > Self.span + 1 { samples.removeFirst(samples.count - Self.span - 1) }
        }
    }

    struct Rates {
        var put: [String: Double] = [:]
        var get: [String: Double] = [:]
        var putAll = 0.0
        var getAll = 0.0
    }

    /// Per-second rates between the oldest and the newest sample (zero until two exist).
    func rates() -> Rates {
        let (first, last) = samples.withLock { ($0.first, $0.last) }
        guard let first, let last, last.nanos > first.nanos else { return Rates() }
        let seconds = Double(last.nanos - first.nanos) / 1e9
        var rates = Rates()
        for (topic, count) in last.put {
            let rate = Double(max(0, count - (first.put[topic] ?? 0))) / seconds
            rates.put[topic] = rate
            rates.putAll += rate
        }
        for (topic, count) in last.get {
            let rate = Double(max(0, count - (first.get[topic] ?? 0))) / seconds
            rates.get[topic] = rate
            rates.getAll += rate
        }
        return rates
    }
}
