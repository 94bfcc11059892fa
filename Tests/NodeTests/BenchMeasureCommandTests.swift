#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Remoting
import Testing
import TestSupport

/// What issue 18 added to `bench`, as users run it: CPU per message in every result (local processes and a
/// broker reached with `-n`), the open-loop schedule, born-to-consumed latency, the Redis Streams peer, the
/// matrix's rate curve and the store's ceilings. Figures depend on the machine; only their presence and sanity
/// (positive, finite, consistent with each other) are checked.
@Suite(.serialized) struct BenchMeasureCommandTests {
    func bench(_ arguments: [String], seconds: Double = 120) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        return try ChildProcess.run([binary] + arguments, seconds: seconds)
    }

    static var redisInstalled: Bool {
        let candidates: [String] = ["/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"]
        return candidates.contains { access($0, X_OK) == 0 }
    }

    /// A positive, finite number at `key` (the JSON writes numbers with a fraction, or 0 when not finite).
    func positive(_ parsed: JSONValue, _ key: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let value = parsed[key]?.double ?? -1
        #expect(value > 0 && value.isFinite && value < 1_000_000, "\(key) in \(text)", sourceLocation: sourceLocation)
    }

    /// A local broker's CPU comes from `/proc/PID/stat` of the process bench started, the client's from its own
    /// getrusage; both are per SEND_OK message in the JSON, the summary and the HTML report.
    @Test func producerReportsTheBrokersAndTheClientsCPUPerMessage() throws {
        let directory = TemporaryDirectory("bench-cpu")
        let json = directory.path + "/result.json", report = directory.path + "/report.html"
        let run = try bench(["producer", "-w", "4", "-s", "512", "--messages", "4000", "--json", json, "--report", report])
        #expect(run.status == 0, "\(run.output)")
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        positive(parsed, "broker_cpu_us_per_msg", text)
        positive(parsed, "client_cpu_us_per_msg", text)
        let user = parsed["client_cpu"]?["user_us"]?.int ?? -1, system = parsed["client_cpu"]?["sys_us"]?.int ?? -1
        let perMessage = parsed["client_cpu_us_per_msg"]?.double ?? 0
        #expect(abs(Double(user + system) / 4000 - perMessage) < 0.01, "user + sys over messages: \(text)")
        #expect(run.output.contains("CPU per message (us): broker "), "\(run.output)")
        #expect((readTextFile(report) ?? "").contains("server CPU µs/msg"))
    }

    /// With `-n` the broker is not a child: its CPU comes from GET_BROKER_RUNTIME_INFO's `cpuUserMicros` and
    /// `cpuSysMicros`. The consumer then reports born-to-consumed percentiles for what was sent.
    @Test func aRemoteBrokerAnswersItsCPUAndTheConsumerReportsEndToEndLatency() throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let directory = TemporaryDirectory("bench-remote-cpu")
        let json = directory.path + "/producer.json"
        let sent = try bench(["producer"] + n + ["-w", "2", "-s", "128", "--messages", "2000", "--json", json])
        #expect(sent.status == 0, "\(sent.output)")
        let text = readTextFile(json) ?? ""
        positive(try JSONValue.parse(text), "broker_cpu_us_per_msg", text)
        let consumerJSON = directory.path + "/consumer.json"
        let consumed = try bench(["consumer"] + n + ["-t", "BenchmarkTest", "-g", "E2EGroup", "--duration", "4", "--from-first",
                                                     "--json", consumerJSON])
        #expect(consumed.status == 0 && consumed.output.contains("End-to-end latency, born to consumed (ms):"), "\(consumed.output)")
        let parsed = try JSONValue.parse(readTextFile(consumerJSON) ?? "{}")
        #expect(parsed["messages"]?.int == 2001, "2000 and the warm-up: \(consumed.output)")
        let p50 = parsed["e2e_p50_us"]?.int ?? -1, p99 = parsed["e2e_p99_us"]?.int ?? -1, max = parsed["e2e_max_us"]?.int ?? -1
        #expect(p50 >= 0 && p50 <= p99 && p99 <= max && max > 0, "born-to-consumed percentiles in order: \(consumed.output)")
    }

    /// `--rate` sends on a schedule: the JSON has the target and the behind-schedule figures, and the achieved
    /// rate stays near the target instead of running as fast as the broker answers.
    @Test func producerAtAFixedRateReportsHowFarSendsFellBehind() throws {
        let directory = TemporaryDirectory("bench-rate")
        let json = directory.path + "/result.json"
        let run = try bench(["producer", "-w", "4", "-s", "256", "--duration", "3", "--rate", "300", "--json", json])
        #expect(run.status == 0, "\(run.output)")
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        #expect(parsed["target_rate"]?.double == 300, "\(text)")
        for key in ["behind_p50_us", "behind_p99_us", "behind_p999_us", "behind_max_us", "late_sends"] {
            #expect((parsed[key]?.int ?? -1) >= 0, "missing \(key) in \(text)")
        }
        #expect((parsed["scheduled_sends"]?.int ?? 0) >= 600, "about 900 sends due in 3 s: \(text)")
        let tps = parsed["tps"]?.double ?? 0
        #expect(tps > 200 && tps < 330, "held to about 300 msgs/s: \(text)")
        #expect(run.output.contains("Open loop: target 300 msgs/s"), "\(run.output)")
    }

    /// `bench redis` runs Debian's redis-server with the AOF on and counts XADD answers like sends; its CPU is
    /// the redis-server process's.
    @Test(.enabled(if: BenchMeasureCommandTests.redisInstalled, "redis-server is not installed (apt-get install redis-server)"))
    func redisPeerCountsXADDsAndReportsItsServersCPU() throws {
        let directory = TemporaryDirectory("bench-redis")
        let json = directory.path + "/redis.json"
        let run = try bench(["redis", "-w", "4", "-s", "256", "--duration", "2", "--fsync", "always", "--json", json])
        #expect(run.status == 0 && run.output.contains("Redis Streams (AOF always)"), "\(run.output)")
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        let ok = parsed["status_counts"]?["SEND_OK"]?.int ?? 0
        #expect(ok > 0 && parsed["messages"]?.int == ok && parsed["failed"]?.int == 0, "\(text)")
        positive(parsed, "broker_cpu_us_per_msg", text)
        positive(parsed, "client_cpu_us_per_msg", text)
    }

    /// `bench matrix --rates` runs each cell at each rate (the broker's and Redis's, everysec beside ASYNC_FLUSH)
    /// and draws latency against achieved rate; every cell's JSON line has both CPU figures and its target.
    @Test(.enabled(if: BenchMeasureCommandTests.redisInstalled, "redis-server is not installed (apt-get install redis-server)"))
    func matrixDrawsTheRateCurveBesideRedis() throws {
        let directory = TemporaryDirectory("bench-matrix-rates")
        let json = directory.path + "/cells.json", report = directory.path + "/matrix.html"
        let run = try bench(["matrix", "--sizes", "128", "--threads", "2", "--flush", "async", "--io", "mmap", "--duration", "1.5",
                             "--peer", "redis", "--rates", "400,200", "--json", json, "--report", report], seconds: 240)
        #expect(run.status == 0, "\(run.output)")
        let lines = (readTextFile(json) ?? "").split(separator: "\n")
        #expect(lines.count == 4, "2 modes x 2 rates: \(lines)")
        var targets: [String: [Double]] = [:]
        for line in lines {
            let parsed = try JSONValue.parse(String(line))
            positive(parsed, "broker_cpu_us_per_msg", String(line))
            positive(parsed, "client_cpu_us_per_msg", String(line))
            targets[parsed["io"]?.string ?? "?", default: []].append(parsed["target_rate"]?.double ?? 0)
        }
        #expect(targets == ["mmap": [200, 400], "redis-everysec": [200, 400]], "lowest rate first: \(targets)")
        let html = readTextFile(report) ?? ""
        #expect(html.contains("Send RT p99 vs achieved rate") && html.contains("Redis Streams (AOF everysec)"))
    }

    /// `bench store` measures itself against the ideal group commit (P records per write, one fdatasync) under
    /// sync flush and P threads of memcpy under async, and prints ratio = ours / baseline with both figures; under
    /// sync, also the CPU each costs per round.
    @Test func storePrintsItsRatioToTheCeilingsOfItsMode() throws {
        let sync = try bench(["store", "--io", "mmap", "--flush", "sync", "--producers", "4", "--messages", "2000", "--json"])
        #expect(sync.status == 0, "\(sync.output)")
        let line = sync.output.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? ""
        let parsed = try JSONValue.parse(line)
        #expect(parsed["baseline"]?.string?.contains("pwrite of 4 records + fdatasync") == true, "\(line)")
        positive(parsed, "baseline_tps", line)
        // The flush floor beside ours: the ideal's CPU per pwrite + fdatasync, and our flush threads' per flush.
        positive(parsed, "baseline_cpu_us_per_batch", line)
        positive(parsed, "flush_cpu_us_per_flush", line)
        let ratio = parsed["ratio"]?.double ?? 0, tps = parsed["tps"]?.double ?? 0, baseline = parsed["baseline_tps"]?.double ?? 1
        #expect(ratio > 0 && abs(ratio - tps / baseline) < 0.01, "\(line)")
        // Driven from durable callbacks: every put answered through the drivers' staged batches.
        let driven = try bench(["store", "--io", "mmap", "--flush", "sync", "--producers", "4", "--drivers", "2", "--messages", "2000", "--json"])
        let drivenLine = driven.output.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? ""
        let drivenParsed = try JSONValue.parse(drivenLine)
        #expect(driven.status == 0 && drivenParsed["messages"]?.double == 2000 && drivenParsed["failed"]?.double == 0, "\(driven.output)")
        let async = try bench(["store", "--io", "mmap", "--flush", "async", "--producers", "2", "--messages", "20000"])
        #expect(async.status == 0 && async.output.contains("baseline (2 threads: memcpy into a pre-faulted mapping): "), "\(async.output)")
        #expect(async.output.contains("ratio (ours / baseline): "), "\(async.output)")
    }

    /// `bench floor` measures the machine under the other benches: timer lateness, wake-up round trips, and durable
    /// rounds (time and CPU) with 1, 2 and 4 threads.
    @Test func floorPrintsTheMachinesFloors() throws {
        let run = try bench(["floor", "--seconds", "0.2", "--json"])
        #expect(run.status == 0, "\(run.output)")
        let line = run.output.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? ""
        let parsed = try JSONValue.parse(line)
        for key in ["timer_late_p99_us", "wake_rtt_p50_us", "wake_rtt_p999_us"] { positive(parsed, key, line) }
        for threads in [1, 2, 4] {
            for key in ["per_s", "p50_us", "cpu_us"] { positive(parsed, "rounds_\(threads)_\(key)", line) }
        }
        let refused = try bench(["floor", "--seconds", "0"])
        #expect(refused.status != 0 && refused.output.contains("--seconds"), "\(refused.output)")
    }
}
