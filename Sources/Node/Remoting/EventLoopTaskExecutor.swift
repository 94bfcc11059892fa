import NIOCore
import Synchronization

/// Runs tasks on one event loop: a task started with this executor preference (`Task(executorPreference:)`,
/// `group.addTask(executorPreference:)`) runs its nonisolated code on the loop that owns its connections, so a
/// request goes from the task into the connection's buffer, and the answer resumes the task, without a thread
/// switch (the global executor would wake one of its threads for each resumption and allocate a job record).
///
/// Jobs are queued in arrays kept between ticks and run by one queued drain (a closure made once): enqueueing
/// allocates nothing, and a read burst that resumes many tasks costs one event-loop task.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    public let eventLoop: any EventLoop
    private let queued = Mutex<Queue>(Queue())
    /// The jobs being run (loop-confined), swapped with the queue's array so neither is reallocated.
    private var running: [UnownedJob] = []
    private var drain: (@Sendable () -> Void)?

    struct Queue {
        var jobs: [UnownedJob] = []
        var drainScheduled = false
    }

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        running.reserveCapacity(256)
        queued.withLock { $0.jobs.reserveCapacity(256) }
        drain = { [weak self] in self?.runQueued() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let schedule = queued.withLock { queue -> Bool in
            queue.jobs.append(job)
            defer { queue.drainScheduled = true }
            return !queue.drainScheduled
        }
        if schedule, let drain { eventLoop.execute(drain) }
    }

    private func runQueued() {
        queued.withLock { queue in
            queue.drainScheduled = false
            swap(&queue.jobs, &running)
        }
        let executor = asUnownedTaskExecutor()
        for job in running { job.runSynchronously(on: executor) }
        running.removeAll(keepingCapacity: true)
    }
}

extension RemotingClient {
    /// An executor on the event loop this client's connections use (its first loop; with one thread, the only one).
    public func makeTaskExecutor() -> EventLoopTaskExecutor { EventLoopTaskExecutor(eventLoop: group.next()) }
}
