#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import Histogram
import Client
import Common
import Remoting
import Synchronization

/// What one producer run measured.
struct ProducerResult: Sendable {
    var seconds: Double
    var messages: Int
    var size: Int
    var threads: Int
    var mode: String
    var sendFailed: Int
    var responseFailed: Int
    /// Send RT in microseconds.
    var histogram: Histogram<UInt64>
    /// Messages acknowledged in each second of the run.
    var perSecond: [Int]

    var tps: Double { Double(messages) / max(seconds, 1e-9) }
    var mbps: Double { tps * Double(size) / 1_000_000 }
    func micros(_ percentile: Double) -> UInt64 { histogram.totalCount == 0 ? 0 : histogram.valueAtPercentile(percentile) }
    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("p99.99", 99.99)]

    var json: String {
        """
        {"tps":\(format(tps, 1)),"mbps":\(format(mbps, 2)),"p50_us":\(micros(50)),"p90_us":\(micros(90)),"p99_us":\(micros(99)),\
        "p999_us":\(micros(99.9)),"p9999_us":\(micros(99.99)),"max_us":\(histogram.totalCount == 0 ? 0 : histogram.max),\
        "failed":\(sendFailed + responseFailed),"send_failed":\(sendFailed),"response_failed":\(responseFailed),\
        "messages":\(messages),"seconds":\(format(seconds, 3)),"threads":\(threads),"size":\(size),"mode":"\(mode)"}
        """
    }

    func printSummary() {
        print("Send TPS (average): \(format(tps, 0))  MB/s: \(format(mbps, 1))  messages: \(messages)  seconds: \(format(seconds, 1))  Send Failed: \(sendFailed)  Response Failed: \(responseFailed)")
        print("Send RT (ms):  " + Self.percentiles.map { "\($0.0) \(format(Double(micros($0.1)) / 1000, 3))" }.joined(separator: "  ")
              + "  max \(format(Double(histogram.totalCount == 0 ? 0 : histogram.max) / 1000, 3))")
    }
}

func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "0" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = "\(rounded)"
    if digits == 0 { text = "\(Int64(rounded))" } else if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
    }
    return text
}

/// The load of `bench producer`: `threads` senders, each its own loop over one shared Producer.
struct ProducerLoad: Sendable {
    var namesrvAddr: String
    var topic = "BenchmarkTest"
    var threads = 64
    var size = 1024
    var durationSeconds: Double? = 20
    var messages: Int?
    var mode = "sync"  // sync | async | oneway
    var batch = 1
    var keys = false
    /// Async mode: sends in flight per sender.
    var window = 16
    var queues = 8

    /// Runs the load; `everySecond` gets each second's line.
    func run(everySecond: @escaping @Sendable (String) -> Void) async throws -> ProducerResult {
        try await ensureTopic()
        var settings = Producer.Settings()
        settings.group = "BenchmarkProducerGroup"
        settings.sendMsgTimeoutMillis = 10_000
        var config = ClientConfig(namesrvAddr: namesrvAddr)
        config.timeoutMillis = 10_000
        let producer = Producer(config: config, settings: settings)
        producer.start()
        defer { Task { await producer.shutdown() } }
        // One warm-up send creates the connection and caches the route.
        _ = try await producer.send(Message(topic: topic, body: [UInt8](repeating: 98, count: size)))
        let body = (0..<size).map { UInt8(97 + $0 % 26) }
        let (topic, keys, mode, batch) = (topic, keys, mode, batch)
        return try await driveLoad(threads: threads, durationSeconds: durationSeconds, messages: messages, perSend: batch,
                                   window: mode == "async" ? window : 1, size: size, mode: mode, everySecond: everySecond) { sender, sequence in
            func message(_ index: Int) -> Message {
                Message(topic: topic, body: body, keys: keys ? ["k\(sender)-\(sequence)-\(index)"] : [])
            }
            if mode == "oneway" {
                return await Self.outcome { try await producer.sendOneway(message(0)) }
            } else if batch > 1 {
                let messages = (0..<batch).map(message)
                return await Self.outcome { _ = try await producer.send(batch: messages) }
            }
            let next = message(0)
            return await Self.outcome { _ = try await producer.send(next) }
        }
    }

    typealias Outcome = LoadOutcome

    static func outcome(_ body: () async throws -> Void) async -> Outcome {
        do {
            try await body()
            return .ok
        } catch let error as ClientError {
            if case .broker = error { return .responseFailed }
            return .sendFailed
        } catch {
            return .sendFailed
        }
    }

    /// Creates the topic with `queues` queues on every master when the NameServer has no route for it.
    func ensureTopic() async throws {
        let admin = Admin(namesrvAddr: namesrvAddr)
        defer { Task { await admin.shutdown() } }
        if (try? await admin.topicRoute(topic)) != nil { return }
        var created = false
        for broker in try await admin.clusterInfo() where broker.brokerID == BrokerData.masterID {
            _ = try await admin.updateTopic(topic, brokerAddr: broker.address, cluster: nil, readQueueNums: queues, writeQueueNums: queues,
                                            perm: .readWrite, order: false)
            created = true
        }
        guard created else { throw ValidationErrorText("no broker is registered with \(namesrvAddr)") }
        let deadline = monotonicNanos() + 10_000_000_000
        while monotonicNanos() < deadline, (try? await admin.topicRoute(topic)) == nil { try await Task.sleep(for: .milliseconds(100)) }
    }
}

enum LoadOutcome: Sendable { case ok, sendFailed, responseFailed }

/// Drives `threads` senders for a time (or until `messages` are sent): each calls `send(sender, sequence)`
/// in a loop (with `window` > 1, keeps that many sends in flight). Prints a line a second; returns the
/// merged RT histogram (microseconds) and counts. `perSend` messages go in each send (batches).
func driveLoad(threads: Int, durationSeconds: Double?, messages: Int?, perSend: Int, window: Int, size: Int, mode: String,
               everySecond: @escaping @Sendable (String) -> Void,
               send: @escaping @Sendable (Int, Int) async -> LoadOutcome) async throws -> ProducerResult {
    let shared = LoadState()
    let limit = messages.map { ($0 + perSend - 1) / perSend }
    let start = monotonicNanos()
    let deadline = durationSeconds.map { start + UInt64($0 * 1e9) }
    let reporter = Task {
        var last = monotonicNanos()
        while !shared.stop.load(ordering: .relaxed) {
            try? await Task.sleep(for: .milliseconds(1000))
            if shared.stop.load(ordering: .relaxed) || Task.isCancelled { break }  // the summary covers the rest
            let now = monotonicNanos()
            let taken = shared.window.withLock { current -> SecondWindow in defer { current = SecondWindow() }; return current }
            let seconds = Double(now - last) / 1e9
            last = now
            shared.lastReport.store(now, ordering: .relaxed)
            shared.perSecond.withLock { $0.append(taken.messages) }
            let average = taken.sends == 0 ? 0 : Double(taken.rtSumMicros) / Double(taken.sends) / 1000
            everySecond("Send TPS: \(format(Double(taken.messages) / seconds, 0)) Max RT(ms): \(format(Double(taken.rtMaxMicros) / 1000, 3)) Average RT(ms): \(format(average, 3)) Send Failed: \(taken.sendFailed) Response Failed: \(taken.responseFailed)")
        }
    }
    let histograms = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
        for sender in 0..<threads {
            group.addTask {
                var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
                var sequence = 0
                func more() -> Bool {
                    if shared.stop.load(ordering: .relaxed) { return false }
                    if let deadline, monotonicNanos() >= deadline { shared.stop.store(true, ordering: .relaxed); return false }
                    if let limit, shared.issued.wrappingAdd(1, ordering: .relaxed).oldValue >= limit { return false }
                    return true
                }
                func record(_ began: UInt64, _ outcome: LoadOutcome) {
                    let micros = (monotonicNanos() - began) / 1000
                    if outcome == .ok { _ = histogram.record(min(micros, 120_000_000)) }
                    shared.window.withLock { $0.add(micros: micros, outcome: outcome, messages: perSend) }
                    shared.totals.withLock { $0.add(micros: micros, outcome: outcome, messages: perSend) }
                }
                if window > 1 {
                    try await withThrowingTaskGroup(of: (UInt64, LoadOutcome).self) { inflight in
                        var running = 0
                        while true {
                            while running < window, more() {
                                sequence += 1
                                let number = sequence
                                inflight.addTask {
                                    let began = monotonicNanos()
                                    return (began, await send(sender, number))
                                }
                                running += 1
                            }
                            guard running > 0, let (began, outcome) = try await inflight.next() else { break }
                            running -= 1
                            record(began, outcome)
                        }
                    }
                } else {
                    while more() {
                        sequence += 1
                        let began = monotonicNanos()
                        record(began, await send(sender, sequence))
                    }
                }
                return histogram
            }
        }
        var all: [Histogram<UInt64>] = []
        for try await histogram in group { all.append(histogram) }
        return all
    }
    shared.stop.store(true, ordering: .relaxed)
    let elapsed = Double(monotonicNanos() - start) / 1e9
    reporter.cancel()
    // The last partial second joins the per-second series only when it is at least half a second long.
    let rest = shared.window.withLock { $0 }
    let lastReport = max(shared.lastReport.load(ordering: .relaxed), start)
    if Double(monotonicNanos() - lastReport) / 1e9 >= 0.5 { shared.perSecond.withLock { $0.append(rest.messages) } }
    var merged = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    for histogram in histograms { merged.add(histogram) }
    let counted = shared.totals.withLock { $0 }
    return ProducerResult(seconds: elapsed, messages: counted.messages, size: size, threads: threads, mode: mode,
                          sendFailed: counted.sendFailed, responseFailed: counted.responseFailed,
                          histogram: merged, perSecond: shared.perSecond.withLock { $0 })
}

/// What the senders and the once-a-second reporter share.
final class LoadState: Sendable {
    let window = Mutex(SecondWindow())
    let totals = Mutex(SecondWindow())
    let issued = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    let perSecond = Mutex<[Int]>([])
    let lastReport = Atomic<UInt64>(0)
}

struct SecondWindow: Sendable {
    var sends = 0
    var messages = 0
    var rtSumMicros: UInt64 = 0
    var rtMaxMicros: UInt64 = 0
    var sendFailed = 0
    var responseFailed = 0

    mutating func add(micros: UInt64, outcome: LoadOutcome, messages count: Int) {
        switch outcome {
        case .ok:
            sends += 1
            messages += count
            rtSumMicros += micros
            rtMaxMicros = max(rtMaxMicros, micros)
        case .sendFailed: sendFailed += 1
        case .responseFailed: responseFailed += 1
        }
    }
}
