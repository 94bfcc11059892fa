// Raft as a pure state machine: inputs are ticks, messages and proposals; the output is a `Ready` value.
//
// The files of this target:
//   RaftCore.swift            state, inputs, `takeReady`, role transitions
//   RaftCore+Election.swift   terms, pre-votes and votes; the pre-candidate's and candidate's steps
//   RaftCore+Leader.swift     proposals, pipelined appends, heartbeats, commit, check-quorum
//   RaftCore+Follower.swift   matching and accepting appends; rejections with a back-off hint
//   RaftCore+Transfer.swift   leadership transfer and the preferred leader
//   RaftCore+Compaction.swift the safe point every member holds, and compaction through it
//   RaftLog.swift, Progress.swift   the in-memory log; the leader's view of each follower
//   Simulation/               a seeded group over a faulty network and disks, and its safety checks
//
// The log: the core holds the entries after its compacted prefix in memory, mirroring the durable log plus what it
// has not yet handed out (`RaftLog`). A node restores it from its start (`DurableState`); each `Ready` says what
// to append, and from where to cut a divergent suffix first. Compaction needs no snapshots shipped over the
// network: a member drops only entries that every member already holds and it applied (`RaftCore+Compaction`),
// so a lagging follower is always caught up from the leader's log. A member that lost its disk needs a rebuild
// from another member's state machine: the leader reports it (`Ready.rebuildNeeded`) and serves the others.

/// One member of a Raft group, without clock, randomness of its own, I/O, locks or `async`.
///
/// The driver (the broker's DLedger driver, or the simulator) owns the timer, the disk and the transport. It
/// calls `tick()` at a fixed interval, `step(_:)` for each message that arrives, `propose(_:)` for client data,
/// and after each of those takes `takeReady()` and carries it out in order (see `Ready`).
///
/// Roles: every node starts as a follower. A follower that hears no leader for its randomized election timeout
/// becomes a pre-candidate (asks whether it could win, term unchanged), then a candidate (term + 1, votes for
/// itself), then leader once a quorum voted for it. Each role has its own `step` function.
///
/// **Thread:** a value; one owner calls its mutating methods (the DLedger driver: one serial executor).
/// **Durability:** nothing is durable until the driver persists a `Ready`; the core assumes it was, once the
/// driver calls it again.
public struct RaftCore: Sendable {
    public let config: RaftConfig
    public internal(set) var term: Term
    /// The node voted for in `term`.
    public internal(set) var vote: NodeID?
    /// The leader of `term` as far as this node knows.
    public internal(set) var leader: NodeID?
    public internal(set) var role: RaftRole = .follower

    var log: RaftLog
    var rng: SplitMix64
    /// Ticks since this node started: the age of in-flight appends is measured in it.
    var now: UInt64 = 0
    /// Ticks since this node last heard from its leader, or since its (pre-)campaign started.
    var electionElapsed = 0
    var heartbeatElapsed = 0
    /// This round's election timeout, drawn from `electionTicks ..< 2 * electionTicks`.
    var electionTimeout: Int
    /// Answers in the current (pre-)election: true for a grant.
    var votes: [NodeID: Bool] = [:]
    /// The leader's view of each other member, in member order (empty unless leading).
    var progress: [Progress] = []
    /// The index of the no-op this leader appended when its term began: once it is applied, every entry
    /// committed before this term is too (the broker's new leader takes writes only then).
    public internal(set) var termStartIndex: LogIndex = .zero
    /// Bytes of entries this leader appended that are not committed yet.
    var uncommittedBytes = 0
    /// The member leadership is being handed to, and for how many ticks.
    public internal(set) var transferee: NodeID?
    var transferElapsed = 0

    /// The highest index every member is known to hold durably, committed (see `RaftCore+Compaction.swift`):
    /// computed by a leader, heard by a follower; never decreases.
    public internal(set) var compactableIndex: LogIndex = .zero
    /// Followers found to need entries this leader compacted (or this node itself, see `heardCompactable`), not
    /// yet reported in a `Ready`.
    var rebuildNeeded: [NodeID] = []
    var lostLogReported = false

    var outbox: [RaftMessage] = []
    var savedHardState: HardState
    var reportedRole: RoleChange

    /// Restores a node from what its disk holds.
    /// - Parameters:
    ///   - config: this node's validated settings.
    ///   - state: the durable hard state and log. The log must run from `snapshotIndex + 1` without gaps, terms never
    ///     decreasing (this traps otherwise: recovery repairs a corrupt disk before Raft sees it). A crash after
    ///     the log's writes and before the hard state's leaves entries of a term the hard state has not reached:
    ///     the term is raised to the log's.
    ///   - seed: drives the election timeouts; give each node (and each restart) its own.
    public init(config: RaftConfig, restoring state: DurableState, seed: UInt64) {
        self.config = config
        log = RaftLog(restoring: state)
        // The log's writes may have reached the disk while the hard state's did not: the term is at least the
        // last entry's. The vote of that later term was never announced (nothing leaves before a sync).
        if log.lastTerm > state.hardState.term {
            term = log.lastTerm
            vote = nil
        } else {
            term = state.hardState.term
            vote = state.hardState.vote
        }
        if let vote { precondition(config.members.contains(vote), "restored vote for \(vote), not a member") }
        rng = SplitMix64(seed: seed)
        electionTimeout = config.electionTicks
        savedHardState = state.hardState
        reportedRole = RoleChange(role: .follower, term: term, leader: nil)
        resetElectionTimer()
    }

    // MARK: Read-only views for the driver and for tests

    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    public var commitIndex: LogIndex { log.committed }
    public var lastIndex: LogIndex { log.lastIndex }
    public var lastTerm: Term { log.lastTerm }
    /// The term of the entry at `index` (`.zero` for 0, the snapshot's term at `snapshotIndex`), or nil below
    /// `snapshotIndex` (compacted) and past the end of the log.
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }
    public func entry(at index: LogIndex) -> LogEntry? { log.entry(at: index) }
    /// What the leader knows of `member`'s log: its match index and the next index to send (nil unless leading).
    public func replicationState(of member: NodeID) -> (match: LogIndex, next: LogIndex)? {
        progress.first { $0.id == member }.map { ($0.match, $0.next) }
    }

    // MARK: Inputs

    /// One unit of logical time: followers count towards an election, leaders towards heartbeats and
    /// check-quorum.
    public mutating func tick() {
        now += 1
        switch role {
        case .leader: tickLeader()
        case .follower, .preCandidate, .candidate: tickElection()
        }
    }

    /// Starts an election now, as if the election timer fired (with pre-vote when configured). Ignored by a leader.
    public mutating func campaign() {
        guard role != .leader else { return }
        startCampaign(transfer: false)
    }

    /// Handles one message from a peer. Any message is safe to step: duplicates, stale terms, strangers and
    /// messages addressed elsewhere are answered or ignored, never trusted.
    public mutating func step(_ message: RaftMessage) {
        guard message.target == config.id, message.source != config.id, config.members.contains(message.source)
        else { return }
        if message.term > term {
            guard stepHigherTerm(message) else { return }
        } else if message.term < term {
            stepLowerTerm(message)
            return
        }
        if case .voteRequest(let request) = message.body {
            answerVote(message, request)
            return
        }
        switch role {
        case .leader: stepLeader(message)
        case .candidate: stepCandidate(message)
        case .preCandidate: stepPreCandidate(message)
        case .follower: stepFollower(message)
        }
    }

    /// Everything the driver must do now; see `Ready` for the order. Resets the core's record of what is pending.
    ///
    /// One `Ready` may lead to another without new input (a leader's own writes count toward the quorum once
    /// durable, which the core learns when it is called again): drivers take `Ready`s until one is empty.
    public mutating func takeReady() -> Ready {
        if role == .leader {
            advanceCommit()  // the previous Ready's entries are durable now
            sendPendingAppends()
        }
        let (truncateFrom, entries) = log.takeUnstable()
        let current = hardState
        var ready = Ready(
            truncateFrom: truncateFrom, entriesToPersist: entries, hardState: nil, messagesToSend: outbox,
            committed: log.takeCommitted(), roleChange: nil)
        outbox.removeAll(keepingCapacity: true)
        if !rebuildNeeded.isEmpty {
            ready.rebuildNeeded = rebuildNeeded
            rebuildNeeded.removeAll()
        }
        if current != savedHardState {
            ready.hardState = current
            savedHardState = current
        }
        let roleNow = RoleChange(role: role, term: term, leader: leader)
        if roleNow.role != reportedRole.role || roleNow.leader != reportedRole.leader {
            ready.roleChange = roleNow
        }
        reportedRole = roleNow
        return ready
    }

    // MARK: Shared by the roles

    /// True while this node heard from a live leader within the shortest election timeout, or leads (with
    /// check-quorum a leader steps down once a majority has been silent that long): then a vote request, unless
    /// it follows a transfer, is ignored rather than allowed to depose that leader.
    var inLease: Bool {
        guard config.checkQuorum, let leader else { return false }
        return leader == config.id || electionElapsed < config.electionTicks
    }

    mutating func send(to target: NodeID, term: Term? = nil, _ body: RaftMessage.Body) {
        outbox.append(RaftMessage(source: config.id, target: target, term: term ?? self.term, body: body))
    }

    var peers: some Sequence<NodeID> { config.members.lazy.filter { $0 != config.id } }

    mutating func resetElectionTimer() {
        electionElapsed = 0
        electionTimeout = config.electionTicks + rng.index(below: config.electionTicks)
    }

    private mutating func tickElection() {
        electionElapsed += 1
        if electionElapsed >= electionTimeout { startCampaign(transfer: false) }
    }

    // MARK: Role transitions (each checks where it may come from)

    mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID?) {
        precondition(newTerm >= term, "becomeFollower: term \(newTerm) is older than \(term)")
        if newTerm > term {
            term = newTerm
            vote = nil
        }
        role = .follower
        leader = newLeader
        endLeadership()
        resetElectionTimer()
    }

    mutating func becomePreCandidate() {
        precondition(role == .follower || role == .preCandidate || role == .candidate, "a \(role) cannot pre-campaign")
        role = .preCandidate
        leader = nil
        votes = [config.id: true]
        resetElectionTimer()
    }

    mutating func becomeCandidate() {
        precondition(role != .leader, "a leader cannot become a candidate without stepping down")
        term = term.next
        vote = config.id
        role = .candidate
        leader = nil
        votes = [config.id: true]
        resetElectionTimer()
    }

    mutating func becomeLeader() {
        precondition(role == .candidate, "only a candidate can become leader, not a \(role)")
        role = .leader
        leader = config.id
        votes = [:]
        electionElapsed = 0
        heartbeatElapsed = 0
        progress = peers.map { Progress(id: $0, next: log.lastIndex.next, now: now) }
        // Entries of earlier terms commit only under one of the current term: append it right away.
        termStartIndex = log.lastIndex.next
        let noop = LogEntry(index: termStartIndex, term: term, kind: .noop)
        log.append(noop)
        uncommittedBytes = noop.sizeBytes
    }

    private mutating func endLeadership() {
        progress = []
        transferee = nil
        transferElapsed = 0
        uncommittedBytes = 0
        votes = [:]
    }
}
