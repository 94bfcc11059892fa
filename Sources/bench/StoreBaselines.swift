#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Histogram
import Synchronization

/// The ceilings `bench store` measures itself against, in the same run on the same disk. Each is what the
/// best possible store of that mode could do with the same records and the same number of producers, so a
/// ratio near 1 means the store adds little; batching alone cannot beat them.
struct StoreBaseline {
    /// Records per second.
    var tps: Double
    /// The group commit's time of one batch (pwrite + fdatasync), nanoseconds; nil for memcpy, whose copies
    /// are not timed one by one (two clock reads would cost as much as a 1 KiB copy).
    var histogram: Histogram<UInt64>?
    var name: String
    /// The group commit's CPU time (its thread's, user + system) per batch, microseconds: the kernel's work for
    /// one pwrite + fdatasync, the floor of what any group commit's flush costs per round on this machine. Nil
    /// for memcpy.
    var cpuMicrosPerBatch: Double? = nil

    func micros(_ percentile: Double) -> Double {
        guard let histogram, histogram.totalCount > 0 else { return 0 }
        return Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    }

    /// The ideal group commit: one thread writes `producers` records with one `pwrite`, then one `fdatasync`,
    /// in a loop, into a file reserved with `fallocate` (and, when `preWritten`, with its zeros written out
    /// first, as the log pre-writes its files), for up to `seconds` or until `records` are written. Every
    /// producer's record is durable after each round, as a group commit of `producers` waiters would make
    /// it, with no locking, queueing or wake-ups.
    static func groupCommit(directory: String, recordSize: Int, producers: Int, records: Int, fileSize: Int,
                            seconds: Double, preWritten: Bool) -> StoreBaseline? {
        let batchBytes = recordSize * producers
        let size = min(fileSize, max(batchBytes * 64, min(recordSize * records, 256 << 20)))
        guard size >= batchBytes else { return nil }
        return withScratchFile(directory + "/baseline-sync", size: size, preWritten: preWritten) { fd in
            idealRounds(fd, size: size, batchBytes: batchBytes, producers: producers, records: records, seconds: seconds,
                        name: "1 thread: pwrite of \(producers) records + fdatasync, \(preWritten ? "pre-written" : "fallocated") file")
        }
    }

    /// Runs `body` with a fresh file at `path`, `size` bytes reserved with `fallocate` (its zeros written out too when
    /// `preWritten`) and synced, so the reservation is not part of what `body` measures; then closes and removes it.
    /// Nil when the file cannot be made.
    static func withScratchFile<T>(_ path: String, size: Int, preWritten: Bool, _ body: (Int32) -> T?) -> T? {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        defer {
            close(fd)
            unlink(path)
        }
        guard (try? FileIO.system.fallocate(fd, 0, size)) != nil else { return nil }
        if preWritten && (try? MappedFile.writeZeros(fd: fd, size: size, io: .system, until: { false })) == nil { return nil }
        guard fdatasync(fd) == 0 else { return nil }
        return body(fd)
    }

    /// The ideal group commit's loop on `fd`: `batchBytes` per pwrite, then an fdatasync, wrapping at `size`.
    private static func idealRounds(_ fd: Int32, size: Int, batchBytes: Int, producers: Int, records: Int, seconds: Double,
                                    name: String) -> StoreBaseline? {
        let batch = [UInt8](repeating: 7, count: batchBytes)
        var histogram = makeHistogram()
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        let start = monotonicNanos()
        let cpuStart = StoreBench.threadUsage().cpuMicros
        var written = 0, position = 0
        while written < records && monotonicNanos() < deadline {
            if position + batchBytes > size { position = 0 }
            let began = monotonicNanos()
            let wrote = batch.withUnsafeBytes { pwrite(fd, $0.baseAddress, batchBytes, off_t(position)) }
            guard wrote == batchBytes, fdatasync(fd) == 0 else { return nil }
            _ = histogram.record(monotonicNanos() - began)
            position += batchBytes
            written += producers
        }
        let elapsed = Double(monotonicNanos() - start) / 1e9
        let batches = Double(histogram.totalCount)
        return StoreBaseline(tps: Double(written) / elapsed, histogram: histogram, name: name,
                             cpuMicrosPerBatch: batches > 0 ? Double(StoreBench.threadUsage().cpuMicros - cpuStart) / batches : nil)
    }

    /// The ideal in-memory append: `producers` threads each `memcpy` records into their own slice of one
    /// shared mapping of a fallocated file whose every page was touched first (no page faults, no locks, no
    /// queue offsets), until `records` are copied in all or `seconds` pass.
    static func memcpy(directory: String, recordSize: Int, producers: Int, records: Int, fileSize: Int,
                       seconds: Double) -> StoreBaseline? {
        let slice = max(recordSize * 16, min(fileSize, max(recordSize * records, 1 << 20)) / producers) / recordSize * recordSize
        let size = slice * producers
        return withScratchFile(directory + "/baseline-memcpy", size: size, preWritten: false) { fd in
            guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else { return nil }
            defer { munmap(base, size) }
            return copies(into: base, size: size, slice: slice, recordSize: recordSize, producers: producers, records: records,
                          seconds: seconds)
        }
    }

    /// The memcpy baseline's threads on the mapping at `base`, after touching its every page.
    private static func copies(into base: UnsafeMutableRawPointer, size: Int, slice: Int, recordSize: Int, producers: Int,
                               records: Int, seconds: Double) -> StoreBaseline? {
        for page in stride(from: 0, to: size, by: Int(sysconf(Int32(_SC_PAGESIZE)))) { base.storeBytes(of: 0, toByteOffset: page, as: UInt8.self) }
        let address = UInt(bitPattern: base)
        let copied = Atomic<Int>(0)
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        let start = monotonicNanos()
        let threads = (0..<producers).map { producer in
            StoreThread(name: "baseline-\(producer)") {
                let share = records / producers + (producer < records % producers ? 1 : 0)
                let target = UnsafeMutableRawPointer(bitPattern: address)! + producer * slice
                let done = copyRecords(into: target, slice: slice, recordSize: recordSize, count: share, deadline: deadline)
                copied.wrappingAdd(done, ordering: .relaxed)
            }
        }
        for thread in threads { thread.join() }
        let elapsed = Double(monotonicNanos() - start) / 1e9
        return StoreBaseline(tps: Double(copied.load(ordering: .relaxed)) / elapsed, histogram: nil,
                             name: "\(producers) threads: memcpy into a pre-faulted mapping")
    }

    /// One thread's copies into its slice (wrapping); stops early at `deadline` (checked every 1024 copies).
    private static func copyRecords(into target: UnsafeMutableRawPointer, slice: Int, recordSize: Int, count: Int,
                                    deadline: UInt64) -> Int {
        let record = [UInt8](repeating: 7, count: recordSize)
        var position = 0, done = 0
        record.withUnsafeBytes { source in
            while done < count {
                if position + recordSize > slice { position = 0 }
                (target + position).copyMemory(from: source.baseAddress!, byteCount: recordSize)
                position += recordSize
                done += 1
                if done & 1023 == 0 && monotonicNanos() > deadline { break }
            }
        }
        return done
    }
}
