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

/// `bench producer`: RocketMQ's benchmark/producer.sh through the Swift client.
struct ProducerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "producer",
        abstract: "Send RT and throughput through a broker (like RocketMQ's benchmark/producer.sh).",
        discussion: """
            Without -n, starts a NameServer and a broker itself (fresh temporary store, free loopback ports; \
            --flush and --io pick the broker's mode, --replication async or sync adds a slave to an ASYNC_MASTER \
            or SYNC_MASTER, dledger runs a DLedger group of three instead) and stops them afterwards. Every second prints a line; at the end a percentile table \
            of send RT and, with a slave, the replication lag sampled from the master every 100 ms.
            """)

    @Option(name: .customShort("n"), help: "NameServer address(es); omit to run a local NameServer and broker") var namesrvAddr: String?
    @Option(name: .customShort("t"), help: "Topic (created with 8 queues when missing)") var topic = "BenchmarkTest"
    @Option(name: .customShort("w"), help: "Sender threads") var threads = 64
    @Option(name: .customShort("s"), help: "Body size in bytes") var size = 1024
    @Option(help: "Seconds to run (default 20 unless --messages)") var duration: Double?
    @Option(help: "Messages to send in all") var messages: Int?
    @Option(help: "sync, async or oneway") var mode = "sync"
    @Option(help: "Messages per batch send (sync mode)") var batch = 1
    @Flag(help: "Give every message a unique key (exercises the index)") var keys = false
    @Option(help: "Async mode: sends in flight per thread") var window = 16
    @Option(help: "Write the result as JSON to this file") var json: String?
    @Option(help: "Write an HTML report (charts) to this file") var report: String?
    @Option(help: "Local broker only: async or sync flush") var flush = "async"
    @Option(help: "Local broker only: mmap or io_uring") var io = "mmap"
    @Option(help: "Local cluster only: none (one broker), async (ASYNC_MASTER + SLAVE), sync (SYNC_MASTER + SLAVE) or dledger (a DLedger group of 3; mmap only)")
    var replication: String?
    @OptionGroup var producerSh: ProducerShOptions
    @OptionGroup var credentials: BenchCredentials

    func validate() throws {
        guard threads > 0, size > 0, batch > 0, window > 0 else { throw ValidationError("-w, -s, --batch and --window must be positive") }
        guard ["sync", "async", "oneway"].contains(mode) else { throw ValidationError("--mode must be sync, async or oneway") }
        guard batch == 1 || effectiveMode == "sync" else { throw ValidationError("--batch works with --mode sync") }
        guard messages == nil || producerSh.messageQuantity == nil else { throw ValidationError("give --messages or -q, not both") }
        _ = try parseFlush(flush)
        _ = try parseIOPath(io)
        if let replication {
            if let refusal = try ReplicationMode.parse(replication).refusal(io: io) { throw ValidationError(refusal) }
            guard namesrvAddr == nil else {
                throw ValidationError("--replication starts a local cluster of that mode; an existing cluster (-n) replicates as it is "
                                      + "configured (bench reports its mode): drop --replication or -n")
            }
        }
    }

    /// `--mode`, or async when producer.sh's `-y true` asks for it.
    var effectiveMode: String { producerSh.asyncEnable ? "async" : mode }

    func run() async throws {
        lineBufferedOutput()
        var cluster: LocalCluster?
        let address: String
        let setup: ReplicationSetup
        if let namesrvAddr {
            address = namesrvAddr
            setup = await ReplicationSetup.detect(namesrvAddr: namesrvAddr, credentials: credentials.value)
        } else {
            let mode = try ReplicationMode.parse(replication ?? "none")
            let local = try await LocalCluster(shape: .init(flush: flush, io: io, replication: mode))
            cluster = local
            address = local.namesrvAddr
            setup = ReplicationSetup(mode, master: local.brokerAddress)
            let members = local.slavePort.map { "master (\(local.brokerAddress)) + slave (127.0.0.1:\($0))" }
                ?? (mode == .dledger ? "DLedger group of 3 (leader \(local.brokerAddress))" : "broker (\(local.brokerAddress))")
            print("Started a local NameServer (\(local.namesrvAddr)) and \(members), \(local.shape), store \(local.directory)")
        }
        defer { cluster?.stop() }
        var load = ProducerLoad(namesrvAddr: address)
        load.topic = topic
        load.threads = threads
        load.size = size
        let messages = messages ?? producerSh.messageQuantity.flatMap { $0 > 0 ? $0 : nil }
        load.messages = messages
        load.durationSeconds = messages == nil ? (duration ?? 20) : duration
        load.mode = effectiveMode
        load.batch = batch
        load.keys = keys || producerSh.keyEnable
        load.tagCount = producerSh.tagCount
        load.delayLevel = producerSh.delayEnable ? producerSh.delayLevel : nil
        load.propertySize = producerSh.propertySize
        print(producerSh.settingsLine(topic: topic, threads: threads, size: size, keys: load.keys, messages: messages ?? 0))
        load.window = window
        load.replication = setup
        load.credentials = credentials.value
        print("bench producer: topic \(topic), \(threads) threads, \(size) B bodies, mode \(effectiveMode)\(batch > 1 ? ", batch \(batch)" : "")"
              + (load.durationSeconds.map { ", \(format($0, 0)) s" } ?? "") + (messages.map { ", \($0) messages" } ?? "")
              + ", replication \(setup.label)")
        let result = try await load.run { line in print(line) }
        result.printSummary()
        if let json { writeFile(json, result.json + "\n") }
        if let report {
            let shape = cluster.map { "\($0.shape)" } ?? "broker at \(address), \(setup.label)"
            writeFile(report, Report.producerPage(result, shape: shape))
            print("Report: \(report)")
        }
    }
}

/// `bench consumer`: RocketMQ's benchmark/consumer.sh through the Swift push consumer.
struct ConsumerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Receive TPS and end-to-end latency (store time to receipt) through a push consumer.",
        discussion: """
            Waits (--route-wait s) for the topic to have a route, so it may start before the producer. A group with \
            committed offsets resumes from them. A new group reads only messages sent after it starts: each queue's \
            offset is set to its end first (a topic that had no route yet is read from its start, since all of it is \
            newer than the consumer); --from-first reads each queue from its first message instead.
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
        let window = Mutex((count: 0, b2cSum: Int64(0), s2cSum: Int64(0), b2cMax: Int64(0), s2cMax: Int64(0)))
        let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three))
        let total = Atomic<Int>(0)
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
            window.withLock { w in
                for message in messages {
                    let b2c = max(0, now - message.bornTimestamp), s2c = max(0, now - message.storeTimestamp)
                    w.count += 1
                    w.b2cSum += b2c
                    w.s2cSum += s2c
                    w.b2cMax = max(w.b2cMax, b2c)
                    w.s2cMax = max(w.s2cMax, s2c)
                }
            }
            histogram.withLock { h in for message in messages { _ = h.record(UInt64(max(0, now - message.storeTimestamp)) * 1000) } }
            total.wrappingAdd(messages.count, ordering: .relaxed)
            return .consumeSuccess
        }
        try await consumer.start()
        print("bench consumer: topic \(topic), group \(group), \(format(duration, 0)) s")
        let start = monotonicNanos()
        var last = start
        while Double(monotonicNanos() - start) / 1e9 < duration {
            try await Task.sleep(for: .milliseconds(1000))
            let now = monotonicNanos()
            let w = window.withLock { w in defer { w = (0, 0, 0, 0, 0) }; return w }
            let seconds = Double(now - last) / 1e9
            last = now
            let count = max(w.count, 1)
            print("Consume TPS: \(format(Double(w.count) / seconds, 0)) Average(B2C) RT(ms): \(format(Double(w.b2cSum) / Double(count), 3)) Average(S2C) RT(ms): \(format(Double(w.s2cSum) / Double(count), 3)) MAX(B2C) RT(ms): \(w.b2cMax) MAX(S2C) RT(ms): \(w.s2cMax)")
        }
        await consumer.shutdown()
        let seconds = Double(monotonicNanos() - start) / 1e9
        let h = histogram.withLock { $0 }
        let received = total.load(ordering: .relaxed)
        func ms(_ p: Double) -> Double { h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(p)) / 1000 }
        print("Consume TPS (average): \(format(Double(received) / seconds, 0))  messages: \(received)")
        print("Store-to-consumer latency (ms): p50 \(format(ms(50), 0))  p90 \(format(ms(90), 0))  p99 \(format(ms(99), 0))  p99.9 \(format(ms(99.9), 0))  max \(h.totalCount == 0 ? 0 : h.max / 1000)")
        if let json {
            func us(_ p: Double) -> UInt64 { h.totalCount == 0 ? 0 : h.valueAtPercentile(p) }
            writeFile(json, "{\"tps\":\(format(Double(received) / seconds, 1)),\"messages\":\(received),\"p50_us\":\(us(50)),\"p90_us\":\(us(90)),\"p99_us\":\(us(99)),\"p999_us\":\(us(99.9)),\"max_us\":\(h.totalCount == 0 ? 0 : h.max)}\n")
        }
    }
}
