// One node's immutable Raft settings, checked once when made.

/// A config value that cannot work, with the field, its value and what is allowed.
public struct RaftConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var field: String
    public var message: String
    public var description: String { "RaftConfig.\(field): \(message)" }
}

/// The settings of one Raft node. Times are in ticks: the driver decides how long a tick is
/// (the DLedger driver: 100 ms, so `electionTicks` 20..40 is 2..4 s and `heartbeatTicks` 5 is 500 ms).
public struct RaftConfig: Sendable {
    /// This node.
    public let id: NodeID
    /// Every voting member of the group, this node included, sorted; quorum is `members.count / 2 + 1`.
    public let members: [NodeID]
    /// The shortest election timeout. A follower waits a random number of ticks in
    /// `electionTicks ..< 2 * electionTicks` without hearing a leader before it campaigns; a leader that has
    /// not heard from a quorum for `electionTicks` steps down (check-quorum).
    public let electionTicks: Int
    /// How often a leader sends heartbeats (and re-probes silent followers).
    public let heartbeatTicks: Int
    /// Ask "could I win?" before raising the term, so a node that was cut off cannot disrupt a healthy leader.
    public let preVote: Bool
    /// Leader steps down without a quorum for an election timeout; followers that hear a leader ignore votes.
    public let checkQuorum: Bool
    /// Un-acknowledged append messages per follower while replicating.
    public let inflightAppendsMax: Int
    /// Bytes of entries in one append message (one entry is always sent, however large).
    public let appendBytesMax: Int
    /// Bytes of proposed but uncommitted entries a leader accepts before proposals are dropped.
    public let uncommittedBytesMax: Int
    /// The member that should lead when it is healthy and caught up (DLedger's `preferredLeaderId`).
    public let preferredLeader: NodeID?
    /// A transfer target may lag at most this many entries when the transfer starts
    /// (DLedger's `maxLeadershipTransferWaitIndex`).
    public let transferLagMax: Int

    /// Deliberate protocol bugs, for proving that the simulator's invariant checks can fail. Never set
    /// outside tests.
    @_spi(Testing) public var injectedBugs: InjectedBugs = []

    /// - Throws: `RaftConfigError` naming the first field out of range.
    public init(
        id: NodeID, members: [NodeID], electionTicks: Int = 10, heartbeatTicks: Int = 2, preVote: Bool = true,
        checkQuorum: Bool = true, inflightAppendsMax: Int = 64, appendBytesMax: Int = 64 << 10,
        uncommittedBytesMax: Int = 64 << 20, preferredLeader: NodeID? = nil, transferLagMax: Int = 1_000
    ) throws(RaftConfigError) {
        let sorted = members.sorted()
        try Self.check(!sorted.isEmpty, "members", "needs at least one member")
        try Self.check(sorted.count <= 9, "members", "\(sorted.count) members; at most 9 are supported")
        for (first, second) in zip(sorted, sorted.dropFirst()) {
            try Self.check(first != second, "members", "\(first) appears twice")
        }
        try Self.check(sorted.contains(id), "id", "\(id) is not one of the members \(sorted)")
        try Self.check(heartbeatTicks >= 1, "heartbeatTicks", "\(heartbeatTicks); must be at least 1")
        try Self.check(
            electionTicks > heartbeatTicks, "electionTicks",
            "\(electionTicks); must exceed heartbeatTicks (\(heartbeatTicks)), or followers time out between beats")
        try Self.check(electionTicks <= 1_000_000, "electionTicks", "\(electionTicks); at most 1,000,000")
        try Self.check(
            (1...10_000).contains(inflightAppendsMax), "inflightAppendsMax", "\(inflightAppendsMax); allowed 1...10000")
        try Self.check(appendBytesMax >= 1, "appendBytesMax", "\(appendBytesMax); must be at least 1")
        try Self.check(
            uncommittedBytesMax >= LogEntry.headerBytes, "uncommittedBytesMax",
            "\(uncommittedBytesMax); must hold at least one entry header (\(LogEntry.headerBytes) bytes)")
        if let preferredLeader {
            try Self.check(sorted.contains(preferredLeader), "preferredLeader", "\(preferredLeader) is not a member")
        }
        try Self.check(transferLagMax >= 0, "transferLagMax", "\(transferLagMax); must not be negative")
        self.id = id
        self.members = sorted
        self.electionTicks = electionTicks
        self.heartbeatTicks = heartbeatTicks
        self.preVote = preVote
        self.checkQuorum = checkQuorum
        self.inflightAppendsMax = inflightAppendsMax
        self.appendBytesMax = appendBytesMax
        self.uncommittedBytesMax = uncommittedBytesMax
        self.preferredLeader = preferredLeader
        self.transferLagMax = transferLagMax
    }

    /// Votes (or match indexes) needed to win an election or commit an entry.
    public var quorum: Int { members.count / 2 + 1 }

    private static func check(_ condition: Bool, _ field: String, _ message: @autoclosure () -> String)
        throws(RaftConfigError)
    {
        if !condition { throw RaftConfigError(field: field, message: message()) }
    }
}

/// Protocol bugs the core can be told to commit, so tests can show the simulator notices them.
@_spi(Testing) public struct InjectedBugs: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Grant a vote to every candidate that asks, even after voting for another in the same term.
    public static let voteTwiceInOneTerm = InjectedBugs(rawValue: 1 << 0)
    /// Commit an entry of an older term once a quorum holds it (the mistake of Raft's Figure 8).
    public static let commitOldTermByCounting = InjectedBugs(rawValue: 1 << 1)
    /// A follower appends after `prevIndex` when its entry there has `prevTerm` or an older term.
    public static let acceptAppendWithoutMatching = InjectedBugs(rawValue: 1 << 2)
    /// A driver bug (the simulator's): send and apply a `Ready` before its writes are synced.
    public static let acknowledgeBeforeSync = InjectedBugs(rawValue: 1 << 3)
    /// Compact through the applied index, ignoring the group's compactable index (entries others may need).
    public static let compactPastSafePoint = InjectedBugs(rawValue: 1 << 4)
}
