#if canImport(Glibc)
import Glibc
#endif
import Client
import CommitLog
import Common
import Testing
import TestSupport

/// A DLedger group of three on three simulated hosts (a NameServer on h1, members n0..n2 on h2..h4, the test the
/// client host): the leader's host is cut off under load, and DESIGN.md's promise for a partitioned DLedger leader
/// holds: another member takes over (registers as master) and sends go on; once the link is back the old leader rejoins
/// as a follower, and every message the group acknowledged SEND_OK is read back.
@Suite(.serialized) struct MultiHostDLedgerTests {
    @Test(.enabled(if: SimulatedHosts.available, "needs root and iproute2 to make network namespaces"))
    func aDLedgerLeaderCutOffIsReplacedAndRejoinsAsFollowerWithNothingAcknowledgedLost() async throws {
        let hosts = try SimulatedHosts(count: 4)
        let namesrvAddr = try startGroup(on: hosts)
        let admin = Admin(namesrvAddr: namesrvAddr, timeoutMillis: 1_000)
        defer { Task { await admin.shutdown() } }
        var leader = ""
        #expect(await eventually(30) {
            let members = (try? await admin.clusterInfo()) ?? []
            leader = members.first { $0.brokerID == 0 }?.address ?? ""
            return members.count == 3 && !leader.isEmpty
        }, "the three members register, one of them as master")
        let leaderHost = try #require(Int(leader.split(separator: ":")[0].split(separator: ".").last ?? ""))

        var config = ClientConfig(namesrvAddr: namesrvAddr)
        config.pollNameServerIntervalMillis = 1_000
        config.timeoutMillis = 2_000
        var settings = Producer.Settings()
        settings.group = "PG-raft-hosts"
        settings.sendMsgTimeoutMillis = 2_000
        let producer = Producer(config: config, settings: settings)
        producer.start()
        defer { Task { await producer.shutdown() } }

        let load = HostLoad()
        let senders = load.start(producer, senders: 2)
        #expect(await eventually(30) { load.acknowledged.count >= 20 }, "the group takes sends (topic auto-created)")
        try hosts.cut(leaderHost)
        let cutAt = monotonicNanos()
        load.cutAt.store(cutAt, ordering: .releasing)
        var successor = ""
        let tookOver = await eventually(20) {
            successor = ((try? await admin.clusterInfo()) ?? []).first { $0.brokerID == 0 }?.address ?? ""
            return !successor.isEmpty && successor != leader
        }
        let electedMillis = (monotonicNanos() - cutAt) / 1_000_000
        #expect(tookOver, "another member registers as master while \(leader) is cut off")
        let continued = await eventually(30) { load.acknowledged.filter(\.startedAfterCut).count >= 20 }
        print("multi-host DLedger: \(successor) registered as master \(electedMillis) ms after \(leader)'s host was cut; "
              + "\(load.acknowledged.filter(\.startedAfterCut).count) sends started after the cut acknowledged "
              + "within \((monotonicNanos() - cutAt) / 1_000_000) ms")
        #expect(continued, "sends go on with the new leader")
        load.stopped.store(true, ordering: .releasing)
        for sender in senders { await sender.value }

        try hosts.heal(leaderHost)
        #expect(await eventually(30) {
            guard let old = try? await admin.dledgerStatus(leader, timeoutMillis: 1_000),
                  let new = try? await admin.dledgerStatus(successor, timeoutMillis: 1_000) else { return false }
            return old.role == "follower" && old.committedIndex == new.committedIndex
        }, "the old leader rejoins as a follower and catches up")

        let acknowledged = Set(load.acknowledged.map(\.body))
        var read = Set<String>()
        let complete = await eventually(20) {
            read = (try? await readAllHostTopic(config, brokers: ["RaftNode00"])) ?? []
            return acknowledged.isSubset(of: read)
        }
        #expect(complete, "no acknowledged message is lost: \(acknowledged.subtracting(read).sorted().prefix(10)) missing")
        withExtendedLifetime(hosts) {}
    }

    /// A NameServer on h1 and DLedger members n0..n2 on h2..h4, each bound to its host's address.
    func startGroup(on hosts: SimulatedHosts) throws -> String {
        let namesrvAddr = "\(hosts.address(1)):9876"
        try hosts.start("mqnamesrv", on: 1, config: "listenPort=9876\nscanNotActiveBrokerInterval=200\nbrokerChannelExpiredTime=3000\n")
        let peers = (0..<3).map { "n\($0)-\(hosts.address($0 + 2)):40911" }.joined(separator: ";")
        for member in 0..<3 {
            try hosts.start("mqbroker", on: member + 2, config: """
                brokerClusterName=RaftCluster
                brokerName=RaftNode00
                brokerIP1=\(hosts.address(member + 2))
                listenPort=10911
                namesrvAddr=\(namesrvAddr)
                storePathRootDir=\(hosts.directory.path)/store-n\(member)
                mappedFileSizeCommitLog=4194304
                maxMessageSize=65536
                registerNameServerPeriod=1000
                enableDLegerCommitLog=true
                dLegerGroup=RaftNode00
                dLegerPeers=\(peers)
                dLegerSelfId=n\(member)

                """)
        }
        return namesrvAddr
    }
}
