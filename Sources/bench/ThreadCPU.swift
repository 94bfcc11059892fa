#if canImport(Glibc)
import Glibc
#endif
import IndexFile

/// CPU time of some of this process's threads, chosen by name, from `/proc/self/task/TID/schedstat` (its first
/// field: nanoseconds on a CPU, not rounded to clock ticks). A thread that exits between two samples takes its
/// time with it, so this is for threads that live through the run (the log's flush threads, and io_uring's
/// workers, which stay while work keeps coming).
struct ThreadCPU {
    /// Nanoseconds on a CPU by thread id, for the threads whose names start with one of the prefixes.
    var nanosByThread: [Int32: UInt64] = [:]

    /// The threads that flush under SYNC_FLUSH: the mmap group commit's lanes, the io_uring ring thread and the
    /// kernel's io_uring workers (which run its FDATASYNCs).
    static let flushThreadPrefixes = ["group-commit-", "io-uring-ring", "iou-wrk-"]

    static func sample(prefixes: [String]) -> ThreadCPU {
        var result = ThreadCPU()
        guard let directory = opendir("/proc/self/task") else { return result }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard let tid = Int32(name),
                  let comm = readTextFile("/proc/self/task/\(tid)/comm"),
                  prefixes.contains(where: { comm.hasPrefix($0) }),
                  let stat = readTextFile("/proc/self/task/\(tid)/schedstat"),
                  let nanos = Self.runNanos(schedstat: stat) else { continue }
            result.nanosByThread[tid] = nanos
        }
        return result
    }

    /// The first field of a schedstat line (time on a CPU, nanoseconds).
    static func runNanos(schedstat line: String) -> UInt64? {
        line.split(separator: " ").first.flatMap { UInt64($0) }
    }

    /// Nanoseconds the threads in `self` spent since `earlier` (a thread not in `earlier` started since then).
    func since(_ earlier: ThreadCPU) -> UInt64 {
        nanosByThread.reduce(0) { total, thread in
            let before = earlier.nanosByThread[thread.key] ?? 0
            return total + (thread.value >= before ? thread.value - before : 0)
        }
    }
}
