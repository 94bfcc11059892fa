// The core's output: one value the driver acts on, in order, before it calls the core again.

/// Everything the core asks its driver to do, taken with `RaftCore.takeReady()`.
///
/// The driver handles a `Ready` in this order, and completes it before it calls the core again (the core
/// assumes from then on that the writes are durable), then takes the next one until a `Ready` is empty:
/// 1. `truncateFrom`: remove every durable entry at and after that index (a divergent suffix);
/// 2. append `entriesToPersist`, write `hardState`, then sync (fdatasync) both. The hard state must not become
///    durable before the log writes it came with (one write-ahead stream, or sync the log before replacing the
///    hard-state file): its commit index may name the entries just written, and a crash that kept it but lost
///    them would leave divergent entries under a commit index;
/// 3. send `messagesToSend`: no vote grant or append acknowledgement may outrun the disk;
/// 4. apply the entries in `committed`, reading them from the log it just made durable (for the broker:
///    dispatch them to consume queues and answer the producers whose entries they are);
/// 5. act on `roleChange` (re-register with the NameServers as master or slave).
public struct Ready: Sendable {
    /// Durable entries at and after this index are discarded before `entriesToPersist` is appended; set only
    /// when this node's log diverged from its leader's (never at or below the commit index).
    public var truncateFrom: LogIndex?
    /// New entries, consecutive; the first one follows the durable log (after `truncateFrom`, if set).
    public var entriesToPersist: [LogEntry]
    /// Term, vote and commit when any of them changed since the last `Ready`.
    public var hardState: HardState?
    /// Messages to send once the writes above are durable.
    public var messagesToSend: [RaftMessage]
    /// Newly committed entries, to apply in order after the writes above are durable.
    public var committed: Range<LogIndex>?
    /// The node's role, term or known leader changed since the last `Ready`.
    public var roleChange: RoleChange?
    /// Members this leader cannot catch up: they lack entries it compacted (they lost their disk). Each needs a
    /// rebuild from another member's state; the driver logs it. Reported once per member until it matches again.
    /// A follower lists itself when its log ends before the group's compactable index (reported once).
    public var rebuildNeeded: [NodeID] = []

    /// Nothing to do.
    public var isEmpty: Bool {
        truncateFrom == nil && entriesToPersist.isEmpty && hardState == nil && messagesToSend.isEmpty
            && committed == nil && roleChange == nil && rebuildNeeded.isEmpty
    }

    /// Something must be written and synced before the messages may leave.
    public var needsSync: Bool { truncateFrom != nil || !entriesToPersist.isEmpty || hardState != nil }
}

/// The role a node now has, in which term, and who leads as far as it knows.
public struct RoleChange: Sendable, Hashable, CustomStringConvertible {
    public var role: RaftRole
    public var term: Term
    public var leader: NodeID?
    public init(role: RaftRole, term: Term, leader: NodeID?) {
        self.role = role
        self.term = term
        self.leader = leader
    }
    public var description: String { "\(role) in \(term), leader \(leader.map { "\($0)" } ?? "unknown")" }
}

/// The outcome of `RaftCore.propose`.
public enum ProposeResult: Sendable, Hashable {
    /// Appended to the leader's log at `index` in `term`. The entry is acknowledged once a `Ready` of this node
    /// reports `index` committed while its entry there still has `term` (another leader may overwrite it).
    case accepted(index: LogIndex, term: Term)
    /// Not appended; nothing to undo.
    case dropped(DropReason)
}

/// Why a proposal was not appended (the broker answers SERVICE_NOT_AVAILABLE or SYSTEM_BUSY).
public enum DropReason: Sendable, Hashable {
    /// This node is not the leader; `leader` is the one it knows of, if any.
    case notLeader(leader: NodeID?)
    /// Leadership is being handed over (DLedger's LEADER_TRANSFERRING).
    case transferInProgress
    /// Too many bytes are proposed but not yet committed (DLedger's LEADER_PENDING_FULL).
    case uncommittedBytesOverLimit
}

/// The outcome of `RaftCore.transferLeadership(to:)`.
public enum TransferResult: Sendable, Hashable {
    /// The target is being caught up, or was told to campaign; watch `roleChange` for the outcome.
    case started
    /// Already leading, or already transferring to that target.
    case alreadyDone
    /// Not started: this node does not lead, the target is not another member, or it lags too far.
    case rejected(String)
}
