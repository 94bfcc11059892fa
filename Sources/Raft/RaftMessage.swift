// What Raft nodes say to each other. The transport (NIO in the broker, a queue in the simulator) only
// carries these values; it may drop, delay, duplicate or reorder them, and the core stays safe.

/// One message between two members of a group.
public struct RaftMessage: Sendable, Hashable, CustomStringConvertible {
    public var source: NodeID
    public var target: NodeID
    /// The sender's term, except for pre-votes: a pre-vote request, and a pre-vote grant, carry the term the
    /// pre-candidate would campaign in (its term + 1), without anyone having moved to it.
    public var term: Term
    public var body: Body

    public init(source: NodeID, target: NodeID, term: Term, body: Body) {
        self.source = source
        self.target = target
        self.term = term
        self.body = body
    }

    public enum Body: Sendable, Hashable {
        /// A (pre-)candidate asks for a vote.
        case voteRequest(VoteRequest)
        /// The answer to a `voteRequest`.
        case voteResponse(VoteResponse)
        /// Leader to follower: entries after `prevIndex` (none for a bare probe) and the leader's commit.
        case append(AppendRequest)
        /// Follower to leader: the append matched up to an index, or was rejected with a hint.
        case appendResponse(AppendResponse)
        /// Leader to follower: "I am alive"; carries the commit index up to what the follower is known to hold,
        /// and the group's compactable index.
        case heartbeat(commit: LogIndex, compactable: LogIndex = .zero)
        /// Follower to leader: the heartbeat arrived (the leader counts the follower as active).
        case heartbeatResponse
        /// Leader to its transfer target, which is caught up: campaign now, without pre-vote or lease checks.
        case timeoutNow
    }

    public var description: String { "\(source)->\(target) \(term) \(body)" }
}

/// A request for a vote: the candidate's last entry decides whether its log is up to date.
public struct VoteRequest: Sendable, Hashable {
    public var lastIndex: LogIndex
    public var lastTerm: Term
    /// A pre-vote: granting it changes nothing on the voter.
    public var preVote: Bool
    /// The campaign follows a leadership transfer: voters answer even while they hear a live leader.
    public var transfer: Bool

    public init(lastIndex: LogIndex, lastTerm: Term, preVote: Bool, transfer: Bool) {
        self.lastIndex = lastIndex
        self.lastTerm = lastTerm
        self.preVote = preVote
        self.transfer = transfer
    }
}

/// The answer to a vote request.
public struct VoteResponse: Sendable, Hashable {
    public var granted: Bool
    public var preVote: Bool
    public init(granted: Bool, preVote: Bool) {
        self.granted = granted
        self.preVote = preVote
    }
}

/// Entries for a follower, placed after `(prevIndex, prevTerm)`, which the follower must already hold.
public struct AppendRequest: Sendable, Hashable {
    public var prevIndex: LogIndex
    public var prevTerm: Term
    /// Consecutive entries starting at `prevIndex + 1`; empty for a probe.
    public var entries: [LogEntry]
    /// The leader's commit index; the follower commits up to `min(commit, prevIndex + entries.count)`.
    public var commit: LogIndex
    /// The group's compactable index as the leader knows it: every member holds the entries through it.
    public var compactable: LogIndex

    public init(prevIndex: LogIndex, prevTerm: Term, entries: [LogEntry], commit: LogIndex, compactable: LogIndex = .zero) {
        self.prevIndex = prevIndex
        self.prevTerm = prevTerm
        self.entries = entries
        self.commit = commit
        self.compactable = compactable
    }

    /// The index of the last entry this message covers.
    public var lastIndex: LogIndex { prevIndex.advanced(by: entries.count) }
}

/// A follower's answer to an append.
public enum AppendResponse: Sendable, Hashable {
    /// The follower's log matches the leader's through `matchIndex`, durably.
    case accepted(matchIndex: LogIndex)
    /// The follower does not hold `(prevIndex, prevTerm)` for `rejectedIndex` (the request's `prevIndex`).
    /// `hintIndex` is the follower's last index at or below `rejectedIndex` whose term is at most the
    /// request's `prevTerm`, and `hintTerm` that entry's term: the leader skips back over whole terms.
    case rejected(rejectedIndex: LogIndex, hintIndex: LogIndex, hintTerm: Term)
}
