#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Replication
import Testing
import TestSupport

/// SYNC_MASTER waits: no slave or a slave too far behind is SLAVE_NOT_AVAILABLE at once; a slave's ack
/// completes a wait; a stalled slave times it out after `slaveTimeout`, even with no ack ever coming.
@Suite(.serialized) struct SyncMasterTests {
    @Test func noSlaveIsNotAvailable() throws {
        let masterDir = TemporaryDirectory("ha-master")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        defer { service.close() }
        let put = try master.put(Outgoing(topic: "T", queueID: 0, body: [1, 2, 3]))
        #expect(service.awaitReplica(upTo: put.append.nextOffset, token: 1) == .slaveNotAvailable)
        // A connected slave that has not reported yet does not count either.
        let peer = try #require(RawPeer.connect(port: service.port))
        #expect(eventually(seconds: 5) { service.connectionCount == 1 })
        #expect(service.awaitReplica(upTo: put.append.nextOffset, token: 2) == .slaveNotAvailable)
        _ = peer
    }

    @Test(arguments: IOPath.allCases)
    func slaveAckCompletesTheWait(io: IOPath) throws {
        // On io_uring the slave reports bytes once the ring wrote them to the page cache.
        let masterDir = TemporaryDirectory("ha-master")
        let slaveDir = TemporaryDirectory("ha-slave")
        let master = try MessageStore(config: storeConfig(masterDir.path, io: io))
        defer { master.close() }
        let slave = try MessageStore(config: storeConfig(slaveDir.path, io: io))
        defer { slave.close() }
        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        defer { service.close() }
        let answers = ReplicaAnswers()
        service.onReplicated { token, status in answers.record(token, status) }
        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
        defer { client.close() }
        #expect(eventually(seconds: 10) { service.status.slaves.first?.ackedOffset == 0 })

        var pending: [UInt64] = []
        for token in UInt64(1)...200 {
            let put = try master.put(Outgoing(topic: "Sync", queueID: Int32(token % 4), body: [UInt8](repeating: 7, count: 500)))
            switch service.awaitReplica(upTo: put.append.nextOffset, token: token) {
            case .pending: pending.append(token)
            case .done: break
            case let other: Issue.record("token \(token): \(other)")
            }
        }
        let started = monotonicNanos()
        #expect(eventually(seconds: 10) { pending.allSatisfy { answers.status(of: $0) == .replicated } })
        #expect(monotonicNanos() - started < 2_000_000_000, "acks come with the data, not with a heartbeat")
        #expect(service.pendingReplicaWaiters == 0)
        #expect(service.awaitReplica(upTo: master.commitLog.wroteOffset, token: 999) == .done)
    }

    @Test func stalledSlaveTimesTheWaitOut() throws {
        let masterDir = TemporaryDirectory("ha-master")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        try master.putMessages(10, seed: 20)
        var settings = HASettings.loopback()
        settings.slaveTimeoutMillis = 300
        let service = try HAService(commitLog: master.commitLog, settings: settings)
        defer { service.close() }
        let answers = ReplicaAnswers()
        service.onReplicated { token, status in answers.record(token, status) }
        // A fake slave that reports the master's end once and never again.
        let peer = try #require(RawPeer.connect(port: service.port))
        let end = master.commitLog.wroteOffset
        peer.report(Int64(end))
        #expect(eventually(seconds: 5) { service.status.slaves.first?.ackedOffset == end })
        #expect(service.awaitReplica(upTo: end, token: 1) == .done)

        let put = try master.put(Outgoing(topic: "T", queueID: 0, body: [1]))
        let started = monotonicNanos()
        #expect(service.awaitReplica(upTo: put.append.nextOffset, token: 2) == .pending)
        #expect(eventually(seconds: 5) { answers.status(of: 2) != nil })
        let waitedMillis = (monotonicNanos() - started) / 1_000_000
        #expect(answers.status(of: 2) == .timedOut)
        #expect(waitedMillis >= 290 && waitedMillis < 1_500, "timed out after \(waitedMillis) ms")
        #expect(service.pendingReplicaWaiters == 0)
        _ = peer
    }

    @Test func slaveTooFarBehindIsNotAvailable() throws {
        let masterDir = TemporaryDirectory("ha-master")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        try master.putMessages(100, seed: 21)
        var settings = HASettings.loopback()
        settings.haMaxGapNotInSync = 64 * 1024
        let service = try HAService(commitLog: master.commitLog, settings: settings)
        defer { service.close() }
        let peer = try #require(RawPeer.connect(port: service.port))
        peer.report(4096)
        #expect(eventually(seconds: 5) { service.status.slaves.first?.ackedOffset == 4096 })
        let end = master.commitLog.wroteOffset
        #expect(end - 4096 >= 64 * 1024)
        #expect(service.awaitReplica(upTo: end, token: 1) == .slaveNotAvailable)
        #expect(service.awaitReplica(upTo: 4096 + 1000, token: 2) == .pending, "within the gap it waits")
        let status = try #require(service.status.slaves.first)
        #expect(!status.inSync && status.lagBytes == end - 4096)
        #expect(service.status.inSyncSlaveCount == 0)
        _ = peer
    }

    @Test func closingTheServiceTimesOutWhatStillWaits() throws {
        let masterDir = TemporaryDirectory("ha-master")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        try master.putMessages(5, seed: 22)
        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        let answers = ReplicaAnswers()
        service.onReplicated { token, status in answers.record(token, status) }
        let peer = try #require(RawPeer.connect(port: service.port))
        peer.report(0)
        #expect(eventually(seconds: 5) { service.status.slaves.first?.ackedOffset == 0 })
        #expect(service.awaitReplica(upTo: 100, token: 5) == .pending)
        service.close()
        #expect(answers.status(of: 5) == .timedOut)
        #expect(peer.closedByPeer())
    }
}
