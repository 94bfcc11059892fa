import CommitLog
import Histogram
import Remoting
import Synchronization

/// The shape of one load, the same for the broker and the NATS peer.
struct LoadPlan: Sendable {
    /// Concurrent senders.
    var threads: Int
    /// Run this long (nil: until `messages` are sent).
    var durationSeconds: Double?
    /// Messages to send in all (nil: until the time is up).
    var messages: Int?
    /// Messages in one send (a batch).
    var perSend = 1
    /// Sends in flight per sender: 1 waits for each answer (sync), more keep that many going (async).
    var window = 1
    /// Body size in bytes.
    var size: Int
    /// The mode's name for the result (sync, async, oneway).
    var mode: String
    /// Open loop: messages per second on a fixed schedule (`OpenLoopSchedule`); nil: closed loop, each sender
    /// sends again as soon as its window allows.
    var rate: Double? = nil
    /// Open loop on an event loop: sends due within this long of the timer firing go out with it (`DueTimer`).
    var timerSlackNanos = DueTimer.defaultSlackNanos

    /// Sends to issue in all, nil when only time limits the run.
    var sendsMax: Int? { messages.map { ($0 + perSend - 1) / perSend } }
}

/// One send: `(sender, sequence)` to what it came back as.
typealias LoadSend = nonisolated(nonsending) @Sendable (_ sender: Int, _ sequence: Int) async -> SendOutcome

/// Send RT is recorded in microseconds up to two minutes (a send times out long before).
let rtMicrosMax: UInt64 = 120_000_000

func makeRTHistogram() -> Histogram<UInt64> {
    Histogram<UInt64>(highestTrackableValue: rtMicrosMax, numberOfSignificantValueDigits: .three)
}

/// The run's RT histograms: SEND_OK sends, and every other outcome's ("failed sends") kept apart; in an open
/// loop, how far sends went out behind schedule. One for all senders (kept with the totals): 64 per-sender copies
/// of these 0.4 MB count arrays made each record a cache miss.
struct RunHistograms: Sendable {
    var ok = makeRTHistogram()
    var failed = makeRTHistogram()
    var openLoop: OpenLoopStats?

    mutating func record(micros: UInt64, outcome: SendOutcome) {
        if outcome == .sendOK {
            _ = ok.record(min(micros, rtMicrosMax))
        } else {
            _ = failed.record(min(micros, rtMicrosMax))
        }
    }
}

/// Drives `plan.threads` senders for a time (or until `plan.messages` are sent): each calls
/// `send(sender, sequence)` in a loop (with `plan.window` > 1, keeps that many sends in flight). Prints a
/// line a second; returns the counts by outcome and the RT histograms (microseconds). Only SEND_OK sends
/// count as messages (throughput, MB/s) and go into the main histogram; every other outcome's RT goes into
/// the failed-sends histogram.
///
/// With `executor` (the client's event loop), the senders run on that loop: a send goes into the connection's
/// buffer and its answer resumes the sender without a thread switch, and an open loop's senders wait for their
/// due times on one timer of that loop (`DueTimer`).
func driveLoad(_ plan: LoadPlan, cpu: ServerCPUSource? = nil, executor: EventLoopTaskExecutor? = nil,
               everySecond: @escaping @Sendable (String) -> Void, send: @escaping LoadSend) async throws -> ProducerResult {
    let meter = await CPUMeter.start(cpu)
    let start = monotonicNanos()
    let shared = LoadState(plan: plan, start: start)
    let timer = executor.map { DueTimer(eventLoop: $0.eventLoop, senders: plan.threads, slackNanos: plan.timerSlackNanos) }
    let schedule = plan.rate.map {
        OpenLoopSchedule(start: start, sendsPerSecond: $0 / Double(plan.perSend), senders: plan.threads, timer: timer)
    }
    let reporter = Task { await reportEverySecond(shared, everySecond) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for sender in 0..<plan.threads {
            group.addTask(executorPreference: executor) {
                try await runSender(sender, plan: plan, schedule: schedule, shared: shared, send: send)
            }
        }
        try await group.waitForAll()
    }
    shared.stop.store(true, ordering: .relaxed)
    let elapsed = Double(monotonicNanos() - start) / 1e9
    reporter.cancel()
    shared.closeLastSecond()
    let (counted, histograms) = shared.totals.withLock { ($0.window, $0.histograms) }
    var result = ProducerResult(seconds: elapsed, messages: counted.messages, size: plan.size, threads: plan.threads, mode: plan.mode,
                                statuses: counted.statuses, histogram: histograms.ok, failedHistogram: histograms.failed,
                                perSecond: shared.perSecond.withLock { $0 })
    result.cpu = await meter.finish(messages: counted.messages)
    result.openLoop = histograms.openLoop
    return result
}

/// Once a second until the load stops: takes the second's counts and prints its line.
private func reportEverySecond(_ shared: LoadState, _ everySecond: @Sendable (String) -> Void) async {
    var last = monotonicNanos()
    while !shared.stop.load(ordering: .relaxed) {
        try? await Task.sleep(for: .milliseconds(1000))
        if shared.stop.load(ordering: .relaxed) || Task.isCancelled { break }  // the summary covers the rest
        let now = monotonicNanos()
        let taken = shared.takeSecond(at: now)
        everySecond(taken.line(seconds: Double(now - last) / 1e9))
        last = now
    }
}

/// One sender: sync (one send at a time) or windowed (async: `plan.window` in flight); with a schedule, each
/// send waits until it is due and is timed from then.
nonisolated(nonsending) private func runSender(_ sender: Int, plan: LoadPlan, schedule: OpenLoopSchedule?, shared: LoadState,
                       send: @escaping LoadSend) async throws {
    if plan.window > 1 {
        try await runWindowed(sender, window: plan.window, schedule: schedule, shared: shared, send: send)
    } else {
        var sequence = 0
        while shared.more() {
            sequence += 1
            guard let (began, behind, outcome) = await scheduledSend(sender, sequence, schedule, shared, send) else { break }
            shared.record(began: began, behind: behind, outcome: outcome)
        }
    }
}

/// One send when it is due (at once without a schedule); nil when it would be due after the run's deadline.
nonisolated(nonsending) private func scheduledSend(_ sender: Int, _ sequence: Int, _ schedule: OpenLoopSchedule?, _ shared: LoadState,
                           _ send: LoadSend) async -> (began: UInt64, behind: UInt64?, outcome: SendOutcome)? {
    if let schedule, let deadline = shared.deadline, schedule.due(sender: sender, index: sequence - 1) >= deadline {
        shared.stop.store(true, ordering: .relaxed)
        return nil
    }
    let (began, behind) = schedule == nil ? (monotonicNanos(), nil)  // a closed loop: no await before the send
        : await awaitDue(schedule, sender: sender, index: sequence - 1, timer: schedule?.timer)
    return (began, behind, await send(sender, sequence))
}

/// Keeps `window` sends in flight (scheduled ones count from when they are placed) until the load stops,
/// recording each as it completes: `window` loops share the sender's sequence, each sending again as soon as its
/// answer came. One child task per loop for the whole run, not one per send (a task costs several allocations).
private func runWindowed(_ sender: Int, window: Int, schedule: OpenLoopSchedule?, shared: LoadState,
                         send: @escaping LoadSend) async throws {
    let sequence = SendSequence()
    try await withThrowingTaskGroup(of: Void.self) { loops in
        for _ in 0..<window {
            loops.addTask {
                while shared.more() {
                    guard let (began, behind, outcome) = await scheduledSend(sender, sequence.next(), schedule, shared, send) else { break }
                    shared.record(began: began, behind: behind, outcome: outcome)
                }
            }
        }
        try await loops.waitForAll()
    }
}

/// A windowed sender's send numbers (from 1), taken by its loops in turn.
final class SendSequence: Sendable {
    private let last = Atomic<Int>(0)
    func next() -> Int { last.wrappingAdd(1, ordering: .relaxed).newValue }
}

/// What the senders and the once-a-second reporter share.
final class LoadState: Sendable {
    let window = Mutex(SecondWindow())
    let totals: Mutex<(window: SecondWindow, histograms: RunHistograms)>
    let issued = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    let perSecond = Mutex<[Int]>([])
    let lastReport: Atomic<UInt64>
    let deadline: UInt64?
    let sendsMax: Int?
    let perSend: Int

    init(plan: LoadPlan, start: UInt64) {
        lastReport = Atomic(start)
        var histograms = RunHistograms()
        histograms.openLoop = plan.rate.map { OpenLoopStats(targetRate: $0) }
        totals = Mutex((SecondWindow(), histograms))
        deadline = plan.durationSeconds.map { start + UInt64($0 * 1e9) }
        sendsMax = plan.sendsMax
        perSend = plan.perSend
    }

    /// Whether a sender may issue one more send (and, with a message limit, claims it).
    func more() -> Bool {
        if stop.load(ordering: .relaxed) { return false }
        if let deadline, monotonicNanos() >= deadline {
            stop.store(true, ordering: .relaxed)
            return false
        }
        if let sendsMax, issued.wrappingAdd(1, ordering: .relaxed).oldValue >= sendsMax { return false }
        return true
    }

    /// Counts one completed send in this second and in the totals, its RT (microseconds) and how far behind
    /// schedule it went out in the histograms.
    func record(began: UInt64, behind: UInt64?, outcome: SendOutcome) {
        let micros = (monotonicNanos() - began) / 1000
        window.withLock { $0.add(micros: micros, outcome: outcome, messages: perSend) }
        totals.withLock { totals in
            totals.window.add(micros: micros, outcome: outcome, messages: perSend)
            totals.histograms.record(micros: micros, outcome: outcome)
            if let behind { totals.histograms.openLoop?.record(behindMicros: behind) }
        }
    }

    /// Takes the second that just ended (the next starts empty) and adds its messages to the series.
    func takeSecond(at now: UInt64) -> SecondWindow {
        let taken = window.withLock { current -> SecondWindow in
            defer { current = SecondWindow() }
            return current
        }
        lastReport.store(now, ordering: .relaxed)
        perSecond.withLock { $0.append(taken.messages) }
        return taken
    }

    /// The last partial second joins the per-second series only when it is at least half a second long.
    func closeLastSecond() {
        let rest = window.withLock { $0 }
        if Double(monotonicNanos() - lastReport.load(ordering: .relaxed)) / 1e9 >= 0.5 {
            perSecond.withLock { $0.append(rest.messages) }
        }
    }
}

/// Counts over one second (or the whole run): messages, sends and RT of SEND_OK; every send by outcome.
struct SecondWindow: Sendable {
    /// SEND_OK sends and the messages in them.
    var sends = 0
    var messages = 0
    /// RT of SEND_OK sends.
    var rtSumMicros: UInt64 = 0
    var rtMaxMicros: UInt64 = 0
    var statuses = StatusCounts()

    mutating func add(micros: UInt64, outcome: SendOutcome, messages count: Int) {
        statuses[outcome] += 1
        guard outcome == .sendOK else { return }
        sends += 1
        messages += count
        rtSumMicros += micros
        rtMaxMicros = max(rtMaxMicros, micros)
    }

    /// RocketMQ's per-second line, then the three non-OK answers:
    /// `Send TPS: … Max RT(ms): … Average RT(ms): … Send Failed: … Response Failed: … Flush Disk Timeout: …
    /// Flush Slave Timeout: … Slave Not Available: …` (TPS and RT of SEND_OK only).
    func line(seconds: Double) -> String {
        let average = sends == 0 ? 0 : Double(rtSumMicros) / Double(sends) / 1000
        return "Send TPS: \(format(Double(messages) / seconds, 0)) Max RT(ms): \(format(Double(rtMaxMicros) / 1000, 3))"
            + " Average RT(ms): \(format(average, 3)) " + statuses.labelled()
    }
}
