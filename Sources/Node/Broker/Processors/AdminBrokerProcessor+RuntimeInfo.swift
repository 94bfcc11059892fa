#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Common
import Remoting

/// GET_BROKER_RUNTIME_INFO: RocketMQ's keys (`prepareRuntimeInfo`, `DefaultMessageStore.getRuntimeInfo`,
/// `StoreStatsService.getRuntimeInfo`), each measured here or, for a part this broker does not have, the value
/// RocketMQ itself prints without it: request queues (requests are answered on the event loops, never queued,
/// so sizes and head waits are 0; capacities are RocketMQ's defaults), no transient store pool
/// (`remainTransientStoreBufferNumbs` is Integer.MAX_VALUE), `dispatchMaxBuffer` (always 0 in RocketMQ too),
/// `startAcceptSendRequestTimeStamp` (0: accepted from start). Put latency keys are not measured (the send path
/// reads no clock unless metrics are on) and are left out.
extension AdminBrokerProcessor {
    func runtimeInfo() -> [String: String] {
        let log = services.store.commitLog
        var table = services.stats.snapshot()
        table["brokerVersionDesc"] = MQVersion.description(MQVersion.current)
        table["brokerVersion"] = "\(MQVersion.current)"
        for (name, capacity) in [("send", 10_000), ("pull", 100_000), ("query", 20_000)] {
            table["\(name)ThreadPoolQueueSize"] = "0"
            table["\(name)ThreadPoolQueueCapacity"] = "\(capacity)"
            table["\(name)ThreadPoolQueueHeadWaitTimeMills"] = "0"
        }
        table["EndTransactionQueueSize"] = "0"
        table["EndTransactionThreadPoolQueueCapacity"] = "100000"
        table["remainTransientStoreBufferNumbs"] = "\(Int32.max)"
        table["dispatchMaxBuffer"] = "0"
        table["startAcceptSendRequestTimeStamp"] = "0"
        table["pageCacheLockTimeMills"] = "0"
        table["dispatchBehindBytes"] = "\(services.store.dispatchBehindBytes)"
        table["commitLogMinOffset"] = "\(log.minOffset)"
        table["commitLogMaxOffset"] = "\(log.wroteOffset)"
        table["remainHowManyDataToFlush"] = humanReadableByteCount(Int64(log.wroteOffset - min(log.flushedOffset, log.wroteOffset)))
        // Flushes since start (ours, not RocketMQ's): with the puts between two samples, puts per group commit round.
        table["commitLogFlushCount"] = "\(log.flushCount)"
        table["brokerRole"] = services.brokerRole.rawValue
        // This process's CPU time so far (getrusage: every thread; ours, not RocketMQ's): `bench producer -n` takes
        // it before and after a run for the broker's CPU per message.
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            table["cpuUserMicros"] = "\(Int64(usage.ru_utime.tv_sec) * 1_000_000 + Int64(usage.ru_utime.tv_usec))"
            table["cpuSysMicros"] = "\(Int64(usage.ru_stime.tv_sec) * 1_000_000 + Int64(usage.ru_stime.tv_usec))"
        }
        table.merge(replica.runtimeInfo) { _, replication in replication }
        table["earliestMessageTimeStamp"] = "\(earliestMessageTime(log))"
        let root = services.store.config.storePathRootDir
        let commitLogPath = services.store.config.commitLog.storePathCommitLog
        if let (total, free) = diskSpace(root) {
            table["commitLogDirCapacity"] = "Total : \(humanReadableByteCount(total)), Free : \(humanReadableByteCount(free))."
        }
        let commitLogRatio = diskSpace(commitLogPath).map { Double($0.0 - $0.1) / Double(max(1, $0.0)) } ?? -1
        table["commitLogDiskRatio"] = "\(commitLogRatio)"
        table["commitLogDiskRatio_\(commitLogPath)"] = "\(commitLogRatio)"
        table["consumeQueueDiskRatio"] = "\(diskSpace(root + "/consumequeue").map { Double($0.0 - $0.1) / Double(max(1, $0.0)) } ?? -1)"
        for (level, offset) in services.schedule.wrapper.offsetTable {
            let maxOffset = services.store.maxOffset(topic: TopicValidator.scheduleTopic, queueID: level - 1)
            table["scheduleMessageOffset_\(level)"] = "\(offset),\(maxOffset)"
        }
        return table
    }

    /// The store time of the oldest record (RocketMQ's `getEarliestMessageTime`): the first record at or after the
    /// log's first offset, stepping over the blank that ends a file; -1 when there is none (RocketMQ's answer then).
    func earliestMessageTime(_ log: CommitLog) -> Int64 {
        var offset = log.minOffset
        for _ in 0..<4 {
            switch try? log.readRecord(at: offset, checkCRC: false) {
            case .record(let record)?: return record.header.storeTimestamp
            case .blank(let next)?: offset = next
            default: return -1
            }
        }
        return -1
    }

    /// Total and usable bytes of the file system holding `path`.
    func diskSpace(_ path: String) -> (Int64, Int64)? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return (Int64(info.f_blocks) * Int64(info.f_frsize), Int64(info.f_bavail) * Int64(info.f_frsize))
    }
}

/// RocketMQ's `MixAll.humanReadableByteCount(bytes, false)`: `512 B`, `1.5 KiB`, `20.3 GiB`.
func humanReadableByteCount(_ bytes: Int64) -> String {
    guard bytes >= 1024 else { return "\(bytes) B" }
    var value = Double(bytes)
    var exponent = 0
    while value >= 1024 && exponent < 6 {
        value /= 1024
        exponent += 1
    }
    let tenths = Int64((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) " + ["K", "M", "G", "T", "P", "E"][exponent - 1] + "iB"
}
