#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import Histogram
import Client
import Common
import Synchronization

/// `bench consumer`: RocketMQ's benchmark/consumer.sh through the Swift push consumer, with the end-to-end
/// latency (born on the producer to consumed here) as percentiles beside the store-to-consumer one.
struct ConsumerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Receive TPS and end-to-end latency (born to consumed, and store time to consumed) through a push consumer.",
        discussion: """
            Born-to-consumed (B2C) is the producer's born timestamp to the moment the listener sees the message: \
            the end-to-end latency of a message. Both clocks are wall clocks in milliseconds, so across hosts it \
            includes their clock difference. Waits (--route-wait s) for the topic to have a route, so it may start \
            before the producer. A group with committed offsets resumes from them. A new group reads only messages \
            sent after it starts: each queue's offset is set to its end first (a topic that had no route yet is read \
            from its start, since all of it is newer than the consumer); --from-first reads each queue from its first \
            message instead.
            """)

    @Option(name: .customShort("n"), help: "NameServer address(es)") var namesrvAddr = "127.0.0.1:9876"
    @Option(name: .customShort("t"), help: "Topic") var topic = "BenchmarkTest"
    @Option(name: .customShort("g"), help: "Consumer group") var group = "benchmark_consumer"
    @Option(help: "Seconds to run") var duration: Double = 20
    @Flag(help: "A new group reads each queue from its first message (default: only messages sent after it starts)")
    var fromFirst = false
    @Option(help: "Seconds to wait for the topic's route before giving up") var routeWait: Double = 60
    @Option(help: "Write the result as JSON to this file") var json: String?
    @OptionGroup var credentials: BenchCredentials

    func run() async throws {
        lineBufferedOutput()
        let latency = Mutex(ConsumeLatency())
        let window = Mutex(ConsumeLatency.Second())
        let topicIsNew = try await ConsumerStart.waitForRoute(namesrvAddr: namesrvAddr, topic: topic, seconds: routeWait)
        if !fromFirst && !topicIsNew {
            let pinned = try await ConsumerStart.newGroupAtQueueEnds(namesrvAddr: namesrvAddr, topic: topic, group: group)
            if pinned > 0 { print("bench consumer: new group \(group): \(pinned) queue(s) start at their end (--from-first reads the backlog)") }
        }
        var settings = PushConsumer.Settings(group: group)
        settings.consumeFromWhere = fromFirst || topicIsNew ? .firstOffset : .lastOffset
        settings.consumeMessageBatchMaxSize = 32
        var config = ClientConfig(namesrvAddr: namesrvAddr)
        config.credentials = credentials.value
        let consumer = PushConsumer(config: config, settings: settings)
        consumer.subscribe(topic)
        consumer.registerListener { messages in
            let now = wallClockMillis()
            window.withLock { w in for message in messages { w.add(born: message.bornTimestamp, stored: message.storeTimestamp, now: now) } }
            latency.withLock { l in for message in messages { l.add(born: message.bornTimestamp, stored: message.storeTimestamp, now: now) } }
            return .consumeSuccess
        }
        try await consumer.start()
        print("bench consumer: topic \(topic), group \(group), \(format(duration, 0)) s")
        let start = monotonicNanos()
        var last = start
        while Double(monotonicNanos() - start) / 1e9 < duration {
            try await Task.sleep(for: .milliseconds(1000))
            let now = monotonicNanos()
            let second = window.withLock { w in defer { w = ConsumeLatency.Second() }; return w }
            print(second.line(seconds: Double(now - last) / 1e9))
            last = now
        }
        await consumer.shutdown()
        let total = latency.withLock { $0 }
        let seconds = Double(monotonicNanos() - start) / 1e9
        total.printSummary(seconds: seconds)
        if let json { writeFile(json, total.json(seconds: seconds) + "\n") }
    }
}

/// Born-to-consumed and store-to-consumed latency of every message received, microseconds (from millisecond
/// clocks).
struct ConsumeLatency: Sendable {
    var bornToConsumed = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    var storeToConsumed = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    var messages = 0

    mutating func add(born: Int64, stored: Int64, now: Int64) {
        _ = bornToConsumed.record(UInt64(min(max(0, now - born), 3_600_000)) * 1000)
        _ = storeToConsumed.record(UInt64(min(max(0, now - stored), 3_600_000)) * 1000)
        messages += 1
    }

    static func micros(_ histogram: Histogram<UInt64>, _ percentile: Double) -> UInt64 {
        histogram.totalCount == 0 ? 0 : histogram.valueAtPercentile(percentile)
    }

    func printSummary(seconds: Double) {
        func line(_ histogram: Histogram<UInt64>) -> String {
            ProducerResult.percentiles.map { "\($0.0) \(Self.micros(histogram, $0.1) / 1000)" }.joined(separator: "  ")
                + "  max \(histogram.totalCount == 0 ? 0 : histogram.max / 1000)"
        }
        print("Consume TPS (average): \(format(Double(messages) / max(seconds, 1e-9), 0))  messages: \(messages)")
        print("End-to-end latency, born to consumed (ms):  " + line(bornToConsumed))
        print("Store-to-consumer latency (ms):  " + line(storeToConsumed))
    }

    /// `p50_us`… are store-to-consumed (as before); `e2e_p50_us`… born-to-consumed.
    func json(seconds: Double) -> String {
        func members(_ prefix: String, _ histogram: Histogram<UInt64>) -> String {
            ["p50": 50.0, "p90": 90, "p99": 99, "p999": 99.9].sorted { $0.value < $1.value }
                .map { "\"\(prefix)\($0.key)_us\":\(Self.micros(histogram, $0.value))" }.joined(separator: ",")
                + ",\"\(prefix)max_us\":\(histogram.totalCount == 0 ? 0 : histogram.max)"
        }
        return "{\"tps\":\(format(Double(messages) / max(seconds, 1e-9), 1)),\"messages\":\(messages),"
            + members("", storeToConsumed) + "," + members("e2e_", bornToConsumed) + "}"
    }

    /// One second's counts for RocketMQ's per-second line.
    struct Second: Sendable {
        var count = 0
        var b2cSum: Int64 = 0, s2cSum: Int64 = 0, b2cMax: Int64 = 0, s2cMax: Int64 = 0

        mutating func add(born: Int64, stored: Int64, now: Int64) {
            let b2c = max(0, now - born), s2c = max(0, now - stored)
            count += 1
            b2cSum += b2c
            s2cSum += s2c
            b2cMax = max(b2cMax, b2c)
            s2cMax = max(s2cMax, s2c)
        }

        func line(seconds: Double) -> String {
            let n = Double(max(count, 1))
            return "Consume TPS: \(format(Double(count) / seconds, 0)) Average(B2C) RT(ms): \(format(Double(b2cSum) / n, 3)) "
                + "Average(S2C) RT(ms): \(format(Double(s2cSum) / n, 3)) MAX(B2C) RT(ms): \(b2cMax) MAX(S2C) RT(ms): \(s2cMax)"
        }
    }
}
