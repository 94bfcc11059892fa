import CommitLog
import Common
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Messages stored and delivered, as GET_BROKER_RUNTIME_INFO reports them (RocketMQ's `BrokerStats`): running
/// totals, and their values at this and the previous local midnight, so "today" counts since midnight (or since
/// start, for a broker started today), never since start on a later day.
///
/// **Thread:** any; counting is one relaxed atomic add.
final class BrokerStats: Sendable {
    let putTotal = Atomic<Int64>(0)
    let getTotal = Atomic<Int64>(0)
    /// Put calls (a batch counts once), failed ones, and pulls that found messages or none (RocketMQ's
    /// `putMessageTimesTotal`, `putMessageFailedTimes`, `getMessageTimesTotalFound`/`Miss`).
    let putTimes = Atomic<Int64>(0)
    let putFailedTimes = Atomic<Int64>(0)
    let getFoundTimes = Atomic<Int64>(0)
    let getMissTimes = Atomic<Int64>(0)
    /// Samples of the totals once a second, for the TPS keys.
    let sampler = StoreStatsSampler()
    let bootTimestamp = currentTimeMillis()
    /// Messages pulled per topic (what the metrics export as `rocketmq_messages_out_total`), when metrics are on.
    let getByTopic: TopicCounters?
    /// The send RT and put statuses, when metrics are on (nil: the send path reads no clock).
    let send: SendMetrics?

    private struct Marks {
        var day: Int64
        var putTodayMorning: Int64 = 0
        var putYesterdayMorning: Int64 = 0
        var getTodayMorning: Int64 = 0
        var getYesterdayMorning: Int64 = 0
    }
    private let marks: Mutex<Marks>

    init(send: SendMetrics? = nil) {
        self.send = send
        getByTopic = send == nil ? nil : TopicCounters()
        marks = Mutex(Marks(day: BrokerStats.localDay(currentTimeMillis())))
    }

    func countPut(_ count: Int) {
        putTotal.wrappingAdd(Int64(count), ordering: .relaxed)
        putTimes.wrappingAdd(1, ordering: .relaxed)
    }
    func countPutFailed() { putFailedTimes.wrappingAdd(1, ordering: .relaxed) }
    func countGetCall(found: Bool) {
        if found { getFoundTimes.wrappingAdd(1, ordering: .relaxed) } else { getMissTimes.wrappingAdd(1, ordering: .relaxed) }
    }

    /// Records the totals now (every second, from the broker's timer).
    func sample(now: Int64 = currentTimeMillis()) {
        sampler.record(StoreStatsSampler.Snapshot(
            millis: now, puts: putTimes.load(ordering: .relaxed), found: getFoundTimes.load(ordering: .relaxed),
            missed: getMissTimes.load(ordering: .relaxed), transferred: getTotal.load(ordering: .relaxed)))
    }
    func countGet(_ count: Int, topic: String) {
        getTotal.wrappingAdd(Int64(count), ordering: .relaxed)
        getByTopic?.add(count, topic: topic)
    }

    /// The runtime-info keys: `msgPutTotal{YesterdayMorning,TodayMorning,TodayNow}` and the same for gets.
    func snapshot(now: Int64 = currentTimeMillis()) -> [String: String] {
        let put = putTotal.load(ordering: .relaxed)
        let get = getTotal.load(ordering: .relaxed)
        let marks = rollOver(now: now, put: put, get: get)
        return [
            "msgPutTotalYesterdayMorning": "\(marks.putYesterdayMorning)", "msgPutTotalTodayMorning": "\(marks.putTodayMorning)",
            "msgPutTotalTodayNow": "\(put)", "msgGetTotalYesterdayMorning": "\(marks.getYesterdayMorning)",
            "msgGetTotalTodayMorning": "\(marks.getTodayMorning)", "msgGetTotalTodayNow": "\(get)",
            "bootTimestamp": "\(bootTimestamp)", "runtime": Self.runtime(millis: now - bootTimestamp),
            "putMessageTimesTotal": "\(putTimes.load(ordering: .relaxed))", "putMessageFailedTimes": "\(putFailedTimes.load(ordering: .relaxed))",
        ].merging(sampler.runtimeInfo()) { a, _ in a }
    }

    /// Moves the midnight marks forward when a day has passed since they were taken.
    private func rollOver(now: Int64, put: Int64, get: Int64) -> Marks {
        marks.withLock { marks in
            let today = Self.localDay(now)
            if today > marks.day {
                marks.putYesterdayMorning = today == marks.day + 1 ? marks.putTodayMorning : put
                marks.getYesterdayMorning = today == marks.day + 1 ? marks.getTodayMorning : get
                marks.putTodayMorning = put
                marks.getTodayMorning = get
                marks.day = today
            }
            return marks
        }
    }

    /// Days since the epoch in local time.
    static func localDay(_ millis: Int64) -> Int64 {
        var seconds = time_t(millis / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return (millis / 1000 + Int64(parts.tm_gmtoff)) / 86_400
    }

    /// RocketMQ's `[ d days, h hours, m minutes, s seconds ]`.
    static func runtime(millis: Int64) -> String {
        let seconds = max(0, millis / 1000)
        return "[ \(seconds / 86_400) days, \(seconds / 3600 % 24) hours, \(seconds / 60 % 60) minutes, \(seconds % 60) seconds ]"
    }
}
