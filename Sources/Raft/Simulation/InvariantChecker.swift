// Raft's safety properties, checked as the simulation runs. Each check is incremental (a dictionary look-up
// per written, committed or applied entry), so checking after every step stays cheap.

/// What identifies an entry's content: two entries at one index are the same entry if these are equal.
struct EntryIdentity: Sendable, Equatable {
    var term: Term
    var kind: EntryKind
    var payload: [UInt8]

    init(_ entry: LogEntry) {
        term = entry.term
        kind = entry.kind
        payload = entry.payload
    }
}

/// The safety record of one simulation. Every method returns a violation's description, or nil.
struct InvariantChecker: Sendable {
    private struct Position: Hashable {
        var index: LogIndex
        var term: Term
    }

    private struct Written {
        var kind: EntryKind
        var payload: [UInt8]
        var previousTerm: Term
    }

    /// Election safety: the leader seen for each term.
    private(set) var leaderOfTerm: [Term: NodeID] = [:]
    /// The committed log as far as any node has committed (entry `i` at position `i - 1`).
    private(set) var committed: [EntryIdentity] = []
    /// Every entry any node ever wrote, by (index, term), with the term of the entry before it.
    private var written: [Position: Written] = [:]
    /// Entries a leader acknowledged to their client, by index.
    private(set) var acknowledged: [LogIndex: (term: Term, id: UInt64)] = [:]

    /// At most one leader per term; a new leader holds every committed entry (leader completeness).
    mutating func observeLeader(_ core: RaftCore) -> String? {
        if let known = leaderOfTerm[core.term] {
            return known == core.config.id ? nil : "two leaders in \(core.term): \(known) and \(core.config.id)"
        }
        leaderOfTerm[core.term] = core.config.id
        // Compacted entries were the committed ones (checked when dropped); the rest must be there.
        let start = Int(core.snapshotIndex.rawValue)
        for (offset, entry) in committed.enumerated() where offset + 1 >= start {
            let index = LogIndex(UInt64(offset + 1))
            guard core.term(at: index) == entry.term else {
                return "leader \(core.config.id) of \(core.term) lacks committed entry \(index) (\(entry.term)); it has \(core.term(at: index).map { "\($0)" } ?? "nothing")"
            }
        }
        return nil
    }

    /// A node commits through `commit`: its entries there agree with everything committed before (state
    /// machine safety at commit time), and extend the committed log.
    mutating func observeCommit(_ core: RaftCore) -> String? {
        let commit = Int(core.commitIndex.rawValue)
        guard commit > 0 else { return nil }
        // Log matching makes one comparison enough: equal entries at an index mean equal prefixes before it.
        let known = committed.count
        if known > 0, let violation = compare(core, at: min(known, commit)) { return violation }
        while committed.count < commit {
            guard let entry = core.entry(at: LogIndex(UInt64(committed.count + 1))) else {
                return "\(core.config.id) commits \(core.commitIndex), but lacks #\(committed.count + 1) (log \(core.snapshotIndex)...\(core.lastIndex))"
            }
            committed.append(EntryIdentity(entry))
        }
        return nil
    }

    private func compare(_ core: RaftCore, at index: Int) -> String? {
        let snapshot = Int(core.snapshotIndex.rawValue)
        if index < snapshot { return nil }  // compacted: checked to be the committed entry when dropped
        if index == snapshot {
            guard core.snapshotTerm == committed[index - 1].term else {
                return "\(core.config.id) compacted through #\(index) of \(core.snapshotTerm), but \(committed[index - 1].term)'s entry was committed there"
            }
            return nil
        }
        let entry = core.entry(at: LogIndex(UInt64(index)))
        guard let entry, EntryIdentity(entry) == committed[index - 1] else {
            return "\(core.config.id) committed a different entry at #\(index) (\(entry.map { "\($0.term)" } ?? "none")) than was committed before (\(committed[index - 1].term))"
        }
        return nil
    }

    /// A node applies `entry`: no two nodes apply different entries at one index (state machine safety).
    mutating func observeApply(_ entry: LogEntry, by node: NodeID) -> String? {
        let index = Int(entry.index.rawValue)
        if index <= committed.count {
            guard EntryIdentity(entry) == committed[index - 1] else {
                return "\(node) applies \(entry.index) of \(entry.term), but \(committed[index - 1].term)'s entry was committed there"
            }
            return nil
        }
        guard index == committed.count + 1 else { return "\(node) applies \(entry.index) past the committed log's end" }
        committed.append(EntryIdentity(entry))
        return nil
    }

    /// A node writes `entries` after an entry of `previousTerm`: entries with the same index and term have the
    /// same content and follow entries of the same term, so logs that share an entry share the prefix before it
    /// (log matching, by induction over the writes).
    mutating func observeWrite(_ entries: [LogEntry], previousTerm: Term, by node: NodeID) -> String? {
        var previous = previousTerm
        for entry in entries {
            let position = Position(index: entry.index, term: entry.term)
            if let known = written[position] {
                guard known.kind == entry.kind, known.payload == entry.payload, known.previousTerm == previous else {
                    return "log matching: \(node) writes a different entry at \(entry.index) in \(entry.term)"
                }
            } else {
                written[position] = Written(kind: entry.kind, payload: entry.payload, previousTerm: previous)
            }
            previous = entry.term
        }
        return nil
    }

    /// A node discards its entries from `from` on: none of them may be an acknowledged entry.
    func observeTruncation(from: LogIndex, of log: SimDisk.Image, by node: NodeID) -> String? {
        var index = from
        while index <= log.lastIndex {
            if let acked = acknowledged[index], log.entry(at: index)?.term == acked.term {
                return "\(node) truncates acknowledged entry \(index) (\(acked.term), id \(acked.id))"
            }
            index = index.next
        }
        return nil
    }

    /// A leader acknowledges `entry` to its client: by then a quorum must hold it durably.
    mutating func observeAcknowledgement(_ entry: LogEntry, id: UInt64, durableCopies: Int, quorum: Int) -> String? {
        acknowledged[entry.index] = (entry.term, id)
        guard durableCopies >= quorum else {
            return "entry \(entry.index) (id \(id)) acknowledged with \(durableCopies) durable copies, quorum \(quorum)"
        }
        return nil
    }
}
