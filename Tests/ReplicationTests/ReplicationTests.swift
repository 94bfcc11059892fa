#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Replication
import Testing
import TestSupport

/// A master store and a slave store in temporary directories, joined by `HAService` and `HAClient`
/// over loopback: the slave's log becomes the master's byte for byte and its own dispatcher builds the
/// same consume queues and a working index.
@Suite(.serialized) struct ReplicationTests {
    struct Mode: CustomTestStringConvertible, Sendable {
        var io: IOPath
        var flush: FlushDiskType
        var testDescription: String { "\(io.rawValue)/\(flush.rawValue)" }
        static let all = IOPath.allCases.flatMap { io in FlushDiskType.allCases.map { Mode(io: io, flush: $0) } }
    }

    @Test(arguments: Mode.all)
    func slaveCatchesUpByteForByteAndBuildsTheSameQueues(mode: Mode) throws {
        // The slave connects while the master is empty, so it copies everything from offset 0.
        let masterDir = TemporaryDirectory("ha-master")
        let slaveDir = TemporaryDirectory("ha-slave")
        let master = try MessageStore(config: storeConfig(masterDir.path, io: mode.io, flush: mode.flush))
        defer { master.close() }
        let slave = try MessageStore(config: storeConfig(slaveDir.path, io: mode.io, flush: mode.flush))
        defer { slave.close() }
        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        defer { service.close() }
        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
        defer { client.close() }
        #expect(eventually(seconds: 10) { service.status.slaves.first?.ackedOffset == 0 })

        try master.putMessages(1500, seed: 1)
        master.waitForDispatch()
        let end = master.commitLog.wroteOffset
        #expect(end > 4 * UInt64(256 << 10), "several files")
        waitForCatchUp(master: master, slave: slave)
        #expect(sameBytes(master.commitLog, slave.commitLog, from: 0, to: end))
        expectSameQueues(master, slave)
        for index in stride(from: 0, to: 1500, by: 97) {
            let topic = ["TopicA", "TopicB", "TopicC"][index % 3]
            let onMaster = master.queryMessage(topic: topic, key: "m-key-\(index)", maxNum: 4).map(\.region.physicalOffset)
            let onSlave = slave.queryMessage(topic: topic, key: "m-key-\(index)", maxNum: 4).map(\.region.physicalOffset)
            #expect(!onSlave.isEmpty && onSlave == onMaster, "key m-key-\(index)")
        }
        #expect(eventually(seconds: 10) { service.status.slaves.first?.ackedOffset == end })
        let status = service.status
        #expect(status.slaves.count == 1 && status.slaves[0].lagBytes == 0 && status.slaves[0].inSync)
        #expect(client.status.isConnected && client.status.offset == end && client.status.lastPushMillis > 0)
    }

    @Test func emptySlaveStartsAtTheMastersLastFileAndCatchesUp() throws {
        let masterDir = TemporaryDirectory("ha-master")
        let slaveDir = TemporaryDirectory("ha-slave")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        let slave = try MessageStore(config: storeConfig(slaveDir.path))
        defer { slave.close() }
        try master.putMessages(800, seed: 2)
        let fileSize = UInt64(256 << 10)
        let lastFileStart = master.commitLog.wroteOffset - master.commitLog.wroteOffset % fileSize
        #expect(lastFileStart >= 3 * fileSize)

        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        defer { service.close() }
        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
        defer { client.close() }
        waitForCatchUp(master: master, slave: slave)  // the last file, before the master writes on
        try master.putMessages(400, seed: 3, prefix: "later")
        master.waitForDispatch()
        waitForCatchUp(master: master, slave: slave)
        #expect(slave.commitLog.minOffset == lastFileStart)
        #expect(sameBytes(master.commitLog, slave.commitLog, from: lastFileStart, to: master.commitLog.wroteOffset))
        expectSameQueues(master, slave)
        #expect(slave.minOffset(topic: "TopicA", queueID: 0) > 0, "older queue units are not on the slave")
        let key = slave.queryMessage(topic: "TopicB", key: "later-key-397", maxNum: 4)
        #expect(key.count == 1 && key[0].region.physicalOffset >= lastFileStart)
    }

    @Test func emptySlaveRestartedBeforeItsFirstByteStillStartsAtTheLastFile() throws {
        // An empty store leaves its pre-allocated first file behind (all zeros); reopened, that file is
        // in its queue, yet the log still stores nothing and takes the master's last file.
        let masterDir = TemporaryDirectory("ha-master")
        let slaveDir = TemporaryDirectory("ha-slave")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        try master.putMessages(600, seed: 8)
        do {
            let slave = try MessageStore(config: storeConfig(slaveDir.path))
            defer { slave.close() }
            #expect(eventually(seconds: 10) { fileExists(slaveDir.path + "/commitlog/" + offsetFileName(0)) })
        }
        let slave = try MessageStore(config: storeConfig(slaveDir.path))
        defer { slave.close() }
        #expect(slave.commitLog.queue.count == 1 && slave.commitLog.wroteOffset == 0)
        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        defer { service.close() }
        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
        defer { client.close() }
        waitForCatchUp(master: master, slave: slave)
        let end = master.commitLog.wroteOffset
        let lastFileStart = end - end % UInt64(256 << 10)
        #expect(slave.commitLog.minOffset == lastFileStart)
        #expect(!fileExists(slaveDir.path + "/commitlog/" + offsetFileName(0)))
        #expect(sameBytes(master.commitLog, slave.commitLog, from: lastFileStart, to: end))
        expectSameQueues(master, slave)
    }

    @Test func restartedSlaveResumesFromItsOwnOffset() throws {
        let masterDir = TemporaryDirectory("ha-master")
        let slaveDir = TemporaryDirectory("ha-slave")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        defer { service.close() }
        var resumedFrom: UInt64 = 0
        do {
            let slave = try MessageStore(config: storeConfig(slaveDir.path))
            defer { slave.close() }
            let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
            defer { client.close() }
            #expect(eventually(seconds: 10) { service.status.slaves.first?.ackedOffset == 0 })
            try master.putMessages(600, seed: 4)
            waitForCatchUp(master: master, slave: slave)
            resumedFrom = slave.commitLog.wroteOffset
        }
        try master.putMessages(600, seed: 5, prefix: "while-down")
        let slave = try MessageStore(config: storeConfig(slaveDir.path))
        defer { slave.close() }
        #expect(slave.commitLog.wroteOffset == resumedFrom)
        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
        defer { client.close() }
        #expect(eventually(seconds: 10) { service.status.slaves.contains { $0.ackedOffset == resumedFrom } || slave.commitLog.wroteOffset > resumedFrom })
        master.waitForDispatch()
        waitForCatchUp(master: master, slave: slave)
        #expect(sameBytes(master.commitLog, slave.commitLog, from: 0, to: master.commitLog.wroteOffset))
        expectSameQueues(master, slave)
    }

    @Test func slaveCutInsideARecordRecoversToItsStartAndFetchesTheRest() throws {
        // A slave stopped mid-record (the stream is raw bytes): recovery cuts the partial record and the
        // slave asks the master for it again.
        let masterDir = TemporaryDirectory("ha-master")
        let slaveDir = TemporaryDirectory("ha-slave")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        let results = try master.putMessages(50, seed: 6)
        let cut = results[40].append.physicalOffset + 30
        do {
            let slave = try MessageStore(config: storeConfig(slaveDir.path))
            defer { slave.close() }
            let region = try #require(master.commitLog.region(at: 0, count: Int(cut)))
            try slave.commitLog.appendReplicated(region.bytes, at: 0)
            #expect(slave.commitLog.wroteOffset == cut)
        }
        let slave = try MessageStore(config: storeConfig(slaveDir.path))
        defer { slave.close() }
        #expect(slave.commitLog.wroteOffset == results[40].append.physicalOffset)
        let service = try HAService(commitLog: master.commitLog, settings: .loopback())
        defer { service.close() }
        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: service.address)
        defer { client.close() }
        waitForCatchUp(master: master, slave: slave)
        #expect(sameBytes(master.commitLog, slave.commitLog, from: 0, to: master.commitLog.wroteOffset))
        expectSameQueues(master, slave)
    }

    @Test func masterPushesBoundedFramesInsideOneFileAndHeartbeatsWhenIdle() throws {
        // A raw slave reads the master's frames: each body is at most haTransferBatchSize, never crosses
        // a file, continues where the last one ended and equals the master's bytes; idle, a size-0 frame
        // carries the next offset.
        let masterDir = TemporaryDirectory("ha-master")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        try master.putMessages(400, seed: 7)
        var settings = HASettings.loopback(heartbeatMillis: 300, housekeepingMillis: 5_000)
        settings.haTransferBatchSize = 10_000
        let service = try HAService(commitLog: master.commitLog, settings: settings)
        defer { service.close() }
        let peer = try #require(RawPeer.connect(port: service.port))
        peer.report(0)
        let end = master.commitLog.wroteOffset
        let fileSize = UInt64(256 << 10)
        var next = end - end % fileSize
        var sawHeartbeat = false
        while !sawHeartbeat {
            let header = try #require(peer.read(12))
            let offset = header[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let size = Int(header[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            #expect(offset == next)
            if size == 0 {
                sawHeartbeat = true
                #expect(offset == end)
                continue
            }
            #expect(size <= 10_000)
            #expect(offset % fileSize + UInt64(size) <= fileSize)
            let body = try #require(peer.read(size))
            let stored = try #require(master.commitLog.region(at: offset, count: size))
            #expect(Array(stored.bytes) == body)
            next += UInt64(size)
            peer.report(Int64(next))
        }
        #expect(service.status.slaves.first?.ackedOffset == end)
    }
}
