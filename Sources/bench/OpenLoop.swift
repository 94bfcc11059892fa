import CommitLog
import Histogram
import NIOCore

/// An open-loop load's timetable (as the OpenMessaging Benchmark drives its producers): sends are due at a
/// fixed rate whatever the answers do, spread over the senders in turn, so sender `s`'s `k`-th send (from 0) is
/// due at `start + (k * senders + s) / sendsPerSecond`. A send is timed from when it was due, not from when it
/// went out: a slow answer that holds a sender up shows in the sends after it (no coordinated omission).
struct OpenLoopSchedule: Sendable {
    var start: UInt64
    var sendsPerSecond: Double
    var senders: Int
    /// Where senders on the client's event loop wait for their due times (nil: each sleeps).
    var timer: DueTimer? = nil

    /// When sender `sender`'s send number `index` (from 0) is due, monotonic nanoseconds.
    func due(sender: Int, index: Int) -> UInt64 {
        start + UInt64((Double(index * senders + sender) * 1e9 / sendsPerSecond).rounded())
    }
}

/// How far behind the schedule sends went out. A send counts as late when it went out more than
/// `lateMicrosMin` after it was due (the timer's own slack is well under that).
struct OpenLoopStats: Sendable {
    static let lateMicrosMin: UInt64 = 1_000

    /// The target in messages per second.
    var targetRate: Double
    /// Microseconds from due to sent, per send.
    var behind = makeRTHistogram()
    var lateSends = 0

    init(targetRate: Double) { self.targetRate = targetRate }

    mutating func record(behindMicros: UInt64) {
        _ = behind.record(min(behindMicros, rtMicrosMax))
        if behindMicros > Self.lateMicrosMin { lateSends += 1 }
    }

    func behindMicros(_ percentile: Double) -> UInt64 { ProducerResult.micros(behind, percentile) }
    var behindMaxMicros: UInt64 { behind.totalCount == 0 ? 0 : behind.max }

    var jsonMembers: String {
        ",\"target_rate\":\(format(targetRate, 1)),\"behind_p50_us\":\(behindMicros(50)),\"behind_p99_us\":\(behindMicros(99)),"
            + "\"behind_p999_us\":\(behindMicros(99.9)),\"behind_max_us\":\(behindMaxMicros),\"late_sends\":\(lateSends),"
            + "\"scheduled_sends\":\(behind.totalCount)"
    }

    func summary(achievedTPS: Double) -> String {
        "Open loop: target \(format(targetRate, 0)) msgs/s, achieved \(format(achievedTPS, 0)) (SEND_OK); RT counted from each send's "
            + "due time. Behind schedule (ms): p50 \(ms(behindMicros(50)))  p99 \(ms(behindMicros(99)))  p99.9 \(ms(behindMicros(99.9)))"
            + "  max \(ms(behindMaxMicros)); \(lateSends) of \(behind.totalCount) sends went out > 1 ms late"
    }

    private func ms(_ micros: UInt64) -> String { format(Double(micros) / 1000, 3) }
}

/// Waits until a scheduled send is due; returns when it counts as begun and how far behind it really went out, in
/// microseconds. A send counts from its due time, or from when it went out if that was earlier (a `DueTimer`
/// releases sends up to its slack early). Without a schedule, it begins now. With a `DueTimer` (senders on the
/// client's event loop) the wait is a slot in the timer's list; otherwise a `Task.sleep`.
func awaitDue(_ schedule: OpenLoopSchedule?, sender: Int, index: Int, timer: DueTimer? = nil) async -> (began: UInt64, behindMicros: UInt64?) {
    guard let schedule else { return (monotonicNanos(), nil) }
    let due = schedule.due(sender: sender, index: index)
    let now = monotonicNanos()
    if due > now {
        if let timer { await timer.wait(until: due) } else { try? await Task.sleep(for: .nanoseconds(Int64(due - now))) }
    }
    let sent = monotonicNanos()
    return (min(due, sent), sent > due ? (sent - due) / 1000 : 0)
}

/// Wakes open-loop senders at their due times on one event loop: one timer armed for the earliest due time (not
/// one sleep per send), and every sender due by the time it fires, or within `slackNanos` after, released together
/// (their requests then share one write). The default slack is Linux's default timer slack for a thread's own
/// sleeps; `--timer-slack-us` sets another. Event-loop confined.
final class DueTimer: NIOScheduledCallbackHandler, @unchecked Sendable {
    static let defaultSlackNanos: UInt64 = 50_000
    let eventLoop: any EventLoop
    let slackNanos: UInt64
    private var waiting: [(due: UInt64, continuation: UnsafeContinuation<Void, Never>)] = []
    private var armed: (due: UInt64, callback: NIOScheduledCallback)?

    init(eventLoop: any EventLoop, senders: Int, slackNanos: UInt64 = DueTimer.defaultSlackNanos) {
        self.eventLoop = eventLoop
        self.slackNanos = slackNanos
        waiting.reserveCapacity(senders)
    }

    /// Suspends until `due` (monotonic nanoseconds).
    func wait(until due: UInt64) async {
        await withUnsafeContinuation { continuation in
            if eventLoop.inEventLoop {
                add(due, continuation)
            } else {
                eventLoop.execute { self.add(due, continuation) }
            }
        }
    }

    private func add(_ due: UInt64, _ continuation: UnsafeContinuation<Void, Never>) {
        guard due > monotonicNanos() + slackNanos else { return continuation.resume() }
        waiting.append((due, continuation))
        if let armed {
            guard due < armed.due else { return }
            armed.callback.cancel()
        }
        arm(due)
    }

    private func arm(_ due: UInt64) {
        let now = monotonicNanos()
        let deadline = NIODeadline.now() + .nanoseconds(due > now ? Int64(due - now) : 0)
        guard let callback = try? eventLoop.scheduleCallback(at: deadline, handler: self) else {
            armed = nil  // the loop is shutting down: release everyone now
            return release(upTo: .max)
        }
        armed = (due, callback)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        armed = nil
        release(upTo: monotonicNanos() + slackNanos)
        if let next = waiting.lazy.map(\.due).min() { arm(next) }
    }

    private func release(upTo now: UInt64) {
        var index = 0
        while index < waiting.count {
            if waiting[index].due <= now {
                waiting.swapAt(index, waiting.count - 1)
                waiting.removeLast().continuation.resume()
            } else {
                index += 1
            }
        }
    }
}
