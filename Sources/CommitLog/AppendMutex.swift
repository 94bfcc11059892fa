import CStoreKernels

/// The commit log's append lock and the state it guards. Unlike `Synchronization.Mutex` (a priority-inheritance
/// futex on Linux, which hands the lock to the parked waiter at release), a release here leaves the lock free for
/// whichever thread comes first: with more appenders than cores, a hand-off makes every later append wait until
/// the woken waiter is scheduled, and the appenders queue behind one another (4 producers on 2 cores, release,
/// `bench store --flush async`: `_lockSlow` took 22% and context switches 9% of the producers' CPU, and 4 producers
/// stored fewer messages per second than 1). A contended acquire spins about a microsecond, then parks on a futex
/// (`store_lock.c`).
struct AppendMutex<Value>: ~Copyable, @unchecked Sendable {
    private let word: UnsafeMutablePointer<UInt32>
    private let value: UnsafeMutablePointer<Value>

    init(_ initial: Value) {
        word = .allocate(capacity: 1)
        word.initialize(to: 0)
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        word.deallocate()
    }

    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        store_lock_acquire(word)
        defer { store_lock_release(word) }
        return try body(&value.pointee)
    }
}
