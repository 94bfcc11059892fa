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
            --flush and --io pick the broker's mode) and stops them afterwards. Every second prints a line; at \
            the end a percentile table of send RT.
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

    func validate() throws {
        guard threads > 0, size > 0, batch > 0, window > 0 else { throw ValidationError("-w, -s, --batch and --window must be positive") }
        guard ["sync", "async", "oneway"].contains(mode) else { throw ValidationError("--mode must be sync, async or oneway") }
        guard batch == 1 || mode == "sync" else { throw ValidationError("--batch works with --mode sync") }
        _ = try parseFlush(flush)
        _ = try parseIOPath(io)
    }

    func run() async throws {
        lineBufferedOutput()
        var cluster: LocalCluster?
        let address: String
        if let namesrvAddr {
            address = namesrvAddr
        } else {
            let local = try LocalCluster(shape: .init(flush: flush, io: io))
            cluster = local
            address = local.namesrvAddr
            print("Started a local NameServer (\(local.namesrvAddr)) and broker (127.0.0.1:\(local.brokerPort), \(local.shape)), store \(local.directory)/store")
        }
        defer { cluster?.stop() }
        var load = ProducerLoad(namesrvAddr: address)
        load.topic = topic
        load.threads = threads
        load.size = size
        load.messages = messages
        load.durationSeconds = messages == nil ? (duration ?? 20) : duration
        load.mode = mode
        load.batch = batch
        load.keys = keys
        load.window = window
        print("bench producer: topic \(topic), \(threads) threads, \(size) B bodies, mode \(mode)\(batch > 1 ? ", batch \(batch)" : "")"
              + (load.durationSeconds.map { ", \(format($0, 0)) s" } ?? "") + (messages.map { ", \($0) messages" } ?? ""))
        let result = try await load.run { line in print(line) }
        result.printSummary()
        if let json { writeFile(json, result.json + "\n") }
        if let report {
            let shape = cluster.map { "\($0.shape)" } ?? "broker at \(address)"
            writeFile(report, Report.producerPage(result, shape: shape))
            print("Report: \(report)")
        }
    }
}

/// `bench consumer`: RocketMQ's benchmark/consumer.sh through the Swift push consumer.
struct ConsumerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Receive TPS and end-to-end latency (store time to receipt) through a push consumer.")

    @Option(name: .customShort("n"), help: "NameServer address(es)") var namesrvAddr = "127.0.0.1:9876"
    @Option(name: .customShort("t"), help: "Topic") var topic = "BenchmarkTest"
    @Option(name: .customShort("g"), help: "Consumer group") var group = "benchmark_consumer"
    @Option(help: "Seconds to run") var duration: Double = 20
    @Flag(help: "Start from each queue's first message (default: only new messages)") var fromFirst = false
    @Option(help: "Write the result as JSON to this file") var json: String?

    func run() async throws {
        lineBufferedOutput()
        let window = Mutex((count: 0, b2cSum: Int64(0), s2cSum: Int64(0), b2cMax: Int64(0), s2cMax: Int64(0)))
        let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three))
        let total = Atomic<Int>(0)
        var settings = PushConsumer.Settings(group: group)
        settings.consumeFromWhere = fromFirst ? .firstOffset : .lastOffset
        settings.consumeMessageBatchMaxSize = 32
        let consumer = PushConsumer(config: ClientConfig(namesrvAddr: namesrvAddr), settings: settings)
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

/// `bench matrix`: every requested mode x size x thread count against fresh local clusters, one table and
/// an HTML report with charts.
struct MatrixBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Run producer cells across flush modes, io paths, sizes and thread counts; print a table, write report.html.")

    @Option(help: "Body sizes, comma separated") var sizes = "128,1024"
    @Option(help: "Sender thread counts, comma separated") var threads = "1,16,64"
    @Option(help: "Flush modes: async,sync") var flush = "async,sync"
    @Option(help: "io paths: mmap,io_uring") var io = "mmap,io_uring"
    @Option(help: "Replication modes (none until the broker gains replication)") var replication = "none"
    @Option(help: "Seconds per cell") var duration: Double = 10
    @Option(help: "sync, async or oneway sends (the NATS peer: sync or async)") var mode = "sync"
    @Option(help: "HTML report path") var report = "report.html"
    @Option(help: "Write every cell as JSON lines to this file") var json: String?
    @Option(help: "A peer measured with the same load in the same run: nats (NATS JetStream, file storage), or none") var peer = "none"

    /// The cells to run: every shape x size x thread count.
    struct Grid {
        var sizes: [Int]
        var threads: [Int]
        var shapes: [LocalCluster.Shape]
        var withPeer: Bool
        var cellCount: Int { (shapes.count + (withPeer ? 1 : 0)) * sizes.count * threads.count }
    }

    /// Where the run is: cells done so far, and when it started (for the progress lines).
    struct Progress {
        let cells: Int
        let started = monotonicNanos()
        var index = 0
        var elapsedSeconds: String { format(Double(monotonicNanos() - started) / 1e9, 0) }

        mutating func begin(_ what: String) -> String {
            index += 1
            let label = "cell \(index)/\(cells) \(what)"
            print("[\(label)] starting (elapsed \(elapsedSeconds) s)")
            return label
        }
    }

    func validate() throws {
        _ = try makeGrid()
    }

    func run() async throws {
        lineBufferedOutput()
        let grid = try makeGrid()
        var progress = Progress(cells: grid.cellCount)
        var results: [(shape: LocalCluster.Shape, result: ProducerResult)] = []
        for shape in grid.shapes {
            results += try await runBrokerCells(shape, grid: grid, progress: &progress)
        }
        if grid.withPeer { results += try await runNatsCells(grid: grid, progress: &progress) }
        print("")
        printTable(results)
        writeFile(report, Report.matrixPage(results, sizes: grid.sizes, threads: grid.threads, duration: duration, mode: mode))
        print("Report: \(report)")
    }

    private func makeGrid() throws -> Grid {
        func list(_ text: String) -> [String] { text.split(separator: ",").map { String($0).trimmingCharacters() }.filter { !$0.isEmpty } }
        let sizeList = try list(sizes).map { guard let v = Int($0), v > 0 else { throw ValidationError("bad size \($0)") }; return v }
        let threadList = try list(threads).map { guard let v = Int($0), v > 0 else { throw ValidationError("bad thread count \($0)") }; return v }
        let flushList = list(flush), ioList = list(io)
        for value in flushList { _ = try parseFlush(value) }
        for value in ioList { _ = try parseIOPath(value) }
        guard list(replication) == ["none"] else {
            throw ValidationError("--replication: this broker has no replication yet (master/slave and DLedger come next); use none")
        }
        guard ["sync", "async", "oneway"].contains(mode) else { throw ValidationError("--mode must be sync, async or oneway") }
        guard ["none", "nats"].contains(peer) else { throw ValidationError("--peer must be none or nats") }
        guard peer == "none" || mode != "oneway" else { throw ValidationError("--peer nats measures sync or async sends, not oneway") }
        let shapes = flushList.flatMap { f in ioList.map { LocalCluster.Shape(flush: f, io: $0) } }
        return Grid(sizes: sizeList, threads: threadList, shapes: shapes, withPeer: peer == "nats")
    }

    /// The load of one cell, the same for the broker and the peer (`load.plan`).
    private func load(namesrvAddr: String, size: Int, threads: Int) -> ProducerLoad {
        var load = ProducerLoad(namesrvAddr: namesrvAddr)
        load.size = size
        load.threads = threads
        load.durationSeconds = duration
        load.mode = mode
        load.topic = "BenchmarkTest"
        return load
    }

    /// Prints a cell's per-second line as progress: elapsed time and the current SEND_OK TPS.
    private static func progressLine(_ label: String, _ progress: Progress) -> @Sendable (String) -> Void {
        let started = progress.started
        return { line in
            let tps = line.split(separator: " ").dropFirst(2).first ?? "?"
            print("[\(label) | elapsed \(format(Double(monotonicNanos() - started) / 1e9, 0)) s] current TPS \(tps)")
        }
    }

    private func runBrokerCells(_ shape: LocalCluster.Shape, grid: Grid,
                                progress: inout Progress) async throws -> [(shape: LocalCluster.Shape, result: ProducerResult)] {
        let cluster = try LocalCluster(shape: shape)
        defer { cluster.stop() }
        var results: [(shape: LocalCluster.Shape, result: ProducerResult)] = []
        for size in grid.sizes {
            for threadCount in grid.threads {
                let label = progress.begin("\(shape) \(size) B \(threadCount) threads")
                let cell = load(namesrvAddr: cluster.namesrvAddr, size: size, threads: threadCount)
                results.append((shape, try await cell.run(everySecond: Self.progressLine(label, progress))))
                appendJSON(results[results.count - 1])
            }
        }
        return results
    }

    /// The peer's cells: the same plan as the broker's (threads, time, mode and window, warm-up, timeout).
    private func runNatsCells(grid: Grid, progress: inout Progress) async throws -> [(shape: LocalCluster.Shape, result: ProducerResult)] {
        let nats = try NatsPeer()
        defer { nats.stop() }
        let shape = LocalCluster.Shape(flush: "peer", io: "nats")
        var results: [(shape: LocalCluster.Shape, result: ProducerResult)] = []
        for size in grid.sizes {
            for threadCount in grid.threads {
                let label = progress.begin("\(nats.version) JetStream file \(size) B \(threadCount) threads")
                let plan = load(namesrvAddr: "", size: size, threads: threadCount).plan
                results.append((shape, try await nats.run(plan, everySecond: Self.progressLine(label, progress))))
                appendJSON(results[results.count - 1])
            }
        }
        return results
    }

    /// One JSON line per cell as it finishes (a long run that stops early keeps the cells done).
    private func appendJSON(_ cell: (shape: LocalCluster.Shape, result: ProducerResult)) {
        guard let json else { return }
        let line = cell.result.json.dropLast() + ",\"flush\":\"\(cell.shape.flush)\",\"io\":\"\(cell.shape.io)\"}\n"
        writeFile(json, String(line), append: true)
    }

    /// TPS and RT of SEND_OK sends; `non-OK` = FLUSH_DISK_TIMEOUT + FLUSH_SLAVE_TIMEOUT + SLAVE_NOT_AVAILABLE;
    /// `failed` = every send not SEND_OK (JSON `failed`, the non-OK answers included).
    private func printTable(_ results: [(shape: LocalCluster.Shape, result: ProducerResult)]) {
        print(pad("Mode", 22) + pad("Size", 7) + pad("Threads", 9) + pad("TPS", 10) + pad("MB/s", 8) + pad("p50 ms", 9) + pad("p99 ms", 9)
              + pad("p99.9 ms", 10) + pad("max ms", 10) + pad("non-OK", 8) + "failed")
        for (shape, r) in results {
            print(pad("\(shape)", 22) + pad("\(r.size)", 7) + pad("\(r.threads)", 9) + pad(format(r.tps, 0), 10) + pad(format(r.mbps, 1), 8)
                  + pad(format(Double(r.micros(50)) / 1000, 3), 9) + pad(format(Double(r.micros(99)) / 1000, 3), 9)
                  + pad(format(Double(r.micros(99.9)) / 1000, 3), 10) + pad(format(Double(r.maxMicros) / 1000, 3), 10)
                  + pad("\(r.statuses.nonOKAnswers)", 8) + "\(r.failed)")
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

extension String {
    func trimmingCharacters() -> String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
