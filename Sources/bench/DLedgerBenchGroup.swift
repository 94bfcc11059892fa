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
final class DLedgerBenchGroup {
    let directory: String
    let nameServerPort = freeLoopbackPort()
    let ports = (0..<3).map { _ in freeLoopbackPort() }
    private var nameServer: pid_t = 0
    private var members: [pid_t?] = [nil, nil, nil]
    private var starts = 0
    var namesrvAddr: String { "127.0.0.1:\(nameServerPort)" }
    func address(_ member: Int) -> String { "127.0.0.1:\(ports[member])" }

    init(flush: String, extraConfig: String = "") throws {
        directory = makeTemporaryDirectory("bench-dledger")
        guard let nameServerBinary = siblingExecutable("mqnamesrv"), siblingExecutable("mqbroker") != nil else {
            throw ValidationErrorText("mqnamesrv and mqbroker must be built beside bench (swift build -c release builds all three)")
        }
        let peers = (0..<3).map { "n\($0)-127.0.0.1:\(freeLoopbackPort())" }.joined(separator: ";")
        writeFile(directory + "/namesrv.properties", "listenPort=\(nameServerPort)\n")
        for member in 0..<3 {
            writeFile(directory + "/n\(member).conf", """
                brokerClusterName=BenchCluster
                brokerName=broker-dledger
                brokerIP1=127.0.0.1
                listenPort=\(ports[member])
                namesrvAddr=\(namesrvAddr)
                storePathRootDir=\(directory)/n\(member)
                flushDiskType=\(flush == "sync" ? "SYNC_FLUSH" : "ASYNC_FLUSH")
                mappedFileSizeCommitLog=1073741824
                enableDLegerCommitLog=true
                dLegerGroup=broker-dledger
                dLegerPeers=\(peers)
                dLegerSelfId=n\(member)
                slaveSynchronizeInterval=1000
                \(extraConfig)

                """)
        }
        do {
            nameServer = try spawnLogged([nameServerBinary, "-c", directory + "/namesrv.properties", "--logs-dir", directory + "/namesrv-logs"], log: directory + "/namesrv.log",
                                         readyText: "boot success", seconds: 30)
            for member in 0..<3 { try start(member) }
        } catch {
            stop()
            throw error
        }
    }

    private func start(_ member: Int) throws {
        starts += 1
        members[member] = try spawnLogged([siblingExecutable("mqbroker")!, "-c", directory + "/n\(member).conf"],
                                          log: directory + "/n\(member)-\(starts).log", readyText: "boot success", seconds: 30)
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
        guard let pid = members[member] else { return }
        if stop {
            kill(pid, SIGSTOP)
        } else {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            members[member] = nil
        }
    }

    /// SIGCONT, or a restart on the same store.
    func recover(_ member: Int, stop: Bool) throws {
        if stop, let pid = members[member] {
            kill(pid, SIGCONT)
        } else {
            try start(member)
        }
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
        var settings = CommitLogSettings(storePathRootDir: directory + "/n\(member)")
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

    /// SIGTERM to the members (their stores stay for `bodies(of:)`).
    func stopGracefully() {
        for (member, pid) in members.enumerated() {
            guard let pid else { continue }
            kill(pid, SIGCONT)
            stopChild(pid, graceSeconds: 15)
            members[member] = nil
        }
    }

    /// Everything stopped and the directory removed.
    func stop() {
        stopGracefully()
        if nameServer != 0 { stopChild(nameServer, graceSeconds: 5) }
        nameServer = 0
        removeTree(directory)
    }
}
