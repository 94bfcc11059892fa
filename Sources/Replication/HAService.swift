#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// One slave as the master sees it.
public struct HAConnectionStatus: Sendable, Equatable {
    /// The slave's address as the master's socket sees it (`ip:port`).
    public var remoteAddress: String
    /// The last offset it reported (nil before its first report).
    public var ackedOffset: UInt64?
    /// Master's max (written) offset minus `ackedOffset` (the whole log before the first report).
    public var lagBytes: UInt64
    /// Milliseconds since the slave last reported everything the master had then (0 when it is there).
    public var lagMillis: Int64
    /// Milliseconds since its last report.
    public var lastAckAgoMillis: Int64
    /// It reported, and is less than `haMaxGapNotInSync` behind.
    public var inSync: Bool
}

/// The master's view of replication.
public struct HAServiceStatus: Sendable, Equatable {
    /// The master's written offset when the snapshot was taken.
    public var masterMaxOffset: UInt64
    public var slaves: [HAConnectionStatus]
    public var inSyncSlaveCount: Int { slaves.filter(\.inSync).count }
}

/// The master's side of RocketMQ's classic HA stream (`HAService` + `HAConnection`): accepts slaves on
/// `haListenPort`, pushes each one the commit log from where its first report asks (an empty slave:
/// the start of the master's last file), and answers SYNC_MASTER waits from their reports.
///
/// Transport: dedicated threads over blocking sockets, not SwiftNIO. A master has one or two slaves, so
/// two threads per connection (reports in, frames out, as RocketMQ's `ReadSocketService` and
/// `WriteSocketService`) cost nothing, and they let a frame go out as one `sendmsg` whose body points
/// straight into the commit log's mapping: no copy into a channel buffer, no allocation per batch, no
/// event-loop hop on the append path. The sender sleeps on the commit log's own growth signal (the one
/// the dispatcher uses), so new bytes go out as soon as they are readable, with no polling.
///
/// **Thread:** every method may be called from any thread. **Durability:** none of its own; it reads
/// committed bytes (in the page cache, flushed or not) and never writes the log.
public final class HAService: @unchecked Sendable {
    public let settings: HASettings
    /// The port slaves connect to (the chosen one when `haListenPort` is 0).
    public let port: Int
    let core: HAMasterCore
    private var acceptor: StoreThread?
    private var watcher: StoreThread?

    /// Listens on `haListenHost:haListenPort` and starts the accepting and timeout threads.
    /// - Parameter log: where connection events go (connects, closes and why).
    /// - Throws: `StoreError` with `.badConfig` for bad settings, `.io` when the port cannot be bound.
    /// - Thread: any. Close the service before the commit log it reads (a closed log ends every push).
    public init(commitLog: CommitLog, settings: HASettings = HASettings(),
                log: @escaping @Sendable (String) -> Void = { _ in }) throws(StoreError) {
        let settings = try settings.validated()
        let (listener, port) = try HASocket.listen(host: settings.haListenHost, port: settings.haListenPort)
        self.settings = settings
        self.port = port
        core = HAMasterCore(commitLog: commitLog, settings: settings, listener: listener, log: log)
        acceptor = StoreThread(name: "ha-accept") { [core] in core.runAcceptor() }
        watcher = StoreThread(name: "ha-slave-timeout") { [core] in core.runWatcher() }
        log("HA master listening on \(settings.haListenHost):\(port)")
    }

    deinit { close() }

    /// Installs the function that hears how a `.pending` replica wait ended. Call once, before the first
    /// `awaitReplica`. It runs on an HA thread: keep it short (complete a promise).
    public func onReplicated(_ handler: @escaping @Sendable (_ token: UInt64, _ status: ReplicaStatus) -> Void) {
        core.waiters.handler = handler
    }

    /// A SYNC_MASTER put whose record ends at `offset` asks to be told when a slave has it.
    /// - Returns: `.done` when a slave already acknowledged `offset`; `.slaveNotAvailable` when no slave
    ///   has reported or the best one is `haMaxGapNotInSync` or more behind `offset`; `.waitersFull` when
    ///   `replicaWaitersMax` puts wait; else `.pending`: the handler hears `token` with `.replicated`
    ///   once a slave reports `offset` or more, or `.timedOut` after `slaveTimeout`.
    /// - Thread: any (the put path); allocates nothing. **Durability:** replication only says a slave
    ///   has the bytes in its page cache (RocketMQ's slaves report their written offset).
    public func awaitReplica(upTo offset: UInt64, token: UInt64) -> ReplicaWait {
        guard let best = core.bestAckedOffset() else { return .slaveNotAvailable }
        if offset <= best { return .done }
        if offset - best >= settings.haMaxGapNotInSync { return .slaveNotAvailable }
        return core.waiters.add(offset: offset, token: token, deadlineNanos: monotonicNanos() + settings.slaveTimeoutNanos)
    }

    /// Replica waits outstanding.
    public var pendingReplicaWaiters: Int { core.waiters.outstanding }

    /// Slaves connected now (reported or not).
    public var connectionCount: Int { core.connections.withLock { $0.count { !$0.closing.load(ordering: .relaxed) } } }

    /// A snapshot of every connected slave. - Thread: any (takes the connection list's lock).
    public var status: HAServiceStatus {
        let end = core.commitLog.wroteOffset
        let now = monotonicNanos()
        let slaves = core.connections.withLock { $0.filter { !$0.closing.load(ordering: .relaxed) } }
        return HAServiceStatus(masterMaxOffset: end, slaves: slaves.map { $0.status(masterEnd: end, now: now) })
    }

    /// Closes the listener and every connection, joins every thread, and completes the waits still
    /// pending with `.timedOut`. Idempotent. **Thread:** any but an HA thread (not from the
    /// `onReplicated` handler). **Durability:** the commit log is left as it is.
    public func close() {
        guard !core.stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        core.wakeAcceptor()
        core.waiters.wake.withLock { core.waiters.wake.broadcast() }
        acceptor?.join()
        watcher?.join()
        acceptor = nil
        watcher = nil
        var scratch = ReplicaWaiters.makeScratch()
        core.waiters.expire(now: .max, all: true, scratch: &scratch)
        Glibc.close(core.listener)
        core.closeWakePipe()
    }
}

/// What the master's threads share. They hold this, never the `HAService`, so releasing the service
/// can close it while they run.
final class HAMasterCore: @unchecked Sendable {
    let commitLog: CommitLog
    let settings: HASettings
    let waiters: ReplicaWaiters
    let log: @Sendable (String) -> Void
    let listener: Int32
    let connections = Mutex<[HAConnection]>([])
    let stopping = Atomic<Bool>(false)
    /// The acceptor sleeps in poll on the listener and this pipe's read end; a byte wakes it (a
    /// connection ended and wants joining, or the service stops).
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init(commitLog: CommitLog, settings: HASettings, listener: Int32, log: @escaping @Sendable (String) -> Void) {
        self.commitLog = commitLog
        self.settings = settings
        self.listener = listener
        self.log = log
        waiters = ReplicaWaiters(capacity: settings.replicaWaitersMax)
        var ends: [Int32] = [0, 0]
        precondition(pipe(&ends) == 0, "pipe failed: errno \(errno)")
        for fd in ends {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        wakeRead = ends[0]
        wakeWrite = ends[1]
    }

    func wakeAcceptor() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // a full pipe already holds a wake-up
    }

    func closeWakePipe() {
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
    }

    /// The highest offset a connected slave reported, or nil when none has reported.
    func bestAckedOffset() -> UInt64? {
        connections.withLock { connections in
            var best: Int64 = -1
            for connection in connections where !connection.closing.load(ordering: .relaxed) {
                best = max(best, connection.ackedOffset.load(ordering: .acquiring))
            }
            return best < 0 ? nil : UInt64(best)
        }
    }

    // MARK: Accepting

    func runAcceptor() {
        var entries = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        var drain = [UInt8](repeating: 0, count: 64)
        while !stopping.load(ordering: .acquiring) {
            _ = try? syscall("poll") { poll(&entries, 2, -1) }
            if entries[1].revents != 0 { _ = read(wakeRead, &drain, drain.count) }
            joinFinished()
            guard !stopping.load(ordering: .acquiring), entries[0].revents & Int16(POLLIN) != 0 else { continue }
            do {
                let (fd, remote) = try HASocket.accept(listener)
                let connection = HAConnection(fd: fd, remoteAddress: remote, core: self)
                connections.withLock { $0.append(connection) }
                connection.start()
                log("HA master: slave \(remote) connected")
            } catch {
                // Out of descriptors or memory: the listener stays readable, so pause instead of spinning.
                log("HA master: accept failed: \(error); retrying in 100 ms")
                usleep(100_000)
            }
        }
        let all = connections.withLock { $0 }
        for connection in all { connection.shutdown("the HA service is closing") }
        for connection in all { connection.join() }
        connections.withLock { $0.removeAll() }
    }

    /// Joins and closes the connections whose threads both ended.
    private func joinFinished() {
        let finished = connections.withLock { connections -> [HAConnection] in
            let done = connections.filter(\.isFinished)
            connections.removeAll { $0.isFinished }
            return done
        }
        for connection in finished { connection.join() }
    }

    // MARK: Timeouts

    /// Completes replica waits at their deadline, sleeping until the earliest one (or, with none
    /// pending, until `add` wakes it).
    func runWatcher() {
        var scratch = ReplicaWaiters.makeScratch()
        let wake = waiters.wake
        while !stopping.load(ordering: .acquiring) {
            let now = monotonicNanos()
            let earliest = waiters.expire(now: now, scratch: &scratch)
            wake.lock()
            if let earliest {
                if !stopping.load(ordering: .relaxed) { wake.wait(untilNanos: earliest) }
            } else {
                waiters.watcherIdle.store(true, ordering: .sequentiallyConsistent)
                if waiters.outstanding == 0 && !stopping.load(ordering: .relaxed) {
                    wake.wait(untilNanos: now + settings.slaveTimeoutNanos)
                }
                waiters.watcherIdle.store(false, ordering: .sequentiallyConsistent)
            }
            wake.unlock()
        }
    }
}
