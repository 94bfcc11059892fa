#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Client
import CommitLog
import Synchronization

/// `bench chaos`: a cluster of its own (a DLedger group of 3, or a master and its slave), a load at a fixed rate
/// with a unique key per send and every answer recorded, faults injected on a seeded schedule (printed, so a run
/// repeats), then everything read back and checked: acknowledged but never read (lost), read twice (duplicated),
/// and per fault the time from the first failed send to the first acknowledged one after it.
struct ChaosBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Inject faults (kill, suspend, partition, power, leader-kill, leader-suspend, leader-power) into a local cluster under load; count lost, duplicated, recovery time.")

    @Option(help: "dledger (a DLedger group of 3) or master-slave (a master and its slave)") var cluster = "dledger"
    @Option(help: "Faults, comma separated: \(FaultKind.allCases.map(\.rawValue).joined(separator: ","))") var faults = "kill,suspend"
    @Option(help: "Seconds between faults") var interval: Double = 10
    @Option(help: "Seconds a fault lasts before it is healed (default: half the interval)") var pause: Double?
    @Option(help: "Seconds of load (faults run inside it)") var duration: Double = 60
    @Option(help: "Sends per second (open loop)") var rate: Double = 200
    @Option(help: "Seed of the fault schedule (default: from the clock; printed either way)") var seed: UInt64?
    @Option(help: "master-slave: the master's role, sync (SYNC_MASTER) or async (ASYNC_MASTER)") var replication = "sync"
    @Option(help: "flushDiskType of every broker: async or sync") var flush = "async"
    @Option(help: "Send timeout, milliseconds (a send not answered by then is unknown)") var timeoutMillis: Int64 = 2_000
    @Option(help: "Queues of the topic") var queues = 4
    @Flag(help: "Orderly sends: one sender per queue, each send after the previous answer; order per queue is checked")
    var orderly = false
    @Option(help: "Write the result as JSON to this file") var json: String?
    @Option(help: "Write an HTML report (tables and a timeline) to this file") var report: String?
    @Option(help: "power faults: powerfs.py (default: Tests/powerloss/powerfs.py above this executable)") var powerfs: String?

    enum Kind: String { case dledger, masterSlave = "master-slave" }

    func validate() throws {
        guard Kind(rawValue: cluster) != nil else {
            throw ValidationError("--cluster must be dledger or master-slave, not \(cluster)")
        }
        let kinds = try FaultKind.parseList(faults)
        let replicationMode = try ReplicationMode.parse(replication)
        guard replicationMode != .none else { throw ValidationError("--replication must be sync or async (a master needs its slave here)") }
        _ = try parseFlush(flush)
        guard interval > 0, duration > 0, rate > 0, rate <= 20_000, timeoutMillis > 0, (1...64).contains(queues) else {
            throw ValidationError("--interval, --duration, --rate (at most 20000), --timeout-millis must be positive; --queues 1...64")
        }
        guard (pause ?? interval / 2) < interval else { throw ValidationError("--pause must be shorter than --interval") }
        if kinds.contains(.partition), let reason = NodeNetwork.unavailableReason() {
            throw ValidationError("--faults partition needs network namespaces, which are unavailable here: \(reason)")
        }
        if let power = kinds.first(where: \.cutsPower) {
            let reason: String?
            do { reason = try PowerFS.locate(script: powerfs).unavailableReason() } catch { reason = "\(error)" }
            if let reason { throw ValidationError("--faults \(power.rawValue) needs FUSE (powerfs), which is unavailable here: \(reason)") }
        }
    }

    func run() async throws {
        lineBufferedOutput()
        let kinds = try FaultKind.parseList(faults)
        let seed = seed ?? monotonicNanos() % 1_000_000
        let pause = pause ?? interval / 2
        let nodeNames = cluster == Kind.dledger.rawValue ? ["n0", "n1", "n2"] : ["master", "slave"]
        let plan = ChaosSchedule.make(seed: seed, kinds: kinds, interval: interval, pause: pause, duration: duration, nodes: nodeNames.count)
        print("Fault schedule (seed \(seed); repeat with --seed \(seed)):\n" + ChaosSchedule.describe(plan, names: nodeNames))
        let interrupt = InterruptHandler()
        let box = ClusterBox()
        interrupt.install { box.stop() }
        let power = kinds.contains(where: \.cutsPower)
        var powerfs: PowerFS?
        if power {
            powerfs = try PowerFS.locate(script: self.powerfs)
            powerfs?.seed = seed
            PowerMount.removeLeftovers()
        }
        let chaosCluster = try await startCluster(namespaces: kinds.contains(.partition), power: powerfs)
        box.hold(chaosCluster)
        defer { box.stop() }
        print("Started \(chaosCluster.label): NameServer \(chaosCluster.namesrvAddr), nodes "
              + chaosCluster.nodes.map(\.name).joined(separator: ", ") + (chaosCluster.network != nil ? " (each in its own network namespace \(chaosCluster.network!.prefix)n*)" : "")
              + (power ? " (each store on its own powerfs mount, \(powerfs!.script))" : "")
              + "; stores and logs in \(chaosCluster.directory)")
        let outcome = try await runLoad(chaosCluster, plan: plan, pause: pause, interrupted: interrupt.interrupted)
        let result = ChaosResult(label: chaosCluster.label, guarantee: chaosCluster.guarantee(power: power), seed: seed, kinds: kinds,
                                 plan: plan, outcome: outcome, settings: settingsLine(pause: pause, power: power))
        result.printText()
        if let json { writeFile(json, result.json) }
        if let report { writeFile(report, result.html); print("Report: \(report)") }
        box.stop()
        if result.brokePromise { throw ExitCode(1) }
    }

    private func startCluster(namespaces: Bool, power: PowerFS?) async throws -> ChaosCluster {
        if cluster == Kind.dledger.rawValue {
            return try await offPool { [flush] in try DLedgerBenchGroup(flush: flush, namespaces: namespaces, power: power) }
        }
        let shape = LocalCluster.Shape(flush: flush, io: "mmap", replication: try ReplicationMode.parse(replication))
        return try await LocalCluster(shape: shape, namespaces: namespaces, power: power)
    }

    private func settingsLine(pause: Double, power: Bool) -> String {
        "\(format(duration, 0)) s of load at \(format(rate, 0)) sends/s ("
            + (orderly ? "orderly: one sender per queue, each send after the previous answer" : "open loop")
            + ", no retries, \(timeoutMillis) ms timeout, "
            + "\(queues) queues); a fault every \(format(interval, 1)) s lasting \(format(pause, 1)) s"
            + (power ? "; every store on its own powerfs mount (keeps only what was fsynced, names only after an fsync of their "
                + "directory; a power cut also keeps a seeded torn prefix of one file's unsynced bytes)" : "")
    }

    /// The load with the faults inside it, then everything healed and read back.
    private func runLoad(_ cluster: ChaosCluster, plan: [PlannedFault], pause: Double, interrupted: StopFlag) async throws -> ChaosOutcome {
        let admin = Admin(namesrvAddr: cluster.namesrvAddr, timeoutMillis: 1_000)
        defer { Task { await admin.shutdown() } }
        let topic = "ChaosBench"
        try await cluster.createTopic(topic, queues: queues, admin: admin)
        let load = ChaosLoad(namesrvAddr: cluster.namesrvAddr, topic: topic, run: "c\(seed ?? 0)-\(getpid())", rate: rate,
                             timeoutMillis: timeoutMillis)
        let driving = Task { [orderly, queues] in
            if orderly { await load.driveOrderly(queues: queues) } else { await load.drive() }
        }
        try await poll(30, "a first acknowledged send") { load.okCount > 0 || interrupted.isSet }
        let started = monotonicNanos()
        let injector = ChaosInjector(cluster: cluster, admin: admin, started: started)
        for planned in plan {
            await sleepUntil( started + UInt64(planned.atSeconds * 1e9), interrupted: interrupted)
            if interrupted.isSet { break }
            try await injector.inject(planned, pause: pause, interrupted: interrupted)
        }
        await sleepUntil( started + UInt64(duration * 1e9), interrupted: interrupted)
        load.stop()
        await driving.value
        let ended = monotonicNanos()
        print("Load stopped after \(format(Double(ended - started) / 1e9, 1)) s; healing every node and waiting for the cluster to be whole")
        try await injector.healAll()
        try await cluster.waitWhole(admin, seconds: 120)
        let consumed = try await consumeAll(topic: topic, namesrvAddr: cluster.namesrvAddr, seconds: 120)
        await load.shutdown()
        let history = load.history
        let acknowledged = history.filter { $0.answer == .ok }.map(\.key)
        let outOfOrder = orderly ? ChaosCheck.outOfOrder(consumed) : nil
        let replicas = try cluster.stopAndReadLogs().map { ChaosCheck.replica($0.name, bodies: $0.bodies, acknowledged: acknowledged) }
        return ChaosOutcome(started: started, ended: ended, sends: history, consumed: consumed.map(\.key), reasons: load.reasonCounts,
                            outOfOrder: outOfOrder,
                            replicas: replicas, faults: injector.faults,
                            skippedFaults: injector.skipped, skippedSends: load.skipped.load(ordering: .relaxed),
                            interrupted: interrupted.isSet)
    }
}

/// The cluster, stoppable once from the run or from the interrupt handler.
final class ClusterBox: @unchecked Sendable {
    // @unchecked: `stop` runs under the mutex; the cluster is otherwise used by the run's task.
    private let lock = Mutex<Void>(())
    private var cluster: ChaosCluster?
    func hold(_ started: ChaosCluster) { lock.withLock { _ in cluster = started } }
    func stop() {
        lock.withLock { _ in
            cluster?.stop()
            cluster = nil
        }
    }
}

/// What a run measured, for `ChaosResult`.
struct ChaosOutcome {
    var started: UInt64
    var ended: UInt64
    var sends: [ChaosSend]
    var consumed: [String]
    /// Sends not acknowledged, by why (`ChaosLoad.reason`).
    var reasons: [String: Int] = [:]
    /// Orderly sends read back out of order, per queue (nil: the sends were not orderly).
    var outOfOrder: [Int32: Int]?
    /// Each broker's own commit log against the acknowledged keys, read from its files after the run.
    var replicas: [ReplicaCheck]
    var faults: [ChaosFault]
    var skippedFaults: [String]
    var skippedSends: Int
    var interrupted: Bool
}
