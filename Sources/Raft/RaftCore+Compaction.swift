// Log compaction without snapshots: a member drops entries that every member already holds.
//
// The safe point. The leader knows each follower's match index; the lowest match over all members (the leader's
// own durable log included), capped by the commit index, is the group's `compactableIndex`: every member holds
// those entries durably, they are committed (so no later leader ever cuts them), and therefore no member can ever
// again be sent one of them. The leader piggybacks the value on its appends and heartbeats; each member keeps the
// highest it heard (the fact it states never becomes false) and may compact through min(its applied index, that
// value). A member that lost its disk is the exception: it needs entries nobody holds any more, and the leader
// reports it (`Ready.rebuildNeeded`) instead of trapping, and keeps serving the others.

extension RaftCore {
    /// The last compacted entry (`.zero` before any compaction); the log holds `snapshotIndex + 1 ... lastIndex`.
    public var snapshotIndex: LogIndex { log.snapshotIndex }
    /// The term of the entry at `snapshotIndex`.
    public var snapshotTerm: Term { log.snapshotTerm }
    /// The highest index this node may compact through: min(applied, the group's compactable index it knows).
    public var safeCompactionIndex: LogIndex {
        if config.injectedBugs.contains(.compactPastSafePoint) { return min(log.applied, log.persistedIndex) }
        return min(log.applied, log.persistedIndex, compactableIndex)
    }

    /// Drops the entries through `index` from memory, keeping only the last one's term.
    ///
    /// - Parameter index: the driver's wish, typically its applied index; the core compacts through
    ///   min(`index`, `safeCompactionIndex`) and never past what it handed out to apply and persist.
    /// - Returns: the new `snapshotIndex` (unchanged when there was nothing to drop).
    ///
    /// **Thread:** the core's owner. **Durability:** none; the driver compacts its disk through at most the
    /// returned index (any lower start is fine: recovery restores whatever start the disk has).
    @discardableResult
    public mutating func compact(through index: LogIndex) -> LogIndex {
        let target = min(index, safeCompactionIndex)
        if target > log.snapshotIndex { log.compact(through: target) }
        return log.snapshotIndex
    }

    /// The leader's view of the safe point: the lowest durable match over all members, capped by the commit.
    /// Never lowered (a new leader knows nobody's match at first).
    mutating func updateCompactableIndex() {
        guard role == .leader else { return }
        var lowest = min(log.committed, log.persistedIndex)
        for peer in progress { lowest = min(lowest, peer.match) }
        compactableIndex = max(compactableIndex, lowest)
    }

    /// A follower hears the group's compactable index from its current leader. Every member holds the entries
    /// through it durably, and they are committed (never cut): a log that ends before it lost durable entries (a
    /// lost or replaced disk), and reports itself once (a leader of the same term still trusts its old match).
    mutating func heardCompactable(_ index: LogIndex) {
        compactableIndex = max(compactableIndex, index)
        if compactableIndex > log.lastIndex && !lostLogReported {
            lostLogReported = true
            rebuildNeeded.append(config.id)
        }
    }

    /// The follower at `index` in `progress` rejected an append in a way that shows it lacks this log's compacted
    /// entries (`guess` is below this log's start), and the rejection is not stale (its match is below the start
    /// too): it can only be rebuilt from another member's state, not from this log. Reported once until it
    /// matches again; probing continues from this log's start, once per heartbeat.
    mutating func noteLostFollower(_ index: Int, guess: LogIndex) {
        guard guess < log.snapshotIndex, progress[index].match < log.snapshotIndex else { return }
        guard !progress[index].rebuildReported else { return }
        progress[index].rebuildReported = true
        rebuildNeeded.append(progress[index].id)
    }
}
