// The numbers Raft talks in, each its own type: an index, a term and a node id never mix.

/// The position of an entry in the replicated log, counted from 1; 0 means "before the first entry".
///
/// DLedger counts its entries from 0; the driver adds one on the way in and subtracts it on the way out,
/// so that 0 can stand for the empty log in `prevIndex` and `commit` fields.
public struct LogIndex: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// The index before the first entry: an empty log ends here.
    public static let zero = LogIndex(0)
    public static func < (lhs: LogIndex, rhs: LogIndex) -> Bool { lhs.rawValue < rhs.rawValue }
    /// The next index (traps on overflow, which would take 2^64 entries).
    public var next: LogIndex { LogIndex(rawValue + 1) }
    /// The previous index; `.zero` stays `.zero`.
    public var previous: LogIndex { LogIndex(rawValue == 0 ? 0 : rawValue - 1) }
    /// The index `count` entries later (`count` >= 0).
    public func advanced(by count: Int) -> LogIndex { LogIndex(rawValue + UInt64(count)) }
    /// How many entries lie from here to `other` (negative when `other` comes first).
    public func distance(to other: LogIndex) -> Int {
        other >= self ? Int(other.rawValue - rawValue) : -Int(rawValue - other.rawValue)
    }
    public var description: String { "#\(rawValue)" }
}

/// A Raft term: a logical epoch with at most one leader; 0 is the term of the empty log.
public struct Term: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static let zero = Term(0)
    public static func < (lhs: Term, rhs: Term) -> Bool { lhs.rawValue < rhs.rawValue }
    public var next: Term { Term(rawValue + 1) }
    public var description: String { "t\(rawValue)" }
}

/// One member of a Raft group (DLedger's `n0`, `n1`, ... become 0, 1, ...).
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "n\(rawValue)" }
}

/// What an entry is for: the broker's data, or the empty entry a new leader appends to commit its term.
public enum EntryKind: UInt8, Sendable, Hashable {
    /// An opaque payload from a client (for the broker: one stored message record).
    case normal = 1
    /// The empty entry a leader appends when its term starts (DLedger's NOOP magic, 2).
    case noop = 2
}

/// One entry of the replicated log.
public struct LogEntry: Sendable, Hashable {
    public var index: LogIndex
    public var term: Term
    public var kind: EntryKind
    /// Opaque to Raft; counted in bytes against `appendBytesMax` and `uncommittedBytesMax`.
    public var payload: [UInt8]

    public init(index: LogIndex, term: Term, kind: EntryKind = .normal, payload: [UInt8] = []) {
        self.index = index
        self.term = term
        self.kind = kind
        self.payload = payload
    }

    /// The bytes this entry costs in limits: the payload, plus a fixed header so that empty entries
    /// still count (DLedger's entry header is 48 bytes).
    public var sizeBytes: Int { payload.count + LogEntry.headerBytes }
    public static let headerBytes = 48
}

/// What must be durable before any message that depends on it leaves the node: term, vote and commit.
///
/// **Durability:** the driver writes it (atomically: temp file + rename, or a checksummed record) and syncs it
/// before sending the messages of the same `Ready`. A vote not on disk could be granted twice after a crash.
public struct HardState: Sendable, Hashable, CustomStringConvertible {
    public var term: Term
    /// The node this one voted for in `term`, if any.
    public var vote: NodeID?
    /// The highest index known committed. It may lag after a restart; it never runs ahead of the log.
    public var commit: LogIndex

    public init(term: Term = .zero, vote: NodeID? = nil, commit: LogIndex = .zero) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }

    public var description: String { "{\(term) vote \(vote.map { "\($0)" } ?? "-") commit \(commit)}" }
}

/// The role a node plays in its current term.
public enum RaftRole: Sendable, Hashable, CustomStringConvertible {
    case follower
    /// Asking whether it could win, without raising its term (pre-vote).
    case preCandidate
    case candidate
    case leader

    public var description: String {
        switch self {
        case .follower: "follower"
        case .preCandidate: "pre-candidate"
        case .candidate: "candidate"
        case .leader: "leader"
        }
    }
}
