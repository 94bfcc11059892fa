#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Broker
import Client
import Common
import NameServer
import NIOCore
import NIOPosix
import Remoting
import Replication
import Synchronization
import Testing
import TestSupport

/// `bench producer` and `bench consumer` as users run them: real processes, the asked-for JSON keys,
/// every message sent is received, and every answer counted as what it is.
@Suite(.serialized) struct BenchCommandTests {
    static let statusNames = ["SEND_OK", "FLUSH_DISK_TIMEOUT", "FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE", "RESPONSE_FAILED", "SEND_FAILED"]

    func bench(_ arguments: [String], seconds: Double = 120) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        return try ChildProcess.run([binary] + arguments, seconds: seconds)
    }

    @Test func producerWithItsOwnClusterPrintsLinesPercentilesAndJSON() throws {
        let directory = TemporaryDirectory("bench-json")
        let json = directory.path + "/result.json"
        let run = try bench(["producer", "-w", "4", "-s", "128", "--messages", "3000", "--json", json])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("Started a local NameServer"))
        #expect(run.output.contains("Send RT (ms):  p50 ") && run.output.contains("p99.99"))
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        for key in ["tps", "mbps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "failed", "send_failed", "response_failed",
                    "status_counts", "failed_p50_us", "failed_p99_us", "failed_max_us", "messages"] {
            #expect(parsed[key] != nil, "missing \(key) in \(text)")
        }
        #expect(parsed["messages"]?.int == 3000 && parsed["failed"]?.int == 0, "\(text)")
        #expect(parsed["replication"]?.string == "none" && parsed["replication_lag_p99_ms"] == nil, "one broker, no lag: \(text)")
        if case .number(let tps)? = parsed["tps"] { #expect(tps > 0) } else { #expect(parsed["tps"]?.int ?? 0 > 0, "\(text)") }
        // Every status is in the JSON, zeros included; a healthy local broker answers SEND_OK to all 3000.
        for name in Self.statusNames {
            #expect(parsed["status_counts"]?[name]?.int == (name == "SEND_OK" ? 3000 : 0), "\(name) in \(text)")
        }
        #expect(run.output.contains("Send Failed: 0  Response Failed: 0  Flush Disk Timeout: 0  Flush Slave Timeout: 0  Slave Not Available: 0"),
                "\(run.output)")
        #expect(run.output.contains("Send status:  SEND_OK 3000  FLUSH_DISK_TIMEOUT 0  FLUSH_SLAVE_TIMEOUT 0  SLAVE_NOT_AVAILABLE 0  RESPONSE_FAILED 0  SEND_FAILED 0"),
                "\(run.output)")
    }

    /// `bench producer --replication sync` starts a SYNC_MASTER and its slave, and waits until the slave is in
    /// sync before sending: every send of a short run is then answered SEND_OK (each waited for the slave's
    /// report), the JSON names the mode, and the lag sampled from the master's HA status is in the JSON and
    /// the summary. The lag's values depend on timing; only their presence and sanity are checked.
    @Test func producerAgainstASyncMasterAndItsSlaveReportsTheModeAndTheLag() throws {
        let directory = TemporaryDirectory("bench-replication")
        let json = directory.path + "/result.json"
        let run = try bench(["producer", "--replication", "sync", "-w", "4", "-s", "1024", "--messages", "2000", "--json", json])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("Started a local NameServer") && run.output.contains(" + slave (127.0.0.1:"), "\(run.output)")
        #expect(run.output.contains("Replication: SYNC_MASTER+SLAVE"), "\(run.output)")
        #expect(run.output.contains("Replication lag (master's HA status every 100 ms"), "\(run.output)")
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        #expect(parsed["replication"]?.string == "sync", "\(text)")
        #expect(parsed["status_counts"]?["SEND_OK"]?.int == 2000 && parsed["messages"]?.int == 2000, "\(text)")
        for key in ["replication_lag_samples", "replication_lag_missed", "replication_lag_p50_ms", "replication_lag_p99_ms",
                    "replication_lag_max_ms", "replication_lag_p50_bytes", "replication_lag_p99_bytes", "replication_lag_max_bytes"] {
            #expect((parsed[key]?.int ?? -1) >= 0, "missing \(key) in \(text)")
        }
        #expect((parsed["replication_lag_p99_bytes"]?.int ?? 0) <= (parsed["replication_lag_max_bytes"]?.int ?? -1), "\(text)")
    }

    /// `bench producer --replication dledger` starts a DLedger group of three and loads it once the NameServer lists
    /// its leader as master; the mode is named in the lines and the JSON; io_uring is refused before anything starts.
    @Test func producerAgainstADLedgerGroupReportsTheModeAndRefusesIOURing() throws {
        let directory = TemporaryDirectory("bench-dledger")
        let json = directory.path + "/result.json"
        let run = try bench(["producer", "--replication", "dledger", "-w", "4", "-s", "256", "--messages", "500", "--json", json])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("DLedger group of 3 (leader 127.0.0.1:") && run.output.contains("Replication: DLedger x3"),
                "\(run.output)")
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        #expect(parsed["replication"]?.string == "dledger", "\(text)")
        #expect(parsed["status_counts"]?["SEND_OK"]?.int == 500 && parsed["messages"]?.int == 500, "\(text)")
        let refused = try bench(["producer", "--replication", "dledger", "--io", "io_uring", "--messages", "10"], seconds: 30)
        #expect(refused.status != 0 && refused.output.contains("a DLedger group runs on ioPath=mmap only"), "\(refused.output)")
    }

    /// Against an existing ASYNC_MASTER and its slave (`-n`), the bench finds the mode itself (the master's
    /// `brokerRole`, and a slave connected to it) and samples the lag as for a cluster it started.
    @Test func producerAgainstAnExistingMasterAndSlaveFindsTheModeAndSamplesTheLag() async throws {
        let cluster = try RunningGroup(masterRole: "ASYNC_MASTER")
        defer { cluster.stop() }
        let admin = Admin(namesrvAddr: cluster.namesrvAddr)
        let master = cluster.master.address
        #expect(await eventually(30) { (try? await admin.haStatus(master))?.haConnectionInfo.contains { $0.inSync } == true })
        await admin.shutdown()
        let directory = TemporaryDirectory("bench-detect")
        let json = directory.path + "/result.json"
        let address = cluster.namesrvAddr
        let run = try await offThePool {
            try bench(["producer", "-n", address, "-w", "4", "-s", "256", "--duration", "2", "--json", json], seconds: 90)
        }
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("replication ASYNC_MASTER+SLAVE"), "\(run.output)")
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        let ok = parsed["status_counts"]?["SEND_OK"]?.int ?? 0
        #expect(parsed["replication"]?.string == "async" && ok > 0 && parsed["failed"]?.int == 0, "\(text)")
        // Two seconds of load at one poll per 100 ms: about 20 polls (at least 5 even on a loaded machine).
        #expect((parsed["replication_lag_samples"]?.int ?? 0) >= 5 && parsed["replication_lag_p99_bytes"]?.int != nil, "\(text)")
    }

    /// An existing cluster replicates as it is configured: `--replication` with `-n` is refused before anything
    /// is sent, and says why.
    @Test func replicationWithAnExistingClusterIsRefused() throws {
        let run = try bench(["producer", "-n", "127.0.0.1:9", "--replication", "async", "--messages", "10"], seconds: 30)
        #expect(run.status != 0, "\(run.output)")
        #expect(run.output.contains("--replication starts a local cluster of that mode"), "\(run.output)")
    }

    /// Proves that only SEND_OK counts: a scripted broker (registered with a real NameServer) answers
    /// `bench producer`'s sends with a fixed mix: of every 6 sends 2 SEND_OK (at once) and one each of
    /// FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE and an error code (each after 200 ms),
    /// and it never answers one send (the 10 s timeout: SEND_FAILED). The JSON's counts must equal what the
    /// broker answered, `messages` and TPS must count SEND_OK only, and the failed sends' RT must sit in its
    /// own histogram: were the slow answers (two thirds) in the main one, its p50 would be at least 200 ms.
    @Test func producerCountsEveryAnswerAsWhatItIs() async throws {
        let nameServer = try RunningNameServer()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let broker = ScriptedBroker(slowAnswerMillis: 200, silentSend: 7)
        let server = try await RemotingServer(port: 0, group: group, processor: broker)
        let registrar = RemotingClient(group: group)
        let registered = try await registrar.invoke(nameServer.address, ScriptedBroker.registration(port: server.port))
        #expect(registered.code == ResponseCode.success)

        let directory = TemporaryDirectory("bench-statuses")
        let json = directory.path + "/result.json"
        let address = nameServer.address
        let run = try await offThePool {
            try bench(["producer", "-n", address, "-w", "8", "-s", "64", "--messages", "300", "--json", json], seconds: 90)
        }
        await registrar.close()
        try await server.close()
        try await group.shutdownGracefully()

        #expect(run.status == 0, "\(run.output)")
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        let answered = broker.answered.withLock { $0 }
        var total: Int64 = 0
        for name in Self.statusNames {
            let count = parsed["status_counts"]?[name]?.int
            #expect(count == Int64(answered[name] ?? 0), "\(name): bench \(String(describing: count)), broker \(answered) in \(text)")
            total += count ?? 0
        }
        #expect(total == 300, "every issued send is counted once: \(text)")
        #expect(answered["SEND_FAILED"] == 1 && answered["FLUSH_DISK_TIMEOUT"] ?? 0 >= 40, "\(answered)")
        let ok = parsed["status_counts"]?["SEND_OK"]?.int ?? -1
        #expect(parsed["messages"]?.int == ok, "messages are SEND_OK's: \(text)")
        #expect(parsed["failed"]?.int == 300 - ok, "\(text)")
        #expect(parsed["send_failed"]?.int == 1 && parsed["response_failed"]?.int == Int64(answered["RESPONSE_FAILED"] ?? 0), "\(text)")
        if let tps = parsed["tps"]?.double, let seconds = parsed["seconds"]?.double {
            #expect(abs(tps * seconds - Double(ok)) <= 1, "TPS counts SEND_OK only: \(text)")
        } else {
            Issue.record("no tps or seconds in \(text)")
        }
        #expect((parsed["p50_us"]?.int ?? .max) < 200_000, "the main histogram holds SEND_OK only: \(text)")
        #expect((parsed["failed_p50_us"]?.int ?? 0) >= 200_000, "failed sends' RT: \(text)")
        #expect((parsed["failed_max_us"]?.int ?? 0) >= 10_000_000, "the unanswered send waited for its timeout: \(text)")

        // The per-second lines and the summary show every status.
        let lines = run.output.split(separator: "\n").filter { $0.hasPrefix("Send TPS: ") }
        #expect(!lines.isEmpty, "\(run.output)")
        for line in lines {
            #expect(line.contains(" Max RT(ms): ") && line.contains(" Average RT(ms): ") && line.contains(" Send Failed: ")
                    && line.contains(" Response Failed: ") && line.contains(" Flush Disk Timeout: ")
                    && line.contains(" Flush Slave Timeout: ") && line.contains(" Slave Not Available: "), "\(line)")
        }
        let statusLine = "Send status:  " + Self.statusNames.map { "\($0) \(answered[$0] ?? 0)" }.joined(separator: "  ")
        #expect(run.output.contains(statusLine), "\(statusLine) in \(run.output)")
        #expect(run.output.contains("Flush Disk Timeout: \(answered["FLUSH_DISK_TIMEOUT"] ?? 0)  "), "\(run.output)")
    }

    static var natsInstalled: Bool {
        let candidates: [String] = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        return candidates.contains { access($0, X_OK) == 0 }
    }

    /// The NATS peer under the producer's conditions: async mode with a window, every publish counted by
    /// status in the same JSON (a JetStream ack is SEND_OK). Runs where `scripts/setup.sh nats` installed
    /// nats-server (`make bench-matrix` does); elsewhere it is skipped, and says so.
    @Test(.enabled(if: BenchCommandTests.natsInstalled, "nats-server is not installed (scripts/setup.sh nats installs it)"))
    func natsPeerRunsAsyncAndCountsByStatus() throws {
        let directory = TemporaryDirectory("bench-nats")
        let json = directory.path + "/nats.json"
        let run = try bench(["nats", "-w", "2", "-s", "64", "--duration", "2", "--mode", "async", "--window", "4", "--json", json])
        #expect(run.status == 0, "\(run.output)")
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        #expect(parsed["mode"]?.string == "async", "\(text)")
        for name in Self.statusNames { #expect(parsed["status_counts"]?[name]?.int != nil, "\(name) in \(text)") }
        let ok = parsed["status_counts"]?["SEND_OK"]?.int ?? 0
        #expect(ok > 0 && parsed["messages"]?.int == ok, "\(text)")
        #expect(run.output.contains("Flush Disk Timeout: 0  Flush Slave Timeout: 0  Slave Not Available: 0"), "\(run.output)")
    }

    @Test func consumerReceivesWhatTheProducerSent() throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let sent = try bench(["producer"] + n + ["-w", "2", "-s", "64", "--messages", "500", "--mode", "async"])
        #expect(sent.status == 0, "\(sent.output)")
        let directory = TemporaryDirectory("bench-consumer")
        let json = directory.path + "/consumer.json"
        let consumed = try bench(["consumer"] + n + ["-t", "BenchmarkTest", "-g", "BenchGroup", "--duration", "4", "--from-first", "--json", json])
        #expect(consumed.status == 0, "\(consumed.output)")
        #expect(consumed.output.contains("Consume TPS: "))
        let parsed = try JSONValue.parse(readTextFile(json) ?? "{}")
        // 500 plus the producer's one warm-up message.
        #expect(parsed["messages"]?.int == 501, "\(consumed.output)")
    }

    /// Runs a blocking call (waiting on a child process) on a thread of its own, not a cooperative one.
    func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let thread = Mutex<StoreThread?>(nil)
        let value = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let started = StoreThread(name: "bench-child") { continuation.resume(with: Result { try body() }) }
            thread.withLock { $0 = started }
        }
        thread.withLock { $0 }?.join()
        return value
    }
}

/// A broker that answers SEND requests from a script and counts what it answered (by the bench's status
/// names). The first send (the bench's warm-up) gets SEND_OK and is not counted. After it, send n gets, by
/// n % 6: SEND_OK, FLUSH_DISK_TIMEOUT, SEND_OK, FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE, MESSAGE_ILLEGAL (an
/// error code the producer does not retry); every answer but SEND_OK comes after `slowAnswerMillis`. Send
/// number `silentSend` gets no answer at all. Anything else (heartbeats) gets SUCCESS.
final class ScriptedBroker: RemotingProcessor {
    let slowAnswerMillis: Int64
    let silentSend: Int
    let sends = Atomic<Int>(0)
    let answered = Mutex<[String: Int]>([:])

    init(slowAnswerMillis: Int64, silentSend: Int) {
        self.slowAnswerMillis = slowAnswerMillis
        self.silentSend = silentSend
    }

    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        guard RequestCode.isSend(request.code) else {
            return context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.success))
        }
        let number = sends.wrappingAdd(1, ordering: .relaxed).oldValue
        if number == 0 { return context.eventLoop.makeSucceededFuture(Self.stored(request, offset: 0)) }
        if number == silentSend {
            answered.withLock { $0["SEND_FAILED", default: 0] += 1 }
            return context.eventLoop.makeSucceededFuture(nil)
        }
        let (name, code): (String, Int32) = switch number % 6 {
        case 0, 2: ("SEND_OK", ResponseCode.success)
        case 1: ("FLUSH_DISK_TIMEOUT", ResponseCode.flushDiskTimeout)
        case 3: ("FLUSH_SLAVE_TIMEOUT", ResponseCode.flushSlaveTimeout)
        case 4: ("SLAVE_NOT_AVAILABLE", ResponseCode.slaveNotAvailable)
        default: ("RESPONSE_FAILED", ResponseCode.messageIllegal)
        }
        answered.withLock { $0[name, default: 0] += 1 }
        if code == ResponseCode.success { return context.eventLoop.makeSucceededFuture(Self.stored(request, offset: number)) }
        let response: RemotingCommand = code == ResponseCode.messageIllegal
            ? .response(to: request, code: code, remark: "scripted error answer")
            : Self.stored(request, offset: number, code: code)
        return context.eventLoop.scheduleTask(in: .milliseconds(slowAnswerMillis)) { Optional(response) }.futureResult
    }

    /// A SEND answer as the broker gives it: the code (SUCCESS or a stored-but-not-confirmed status) and
    /// where the message went.
    static func stored(_ request: RemotingCommand, offset: Int, code: Int32 = ResponseCode.success) -> RemotingCommand {
        .response(to: request, code: code, extFields: [
            "msgId": "7F00000100002A9F" + String(repeating: "0", count: 16), "queueId": "0", "queueOffset": "\(offset)"])
    }

    /// REGISTER_BROKER for `broker-scripted` at 127.0.0.1:`port` with topic BenchmarkTest (8 queues).
    static func registration(port: Int) -> RemotingCommand {
        let topic = "{\"order\":false,\"perm\":6,\"readQueueNums\":8,\"topicFilterType\":\"SINGLE_TAG\",\"topicName\":\"BenchmarkTest\","
            + "\"topicSysFlag\":0,\"writeQueueNums\":8}"
        let body = "{\"filterServerList\":[],\"topicConfigSerializeWrapper\":{\"dataVersion\":{\"counter\":1,\"timestamp\":1700000000000},"
            + "\"topicConfigTable\":{\"BenchmarkTest\":\(topic)}}}"
        let crc = Array(body.utf8).withUnsafeBytes { rocketCRC32($0) }
        return RemotingCommand(code: RequestCode.registerBroker, opaque: 0, extFields: [
            "brokerName": "broker-scripted", "brokerAddr": "127.0.0.1:\(port)", "clusterName": "DefaultCluster",
            "haServerAddr": "127.0.0.1:\(port + 1)", "brokerId": "0", "compressed": "false", "bodyCrc32": "\(crc)"],
            body: ByteBuffer(string: body))
    }
}
