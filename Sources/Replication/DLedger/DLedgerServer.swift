#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import NIOCore
import Raft
import Synchronization

// The DLedger driver: one `RaftCore`, its clock, its disk and its transport, and the broker's commit log as the
// state machine. The files:
//   DLedgerServer.swift         state, start/stop, the inbox, the driver loop
//   DLedgerServer+Ready.swift   carrying out a `Ready`: fence, write, send, apply, role changes
//   DLedgerServer+Store.swift   the commit log as Raft's state machine: proposals, applying, recovery
//   DLedgerServer+Status.swift  status for mqadmin, leadership transfer
//   DLedgerServer+Compaction.swift  dropping applied entries every member holds, from memory and from the file
//   RaftLogDisk.swift, RaftLogRecord.swift, RaftMessageCodec.swift, CommitWaiters.swift, DLedgerSettings.swift

/// Sends Raft messages to a peer (the broker's NIO transport; a queue in tests).
public protocol DLedgerTransport: AnyObject, Sendable {
    /// Sends `messages`, all addressed to `peer`, without blocking. May drop them (peer unreachable, its queue
    /// full): Raft resends what matters.
    func send(_ messages: [RaftMessage], group: String, to peer: DLedgerPeer)
}

/// What the broker needs to know of this member's role: whether it takes writes (then it serves as master,
/// brokerId 0), who leads, in which term.
public struct DLedgerRole: Sendable, Equatable, CustomStringConvertible {
    public var raftRole: RaftRole
    public var term: UInt64
    public var leader: DLedgerPeer?
    /// The member leads and has applied its whole log: it takes puts.
    public var writable: Bool

    public var description: String {
        "\(writable ? "writable " : "")\(raftRole) in t\(term), leader \(leader?.name ?? "unknown")"
    }
}

/// One DLedger member: owns the Raft core, drives it from a dedicated thread on a monotonic clock, persists its
/// log (`RaftLogDisk`), exchanges messages through a `DLedgerTransport`, and applies committed entries to the
/// broker's commit log. A put goes through the commit log's append observer: the leader appends the record
/// locally (assigning offsets as always), proposes the record's bytes, and the put's answer waits until a quorum
/// committed it (`CommitWaiters`). Followers write each committed entry's bytes at the same physical offset, so
/// every member's commit log is the same bytes; only committed bytes are dispatched.
///
/// **Thread:** `start`, `close`, `receive`, `status` and `transferLeadership` from any thread; the driver runs on
/// its own. **Durability:** see `RaftLogDisk` and `DLedgerSettings.syncEachWrite`.
public final class DLedgerServer: @unchecked Sendable {
    public let settings: DLedgerSettings
    public let me: DLedgerPeer
    let store: MessageStore
    let disk: RaftLogDisk
    let core: Mutex<RaftCore>
    let transport: DLedgerTransport
    let log: @Sendable (String) -> Void
    let waiters: CommitWaiters

    /// The term whose writes the commit log takes; 0 while the gate is closed (not leading, or not caught up).
    let gateTerm = Atomic<UInt64>(0)
    /// A proposal was dropped after its record was appended: the driver cuts the commit log back.
    let needsRepair = Atomic<Bool>(false)
    /// When the driver last ran a cycle (a stopped process must not register as master when it wakes).
    let lastCycleNanos = Atomic<UInt64>(0)
    /// The role last reported, for other threads (status, refusals).
    let publishedRole: Mutex<DLedgerRole>
    /// Applied entries (read by status).
    let appliedIndexAtomic = Atomic<UInt64>(0)
    /// The Raft log file's compacted start (read by status).
    let fileCompactedIndex = Atomic<UInt64>(0)

    /// Driver-only state.
    var appliedIndex: LogIndex
    var appliedEnd: UInt64
    var reportedRole: DLedgerRole
    var applyFailureLogged = false
    /// The log's compacted start as the driver compacted it, and where its records end in the commit log.
    var compactedIndex: LogIndex
    var compactedTerm: Term
    var compactedEnd: UInt64
    /// Bytes of applied entries still held in memory (compaction drops them).
    var retainedAppliedBytes = 0
    /// The Raft log file's size at which the driver next tries to rewrite it.
    var fileCompactionDueAt: UInt64
    /// The asynchronous mode's periodic sync of the Raft log, on a thread of its own (an fdatasync of a busy log can
    /// take longer than an election timeout: the driver must not wait for it).
    private var syncer: PeriodicThread?

    /// The inbox and the driver's wake-up: messages received (with when they arrived), work queued.
    let wake = ConditionLock()
    var inbox: [(arrivedAt: UInt64, message: RaftMessage)] = []
    let driverIdle = Atomic<Bool>(false)
    let workPending = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private var thread: StoreThread?
    /// Hears role changes on the driver thread; set before `start`.
    public var onRoleChange: @Sendable (DLedgerRole) -> Void = { _ in }

    /// Recovers the Raft log, brings the commit log in line with it (cutting what was never committed) and
    /// builds the core. Nothing runs until `start`.
    /// - Throws: `StoreError(.badConfig)` for bad settings or a commit log that DLedger did not write;
    ///   `.io` when the Raft log cannot be read.
    public init(settings: DLedgerSettings, store: MessageStore, transport: DLedgerTransport,
                log: @escaping @Sendable (String) -> Void) throws(StoreError) {
        let (settings, config) = try settings.validated()
        self.settings = settings
        me = settings.me!
        self.store = store
        self.transport = transport
        self.log = log
        waiters = CommitWaiters(capacity: settings.commitWaitersMax)
        disk = try RaftLogDisk(directory: settings.directory, io: settings.fileIO, syncEachWrite: settings.syncEachWrite)
        let recovery = try disk.recover()
        var state = recovery.state
        if let flaw = recovery.flaw {
            log("dledger: \(disk.path): cut \(recovery.truncatedBytes) bytes of a torn or corrupt tail (\(flaw))")
        }
        let (applied, end) = try Self.reconcile(store: store, state: state, snapshotEnd: recovery.snapshotEnd, log: log)
        compactedIndex = state.snapshotIndex
        compactedTerm = state.snapshotTerm
        compactedEnd = recovery.snapshotEnd
        fileCompactionDueAt = UInt64(settings.raftLogFileBytesMax)
        fileCompactedIndex.store(state.snapshotIndex.rawValue, ordering: .relaxed)
        state.applied = applied
        appliedIndex = applied
        appliedEnd = end
        appliedIndexAtomic.store(applied.rawValue, ordering: .relaxed)
        core = Mutex(RaftCore(config: config, restoring: state, seed: UInt64.random(in: 1...UInt64.max)))
        reportedRole = DLedgerRole(raftRole: .follower, term: state.hardState.term.rawValue, leader: nil, writable: false)
        publishedRole = Mutex(reportedRole)
        store.commitLog.limitVisibility(to: end)
        log("dledger: \(me.name) of group \(settings.group): \(state.entries.count) entries after \(state.snapshotIndex), term \(state.hardState.term), "
            + "commit \(state.hardState.commit), applied \(applied) (commit log end \(end))")
    }

    /// Starts the driver: the member joins its group.
    public func start() {
        store.commitLog.observeAppends(self)
        lastCycleNanos.store(monotonicNanos(), ordering: .relaxed)
        thread = StoreThread(name: "dledger") { [self] in run() }
        if !settings.syncEachWrite {
            syncer = PeriodicThread(name: "dledger-sync", intervalNanos: UInt64(settings.asyncSyncIntervalMillis) * 1_000_000) { [self] in
                do { try disk.sync() } catch { log("dledger: \(error)") }
            }
        }
    }

    /// Stops the driver; waits still pending fail. The Raft log is synced.
    public func close() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.withLock { wake.signal() }
        thread?.join()
        thread = nil
        syncer?.stop()
        syncer = nil
        _ = try? store.commitLog.withAppendsHeld { gateTerm.store(0, ordering: .releasing) }
        waiters.failAll()
        try? disk.sync()
    }

    /// The answer every put of this member waits for: its entry committed, or why not. Install once, before traffic.
    public func onCommitted(_ handler: @escaping @Sendable (_ token: UInt64, _ status: PutMessageStatus) -> Void) {
        waiters.handler = handler
    }

    /// Decodes a batch a peer sent and queues its messages for the driver.
    /// - Throws: `RaftCodecError` for a batch that does not decode (nothing is queued).
    public func receive(_ body: ByteBuffer) throws(RaftCodecError) {
        let (group, messages) = try RaftMessageCodec.decode(body)
        guard group == settings.group else { throw RaftCodecError(reason: "group \(group), this member is in \(settings.group)") }
        let arrivedAt = monotonicNanos()
        wake.withLock {
            let room = settings.inboxMessagesMax - inbox.count
            inbox.append(contentsOf: messages.prefix(max(0, room)).map { (arrivedAt, $0) })
            wake.signal()
        }
    }

    /// Wakes the driver if it sleeps (a proposal, a transfer).
    func signalDriver() {
        workPending.store(true, ordering: .releasing)
        if driverIdle.load(ordering: .sequentiallyConsistent) { wake.withLock { wake.signal() } }
    }

    // MARK: The driver loop

    private func run() {
        var lastTick = monotonicNanos()
        while !stopping.load(ordering: .acquiring) {
            let messages = nextInputs(until: lastTick + settings.tickNanos)
            let now = monotonicNanos()
            lastCycleNanos.store(now, ordering: .releasing)
            var elapsed = now >= lastTick ? (now - lastTick) / settings.tickNanos : 0
            lastTick += elapsed * settings.tickNanos
            // A process that was stopped catches up on time at once (a stale leader steps down), but a long pause
            // costs at most two election timeouts of ticks.
            let cap = UInt64(2 * settings.electionTicks + 1)
            if elapsed > cap {
                elapsed = cap
                lastTick = now
            }
            let firstTick = lastTick - elapsed * settings.tickNanos
            let cycle = core.withLock { core -> Cycle in
                // Each message is stepped at the tick it arrived in: when the driver was held up (a slow disk),
                // answers that came meanwhile still count as timely, and a leader does not step down for them.
                var next = 0
                for tick in 0..<elapsed {
                    let tickEnd = firstTick + (tick + 1) * settings.tickNanos
                    while next < messages.count && messages[next].arrivedAt < tickEnd {
                        core.step(messages[next].message)
                        next += 1
                    }
                    core.tick()
                }
                for message in messages[next...] { core.step(message.message) }
                return Cycle(core: &core)
            }
            carryOut(cycle)
            afterCycle(now: now)
        }
    }

    /// Waits for messages or queued work, at most until `deadline`; returns the messages received.
    private func nextInputs(until deadline: UInt64) -> [(arrivedAt: UInt64, message: RaftMessage)] {
        wake.withLock {
            if inbox.isEmpty && !workPending.load(ordering: .acquiring) && !stopping.load(ordering: .acquiring) {
                driverIdle.store(true, ordering: .sequentiallyConsistent)
                if !workPending.load(ordering: .sequentiallyConsistent) { wake.wait(untilNanos: deadline) }
                driverIdle.store(false, ordering: .sequentiallyConsistent)
            }
            workPending.store(false, ordering: .releasing)
            defer { inbox.removeAll(keepingCapacity: true) }
            return inbox
        }
    }
}

/// One `Ready` and what the driver must know with it, taken under the core's lock.
struct Cycle {
    var ready: Ready
    var role: RaftRole
    var term: Term
    var leader: NodeID?
    var commitIndex: LogIndex
    var lastIndex: LogIndex
    var termStartIndex: LogIndex
    var transferring: Bool

    init(core: inout RaftCore) {
        ready = core.takeReady()
        role = core.role
        term = core.term
        leader = core.leader
        commitIndex = core.commitIndex
        lastIndex = core.lastIndex
        termStartIndex = core.termStartIndex
        transferring = core.transferee != nil
    }
}
