#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// One slave's connection on the master (RocketMQ's `HAConnection`): a reader thread takes its offset
/// reports (the first sets where pushing starts; each one acknowledges SYNC_MASTER waits), a writer
/// thread pushes the log. Either thread ends both by `shutdown`; the acceptor joins them and only then
/// closes the descriptor.
final class HAConnection: @unchecked Sendable {
    let fd: Int32
    let remoteAddress: String
    let core: HAMasterCore
    /// Where the writer starts, fixed by the first report (-1: none yet).
    let startOffset = Atomic<Int64>(-1)
    /// The last report (-1: none yet).
    let ackedOffset = Atomic<Int64>(-1)
    let lastReportNanos = Atomic<UInt64>(0)
    /// When a report last covered everything the master had written (at first: the connect).
    let caughtUpNanos = Atomic<UInt64>(0)
    let closing = Atomic<Bool>(false)
    private let running = Atomic<Int>(2)
    /// The writer waits here for the first report.
    private let firstReport = ConditionLock()
    private var reader: StoreThread?
    private var writer: StoreThread?
    /// Frames per `sendmsg` (each at most `haTransferBatchSize` and inside one file).
    static let framesPerSendMax = 8

    init(fd: Int32, remoteAddress: String, core: HAMasterCore) {
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.core = core
        let now = monotonicNanos()
        lastReportNanos.store(now, ordering: .relaxed)
        caughtUpNanos.store(now, ordering: .relaxed)  // lag time counts from the connect until it catches up
    }

    func start() {
        reader = StoreThread(name: "ha-conn-read") { [self] in
            runReader()
            threadEnded()
        }
        writer = StoreThread(name: "ha-conn-write") { [self] in
            runWriter()
            threadEnded()
        }
    }

    var isFinished: Bool { running.load(ordering: .acquiring) == 0 }

    private func threadEnded() {
        if running.wrappingSubtract(1, ordering: .acquiringAndReleasing).oldValue == 1 { core.wakeAcceptor() }
    }

    /// Ends the connection (idempotent): the socket is shut down, so both threads return from their
    /// blocking calls; the first reason is logged. **Thread:** any, before `join`.
    func shutdown(_ reason: String) {
        guard !closing.exchange(true, ordering: .sequentiallyConsistent) else { return }
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
        firstReport.withLock { firstReport.broadcast() }
        core.commitLog.wakeDataWaiters()
        core.log("HA master: slave \(remoteAddress): \(reason); connection closed")
    }

    /// Joins both threads and closes the descriptor. **Thread:** the acceptor, after `shutdown` or once
    /// `isFinished`.
    func join() {
        reader?.join()
        writer?.join()
        reader = nil
        writer = nil
        Glibc.close(fd)
    }

    func status(masterEnd: UInt64, now: UInt64) -> HAConnectionStatus {
        let acked = ackedOffset.load(ordering: .acquiring)
        let lag = acked < 0 ? masterEnd : masterEnd - min(masterEnd, UInt64(acked))
        let caughtUp = caughtUpNanos.load(ordering: .relaxed)
        return HAConnectionStatus(
            remoteAddress: remoteAddress, ackedOffset: acked < 0 ? nil : UInt64(acked), lagBytes: lag,
            lagMillis: lag == 0 ? 0 : Int64((now - min(now, caughtUp)) / 1_000_000),
            lastAckAgoMillis: Int64((now - min(now, lastReportNanos.load(ordering: .relaxed))) / 1_000_000),
            inSync: acked >= 0 && lag < core.settings.haMaxGapNotInSync)
    }

    // MARK: Reports in

    private func runReader() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        var scratch = ReplicaWaiters.makeScratch()
        var decoder = ReportDecoder()
        let housekeeping = core.settings.housekeepingNanos
        var lastRead = monotonicNanos()
        while !closing.load(ordering: .acquiring) {
            let now = monotonicNanos()
            guard now - lastRead < housekeeping else {
                return shutdown("no report for \(core.settings.haHousekeepingIntervalMillis) ms (haHousekeepingInterval)")
            }
            let count: Int
            do {
                let events = try HASocket.poll(fd, events: Int16(POLLIN), timeoutMillis: Int((lastRead + housekeeping - now) / 1_000_000) + 1)
                if events == 0 { continue }
                count = try HASocket.read(fd, into: buffer)
            } catch {
                return shutdown("\(error)")
            }
            guard count > 0 else {
                return shutdown(decoder.hasPartialReport ? "closed by the slave inside a report" : "closed by the slave")
            }
            lastRead = monotonicNanos()
            do {
                guard let offset = try decoder.decode(UnsafeRawBufferPointer(rebasing: buffer[..<count])) else { continue }
                if let refusal = acknowledge(offset, scratch: &scratch) { return shutdown(refusal) }
            } catch {
                return shutdown("\(error)")
            }
        }
    }

    /// Takes one report. - Returns: why the connection must close, or nil.
    private func acknowledge(_ offset: UInt64, scratch: inout ContiguousArray<UInt64>) -> String? {
        let end = core.commitLog.wroteOffset
        guard offset <= end else {
            if startOffset.load(ordering: .acquiring) < 0 { tellEnd(end) }
            return "reported offset \(offset) lies beyond the master's end \(end)"
        }
        let now = monotonicNanos()
        lastReportNanos.store(now, ordering: .relaxed)
        if offset >= end { caughtUpNanos.store(now, ordering: .relaxed) }
        if startOffset.load(ordering: .relaxed) < 0 {
            // Where pushing starts: the report, or for an empty slave (report 0) the start of the
            // master's last file (an empty slave gets no older history, as in RocketMQ). Fixed before the
            // report counts as an acknowledgement, so whoever sees the ack sees the start decided.
            let fileSize = UInt64(core.commitLog.settings.mappedFileSizeCommitLog)
            startOffset.store(Int64(offset == 0 ? end - end % fileSize : offset), ordering: .releasing)
            firstReport.withLock { firstReport.broadcast() }
        }
        ackedOffset.store(Int64(offset), ordering: .releasing)
        core.waiters.acknowledge(offset, scratch: &scratch)
        return nil
    }

    /// A slave ahead of the master hears the master's end before the close: a heartbeat carrying it (a
    /// slave then sees an offset that is not its own, as any RocketMQ slave would, and the broker above
    /// can cut it back there). Sent by the reader only before the first report fixed a start, while the
    /// writer still waits and the socket is the reader's alone. Best effort.
    private func tellEnd(_ end: UInt64) {
        var header = (UInt64(0), UInt32(0))
        withUnsafeMutableBytes(of: &header) { bytes in
            HAProtocol.encodeHeader(offset: end, bodySize: 0, into: bytes.baseAddress!)
            var vector = iovec(iov_base: bytes.baseAddress, iov_len: HAProtocol.headerSize)
            try? HASocket.sendAll(fd, &vector, count: 1)
        }
    }

    // MARK: Frames out

    /// Waits for the first report to fix where pushing starts. - Returns: nil when the connection closes first.
    private func waitForStart() -> UInt64? {
        firstReport.lock()
        defer { firstReport.unlock() }
        while startOffset.load(ordering: .acquiring) < 0 {
            if closing.load(ordering: .acquiring) { return nil }
            firstReport.wait(untilNanos: monotonicNanos() + core.settings.housekeepingNanos)
        }
        return UInt64(startOffset.load(ordering: .acquiring))
    }

    private func runWriter() {
        guard let start = waitForStart() else { return }
        let batch = FrameBatch(capacity: HAConnection.framesPerSendMax)
        let log = core.commitLog
        let heartbeat = core.settings.heartbeatNanos
        var next = start
        var lastWrite = monotonicNanos()
        while !closing.load(ordering: .acquiring) {
            let committed = log.committedOffset
            do throws(PushFailure) {
                if next < committed {
                    next = try push(from: next, upTo: committed, batch)
                    lastWrite = monotonicNanos()
                } else if monotonicNanos() >= lastWrite + heartbeat {
                    do { try batch.sendHeartbeat(fd, offset: next) } catch { throw PushFailure(reason: "\(error)") }
                    lastWrite = monotonicNanos()
                } else if log.isClosed {
                    throw PushFailure(reason: "the master's commit log is closed")
                } else {
                    log.waitForCommitted(beyond: next, untilNanos: lastWrite + heartbeat)
                }
            } catch {
                return shutdown(error.reason)
            }
        }
    }

    /// Why pushing stopped (the connection closes).
    struct PushFailure: Error { var reason: String }

    /// Sends up to `framesPerSendMax` frames from `from` in one `sendmsg`. - Returns: the next offset.
    private func push(from: UInt64, upTo committed: UInt64, _ batch: FrameBatch) throws(PushFailure) -> UInt64 {
        let fileSize = UInt64(core.commitLog.settings.mappedFileSizeCommitLog)
        let batchSize = UInt64(core.settings.haTransferBatchSize)
        var at = from
        var frames = 0
        while frames < batch.capacity && at < committed {
            let fileEnd = at - at % fileSize + fileSize
            let size = Int(min(batchSize, committed - at, fileEnd - at))
            guard let region = core.commitLog.region(at: at, count: size) else {
                throw PushFailure(reason: "offset \(at) is not stored here (the log starts at \(core.commitLog.minOffset))")
            }
            batch.add(region)
            at += UInt64(size)
            frames += 1
        }
        do { try batch.send(fd) } catch { throw PushFailure(reason: "\(error)") }
        return at
    }
}

/// One `sendmsg` worth of frames, allocated once per connection: headers, the I/O vector (header, then
/// body straight from the mapping, per frame) and the regions that keep those files mapped meanwhile.
final class FrameBatch {
    let capacity: Int
    private let headers: UnsafeMutableRawPointer
    private let vectors: UnsafeMutablePointer<iovec>
    private var regions: ContiguousArray<MappedRegion?>
    private var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        headers = .allocate(byteCount: capacity * HAProtocol.headerSize, alignment: 8)
        vectors = .allocate(capacity: 2 * capacity)
        regions = ContiguousArray(repeating: nil, count: capacity)
    }

    deinit {
        headers.deallocate()
        vectors.deallocate()
    }

    func add(_ region: MappedRegion) {
        precondition(count < capacity, "frame batch overflow")
        let header = headers + count * HAProtocol.headerSize
        HAProtocol.encodeHeader(offset: region.physicalOffset, bodySize: region.bytes.count, into: header)
        vectors[2 * count] = iovec(iov_base: header, iov_len: HAProtocol.headerSize)
        vectors[2 * count + 1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: region.bytes.baseAddress), iov_len: region.bytes.count)
        regions[count] = region
        count += 1
    }

    /// Sends the frames added and forgets them (their files may be unmapped afterwards).
    func send(_ fd: Int32) throws(SyscallError) {
        defer {
            for index in 0..<count { regions[index] = nil }
            count = 0
        }
        try HASocket.sendAll(fd, vectors, count: 2 * count)
    }

    /// A size-0 frame carrying the next offset.
    func sendHeartbeat(_ fd: Int32, offset: UInt64) throws(SyscallError) {
        precondition(count == 0, "a heartbeat goes alone")
        HAProtocol.encodeHeader(offset: offset, bodySize: 0, into: headers)
        vectors[0] = iovec(iov_base: headers, iov_len: HAProtocol.headerSize)
        try HASocket.sendAll(fd, vectors, count: 1)
    }
}
