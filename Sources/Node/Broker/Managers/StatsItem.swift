import CommitLog
import Common
import Synchronization

/// One statistic of one key (RocketMQ's `StatsItem`): a running amount and the number of additions, sampled into
/// three windows — the last minute, hour and day. Adding is two relaxed atomic adds; sampling and reading take the
/// item's lock, off the message path.
///
/// Every window starts with a zero sample at the item's creation, so a window's sum counts everything added since
/// then (a new topic's first messages included); every window ends at the newest sample, so a day's sum is as
/// fresh as the minute's (RocketMQ ends each window at its own, up to an hour old, last sample).
///
/// **Thread:** any.
final class StatsItem: Sendable {
    let amount = Atomic<Int64>(0)
    let times = Atomic<Int64>(0)
    private let windows: Mutex<StatsWindows>

    init(now: Int64 = currentTimeMillis()) { windows = Mutex(StatsWindows(now: now)) }

    @inline(__always)
    func add(_ value: Int64) {
        amount.wrappingAdd(value, ordering: .relaxed)
        times.wrappingAdd(1, ordering: .relaxed)
    }

    /// Takes a sample now (the sampler calls this every `StatsWindows.minuteStepMillis`).
    func sample(now: Int64 = currentTimeMillis()) {
        let taken = StatsSample(millis: now, amount: amount.load(ordering: .relaxed), times: times.load(ordering: .relaxed))
        windows.withLock { $0.add(taken) }
    }

    /// The three windows, as VIEW_BROKER_STATS_DATA answers them.
    var data: BrokerStatsData { windows.withLock { $0.data } }
}

struct StatsSample {
    var millis: Int64
    var amount: Int64
    var times: Int64
}

/// A statistic's samples: every step for the minute, every 5 minutes for the hour, every hour for the day
/// (RocketMQ's 10 s / 10 min / 1 h lists of 7, 7 and 25 samples).
struct StatsWindows {
    static let minuteStepMillis: Int64 = 5_000
    static let hourStepMillis: Int64 = 300_000
    static let dayStepMillis: Int64 = 3_600_000

    /// Samples of one window, oldest first: at most `count`, at least `step` apart (the newest sample is kept
    /// apart, in `latest`).
    struct Window {
        let step: Int64
        let count: Int
        var samples: [StatsSample]

        mutating func add(_ sample: StatsSample) {
            // A tenth of a step early still counts: the sampler's period jitters.
            if let last = samples.last, sample.millis - last.millis < step - step / 10 { return }
            if samples.count == count { samples.removeFirst() }
            samples.append(sample)
        }

        /// From the oldest sample to `latest`: the sum, per second, and per addition.
        func item(to latest: StatsSample) -> BrokerStatsItem {
            guard let first = samples.first, latest.millis > first.millis else { return BrokerStatsItem() }
            let sum = latest.amount &- first.amount
            let times = latest.times &- first.times
            return BrokerStatsItem(sum: sum, tps: Double(sum) * 1000 / Double(latest.millis - first.millis),
                                   avgpt: times > 0 ? Double(sum) / Double(times) : 0)
        }
    }

    var minute: Window
    var hour: Window
    var day: Window
    var latest: StatsSample

    init(now: Int64) {
        let zero = StatsSample(millis: now, amount: 0, times: 0)
        minute = Window(step: Self.minuteStepMillis, count: Int(60_000 / Self.minuteStepMillis) + 1, samples: [zero])
        hour = Window(step: Self.hourStepMillis, count: Int(3_600_000 / Self.hourStepMillis) + 1, samples: [zero])
        day = Window(step: Self.dayStepMillis, count: 25, samples: [zero])
        latest = zero
    }

    mutating func add(_ sample: StatsSample) {
        guard sample.millis >= latest.millis else { return }  // the clock went back: keep the windows ordered
        minute.add(sample)
        hour.add(sample)
        day.add(sample)
        latest = sample
    }

    var data: BrokerStatsData {
        BrokerStatsData(statsMinute: minute.item(to: latest), statsHour: hour.item(to: latest), statsDay: day.item(to: latest))
    }
}
