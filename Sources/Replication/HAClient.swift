#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// The slave's view of its master.
public struct HAClientStatus: Sendable, Equatable {
    public var isConnected: Bool
    /// Where it connects (`host:port`), nil when no master is set.
    public var masterAddress: String?
    /// Its own commit log's written offset (it reports the committed one: the same on mmap).
    public var offset: UInt64
    /// Wall-clock ms of the last frame from the master (data or heartbeat), 0 before the first.
    public var lastPushMillis: Int64
    /// The offset the last frame header from the master carried (nil before the first). A master whose
    /// log ends before this slave's sends its end, then closes: `masterOffset < offset` with no
    /// connection says this slave ran ahead and can be cut back there (`MessageStore.truncate(to:)`).
    public var masterOffset: UInt64?
    /// Connections made so far.
    public var connectCount: Int
    /// Why the last connection ended or failed, if one did.
    public var lastError: String?
}

/// The slave's side of RocketMQ's classic HA stream (`HAClient`): connects to the master's HA address,
/// reports its commit log's written offset at once, after every batch it appends and every
/// `haSendHeartbeatInterval`, and appends each pushed body at its offset (`CommitLog.appendReplicated`).
/// A frame at another offset than its own end closes the connection (RocketMQ does no truncation here:
/// see `MessageStore.truncate(to:)`). A lost master is retried with a backoff from
/// `haReconnectIntervalMinMillis` doubling to `haReconnectIntervalMaxMillis`; a master silent for
/// `haHousekeepingInterval` is dropped.
///
/// Transport: one dedicated thread over a blocking socket (see `HAService` for why not SwiftNIO); bodies
/// go from one preallocated read buffer straight into the log.
///
/// **Thread:** every method may be called from any thread. **Durability:** appended bytes are flushed
/// by the slave's own `flushDiskType`. The reported offset is the committed one (in the page cache, so
/// it survives this process dying), as RocketMQ's written offset is: on the mmap path the two are the
/// same; on io_uring the report waits (briefly, woken by the ring) until the ring wrote the arena out.
public final class HAClient: @unchecked Sendable {
    let core: HAClientCore
    private var thread: StoreThread?

    /// Starts the client thread; with no `masterAddress` it waits for `setMasterAddress`. A slave's log
    /// that ran ahead of this master is cut first (`MessageStore.truncate(to:)`), before this starts.
    /// - Throws: `StoreError` with `.badConfig` for bad settings.
    /// - Thread: any. Close the client before the commit log it appends to.
    public init(commitLog: CommitLog, settings: HASettings = HASettings(), masterAddress: String? = nil,
                log: @escaping @Sendable (String) -> Void = { _ in }) throws(StoreError) {
        core = HAClientCore(commitLog: commitLog, settings: try settings.validated(), log: log)
        core.target.withLock { $0.address = masterAddress }
        thread = StoreThread(name: "ha-client") { [core] in core.run() }
    }

    deinit { close() }

    /// Points the client at a (new) master, `host:port` (`[v6]:port`), as the broker learns it from the
    /// NameServer; nil disconnects. A change drops the current connection at once; the same address
    /// again changes nothing. **Thread:** any.
    public func setMasterAddress(_ address: String?) {
        let changed = core.target.withLock { target -> Bool in
            guard target.address != address else { return false }
            target.address = address
            target.generation += 1
            return true
        }
        guard changed else { return }
        core.shutdownSocket()
        core.wake.withLock { core.wake.broadcast() }
    }

    /// The address set last. **Thread:** any.
    public var masterAddress: String? { core.target.withLock { $0.address } }

    /// After a session with a master ends (it died, restarted, or the link broke), forget the address instead of
    /// reconnecting, and call `handler`: the broker first checks its log against the master again (a master that
    /// lost its unsynced tail in a power cut comes back shorter, and its new records will sit at offsets this slave
    /// already holds), then sets the address again. Without a handler the client reconnects by itself.
    /// **Thread:** any; `handler` runs on the client thread and must not block.
    public func holdAfterSessionEnds(_ handler: @escaping @Sendable () -> Void) {
        core.sessionEnded.withLock { $0 = handler }
    }

    /// A snapshot of the connection and the log's offset. **Thread:** any.
    public var status: HAClientStatus {
        let masterOffset = core.masterOffsetRaw.load(ordering: .relaxed)
        return HAClientStatus(
            isConnected: core.connected.load(ordering: .relaxed), masterAddress: masterAddress,
            offset: core.commitLog.wroteOffset, lastPushMillis: core.lastPushMillis.load(ordering: .relaxed),
            masterOffset: masterOffset < 0 ? nil : UInt64(masterOffset),
            connectCount: core.connectCount.load(ordering: .relaxed), lastError: core.lastError.withLock { $0 })
    }

    /// Drops the connection and joins the thread (at most a connect timeout when one is under way, far
    /// less otherwise: the socket is shut down under it). Idempotent. **Thread:** any but the client's.
    /// **Durability:** what was appended stays as the log's flush mode keeps it.
    public func close() {
        guard !core.stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        core.shutdownSocket()
        core.wake.withLock { core.wake.broadcast() }
        thread?.join()
        thread = nil
    }
}

/// What the client thread shares with the `HAClient` handle (the thread holds this, not the handle).
final class HAClientCore: @unchecked Sendable {
    let commitLog: CommitLog
    let settings: HASettings
    let log: @Sendable (String) -> Void
    let target = Mutex<(address: String?, generation: Int)>((nil, 0))
    let stopping = Atomic<Bool>(false)
    let connected = Atomic<Bool>(false)
    let lastPushMillis = Atomic<Int64>(0)
    /// The last frame header's offset, -1 before the first.
    let masterOffsetRaw = Atomic<Int64>(-1)
    let connectCount = Atomic<Int>(0)
    let lastError = Mutex<String?>(nil)
    let sessionEnded = Mutex<(@Sendable () -> Void)?>(nil)
    /// Backoff sleeps and the wait for an address happen here.
    let wake = ConditionLock()
    /// The socket in use (-1: none), so another thread can shut it down; closed only after it is
    /// cleared under this lock.
    private let socket = Mutex<Int32>(-1)
    static let readBufferBytes = 1 << 20

    init(commitLog: CommitLog, settings: HASettings, log: @escaping @Sendable (String) -> Void) {
        self.commitLog = commitLog
        self.settings = settings
        self.log = log
    }

    func shutdownSocket() {
        socket.withLock { fd in if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    private func note(_ error: String) {
        lastError.withLock { $0 = error }
        log("HA slave: \(error)")
    }

    func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: HAClientCore.readBufferBytes, alignment: 8)
        defer { buffer.deallocate() }
        var backoffMillis = settings.haReconnectIntervalMinMillis
        while !stopping.load(ordering: .acquiring) {
            let (address, generation) = target.withLock { ($0.address, $0.generation) }
            guard let address, !commitLog.isClosed else {
                // No master yet, or nothing to append to: wait for a new address (or the close).
                sleep(millis: settings.haReconnectIntervalMaxMillis, unlessGenerationMoves: generation)
                continue
            }
            var receivedFrames = false
            do {
                let fd = try connect(address)
                connectCount.wrappingAdd(1, ordering: .relaxed)
                connected.store(true, ordering: .relaxed)
                log("HA slave: connected to \(address), reporting \(commitLog.wroteOffset)")
                let outcome = session(fd, generation: generation, buffer: buffer)
                receivedFrames = outcome.receivedFrames
                connected.store(false, ordering: .relaxed)
                socket.withLock { $0 = -1 }
                Glibc.close(fd)
                note("connection to \(address) ended: \(outcome.reason)")
                if !stopping.load(ordering: .acquiring) { holdForRecheck(generation: generation) }
            } catch {
                note("cannot connect to \(address): \(error)")
            }
            if receivedFrames { backoffMillis = settings.haReconnectIntervalMinMillis }
            if stopping.load(ordering: .acquiring) { break }
            if target.withLock({ $0.generation }) != generation { continue }  // a new master: at once
            sleep(millis: backoffMillis, unlessGenerationMoves: generation)
            backoffMillis = min(backoffMillis * 2, settings.haReconnectIntervalMaxMillis)
        }
    }

    /// With a `sessionEnded` handler: forgets the address (unless a new one came meanwhile) and calls it.
    private func holdForRecheck(generation: Int) {
        guard let handler = sessionEnded.withLock({ $0 }) else { return }
        let held = target.withLock { target -> Bool in
            guard target.generation == generation else { return false }
            target.address = nil
            return true
        }
        if held { handler() }
    }

    private func sleep(millis: Int, unlessGenerationMoves generation: Int) {
        let deadline = monotonicNanos() + UInt64(millis) * 1_000_000
        wake.withLock {
            while !stopping.load(ordering: .acquiring) && target.withLock({ $0.generation }) == generation
                && monotonicNanos() < deadline {
                wake.wait(untilNanos: deadline)
            }
        }
    }

    /// A connected socket, registered for `shutdownSocket` before the connect may block.
    private func connect(_ address: String) throws(StoreError) -> Int32 {
        guard let (host, port) = HASocket.split(address) else {
            throw StoreError(.badConfig, "master HA address '\(address)' is not host:port")
        }
        let resolved = try HASocket.resolve(host: host, port: port)
        let fd: Int32
        do { fd = try HASocket.makeSocket(for: resolved) } catch {
            throw StoreError(.io, "socket for \(address)", cause: error)
        }
        socket.withLock { $0 = fd }
        do throws(SyscallError) {
            if stopping.load(ordering: .acquiring) { throw SyscallError(name: "connect", errno: ECANCELED) }
            try HASocket.connect(fd, to: resolved, timeoutMillis: settings.haConnectTimeoutMillis)
        } catch {
            socket.withLock { $0 = -1 }
            Glibc.close(fd)
            throw StoreError(.io, "connect to \(address)", cause: error)
        }
        return fd
    }

    /// Serves one connection until it ends. - Returns: why, and whether any frame arrived.
    private func session(_ fd: Int32, generation: Int, buffer: UnsafeMutableRawBufferPointer)
        -> (reason: String, receivedFrames: Bool) {
        var decoder = TransferDecoder(bodySizeMax: settings.haTransferBodySizeMax)
        var received = false
        var reported = committedEnd()
        do { try HASocket.sendReport(fd, reported) } catch { return ("\(error)", false) }
        var lastReport = monotonicNanos()
        var lastRead = lastReport
        while true {
            if stopping.load(ordering: .acquiring) { return ("the client is closing", received) }
            if target.withLock({ $0.generation }) != generation { return ("the master address changed", received) }
            let now = monotonicNanos()
            if now - lastRead >= settings.housekeepingNanos {
                return ("nothing from the master for \(settings.haHousekeepingIntervalMillis) ms (haHousekeepingInterval)", received)
            }
            do throws(SyscallError) {
                if now - lastReport >= settings.heartbeatNanos {
                    reported = commitLog.committedOffset
                    try HASocket.sendReport(fd, reported)
                    lastReport = now
                }
                // A report that fell short of what was appended (the io_uring ring had not written it yet) is
                // sent again as soon as the rest is committed: a SYNC_MASTER put waits on it.
                let short = reported < commitLog.wroteOffset
                var wakeAt = min(lastReport + settings.heartbeatNanos, lastRead + settings.housekeepingNanos)
                if short { wakeAt = min(wakeAt, now + HAClientCore.shortReportRecheckNanos) }
                let events = try HASocket.poll(fd, events: Int16(POLLIN), timeoutMillis: Int((wakeAt - min(wakeAt, now)) / 1_000_000) + 1)
                if events == 0 {
                    let committed = min(commitLog.committedOffset, commitLog.wroteOffset)
                    if short && committed > reported {
                        try HASocket.sendReport(fd, committed)
                        reported = committed
                        lastReport = monotonicNanos()
                    }
                    continue
                }
                let count = try HASocket.read(fd, into: buffer)
                guard count > 0 else {
                    return (decoder.isAtFrameBoundary ? "closed by the master" : "closed by the master inside a frame", received)
                }
                lastRead = monotonicNanos()
                if let refusal = apply(UnsafeRawBufferPointer(rebasing: buffer[..<count]), &decoder, &received) {
                    return (refusal, received)
                }
                let end = committedEnd()
                if end > reported {
                    try HASocket.sendReport(fd, end)
                    reported = end
                    lastReport = monotonicNanos()
                }
            } catch {
                return ("\(error)", received)
            }
        }
    }

    /// The committed offset once it reached the written one (at most `reportWaitNanos` later: a report
    /// that falls short is sent again with the next batch or heartbeat).
    private func committedEnd() -> UInt64 {
        let wrote = commitLog.wroteOffset
        commitLog.commitPromptly(upTo: wrote)  // io_uring: the report waits for these bytes; do not coalesce them
        var committed = commitLog.committedOffset
        let deadline = monotonicNanos() + HAClientCore.reportWaitNanos
        while committed < wrote && monotonicNanos() < deadline {
            committed = commitLog.waitForCommitted(beyond: wrote - 1, untilNanos: deadline)
        }
        return min(wrote, committed)
    }

    static let reportWaitNanos: UInt64 = 50_000_000
    /// How soon a short report is checked again (ours).
    static let shortReportRecheckNanos: UInt64 = 2_000_000

    /// Decodes what arrived and appends the bodies. - Returns: why the connection must close, or nil.
    private func apply(_ bytes: UnsafeRawBufferPointer, _ decoder: inout TransferDecoder, _ received: inout Bool) -> String? {
        var input = bytes
        while true {
            let next: TransferEvent?
            do { next = try decoder.next(&input) } catch { return "\(error)" }
            guard let event = next else { return nil }
            switch event {
            case .header(let header):
                received = true
                lastPushMillis.store(wallClockMillis(), ordering: .relaxed)
                masterOffsetRaw.store(Int64(header.physicalOffset), ordering: .relaxed)
                let own = commitLog.wroteOffset
                if own != 0 && header.physicalOffset != own {
                    return "the master pushed offset \(header.physicalOffset), this log ends at \(own); reconnecting"
                }
            case .body(let offset, let body):
                do { try commitLog.appendReplicated(body, at: offset) } catch {
                    return "cannot append \(body.count) bytes at \(offset): \(error)"
                }
            }
        }
    }
}
