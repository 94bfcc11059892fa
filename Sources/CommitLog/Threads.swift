#if canImport(Glibc)
import Glibc
#endif
import CLiburing

/// A pthread mutex with a condition variable on the monotonic clock, for the store's dedicated threads
/// (flush, ring reaping, pre-allocation, retention). They wake on a signal, not by polling.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    @inline(__always) public func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) public func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits (lock held) until signalled or `deadlineNanos` (monotonic) passes. Spurious wake-ups happen:
    /// callers re-check their condition in a loop.
    public func wait(untilNanos deadlineNanos: UInt64) {
        var ts = timespec(tv_sec: Int(deadlineNanos / 1_000_000_000), tv_nsec: Int(deadlineNanos % 1_000_000_000))
        pthread_cond_timedwait(condition, mutex, &ts)
    }

    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }
}

private final class ThreadBody {
    let name: String
    let body: () -> Void
    init(_ name: String, _ body: @escaping () -> Void) {
        self.name = name
        self.body = body
    }
}

/// A joinable OS thread running `body` (Swift concurrency never runs the store's loops).
public struct StoreThread: @unchecked Sendable {
    private var handle: pthread_t

    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(ThreadBody(String(name.prefix(15)), body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue()
            _ = cliburing_set_thread_name(box.name)
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        handle = thread
    }

    public func join() { pthread_join(handle, nil) }
}

/// A thread that runs `body` every `intervalNanos` until stopped (woken early by `stop`).
public final class PeriodicThread: @unchecked Sendable {
    private let wake = ConditionLock()
    private var stopping = false
    private var thread: StoreThread?

    public init(name: String, intervalNanos: UInt64, _ body: @escaping @Sendable () -> Void) {
        thread = StoreThread(name: name) { [self] in
            while true {
                let stop = wake.withLock { () -> Bool in
                    if !stopping { wake.wait(untilNanos: monotonicNanos() + intervalNanos) }
                    return stopping
                }
                if stop { return }
                body()
            }
        }
    }

    /// Wakes the thread, lets a running `body` finish, and joins it.
    public func stop() {
        wake.withLock {
            stopping = true
            wake.broadcast()
        }
        thread?.join()
        thread = nil
    }
}
