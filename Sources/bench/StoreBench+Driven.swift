#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Histogram
import IndexFile
import Synchronization

/// `bench store --drivers D`: the P producers are driven the way the broker drives its connections, not one OS
/// thread each blocking on its put: D threads each own P/D producers; a producer's put returns at once, its durable
/// callback stages it for its driver, the end of the log's batch of callbacks hands the driver its staged ones, and
/// the driver times each and issues its next put. The store sees the same P puts in flight; what goes away is the
/// bench's own cost of waking P threads on the machine's cores per round.
final class DriverQueue: @unchecked Sendable {
    private let lock = ConditionLock()
    private var ready: [Int]
    private var sleeping = false
    /// Producers whose puts the log made durable since its last batch end, handed to the driver together by
    /// `publish`, as the broker's answer queues hand each event loop a group commit's answers once: the durability
    /// thread takes this lock (never the driver's) per put, and the driver's once per batch.
    private let staged: Mutex<[Int]>

    init(capacity: Int) {
        ready = []
        ready.reserveCapacity(capacity)
        var staging = [Int]()
        staging.reserveCapacity(capacity)
        staged = Mutex(staging)
    }

    /// Queues `producer` (its put needs issuing again); wakes the driver if it sleeps.
    func push(_ producer: Int) {
        lock.withLock {
            ready.append(producer)
            if sleeping { lock.signal() }
        }
    }

    /// Stages `producer`, whose put became durable (the log's durability callback), for the next `publish`.
    func stage(_ producer: Int) {
        staged.withLock { $0.append(producer) }
    }

    /// Hands the staged producers to the driver (the log's batch-end callback); wakes it if it sleeps.
    func publish() {
        lock.withLock {
            staged.withLock { staging in
                guard !staging.isEmpty else { return }
                ready.append(contentsOf: staging)
                staging.removeAll(keepingCapacity: true)
            }
            if sleeping && !ready.isEmpty { lock.signal() }
        }
    }

    /// Waits until a producer is queued, then moves every queued one into `batch` (emptied first).
    func take(into batch: inout [Int]) {
        batch.removeAll(keepingCapacity: true)
        lock.withLock {
            while ready.isEmpty {
                sleeping = true
                lock.wait(untilNanos: monotonicNanos() + 1_000_000_000)
                sleeping = false
            }
            swap(&ready, &batch)
        }
    }
}

extension StoreBench {
    /// One driver: issues the first put of each of its `producers`, then, per durable callback, times the put and
    /// issues the producer's next, until each put its `counts` share. Returns the RT histogram and the failures.
    static func drive(_ producers: [Int], counts: [Int], queue: DriverQueue, store: MessageStore?, log: CommitLog, sync: Bool,
                      body: [UInt8]) -> (Histogram<UInt64>, Int) {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var failed = 0
        var sent = [Int](repeating: 0, count: counts.count)
        var began = [UInt64](repeating: 0, count: counts.count)
        var batch = [Int]()
        batch.reserveCapacity(counts.count)
        topic.withUnsafeBytes { t in body.withUnsafeBytes { b in properties.withUnsafeBytes { p in
            var view = MessageView(topic: t, body: b, properties: p)
            /// Issues `producer`'s next put; a put that waits for nothing (or failed) is queued again at once.
            func issue(_ producer: Int) {
                view.queueOffset = Int64(sent[producer])
                view.queueID = Int32((producer + sent[producer]) % StoreBench.queues)
                sent[producer] += 1
                began[producer] = monotonicNanos()
                var pending = false
                do {
                    pending = try StoreBench.putOnce(view, token: UInt64(producer), store: store, log: log, sync: sync)
                } catch {
                    failed += 1
                    began[producer] = 0  // not timed
                }
                if !pending { queue.push(producer) }
            }
            var active = 0
            for producer in producers where counts[producer] > 0 {
                active += 1
                issue(producer)
            }
            while active > 0 {
                queue.take(into: &batch)
                let now = monotonicNanos()
                for producer in batch {
                    if began[producer] != 0 { _ = histogram.record(now - began[producer]) }
                    if sent[producer] < counts[producer] { issue(producer) } else { active -= 1 }
                }
            }
        } } }
        return (histogram, failed)
    }
}
