#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Client
import Common
import Remoting

/// How the local cluster replicates: one broker alone, a master and one slave of the same broker name, or a
/// DLedger group of three.
enum ReplicationMode: String, CaseIterable, Sendable {
    /// One broker (ASYNC_MASTER, the default role, with no slave).
    case none
    /// ASYNC_MASTER + a SLAVE: a send is answered once the master stored it; the slave copies behind.
    case async
    /// SYNC_MASTER + a SLAVE: a send is answered once the slave reported the message (or FLUSH_SLAVE_TIMEOUT).
    case sync
    /// A DLedger group of three (`n0`..`n2`): a send is answered once a quorum holds its entry.
    case dledger

    /// The master's `brokerRole`.
    var masterRole: String { self == .sync ? "SYNC_MASTER" : "ASYNC_MASTER" }
    /// In tables and chart legends: `no slave`, `ASYNC_MASTER+SLAVE`, `SYNC_MASTER+SLAVE`, `DLedger x3`.
    var label: String {
        switch self {
        case .none: "no slave"
        case .async, .sync: "\(masterRole)+SLAVE"
        case .dledger: "DLedger x3"
        }
    }

    static func parse(_ text: String) throws -> ReplicationMode {
        guard let mode = ReplicationMode(rawValue: text.lowercased()) else {
            throw ValidationErrorText("--replication must be none, async, sync or dledger, not \(text)")
        }
        return mode
    }

    /// Why this mode cannot run on `io` (DLedger's commit log is on mmap only), or nil.
    func refusal(io: String) -> String? {
        self == .dledger && io != "mmap" ? "a DLedger group runs on ioPath=mmap only (not \(io))" : nil
    }
}

/// A NameServer and a broker (with `replication` async or sync: a master and its slave) as real child
/// processes (the `mqnamesrv`/`mqbroker` built beside this `bench`), on free loopback ports, with fresh
/// temporary stores that are removed on `stop()`.
final class LocalCluster {
    struct Shape: Hashable, CustomStringConvertible {
        var flush: String  // "async" | "sync"
        var io: String  // "mmap" | "io_uring"
        var replication: ReplicationMode = .none
        /// `ASYNC_FLUSH/mmap`, without the replication mode.
        var storage: String {
            if flush == "peer" {
                if io.hasPrefix("redis-") { return "Redis Streams (AOF \(io.dropFirst(6)))" }
                return "NATS JetStream (file)"
            }
            return "\(flush == "sync" ? "SYNC_FLUSH" : "ASYNC_FLUSH")/\(io)"
        }
        /// `ASYNC_FLUSH/mmap, SYNC_MASTER+SLAVE`: the chart legends' and cell labels' name of the mode.
        var description: String { flush == "peer" ? storage : "\(storage), \(replication.label)" }
    }

    let shape: Shape
    let directory: String
    let nameServerPort: Int
    /// The broker's port (the master's when there is a slave; the first leader's in a DLedger group).
    let brokerPort: Int
    /// The slave's port (nil without a slave).
    let slavePort: Int?
    /// The DLedger group (`replication == .dledger`): it owns its NameServer, members and directory.
    private var group: DLedgerBenchGroup?
    /// The master (node 0) and the slave (node 1) each in a network namespace of its own (nil: loopback).
    let network: NodeNetwork?
    private var nameServer: NodeProcess?
    /// The broker (`master`) and, with replication, its `slave`.
    private(set) var brokers: [NodeProcess] = []
    var namesrvAddr: String { "\(network?.bridgeAddress ?? "127.0.0.1"):\(nameServerPort)" }
    func host(_ node: Int) -> String { network?.address(node) ?? "127.0.0.1" }
    var brokerAddress: String { "\(host(0)):\(brokerPort)" }
    /// The running broker processes (master and slave, or the DLedger members): a run's broker CPU is theirs.
    var brokerPIDs: [pid_t] { (group?.members ?? brokers).compactMap(\.pid) }

    /// Starts the NameServer, the broker and (with replication) the slave, then waits until the slave has
    /// connected to its master's HA port and reported (at most `slaveSeconds`), so the load meets a master
    /// with an in-sync slave. With `namespaces`, the brokers run in network namespaces (`NodeNetwork`) so that
    /// they can be partitioned. Everything started is stopped again when a step fails.
    /// With `power`, each broker's store is on a powerfs mount of its own (`PowerMount`).
    init(shape: Shape, extraConfig: String = "", slaveSeconds: Double = 30, namespaces: Bool = false, power: PowerFS? = nil) async throws {
        self.shape = shape
        if let refusal = shape.replication.refusal(io: shape.io) { throw ValidationErrorText(refusal) }
        if shape.replication == .dledger {
            // A partitionable DLedger group is `DLedgerBenchGroup(namespaces: true)` itself (bench chaos).
            guard !namespaces else { throw ValidationErrorText("a local DLedger cell runs on loopback only") }
            let group = try DLedgerBenchGroup(flush: shape.flush, extraConfig: extraConfig, power: power)
            self.group = group
            network = nil
            directory = group.directory
            nameServerPort = group.nameServerPort
            slavePort = nil
            let admin = Admin(namesrvAddr: group.namesrvAddr, timeoutMillis: 2_000)
            defer { Task { await admin.shutdown() } }
            do {
                let leader = try await group.waitForLeader(admin, excluding: nil, seconds: slaveSeconds)
                brokerPort = group.ports[leader]
                // Taking writes comes a moment before the NameServer lists the leader as master (brokerId 0).
                try await poll(slaveSeconds, "the leader registered as master") {
                    (try? await admin.clusterInfo())?.contains { $0.brokerID == 0 && $0.address == group.address(leader) } ?? false
                }
            } catch {
                group.stop()
                throw error
            }
            return
        }
        directory = makeTemporaryDirectory("bench-cluster")
        nameServerPort = freeLoopbackPort()
        brokerPort = freeLoopbackPort()
        slavePort = shape.replication == .none ? nil : freeLoopbackPort()
        guard let nameServerBinary = siblingExecutable("mqnamesrv"), let broker = siblingExecutable("mqbroker") else {
            removeTree(directory)
            throw ValidationErrorText("mqnamesrv and mqbroker must be built beside bench (swift build -c release builds all three)")
        }
        do {
            network = namespaces ? try NodeNetwork(nodes: shape.replication == .none ? 1 : 2) : nil
        } catch {
            removeTree(directory)
            throw error
        }
        writeFile(directory + "/namesrv.properties", "listenPort=\(nameServerPort)\n")
        nameServer = NodeProcess(name: "namesrv", arguments: [nameServerBinary, "-c", directory + "/namesrv.properties",
                                                              "--logs-dir", directory + "/namesrv-logs"],
                                 logPrefix: directory + "/namesrv")
        writeFile(directory + "/broker.conf", brokerConfig(port: brokerPort, brokerID: 0, role: shape.replication.masterRole,
                                                          store: "store", extraConfig: extraConfig))
        brokers.append(NodeProcess(name: "master", arguments: [broker, "-c", directory + "/broker.conf"], logPrefix: directory + "/broker",
                                   namespace: network?.namespace(0)))
        if let slavePort {
            writeFile(directory + "/slave.conf", brokerConfig(port: slavePort, brokerID: 1, role: "SLAVE", store: "slave-store",
                                                             extraConfig: extraConfig))
            brokers.append(NodeProcess(name: "slave", arguments: [broker, "-c", directory + "/slave.conf"], logPrefix: directory + "/slave",
                                       namespace: network?.namespace(1)))
        }
        for (index, (node, store)) in zip(brokers, ["store", "slave-store"]).enumerated() {
            node.disk = power?.disk(forStore: store, in: directory, node: index)
        }
        do {
            try nameServer?.start()
            for node in brokers { try node.start() }
            if slavePort != nil { try await waitForSlave(seconds: slaveSeconds) }
        } catch {
            stop()
            throw error
        }
    }

    /// One broker's `broker.conf`: the cluster's broker name, its own port, HA port (picked free: the
    /// default `listenPort + 1` may be taken) and store.
    private func brokerConfig(port: Int, brokerID: Int, role: String, store: String, extraConfig: String) -> String {
        let host = host(brokerID)
        return """
        brokerClusterName=BenchCluster
        brokerName=broker-bench
        brokerId=\(brokerID)
        brokerRole=\(role)
        brokerIP1=\(host)
        listenPort=\(port)
        haListenPort=\(freeLoopbackPort())
        namesrvAddr=\(namesrvAddr)
        storePathRootDir=\(directory)/\(store)
        flushDiskType=\(shape.flush == "sync" ? "SYNC_FLUSH" : "ASYNC_FLUSH")
        ioPath=\(shape.io)
        mappedFileSizeCommitLog=1073741824
        \(extraConfig)

        """
    }

    /// Polls the master's HA status (GET_BROKER_HA_STATUS) every 50 ms until a slave has reported and is
    /// in sync; throws with the slave's log when `seconds` pass first.
    func waitForSlave(seconds: Double) async throws {
        let admin = Admin(namesrvAddr: namesrvAddr, timeoutMillis: 2_000)
        defer { Task { await admin.shutdown() } }
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while monotonicNanos() < deadline {
            if let info = try? await admin.haStatus(brokerAddress),
               info.haConnectionInfo.contains(where: { $0.slaveAckOffset >= 0 && $0.inSync }) {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationErrorText("the slave did not connect to its master within \(format(seconds, 0)) s: "
                                  + (brokers.last.flatMap { readTextFile($0.log) } ?? ""))
    }

    /// SIGTERM to every child (slave, then master, then NameServer), SIGKILL after 15 s, then the powerfs mounts,
    /// the namespaces and the stores are removed.
    func stop() {
        group?.stop()
        group = nil
        for node in brokers.reversed() { node.stop() }
        for node in brokers { node.disk?.unmount() }
        nameServer?.stop(graceSeconds: 5)
        network?.teardown()
        removeTree(directory)
    }
}

func siblingExecutable(_ name: String) -> String? {
    var path = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &path, path.count - 1)
    guard n > 0 else { return nil }
    var directory = String(decoding: path[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while !directory.hasSuffix("/") && !directory.isEmpty { directory.removeLast() }
    return access(directory + name, X_OK) == 0 ? directory + name : nil
}

/// Starts `arguments` with stdout and stderr in `log` and waits (at most `seconds`) until the log shows
/// `readyText`. Roles it starts stop by themselves if this process dies (MQ_EXIT_WITH_PARENT). A child that
/// exits or does not get ready is stopped and reported with its log.
func spawnLogged(_ arguments: [String], log: String, readyText: String, seconds: Double) throws -> pid_t {
    setenv("MQ_EXIT_WITH_PARENT", "\(getpid())", 1)  // an interrupted bench leaves no broker behind
    let pid = try spawnProcess(arguments, output: log)
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    while monotonicNanos() < deadline {
        if let text = readTextFile(log), text.contains(readyText) { return pid }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            throw ValidationErrorText("\(arguments[0]) exited during start-up: \(readTextFile(log) ?? "")")
        }
        usleep(20_000)
    }
    stopChild(pid, graceSeconds: 5)
    throw ValidationErrorText("\(arguments[0]) did not start within \(format(seconds, 0)) s: \(readTextFile(log) ?? "")")
}

/// SIGTERM, then SIGKILL if `pid` has not exited after `graceSeconds`; reaps it.
func stopChild(_ pid: pid_t, graceSeconds: Double) {
    kill(pid, SIGTERM)
    let deadline = monotonicNanos() + UInt64(graceSeconds * 1e9)
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        if monotonicNanos() > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            return
        }
        usleep(10_000)
    }
}

/// Writes (or with `append`, appends) `text` to `path`.
func writeFile(_ path: String, _ text: String, append: Bool = false) {
    let fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
    guard fd >= 0 else { return }
    var text = text
    text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
