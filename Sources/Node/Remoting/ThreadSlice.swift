#if canImport(Glibc)
import Glibc
#endif
import CThreadSlice
import NIOCore

/// The scheduler slice of a thread (Linux 6.12+, EEVDF): how long it runs before the scheduler picks again, and
/// how soon after a wake-up it may preempt the running thread. Under the kernel's default (about 0.7 ms times
/// 1 + log2 of the CPU count) a woken event loop often waits for the running thread's whole slice; on two cores
/// that wait is part of the send path's tail (README: `eventLoopSliceMicros`). An event loop does little per wake-up and
/// sleeps again, so a short slice costs it nothing in CPU share (the share still follows nice) and lets it run
/// soon after a request or an answer arrives. Unprivileged: any thread may ask for its own slice.
public enum ThreadSlice {
    /// What the kernel accepts, in microseconds (it clamps other values to this range).
    public static let microsRange: ClosedRange<Int64> = 100...100_000

    /// Whether this kernel keeps a slice per thread (Linux 6.12+ reports one for every SCHED_OTHER thread).
    public static let kernelKeepsSlices = thread_slice_get(0) > 0

    /// Asks for `micros` as the calling thread's slice, then reads it back; nil when applied, else why not
    /// (a kernel before 6.12 accepts the request and keeps no slice: the read-back tells).
    public static func applyToCurrentThread(micros: Int) -> String? {
        let nanos = UInt64(micros) * 1_000
        switch thread_slice_set(nanos) {
        case 0: break
        case -2: return "the thread runs under a real-time, deadline or idle policy (left alone)"
        default: return "sched_setattr: \(String(cString: strerror(errno)))"
        }
        let read = thread_slice_get(0)
        guard read == Int64(nanos) else {
            return read <= 0 ? unsupported : "the kernel reports \(read / 1_000) us"
        }
        return nil
    }

    /// Why nothing was applied on a kernel before 6.12 (not a fault: the threads keep the kernel's scheduling).
    public static let unsupported = "this kernel keeps no per-thread slice (Linux 6.12 or later does)"

    /// The slice thread `tid` (0: the calling thread) has, in microseconds; nil when the kernel reports none.
    public static func micros(thread tid: Int32 = 0) -> Int? {
        let nanos = thread_slice_get(tid)
        return nanos > 0 ? Int(nanos / 1_000) : nil
    }

    /// Asks each event loop of `group` for a `micros` slice on the loop itself, before any later task it runs, without
    /// waiting; `report` gets why a loop did not take it. Nothing is asked for 0 or on a kernel before 6.12.
    public static func request(micros: Int, for group: any EventLoopGroup, report: @escaping @Sendable (String) -> Void) {
        guard micros > 0, kernelKeepsSlices else { return }
        for loop in group.makeIterator() {
            loop.execute {
                if let problem = applyToCurrentThread(micros: micros) { report(problem) }
            }
        }
    }

    /// Gives every event loop of `group` a `micros` slice (0: the kernel's default, nothing is asked); nil when all
    /// took it, else why the first did not. Waits until each loop has run the request.
    public static func apply(micros: Int, to group: any EventLoopGroup) async -> String? {
        guard micros > 0 else { return nil }
        guard kernelKeepsSlices else { return unsupported }
        for loop in group.makeIterator() {
            do {
                if let problem = try await loop.submit({ applyToCurrentThread(micros: micros) }).get() { return problem }
            } catch {
                return "the event loop did not run the request: \(error)"
            }
        }
        return nil
    }
}
