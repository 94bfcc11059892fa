#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Replication
import Testing
import TestSupport

/// A slave whose log ran ahead of its master (it took writes of its own) is cut back to the master's
/// end, its queues follow, and it then catches up; the commit log's cut always lands on a record
/// boundary, on both io paths.
@Suite(.serialized) struct TruncationTests {
    @Test(arguments: IOPath.allCases)
    func slaveAheadOfItsMasterTruncatesThenCatchesUp(io: IOPath) throws {
        let masterDir = TemporaryDirectory("ha-master")
        let slaveDir = TemporaryDirectory("ha-slave")
        let master = try MessageStore(config: storeConfig(masterDir.path, io: io))
        defer { master.close() }
        let slave = try MessageStore(config: storeConfig(slaveDir.path, io: io))
        defer { slave.close() }
        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        defer { service.close() }
        do {
            let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
            defer { client.close() }
            #expect(eventually(seconds: 10) { service.status.slaves.first?.ackedOffset == 0 })
            try master.putMessages(500, seed: 30)
            waitForCatchUp(master: master, slave: slave)
        }
        let shared = master.commitLog.wroteOffset
        // The slave takes writes of its own (as a promoted slave would), the master more of its own.
        try slave.putMessages(400, seed: 31, prefix: "rogue", topics: ["TopicA", "Rogue"])
        try master.putMessages(300, seed: 32, prefix: "master")
        slave.waitForDispatch()
        #expect(slave.commitLog.wroteOffset > shared + UInt64(256 << 10), "ahead by more than a file")
        #expect(slave.maxOffset(topic: "Rogue", queueID: 1) > 0)

        // Connected as it is, the slave is refused, and learns where the master's log ends.
        do {
            let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
            defer { client.close() }
            #expect(eventually(seconds: 10) { client.status.masterOffset == master.commitLog.wroteOffset })
            #expect(client.status.offset > master.commitLog.wroteOffset)
        }
        #expect(slave.commitLog.wroteOffset > master.commitLog.wroteOffset, "refused: nothing appended")
        #expect(try slave.truncate(to: shared) == shared)
        #expect(slave.commitLog.wroteOffset == shared)
        #expect(slave.maxOffset(topic: "Rogue", queueID: 1) == 0)
        for (topic, queueID) in slave.queues {
            let max = slave.maxOffset(topic: topic, queueID: queueID)
            guard max > 0, let unit = slave.unit(topic: topic, queueID: queueID, offset: max - 1) else { continue }
            #expect(UInt64(unit.physicalOffset) + UInt64(unit.messageSize) <= shared, "\(topic)/\(queueID) points past the log")
        }

        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
        defer { client.close() }
        master.waitForDispatch()
        waitForCatchUp(master: master, slave: slave)
        #expect(sameBytes(master.commitLog, slave.commitLog, from: 0, to: master.commitLog.wroteOffset))
        expectSameQueues(master, slave)
        #expect(slave.queryMessage(topic: "Rogue", key: "rogue-key-1", maxNum: 4).allSatisfy {
            !String(decoding: $0.properties, as: UTF8.self).contains("rogue-key-1\u{2}")
        })
        #expect(slave.queryMessage(topic: "TopicC", key: "master-key-2", maxNum: 4).count == 1)
    }

    @Test(arguments: IOPath.allCases)
    func truncationLandsOnARecordBoundaryAndSurvivesARestart(io: IOPath) throws {
        let dir = TemporaryDirectory("ha-truncate")
        var cutAt: UInt64 = 0
        var expectedEnd: UInt64 = 0
        do {
            let store = try MessageStore(config: storeConfig(dir.path, io: io, flush: .syncFlush))
            defer { store.close() }
            let results = try store.putMessages(300, seed: 33)
            store.waitForDispatch()
            // Inside a record: back to its start.
            expectedEnd = results[200].append.physicalOffset
            cutAt = expectedEnd + 17
            #expect(try store.commitLog.truncate(to: cutAt) == expectedEnd)
            #expect(store.commitLog.wroteOffset == expectedEnd)
            #expect(store.commitLog.flushedOffset == expectedEnd)
            // Not below the end: nothing happens.
            #expect(try store.commitLog.truncate(to: expectedEnd + 1000) == expectedEnd)
            // Appends go on from the cut, with queue offsets continuing the queues.
            let put = try store.put(Outgoing(topic: "TopicA", queueID: 0, body: [9, 9, 9]))
            #expect(put.append.physicalOffset == expectedEnd)
        }
        let reopened = try MessageStore(config: storeConfig(dir.path, io: io))
        defer { reopened.close() }
        #expect(reopened.commitLog.wroteOffset > expectedEnd)
        #expect(reopened.commitLog.recoveryReport.corruption == nil, "nothing stale after the cut")
    }

    @Test func truncatingAtAFileEndKeepsThatFileWhole() throws {
        let dir = TemporaryDirectory("ha-truncate")
        let store = try MessageStore(config: storeConfig(dir.path))
        defer { store.close() }
        try store.putMessages(600, seed: 34)
        let fileSize = UInt64(256 << 10)
        #expect(store.commitLog.wroteOffset > 3 * fileSize)
        #expect(try store.truncate(to: 2 * fileSize) == 2 * fileSize)
        #expect(store.commitLog.queue.count <= 3)
        #expect(try store.commitLog.forEachRecord(from: 0) { _ in true } == 2 * fileSize, "the blank ending file 1 stays")
        try store.putMessages(10, seed: 35)
        #expect(try store.commitLog.forEachRecord(from: 0) { _ in true } == store.commitLog.wroteOffset)
    }
}
