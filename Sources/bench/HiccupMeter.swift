#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Histogram
import Synchronization

/// What the machine itself added to a sleeping thread's wake-ups during a run (jHiccup's idea): a thread that
/// does nothing but sleep `periodNanos` and note how late it woke. Other processes, a kernel that does not
/// preempt its own work, a hypervisor taking the CPU away: any thread of the bench or the broker waits the same,
/// so a send RT percentile near these figures is the machine's floor, not the send path's.
struct HiccupStats: Sendable {
    /// Microseconds late, per wake-up.
    var late = makeRTHistogram()

    func lateMicros(_ percentile: Double) -> UInt64 { ProducerResult.micros(late, percentile) }
    var maxMicros: UInt64 { late.totalCount == 0 ? 0 : late.max }
    /// Wake-ups more than `micros` late.
    func count(over micros: UInt64) -> UInt64 { late.count(within: (micros + 1)...rtMicrosMax) }

    var jsonMembers: String {
        ",\"hiccup_p99_us\":\(lateMicros(99)),\"hiccup_p999_us\":\(lateMicros(99.9)),\"hiccup_max_us\":\(maxMicros),"
            + "\"hiccups_over_1ms\":\(count(over: 1_000)),\"hiccup_wakeups\":\(late.totalCount)"
    }

    var summary: String {
        "Machine hiccups (a thread sleeping \(HiccupMeter.periodNanos / 1_000_000) ms at a time, how late it woke, ms): "
            + "p99 \(ms(lateMicros(99)))  p99.9 \(ms(lateMicros(99.9)))  max \(ms(maxMicros)); "
            + "\(count(over: 1_000)) of \(late.totalCount) wake-ups > 1 ms late"
    }

    private func ms(_ micros: UInt64) -> String { format(Double(micros) / 1000, 3) }
}

/// Runs the hiccup thread from `start` until `finish`.
final class HiccupMeter: Sendable {
    static let periodNanos: UInt64 = 1_000_000
    private let stopping = Atomic<Bool>(false)
    /// Wake-ups so far (the histogram is handed over at `finish`).
    let wakeups = Atomic<Int>(0)
    private let stats = Mutex(HiccupStats())
    private let thread = Mutex<StoreThread?>(nil)

    static func start() -> HiccupMeter {
        let meter = HiccupMeter()
        meter.thread.withLock { $0 = StoreThread(name: "hiccup-meter") { meter.run() } }
        return meter
    }

    private func run() {
        var stats = HiccupStats()
        while !stopping.load(ordering: .relaxed) {
            let due = monotonicNanos() + Self.periodNanos
            var deadline = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
            _ = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nil)
            let woke = monotonicNanos()
            _ = stats.late.record(min(woke > due ? (woke - due) / 1_000 : 0, rtMicrosMax))
            wakeups.wrappingAdd(1, ordering: .relaxed)
        }
        self.stats.withLock { $0 = stats }
    }

    /// Stops and joins the thread; what it measured.
    func finish() -> HiccupStats {
        stopping.store(true, ordering: .relaxed)
        thread.withLock { $0.take()?.join() }
        return stats.withLock { $0 }
    }
}
