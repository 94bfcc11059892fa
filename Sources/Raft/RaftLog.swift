// The log as the core sees it: the durable entries the driver restored, plus entries not yet handed out.

/// What a node restores from its disk when it starts: its hard state and its whole durable log.
///
/// **Limitation:** the core keeps every entry in memory (the DLedger driver will give it a window over the
/// commit log instead once retention deletes old files); there are no snapshots, so a follower can always be
/// caught up from the leader's log, which must therefore start at index 1.
public struct DurableState: Sendable {
    public var hardState: HardState
    /// Consecutive entries from index 1, terms never decreasing, none after a torn or corrupt one.
    public var entries: [LogEntry]
    /// The last index the state machine already applied (the first `Ready` reports commits after it).
    public var applied: LogIndex

    public init(hardState: HardState = HardState(), entries: [LogEntry] = [], applied: LogIndex = .zero) {
        self.hardState = hardState
        self.entries = entries
        self.applied = applied
    }
}

/// The in-memory log: entries from index 1 to `lastIndex`, which ones the driver has already been told to
/// persist, and the commit and apply positions.
struct RaftLog: Sendable {
    /// `entries[i]` holds index `i + 1`.
    private(set) var entries: [LogEntry]
    /// Highest index known committed; never decreases.
    private(set) var committed: LogIndex
    /// Highest index handed to the driver to apply.
    private(set) var applied: LogIndex
    /// First index not yet handed to the driver to persist.
    private(set) var unstableFrom: LogIndex
    /// Lowest index of a handed-out entry removed since the last `Ready`, if any.
    private(set) var truncateFrom: LogIndex?

    /// Restores the log. A commit index past the log's end cannot follow from a crash when the driver keeps the
    /// write order `Ready` asks for; should one appear anyway, it is lowered to the end rather than trusted.
    init(restoring state: DurableState) {
        for (offset, entry) in state.entries.enumerated() {
            precondition(entry.index.rawValue == UInt64(offset + 1), "restored log: entry \(entry.index) at position \(offset + 1)")
            if offset > 0 {
                precondition(entry.term >= state.entries[offset - 1].term, "restored log: term decreases at \(entry.index)")
            }
        }
        let last = LogIndex(UInt64(state.entries.count))
        precondition(state.applied <= last, "restored applied \(state.applied) is past the log's end \(last)")
        entries = state.entries
        committed = max(state.applied, min(state.hardState.commit, last))
        applied = state.applied
        unstableFrom = last.next
        truncateFrom = nil
    }

    var lastIndex: LogIndex { LogIndex(UInt64(entries.count)) }
    /// The last entry handed to the driver to persist: durable once the driver calls the core again.
    var persistedIndex: LogIndex { unstableFrom.previous }
    var lastTerm: Term { entries.last?.term ?? .zero }

    /// The term at `index`: `.zero` for index 0, nil past the end.
    func term(at index: LogIndex) -> Term? {
        if index == .zero { return .zero }
        return index <= lastIndex ? entries[Int(index.rawValue) - 1].term : nil
    }

    func entry(at index: LogIndex) -> LogEntry? {
        index > .zero && index <= lastIndex ? entries[Int(index.rawValue) - 1] : nil
    }

    /// The log holds an entry at `index` with `term` (index 0 always matches).
    func matches(_ index: LogIndex, _ term: Term) -> Bool { self.term(at: index) == term }

    /// A log ending at `(lastIndex, lastTerm)` is at least as up to date as this one (Raft's §5.4.1).
    func isUpToDate(lastIndex: LogIndex, lastTerm: Term) -> Bool {
        lastTerm > self.lastTerm || (lastTerm == self.lastTerm && lastIndex >= self.lastIndex)
    }

    /// The last index at or below `index` whose term is at most `term`: terms never decrease along the log,
    /// so a binary search finds it. Both sides of the fast back-off use it.
    func lastIndex(atOrBelow index: LogIndex, termAtMost term: Term) -> LogIndex {
        var low: UInt64 = 0  // term(0) = 0 <= any term
        var high = min(index, lastIndex).rawValue
        while low < high {
            let middle = high - (high - low) / 2
            if entries[Int(middle) - 1].term <= term { low = middle } else { high = middle - 1 }
        }
        return LogIndex(low)
    }

    /// Consecutive entries from `first`, at most `bytesMax` of them by size but always one when there is one.
    func entries(from first: LogIndex, bytesMax: Int) -> ArraySlice<LogEntry> {
        guard first <= lastIndex, first > .zero else { return [] }
        let start = Int(first.rawValue) - 1
        var end = start + 1
        var bytes = entries[start].sizeBytes
        while end < entries.count, bytes + entries[end].sizeBytes <= bytesMax {
            bytes += entries[end].sizeBytes
            end += 1
        }
        return entries[start..<end]
    }

    /// Appends a leader's new entry.
    mutating func append(_ entry: LogEntry) {
        precondition(entry.index == lastIndex.next, "append at \(entry.index) after \(lastIndex)")
        precondition(entry.term >= lastTerm, "append of \(entry.term) after \(lastTerm)")
        entries.append(entry)
    }

    /// Places a leader's entries after `prevIndex`, which matches. Entries this log already holds stay (a
    /// delayed, shorter copy of an append must not cut what a later one added); the first entry whose term
    /// differs, and everything after it, is replaced. Returns false, changing nothing, if that would remove a
    /// committed entry: a correct leader never asks, and refusing keeps committed data.
    mutating func accept(after prevIndex: LogIndex, _ incoming: [LogEntry]) -> Bool {
        var position = 0
        while position < incoming.count, let term = term(at: incoming[position].index), term == incoming[position].term {
            position += 1
        }
        guard position < incoming.count else { return true }
        let first = incoming[position].index
        precondition(first == prevIndex.advanced(by: position + 1), "append entries are not consecutive")
        if first <= lastIndex {
            guard first > committed else { return false }
            entries.removeSubrange((Int(first.rawValue) - 1)...)
            if first < unstableFrom {
                truncateFrom = min(truncateFrom ?? first, first)
                unstableFrom = first
            }
        }
        for entry in incoming[position...] { append(entry) }
        return true
    }

    /// Raises the commit index (never lowers it, never past the log's end).
    mutating func commit(to index: LogIndex) {
        let target = min(index, lastIndex)
        if target > committed { committed = target }
    }

    /// Hands the not-yet-persisted entries (and any truncation) to the driver.
    mutating func takeUnstable() -> (truncateFrom: LogIndex?, entries: [LogEntry]) {
        let start = Int(unstableFrom.rawValue) - 1
        let taken = start < entries.count ? Array(entries[start...]) : []
        defer {
            unstableFrom = lastIndex.next
            truncateFrom = nil
        }
        return (truncateFrom, taken)
    }

    /// Hands the newly committed range to the driver to apply.
    mutating func takeCommitted() -> Range<LogIndex>? {
        guard committed > applied else { return nil }
        defer { applied = committed }
        return applied.next..<committed.next
    }
}
