#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Replication
import Testing
import TestSupport

/// Bad peers on either side: each closes only its own connection, and the real pair keeps replicating.
@Suite(.serialized) struct FaultTests {
    @Test func badReportsCloseOnlyTheirConnection() throws {
        let masterDir = TemporaryDirectory("ha-master")
        let slaveDir = TemporaryDirectory("ha-slave")
        let master = try MessageStore(config: storeConfig(masterDir.path))
        defer { master.close() }
        let slave = try MessageStore(config: storeConfig(slaveDir.path))
        defer { slave.close() }
        let settings = HASettings.loopback(heartbeatMillis: 500, housekeepingMillis: 3_000)
        let service = try HAService(commitLog: master.commitLog, settings: settings)
        defer { service.close() }
        let client = try HAClient(commitLog: slave.commitLog, settings: settings, masterAddress: service.address)
        defer { client.close() }
        #expect(eventually(seconds: 10) { service.status.slaves.first?.ackedOffset == 0 })
        try master.putMessages(200, seed: 10)
        waitForCatchUp(master: master, slave: slave)

        let end = Int64(master.commitLog.wroteOffset)
        // Garbage (its first 8 bytes read as an offset far beyond the end), a negative offset, an offset
        // beyond the end, and a report cut short (closed when the connection stays silent).
        let garbage = try #require(RawPeer.connect(port: service.port))
        garbage.write(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(garbage.closedByPeer())
        #expect(serverClosesAfterSending(bigEndianBytes(Int64(-5)), toPort: service.port))
        // A slave ahead of the master hears the master's end (a heartbeat carrying it), then the close.
        let ahead = try #require(RawPeer.connect(port: service.port))
        ahead.report(end + 4096)
        #expect(ahead.read(12) == bigEndianBytes(end) + bigEndianBytes(Int32(0)))
        #expect(ahead.closedByPeer())
        #expect(serverClosesAfterSending([0, 0, 0, 0], toPort: service.port, seconds: 10))

        try master.putMessages(200, seed: 11, prefix: "after")
        waitForCatchUp(master: master, slave: slave)
        #expect(sameBytes(master.commitLog, slave.commitLog, from: 0, to: master.commitLog.wroteOffset))
        #expect(eventually(seconds: 10) { service.connectionCount == 1 })
        #expect(client.status.connectCount == 1, "the real slave never lost its connection")
    }

    @Test func masterPushingAnotherOffsetMakesTheSlaveReconnect() throws {
        let slaveDir = TemporaryDirectory("ha-slave")
        let slave = try MessageStore(config: storeConfig(slaveDir.path))
        defer { slave.close() }
        try slave.putMessages(20, seed: 12)
        let own = slave.commitLog.wroteOffset
        let (listener, port) = RawPeer.listen()
        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback(), masterAddress: "127.0.0.1:\(port)")
        defer { client.close() }
        let first = try #require(listener.accept())
        #expect(first.read(8) == bigEndianBytes(Int64(own)))
        first.write(HAProtocolTests.handBuilt(own + 100, [1, 2, 3]))
        #expect(first.closedByPeer())
        let second = try #require(listener.accept(), "the slave reconnects")
        #expect(second.read(8) == bigEndianBytes(Int64(own)))
        #expect(slave.commitLog.wroteOffset == own, "nothing appended")
        #expect(client.status.connectCount == 2)
        #expect(client.status.lastError?.contains("offset \(own + 100)") == true)
    }

    @Test func silentMasterIsDroppedAndRetried() throws {
        let slaveDir = TemporaryDirectory("ha-slave")
        let slave = try MessageStore(config: storeConfig(slaveDir.path))
        defer { slave.close() }
        let (listener, port) = RawPeer.listen()
        let settings = HASettings.loopback(heartbeatMillis: 100, housekeepingMillis: 400)
        let client = try HAClient(commitLog: slave.commitLog, settings: settings, masterAddress: "127.0.0.1:\(port)")
        defer { client.close() }
        let first = try #require(listener.accept())
        #expect(first.read(8) == bigEndianBytes(Int64(0)), "reports at once")
        #expect(first.read(8, seconds: 2) == bigEndianBytes(Int64(0)), "and every heartbeat interval")
        #expect(first.closedByPeer(seconds: 5), "a master silent for haHousekeepingInterval is dropped")
        #expect(listener.accept() != nil, "and retried")
    }

    @Test func clientFollowsANewMasterAddressAndRetriesAGoneOne() throws {
        let slaveDir = TemporaryDirectory("ha-slave")
        let slave = try MessageStore(config: storeConfig(slaveDir.path))
        defer { slave.close() }
        let client = try HAClient(commitLog: slave.commitLog, settings: .loopback())
        defer { client.close() }
        #expect(!client.status.isConnected)
        // A master that is not there yet: refused, retried with backoff until it listens.
        var port = RawPeer.listen().1  // a port nobody listens on once that listener is gone
        client.setMasterAddress("127.0.0.1:\(port)")
        #expect(eventually(seconds: 5) { client.status.lastError?.contains("cannot connect") == true })
        let (late, _) = RawPeer.listen(port: port)
        let first = try #require(late.accept(), "retried until the master listens")
        #expect(first.read(8) == bigEndianBytes(Int64(0)))
        // A new address: the old connection is dropped at once, the new master gets a report.
        let (other, otherPort) = RawPeer.listen()
        port = otherPort
        client.setMasterAddress("127.0.0.1:\(port)")
        #expect(first.closedByPeer())
        let second = try #require(other.accept())
        #expect(second.read(8) == bigEndianBytes(Int64(0)))
        #expect(eventually(seconds: 5) { client.status.isConnected && client.status.masterAddress == "127.0.0.1:\(port)" })
        client.setMasterAddress(nil)
        #expect(second.closedByPeer(), "nil disconnects")
        #expect(eventually(seconds: 5) { !client.status.isConnected })
    }
}
