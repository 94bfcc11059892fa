#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Replication
import Testing
import TestSupport

/// Catch-up throughput of an empty slave over loopback, run by hand (not part of CI timing):
///
///     HA_BENCH=1 swift test -c release --filter CatchUpBench
///
/// `HA_BENCH_MIB` (default 1024) sets how much the master holds, `HA_BENCH_BATCH` the
/// `haTransferBatchSize` (default 32768). The master's data lies in one 1 GiB file, so the empty slave
/// (which starts at the master's last file) copies all of it.
@Suite struct CatchUpBench {
    static func environment(_ name: String) -> Int? { getenv(name).flatMap { Int(String(cString: $0)) } }

    /// User plus system CPU time of this process so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    @Test(.enabled(if: getenv("HA_BENCH") != nil))
    func emptySlaveCatchesUp() throws {
        let megabytes = Self.environment("HA_BENCH_MIB") ?? 1024
        let target = UInt64(min(megabytes, 1023)) << 20
        func config(_ root: String) -> MessageStoreConfig {
            var config = MessageStoreConfig(storePathRootDir: root)
            config.commitLog.mappedFileSizeCommitLog = 1 << 30
            config.messageIndexEnable = false
            return config
        }
        let masterDir = TemporaryDirectory("ha-bench-master")
        let slaveDir = TemporaryDirectory("ha-bench-slave")
        let master = try MessageStore(config: config(masterDir.path))
        defer { master.close() }
        let body = [UInt8](repeating: 0x5A, count: 4000)
        var index = 0
        while master.commitLog.wroteOffset < target {
            try master.put(Outgoing(topic: "Bench\(index % 4)", queueID: Int32(index % 8), body: body))
            index += 1
        }
        let end = master.commitLog.wroteOffset
        let slave = try MessageStore(config: config(slaveDir.path))
        defer { slave.close() }
        var settings = HASettings.loopback()
        settings.haTransferBatchSize = Self.environment("HA_BENCH_BATCH") ?? 32_768
        let service = try HAService(commitLog: master.commitLog, settings: settings)
        defer { service.close() }
        let cpuBefore = Self.cpuSeconds()
        let started = monotonicNanos()
        let client = try HAClient(commitLog: slave.commitLog, settings: settings, masterAddress: service.address)
        defer { client.close() }
        #expect(eventually(seconds: 300) { slave.commitLog.wroteOffset == end })
        let copied = monotonicNanos() - started
        let cpu = Self.cpuSeconds() - cpuBefore
        slave.waitForDispatch(seconds: 300)
        let dispatched = monotonicNanos() - started
        let megabytesPerSecond = Double(end) / 1e6 / (Double(copied) / 1e9)
        print("HA catch-up: \(end >> 20) MiB (\(index) messages of 4000 B) in \(Double(copied) / 1e9) s = \(Int(megabytesPerSecond)) MB/s copied; consume queues built after \(Double(dispatched) / 1e9) s; haTransferBatchSize \(settings.haTransferBatchSize); process CPU \(cpu) s while copying")
        #expect(sameBytes(master.commitLog, slave.commitLog, from: 0, to: end))
    }
}
