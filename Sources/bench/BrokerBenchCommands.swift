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
    @Option(help: "Open loop: send this many messages per second in all on a fixed schedule, each send timed from when it was due")
    var rate: Double?
    @Option(help: "Open loop: sends due within this many microseconds of the send timer firing go out with it, sharing one write (default: 50, Linux's default timer slack)")
    var timerSlackUs: Int?
    @Flag(help: "Also measure the machine's own hiccups: how late a thread sleeping 1 ms at a time wakes during the run (the floor under any RT percentile)")
    var hiccups = false
    @Option(help: "The client's event-loop scheduler slice in microseconds (0: the kernel's default, else 100...100000; Linux 6.12+)")
    var eventLoopSliceUs = ClientConfig.eventLoopSliceMicrosDefault

    func validate() throws {
        guard threads > 0, size > 0, batch > 0, window > 0 else { throw ValidationError("-w, -s, --batch and --window must be positive") }
        if let rate { guard rate > 0, rate.isFinite else { throw ValidationError("--rate must be a positive number of messages per second") } }
        if let timerSlackUs {
            guard rate != nil else { throw ValidationError("--timer-slack-us paces an open loop: give --rate too") }
            guard (0...10_000).contains(timerSlackUs) else { throw ValidationError("--timer-slack-us must be 0...10000") }
        }
        guard eventLoopSliceUs == 0 || ThreadSlice.microsRange.contains(Int64(eventLoopSliceUs)) else {
            throw ValidationError("--event-loop-slice-us must be 0 or 100...100000")
        }
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
        let serverCPU: ServerCPUSource
        if let namesrvAddr {
            address = namesrvAddr
            setup = await ReplicationSetup.detect(namesrvAddr: namesrvAddr, credentials: credentials.value)
            serverCPU = .brokers(namesrvAddr: namesrvAddr)
        } else {
            let mode = try ReplicationMode.parse(replication ?? "none")
            let local = try await LocalCluster(shape: .init(flush: flush, io: io, replication: mode))
            cluster = local
            address = local.namesrvAddr
            setup = ReplicationSetup(mode, master: local.brokerAddress)
            serverCPU = .processes(local.brokerPIDs)
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
        load.serverCPU = serverCPU
        load.rate = rate
        load.hiccups = hiccups
        load.eventLoopSliceMicros = eventLoopSliceUs
        if let timerSlackUs { load.timerSlackNanos = UInt64(timerSlackUs) * 1_000 }
        print("bench producer: topic \(topic), \(threads) threads, \(size) B bodies, mode \(effectiveMode)\(batch > 1 ? ", batch \(batch)" : "")"
              + (load.durationSeconds.map { ", \(format($0, 0)) s" } ?? "") + (messages.map { ", \($0) messages" } ?? "")
              + ", replication \(setup.label)" + (rate.map { ", open loop at \(format($0, 0)) msgs/s" } ?? ""))
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
