#if canImport(Glibc)
import Glibc
#endif
import Client
import Common
import Testing
import TestSupport

/// A master that comes back from a power cut with a shorter log (ASYNC_FLUSH: its unsynced tail is gone) while its
/// slave kept that tail: the slave must cut its log back to what the master holds before it replicates again, or
/// the master's new records land at offsets where the slave keeps different ones (found by `bench chaos` power
/// faults).
@Suite(.serialized) struct MasterPowerCutTests {
    /// The first `count` bytes of a broker's first commit-log file.
    func commitLogBytes(_ broker: RunningBroker, _ count: Int) -> [UInt8]? {
        let fd = open(broker.directory.path + "/store/commitlog/00000000000000000000", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) }
        return read == count ? bytes : nil
    }

    /// Zeroes the master's log from `offset` to `end` while it is down: what a power cut leaves of writes that were
    /// never synced (recovery ends the log at the first record it cannot read).
    func dropTail(_ broker: RunningBroker, from offset: UInt64, to end: UInt64) throws {
        let fd = open(broker.directory.path + "/store/commitlog/00000000000000000000", O_WRONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let zeros = [UInt8](repeating: 0, count: Int(end - offset))
        let written = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        try #require(written == zeros.count)
        fsync(fd)
    }

    @Test func aSlaveCutsTheTailItsMasterLostInAPowerCutBeforeReplicatingAgain() async throws {
        let cluster = try RunningGroup(masterRole: "ASYNC_MASTER")
        defer { cluster.stop() }
        let admin = Admin(namesrvAddr: cluster.namesrvAddr)
        let support = MasterSlaveTests()
        let producer = support.producer(cluster, "PG-power")
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "PowerCut", body: "before-0")))?.status == .sendOK })
        for index in 1..<200 { _ = try await producer.send(Message(topic: "PowerCut", body: "before-\(index)")) }
        try #require(await support.caughtUp(admin, cluster))
        let slaveEnd = await support.commitLogEnd(admin, cluster.slave.address)

        cluster.master.process?.killHard()
        try dropTail(cluster.master, from: slaveEnd / 2, to: slaveEnd)
        try cluster.master.start()
        let masterEnd = await support.commitLogEnd(admin, cluster.master.address)
        #expect(masterEnd > 0 && masterEnd < slaveEnd, "the master came back shorter (\(masterEnd) < \(slaveEnd))")

        // New records at offsets the slave held different ones at.
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "PowerCut", body: "after-0")))?.status == .sendOK })
        for index in 1..<300 { _ = try await producer.send(Message(topic: "PowerCut", body: "after-\(index)-with-a-longer-body")) }
        #expect(await support.caughtUp(admin, cluster))
        let end = await support.commitLogEnd(admin, cluster.master.address)
        #expect(end > slaveEnd)
        await producer.shutdown()
        await admin.shutdown()
        _ = cluster.slave.process?.terminate()
        _ = cluster.master.process?.terminate()
        let master = try #require(commitLogBytes(cluster.master, Int(end)))
        let slave = try #require(commitLogBytes(cluster.slave, Int(end)))
        let firstDifference = zip(master, slave).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "the slave's log differs from the master's at \(firstDifference ?? -1)")
    }
}
