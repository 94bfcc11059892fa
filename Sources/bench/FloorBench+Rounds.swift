#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Histogram
import Synchronization

/// `bench floor`'s durable rounds: `threads` threads each pwrite a batch into their own region of one pre-written
/// file and fdatasync it, in a loop. An fdatasync covers the whole file, so rounds in parallel cover each other's
/// bytes too, as the group commit's two lanes do.
struct DurableRounds {
    var threads: Int
    var roundsPerSecond: Double
    /// Each round's pwrite + fdatasync, nanoseconds.
    var latency: Histogram<UInt64>
    /// The threads' CPU time (user + system) per round, microseconds.
    var cpuMicrosPerRound: Double

    static func measure(directory: String, threads: Int, batchBytes: Int, seconds: Double) -> DurableRounds? {
        let region = max(batchBytes * 64, 8 << 20) / batchBytes * batchBytes
        let size = region * threads
        // Pre-written, as the log pre-writes its files under SYNC_FLUSH: a round converts no extents.
        return StoreBaseline.withScratchFile(directory + "/floor-rounds", size: size, preWritten: true) { fd in
            run(fd, threads: threads, region: region, batchBytes: batchBytes, seconds: seconds)
        }
    }

    private static func run(_ fd: Int32, threads: Int, region: Int, batchBytes: Int, seconds: Double) -> DurableRounds? {
        let results = Mutex<[(rounds: Int, cpuMicros: Int, latency: Histogram<UInt64>)]>([])
        let failed = Atomic<Bool>(false)
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        let start = monotonicNanos()
        let workers = (0..<threads).map { thread in
            StoreThread(name: "floor-round-\(thread)") {
                let batch = [UInt8](repeating: UInt8(truncatingIfNeeded: 7 + thread), count: batchBytes)
                var latency = StoreBaseline.makeHistogram()
                var rounds = 0, position = 0
                let cpuStart = StoreBench.threadUsage().cpuMicros
                while monotonicNanos() < deadline {
                    if position + batchBytes > region { position = 0 }
                    let began = monotonicNanos()
                    let wrote = batch.withUnsafeBytes { pwrite(fd, $0.baseAddress, batchBytes, off_t(thread * region + position)) }
                    guard wrote == batchBytes, fdatasync(fd) == 0 else {
                        failed.store(true, ordering: .relaxed)
                        break
                    }
                    _ = latency.record(monotonicNanos() - began)
                    position += batchBytes
                    rounds += 1
                }
                let cpu = StoreBench.threadUsage().cpuMicros - cpuStart
                results.withLock { $0.append((rounds, cpu, latency)) }
            }
        }
        for worker in workers { worker.join() }
        guard !failed.load(ordering: .relaxed) else { return nil }
        let elapsed = Double(monotonicNanos() - start) / 1e9
        return results.withLock { all in
            var latency = StoreBaseline.makeHistogram()
            for one in all { latency.add(one.latency) }
            let rounds = all.reduce(0) { $0 + $1.rounds }
            let cpu = all.reduce(0) { $0 + $1.cpuMicros }
            return DurableRounds(threads: threads, roundsPerSecond: Double(rounds) / elapsed, latency: latency,
                                 cpuMicrosPerRound: rounds > 0 ? Double(cpu) / Double(rounds) : 0)
        }
    }
}
