#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import Client
import Common

/// `bench matrix`: every requested mode (flush x io x replication) x size x thread count, each cell against a
/// fresh local cluster of its mode, one table and an HTML report with charts.
struct MatrixBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Run producer cells across flush modes, io paths, replication modes, sizes and thread counts; print a table, write report.html.")

    @Option(help: "Body sizes, comma separated") var sizes = "128,1024"
    @Option(help: "Sender thread counts, comma separated") var threads = "1,16,64"
    @Option(help: "Flush modes: async,sync") var flush = "async,sync"
    @Option(help: "io paths: mmap,io_uring") var io = "mmap,io_uring"
    @Option(help: "Replication modes: none (one broker), async (ASYNC_MASTER + SLAVE), sync (SYNC_MASTER + SLAVE), dledger (a DLedger group of 3; mmap only)")
    var replication = "none"
    @Option(help: "Seconds per cell") var duration: Double = 10
    @Option(help: "sync, async or oneway sends (the NATS peer: sync or async)") var mode = "sync"
    @Option(help: "HTML report path") var report = "report.html"
    @Option(help: "Write every cell as JSON lines to this file") var json: String?
    @Option(help: "Peers measured with the same load in the same run, comma separated: nats (NATS JetStream, file storage), redis (Redis Streams, AOF everysec beside async flush, always beside sync), or none")
    var peer = "none"
    @Option(help: "Open loop: run every cell at each of these rates (messages per second, comma separated) for a latency-vs-throughput curve")
    var rates: String?

    /// The cells to run: every shape x size x thread count.
    struct Grid {
        var sizes: [Int]
        var threads: [Int]
        var shapes: [LocalCluster.Shape]
        var peers: [String]
        /// Redis runs once per flush mode (its fsync policy follows it).
        var flushes: [String]
        /// Open-loop rates (empty: one closed-loop run per cell).
        var rates: [Double]
        var peerShapes: Int { (peers.contains("nats") ? 1 : 0) + (peers.contains("redis") ? flushes.count : 0) }
        var cellCount: Int { (shapes.count + peerShapes) * sizes.count * threads.count * max(rates.count, 1) }
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
        if grid.peers.contains("nats") { results += try await runNatsCells(grid: grid, progress: &progress) }
        if grid.peers.contains("redis") { results += try await runRedisCells(grid: grid, progress: &progress) }
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
        let replicationList = try list(replication).map(ReplicationMode.parse)
        guard !replicationList.isEmpty else { throw ValidationError("--replication needs at least one of none, async, sync, dledger") }
        guard ["sync", "async", "oneway"].contains(mode) else { throw ValidationError("--mode must be sync, async or oneway") }
        let peers = list(peer).filter { $0 != "none" }
        for name in peers where !["nats", "redis"].contains(name) { throw ValidationError("--peer takes none, nats and redis, not \(name)") }
        guard peers.isEmpty || mode != "oneway" else { throw ValidationError("--peer measures sync or async sends, not oneway") }
        // Refused before any cell runs, not after an hour of broker cells.
        if peers.contains("redis"), RedisPeer.installed == nil {
            throw ValidationError("--peer redis needs redis-server (apt-get install redis-server, or scripts/setup.sh redis)")
        }
        if peers.contains("nats"), NatsPeer.installed == nil {
            throw ValidationError("--peer nats needs nats-server (apt-get install nats-server, or scripts/setup.sh nats)")
        }
        let rateList = try list(rates ?? "").map {
            guard let v = Double($0), v > 0, v.isFinite else { throw ValidationError("bad rate \($0)") }
            return v
        }
        let all = flushList.flatMap { f in
            ioList.flatMap { i in replicationList.map { LocalCluster.Shape(flush: f, io: i, replication: $0) } }
        }
        let shapes = all.filter { $0.replication.refusal(io: $0.io) == nil }
        for shape in all where !shapes.contains(shape) { print("bench matrix: skipping \(shape): \(shape.replication.refusal(io: shape.io)!)") }
        guard !shapes.isEmpty else { throw ValidationError("no mode of --flush, --io and --replication can run together") }
        return Grid(sizes: sizeList, threads: threadList, shapes: shapes, peers: peers, flushes: flushList, rates: rateList)
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

    /// Every size x thread count of one mode, each against a cluster of its own (fresh stores; with a slave,
    /// one that starts in sync), so no cell inherits a backlog or a slave still catching up from the last.
    private func runBrokerCells(_ shape: LocalCluster.Shape, grid: Grid,
                                progress: inout Progress) async throws -> [(shape: LocalCluster.Shape, result: ProducerResult)] {
        var results: [(shape: LocalCluster.Shape, result: ProducerResult)] = []
        for size in grid.sizes {
            for threadCount in grid.threads {
                let cluster = try await LocalCluster(shape: shape)
                defer { cluster.stop() }
                var cell = load(namesrvAddr: cluster.namesrvAddr, size: size, threads: threadCount)
                cell.replication = ReplicationSetup(shape.replication, master: cluster.brokerAddress)
                cell.serverCPU = .processes(cluster.brokerPIDs)
                // Open loop: the rates one after another on this cluster, lowest first.
                for rate in Self.ratesOrClosed(grid) {
                    let label = progress.begin("\(shape) \(size) B \(threadCount) threads" + Self.rateLabel(rate))
                    cell.rate = rate
                    results.append((shape, try await cell.run(everySecond: Self.progressLine(label, progress))))
                    appendJSON(results[results.count - 1])
                }
            }
        }
        return results
    }

    /// The NATS cells: one server for all, the same plan as the broker's (threads, time, mode and window,
    /// warm-up, timeout).
    private func runNatsCells(grid: Grid, progress: inout Progress) async throws -> [(shape: LocalCluster.Shape, result: ProducerResult)] {
        let nats = try NatsPeer()
        defer { nats.stop() }
        return try await runPeerCells(.init(flush: "peer", io: "nats"), name: "\(nats.version) JetStream file", grid: grid,
                                      progress: &progress) { plan, everySecond in try await nats.run(plan, everySecond: everySecond) }
    }

    /// Redis beside each flush mode of the grid: `appendfsync everysec` for async, `always` for sync; a fresh
    /// server (empty AOF) per cell, so no cell inherits a rewrite or a long stream from the last.
    private func runRedisCells(grid: Grid, progress: inout Progress) async throws -> [(shape: LocalCluster.Shape, result: ProducerResult)] {
        var results: [(shape: LocalCluster.Shape, result: ProducerResult)] = []
        for flush in grid.flushes {
            let fsync = try parseFlush(flush) == .syncFlush ? "always" : "everysec"
            let shape = LocalCluster.Shape(flush: "peer", io: "redis-" + fsync)
            results += try await runPeerCells(shape, name: shape.storage, grid: grid, progress: &progress) { plan, everySecond in
                let redis = try RedisPeer(appendfsync: fsync)
                defer { redis.stop() }
                return try await redis.run(plan, everySecond: everySecond)
            }
        }
        return results
    }

    /// A peer's cells: every size x thread count (x rate) with the broker cells' plan, through `run`.
    private func runPeerCells(_ shape: LocalCluster.Shape, name: String, grid: Grid, progress: inout Progress,
                              run: (LoadPlan, @escaping @Sendable (String) -> Void) async throws -> ProducerResult)
        async throws -> [(shape: LocalCluster.Shape, result: ProducerResult)] {
        var results: [(shape: LocalCluster.Shape, result: ProducerResult)] = []
        for size in grid.sizes {
            for threadCount in grid.threads {
                for rate in Self.ratesOrClosed(grid) {
                    let label = progress.begin("\(name) \(size) B \(threadCount) threads" + Self.rateLabel(rate))
                    var plan = load(namesrvAddr: "", size: size, threads: threadCount).plan
                    plan.rate = rate
                    results.append((shape, try await run(plan, Self.progressLine(label, progress))))
                    appendJSON(results[results.count - 1])
                }
            }
        }
        return results
    }

    /// Each open-loop rate, lowest first, or one closed-loop run (nil).
    static func ratesOrClosed(_ grid: Grid) -> [Double?] { grid.rates.isEmpty ? [nil] : grid.rates.sorted().map { $0 } }
    static func rateLabel(_ rate: Double?) -> String { rate.map { " at \(format($0, 0)) msgs/s" } ?? "" }

    /// One JSON line per cell as it finishes (a long run that stops early keeps the cells done).
    private func appendJSON(_ cell: (shape: LocalCluster.Shape, result: ProducerResult)) {
        guard let json else { return }
        let line = cell.result.json.dropLast() + ",\"flush\":\"\(cell.shape.flush)\",\"io\":\"\(cell.shape.io)\"}\n"
        writeFile(json, String(line), append: true)
    }

    /// TPS and RT of SEND_OK sends; `non-OK` = FLUSH_DISK_TIMEOUT + FLUSH_SLAVE_TIMEOUT + SLAVE_NOT_AVAILABLE;
    /// `failed` = every send not SEND_OK (JSON `failed`, the non-OK answers included); with a slave, the p99 of
    /// the replication lag sampled every 100 ms (`-` without one).
    private func printTable(_ results: [(shape: LocalCluster.Shape, result: ProducerResult)]) {
        print(pad("Mode", 22) + pad("Replication", 19) + pad("Size", 7) + pad("Threads", 9) + pad("TPS", 10) + pad("MB/s", 8)
              + pad("p50 ms", 9) + pad("p99 ms", 9) + pad("p99.9 ms", 10) + pad("max ms", 10) + pad("non-OK", 8) + pad("failed", 8)
              + pad("lag p99 ms", 12) + pad("lag p99 B", 11) + pad("srv CPU us", 12) + pad("cli CPU us", 12) + "target rate")
        for (shape, r) in results {
            let lag = r.replicationLag
            print(pad(shape.storage, 22) + pad(r.replicationLabel, 19) + pad("\(r.size)", 7) + pad("\(r.threads)", 9)
                  + pad(format(r.tps, 0), 10) + pad(format(r.mbps, 1), 8)
                  + pad(format(Double(r.micros(50)) / 1000, 3), 9) + pad(format(Double(r.micros(99)) / 1000, 3), 9)
                  + pad(format(Double(r.micros(99.9)) / 1000, 3), 10) + pad(format(Double(r.maxMicros) / 1000, 3), 10)
                  + pad("\(r.statuses.nonOKAnswers)", 8) + pad("\(r.failed)", 8)
                  + pad(lag.map { "\($0.millis(99))" } ?? "-", 12) + pad(lag.map { "\($0.bytes(99))" } ?? "-", 11)
                  + pad(r.cpu?.serverMicrosPerMessage.map { format($0, 1) } ?? "-", 12) + pad(r.cpu.map { format($0.clientMicrosPerMessage, 1) } ?? "-", 12)
                  + (r.openLoop.map { format($0.targetRate, 0) } ?? "-"))
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

extension String {
    func trimmingCharacters() -> String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
