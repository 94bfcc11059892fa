#if canImport(Glibc)
import Glibc
#endif
import Client
import CommitLog
import Common
import NIOCore
import NIOPosix
import Remoting
import Synchronization
import Testing
import TestSupport

/// A DLedger group of three real mqbroker processes on one NameServer.
final class RunningDLedgerGroup {
    let nameServer: RunningNameServer
    let members: [RunningBroker]
    var namesrvAddr: String { nameServer.address }

    init(brokerName: String = "broker-d", extraConfig: String = "") throws {
        nameServer = try RunningNameServer()
        let peerPorts = (0..<3).map { _ in freePort() }
        let peers = peerPorts.enumerated().map { "n\($0.offset)-127.0.0.1:\($0.element)" }.joined(separator: ";")
        var members: [RunningBroker] = []
        for index in 0..<3 {
            members.append(try RunningBroker(nameServers: [nameServer], brokerName: brokerName, startNow: false, extraConfig: """
                enableDLegerCommitLog=true
                dLegerGroup=\(brokerName)
                dLegerPeers=\(peers)
                dLegerSelfId=n\(index)
                slaveSynchronizeInterval=1000
                \(extraConfig)
                """))
        }
        self.members = members
        for member in members { try member.start() }
    }

    func stop() {
        for member in members { _ = member.process?.terminate() }
    }

    /// The member that takes writes, once exactly one of those answering does (bounded by `seconds`).
    func writableMember(_ admin: Admin, among candidates: [RunningBroker]? = nil, seconds: Double = 20) async -> RunningBroker? {
        var found: RunningBroker?
        _ = await eventually(seconds) {
            var writable: [RunningBroker] = []
            for member in candidates ?? members {
                if let status = try? await admin.dledgerStatus(member.address), status.writable { writable.append(member) }
            }
            found = writable.count == 1 ? writable[0] : nil
            return found != nil
        }
        return found
    }

    /// Every body in a stopped member's commit log, in log order (read from its files).
    func bodies(of member: RunningBroker) throws -> [String] {
        var settings = CommitLogSettings(storePathRootDir: member.directory.path + "/store")
        settings.mappedFileSizeCommitLog = 16_777_216
        settings.maxMessageSize = 65_536
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        var bodies: [String] = []
        try log.forEachRecord(from: log.minOffset) { record in
            bodies.append(String(decoding: record.body, as: UTF8.self))
            return true
        }
        return bodies
    }
}

/// What concurrent senders saw: each acknowledged body and when.
final class SendLog: Sendable {
    let acknowledged = Mutex<[(body: String, at: UInt64)]>([])
    let stopping = Atomic<Bool>(false)
    var count: Int { acknowledged.withLock { $0.count } }
    func firstAck(after time: UInt64) -> UInt64? { acknowledged.withLock { $0.first { $0.at > time }?.at } }
    var bodies: [String] { acknowledged.withLock { $0.map(\.body) } }
}

/// A DLedger group of three mqbroker processes with the Swift client sending from 8 tasks: the leader is killed
/// (SIGKILL) or stopped (SIGSTOP); a new leader is elected, sends resume, and once the old leader is back as a
/// follower every member's log holds every acknowledged message exactly once, byte for byte the same log.
@Suite(.serialized) struct DLedgerClusterTests {
    enum Fault { case kill, stop }

    func producer(_ namesrvAddr: String) -> Producer {
        var settings = Producer.Settings()
        settings.group = "PG-dledger"
        settings.retryTimesWhenSendFailed = 0
        settings.sendLatencyFaultEnable = false
        settings.sendMsgTimeoutMillis = 1_500
        let producer = Producer(config: ClientConfig(namesrvAddr: namesrvAddr), settings: settings)
        producer.start()
        return producer
    }

    /// Senders that stop when told; every body is sent once (no retries), so an acknowledged body appears once.
    func startSenders(_ producer: Producer, _ log: SendLog, topic: String) -> [Task<Void, Never>] {
        (0..<8).map { sender in
            Task {
                var sequence = 0
                while !log.stopping.load(ordering: .relaxed) {
                    let body = "s\(sender)-\(sequence)"
                    sequence += 1
                    if (try? await producer.send(Message(topic: topic, body: body)))?.status == .sendOK {
                        log.acknowledged.withLock { $0.append((body, monotonicNanos())) }
                    } else {
                        try? await Task.sleep(for: .milliseconds(10))  // a refused send: do not spin while there is no leader
                    }
                }
            }
        }
    }

    /// Waits until every follower copied `topic` from the leader (once per sync period).
    func followersKnow(_ topic: String, _ group: RunningDLedgerGroup, leader: RunningBroker) async -> Bool {
        let client = RemotingClient(group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { await client.close() } }
        return await eventually(15) {
            for member in group.members where member !== leader {
                let topics = try? await client.invoke(member.address, RemotingCommand(code: RequestCode.getAllTopicConfig, opaque: 0))
                guard (try? TopicConfigSerializeWrapper.decode(from: topics?.body))?.topicConfigTable[topic] != nil else { return false }
            }
            return true
        }
    }

    func failover(_ fault: Fault) async throws {
        let group = try RunningDLedgerGroup()
        defer { group.stop() }
        let admin = Admin(namesrvAddr: group.namesrvAddr)
        let old = try #require(await group.writableMember(admin), "a leader is elected")
        let topic = "Failover"
        _ = try await admin.updateTopic(topic, brokerAddr: old.address, cluster: nil, readQueueNums: 4, writeQueueNums: 4,
                                        perm: .readWrite, order: false)
        #expect(await followersKnow(topic, group, leader: old))
        let producer = self.producer(group.namesrvAddr)
        let log = SendLog()
        let senders = startSenders(producer, log, topic: topic)
        #expect(await eventually(30) { log.count >= 300 }, "sends to the first leader")
        let oldPID = try #require(old.process?.pid)
        let faultAt = monotonicNanos()
        switch fault {
        case .kill: old.process?.killHard()
        case .stop: kill(oldPID, SIGSTOP)
        }
        let countAtFault = log.count
        let others = group.members.filter { $0 !== old }
        let new = try #require(await group.writableMember(admin, among: others), "a new leader is elected")
        let electedAfter = Double(monotonicNanos() - faultAt) / 1e6
        #expect(await eventually(30) { log.count >= countAtFault + 300 }, "sends resume on the new leader")
        let firstSendAfter = Double((log.firstAck(after: faultAt + 1) ?? monotonicNanos()) - faultAt) / 1e6
        print("dledger \(fault): new leader after \(Int(electedAfter)) ms, first acknowledged send after \(Int(firstSendAfter)) ms")
        log.stopping.store(true, ordering: .relaxed)
        for sender in senders { await sender.value }
        await producer.shutdown()
        switch fault {
        case .kill: try old.start()
        case .stop: kill(oldPID, SIGCONT)
        }
        // The old leader rejoins as a follower of the new term and ends where the others do.
        #expect(await eventually(30) {
            guard let status = try? await admin.dledgerStatus(old.address), let leading = try? await admin.dledgerStatus(new.address) else { return false }
            let ends = await Set(group.members.asyncMap { member in
                Dictionary((try? await admin.brokerRuntimeInfo(member.address)) ?? [], uniquingKeysWith: { a, _ in a })["commitLogMaxOffset"] ?? "?"
            })
            return status.role == "follower" && status.term == leading.term && ends.count == 1
        }, "the old leader follows the new one and holds the same log")
        await admin.shutdown()
        group.stop()
        let acknowledged = log.bodies
        let logs = try group.members.map { try group.bodies(of: $0) }
        for (member, bodies) in zip(group.members, logs) {
            let counts = Dictionary(bodies.map { ($0, 1) }, uniquingKeysWith: +)
            let wrong = acknowledged.filter { counts[$0] != 1 }
            #expect(wrong.isEmpty, "\(member.address): \(wrong.count) of \(acknowledged.count) acknowledged messages missing or repeated")
        }
        #expect(logs.allSatisfy { $0 == logs[0] }, "every member holds the same log")
    }

    @Test func killingTheLeaderElectsANewOneSendsResumeAndNoAcknowledgedMessageIsLost() async throws {
        try await failover(.kill)
    }

    @Test func stoppingTheLeaderElectsANewOneSendsResumeAndTheOldOneRejoinsAsFollower() async throws {
        try await failover(.stop)
    }

    @Test func mqadminShowsTheGroupAndHandsLeadershipToANamedMember() async throws {
        let group = try RunningDLedgerGroup(brokerName: "broker-t")
        defer { group.stop() }
        let admin = Admin(namesrvAddr: group.namesrvAddr)
        let leader = try #require(await group.writableMember(admin))
        let mqadmin = try #require(builtExecutable("mqadmin"))
        let shown = try ChildProcess.run([mqadmin, "dledgerStatus", "-n", group.namesrvAddr, "-b", "broker-t"])
        #expect(shown.status == 0, "\(shown.output)")
        let rows = shown.output.split(separator: "\n").filter { $0.hasPrefix("n") }
        #expect(rows.count == 3, "\(shown.output)")
        #expect(rows.filter { $0.contains(" leader ") }.count == 1, "\(shown.output)")
        let leaderStatus = try await admin.dledgerStatus(leader.address)
        let target = ["n0", "n1", "n2"].first { $0 != leaderStatus.selfId }!
        let moved = try ChildProcess.run([mqadmin, "leadershipTransfer", "-n", group.namesrvAddr, "-b", "broker-t", "-t", target])
        #expect(moved.status == 0, "\(moved.output)")
        #expect(moved.output.contains("\(target) ("), "\(moved.output)")
        let now = try #require(await group.writableMember(admin))
        #expect(try await admin.dledgerStatus(now.address).selfId == target)
        await admin.shutdown()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var results: [T] = []
        for element in self { results.append(await transform(element)) }
        return results
    }
}
