import CommitLog
import Synchronization

/// RocketMQ's `StoreStatsService` sampling: once a second the broker's running totals are recorded, and
/// GET_BROKER_RUNTIME_INFO reports rates over the last 10, 60 and 600 seconds (`putTps`, `getFoundTps`,
/// `getMissTps`, `getTotalTps`, `getTransferedTps`), each window empty until that many seconds were sampled, exactly
/// as RocketMQ prints them (`"12.5 11.0 "` a minute after start).
///
/// **Thread:** any. The ring is preallocated (`samplesMax` entries); sampling allocates nothing.
final class StoreStatsSampler: Sendable {
    /// One sample: when, and the totals then.
    struct Snapshot: Sendable {
        var millis: Int64 = 0
        /// put calls (a batch is one), get calls that found messages, that found none, messages handed out.
        var puts: Int64 = 0
        var found: Int64 = 0
        var missed: Int64 = 0
        var transferred: Int64 = 0
    }
    static let windows = [10, 60, 600]
    /// RocketMQ keeps 601 samples (ten minutes and the one before).
    static let samplesMax = 602
    private struct Ring {
        var samples = [Snapshot](repeating: Snapshot(), count: StoreStatsSampler.samplesMax)
        var count = 0
        var next = 0
        /// The sample `back` places before the newest (0: the newest).
        func sample(back: Int) -> Snapshot { samples[(next - 1 - back + 2 * samples.count) % samples.count] }
    }
    private let ring = Mutex(Ring())

    init() {}

    func record(_ snapshot: Snapshot) {
        ring.withLock { ring in
            ring.samples[ring.next] = snapshot
            ring.next = (ring.next + 1) % ring.samples.count
            ring.count = min(ring.count + 1, ring.samples.count)
        }
    }

    /// The runtime-info keys, from the samples taken so far.
    func runtimeInfo() -> [String: String] {
        ring.withLock { ring in
            func tps(_ value: (Snapshot) -> Int64) -> String {
                Self.windows.map { window -> String in
                    guard ring.count > window else { return "" }
                    let (last, first) = (ring.sample(back: 0), ring.sample(back: window))
                    guard last.millis > first.millis else { return "" }
                    return javaDouble(Double(value(last) - value(first)) / Double(last.millis - first.millis) * 1000)
                }.joined(separator: " ")
            }
            return ["putTps": tps(\.puts), "getFoundTps": tps(\.found), "getMissTps": tps(\.missed),
                    "getTotalTps": tps { $0.found + $0.missed }, "getTransferedTps": tps(\.transferred)]
        }
    }
}

/// Java's `Double.toString` for the values these tables hold: at least one decimal (`0.0`, `12.5`), else Swift's
/// shortest round-trip digits, which Java's match for plain magnitudes.
func javaDouble(_ value: Double) -> String {
    if value.isFinite, value == value.rounded(), abs(value) < 1e7 { return "\(Int64(value)).0" }
    return "\(value)"
}
