#if canImport(Glibc)
import Glibc
#endif
import Client
import CommitLog
import Common
import NIOPosix
import Remoting

/// A NameServer and a DLedger group of three brokers (`n0`..`n2`) as child processes beside this bench, on free
/// loopback ports, with fresh stores under one temporary directory.
final class DLedgerBenchGroup: @unchecked Sendable {
    // @unchecked: built on a Dispatch thread (its start-up blocks), then used by one task at a time.
    let directory: String
    let nameServerPort = freeLoopbackPort()
    let ports = (0..<3).map { _ in freeLoopbackPort() }
    /// Each member in a network namespace of its own (nil: all on loopback).
    let network: NodeNetwork?
    /// `ASYNC_FLUSH` or `SYNC_FLUSH`.
    let flushLabel: String
    private var nameServer: NodeProcess?
    /// The members n0, n1, n2.
    private(set) var members: [NodeProcess] = []
    var namesrvAddr: String { "\(network?.bridgeAddress ?? "127.0.0.1"):\(nameServerPort)" }
    func host(_ member: Int) -> String { network?.address(member) ?? "127.0.0.1" }
    func address(_ member: Int) -> String { "\(host(member)):\(ports[member])" }

    /// Writes the configs and starts the NameServer and the members; with `namespaces`, each member in a network
    /// namespace of its own (`NodeNetwork`) so that it can be partitioned; with `power`, each member's store on a
    /// powerfs mount of its own (`PowerMount`) so that its power can be cut. Stops what it started when a step fails.
    init(flush: String, extraConfig: String = "", namespaces: Bool = false, power: PowerFS? = nil) throws {
        flushLabel = flush == "sync" ? "SYNC_FLUSH" : "ASYNC_FLUSH"
        directory = makeTemporaryDirectory("bench-dledger")
        guard let nameServerBinary = siblingExecutable("mqnamesrv"), let brokerBinary = siblingExecutable("mqbroker") else {
            removeTree(directory)
            throw ValidationErrorText("mqnamesrv and mqbroker must be built beside bench (swift build -c release builds all three)")
        }
        do {
            network = namespaces ? try NodeNetwork(nodes: 3) : nil
        } catch {
            removeTree(directory)
            throw error
        }
        let network = network
        let peers = (0..<3).map { "n\($0)-\(network?.address($0) ?? "127.0.0.1"):\(freeLoopbackPort())" }.joined(separator: ";")
        writeFile(directory + "/namesrv.properties", "listenPort=\(nameServerPort)\n")
        for member in 0..<3 {
            writeFile(directory + "/n\(member).conf", """
                brokerClusterName=BenchCluster
                brokerName=broker-dledger
                brokerIP1=\(host(member))
                listenPort=\(ports[member])
                namesrvAddr=\(namesrvAddr)
                storePathRootDir=\(directory)/n\(member)
                flushDiskType=\(flushLabel)
                mappedFileSizeCommitLog=1073741824
                enableDLegerCommitLog=true
                dLegerGroup=broker-dledger
                dLegerPeers=\(peers)
                dLegerSelfId=n\(member)
                slaveSynchronizeInterval=1000
                \(extraConfig)

                """)
            members.append(NodeProcess(name: "n\(member)", arguments: [brokerBinary, "-c", directory + "/n\(member).conf"],
                                       logPrefix: directory + "/n\(member)", namespace: network?.namespace(member)))
            members[member].disk = power?.disk(forStore: "n\(member)", in: directory, node: member)
        }
        do {
            let nameServer = NodeProcess(name: "namesrv", arguments: [nameServerBinary, "-c", directory + "/namesrv.properties",
                                                                            "--logs-dir", directory + "/namesrv-logs"],
                                         logPrefix: directory + "/namesrv")
            self.nameServer = nameServer
            try nameServer.start()
            for member in members { try member.start() }
        } catch {
            stop()
            throw error
        }
    }

    /// The member that takes writes (not `excluding`), polled every 5 ms.
    func waitForLeader(_ admin: Admin, excluding: Int?, seconds: Double) async throws -> Int {
        var leader: Int?
        try await poll(seconds, "member taking writes") {
            for member in 0..<3 where member != excluding {
                if let status = try? await admin.dledgerStatus(address(member), timeoutMillis: 300), status.writable {
                    leader = member
                    return true
                }
            }
            return false
        }
        return leader!
    }

    /// Waits until every member but `leader` has copied `topic` from it.
    func waitUntilFollowersKnow(_ topic: String, leader: Int) async throws {
        let client = RemotingClient(group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { await client.close() } }
        try await poll(30, "topic \(topic) on the followers") {
            for member in 0..<3 where member != leader {
                let answer = try? await client.invoke(address(member), RemotingCommand(code: RequestCode.getAllTopicConfig, opaque: 0))
                guard (try? TopicConfigSerializeWrapper.decode(from: answer?.body))?.topicConfigTable[topic] != nil else { return false }
            }
            return true
        }
    }

    /// SIGKILL (reaped at once) or SIGSTOP.
    func fault(_ member: Int, stop: Bool) {
        if stop { members[member].suspend() } else { members[member].kill() }
    }

    /// SIGCONT, or a restart on the same store.
    func recover(_ member: Int, stop: Bool) throws {
        if stop { members[member].resume() } else { try members[member].start() }
    }

    /// Waits until `member` follows the leader and has applied what the leader had committed when the wait began.
    func waitForCatchUp(_ admin: Admin, member: Int, seconds: Double) async throws {
        let leader = try await waitForLeader(admin, excluding: member, seconds: seconds)
        let target = try await admin.dledgerStatus(address(leader)).committedIndex
        try await poll(seconds, "n\(member) catching up") {
            guard let status = try? await admin.dledgerStatus(address(member), timeoutMillis: 300) else { return false }
            return status.role == "follower" && status.leaderId != nil && status.appliedIndex >= target
        }
    }

    /// Waits until every member has applied everything its leader committed and wrote (no send is in flight).
    func waitForConvergence(_ admin: Admin, seconds: Double) async throws {
        try await poll(seconds, "the members converging") {
            var statuses: [DLedgerStatusBody] = []
            for member in 0..<3 {
                guard let status = try? await admin.dledgerStatus(address(member), timeoutMillis: 300) else { return false }
                statuses.append(status)
            }
            guard let leader = statuses.first(where: { $0.writable }) else { return false }
            return statuses.allSatisfy { $0.appliedIndex == leader.writtenIndex && $0.committedIndex == leader.writtenIndex }
        }
    }

    /// Every body in `member`'s commit log, read from its files (the member must be stopped).
    func bodies(of member: Int) throws -> [String] {
        try commitLogBodies(storePathRootDir: directory + "/n\(member)")
    }

    /// SIGTERM to the members (their stores stay for `bodies(of:)`).
    func stopGracefully() {
        for member in members { member.stop() }
    }

    /// Everything stopped, the powerfs mounts detached, the namespaces removed and the directory removed.
    func stop() {
        stopGracefully()
        for member in members { member.disk?.unmount() }
        nameServer?.stop(graceSeconds: 5)
        network?.teardown()
        removeTree(directory)
    }
}

/// Every body in the commit log under `storePathRootDir` (1 GiB files, as the bench's brokers write them), read
/// from its files in log order; the broker must be stopped.
func commitLogBodies(storePathRootDir: String) throws -> [String] {
    var settings = CommitLogSettings(storePathRootDir: storePathRootDir)
    settings.mappedFileSizeCommitLog = 1_073_741_824
    let log = try CommitLog(settings: settings)
    defer { log.close() }
    var bodies: [String] = []
    try log.forEachRecord(from: log.minOffset, checkCRC: false) { record in
        bodies.append(String(decoding: record.body, as: UTF8.self))
        return true
    }
    return bodies
}
