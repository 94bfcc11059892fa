// The log as the core sees it: the durable entries the driver restored, plus entries not yet handed out.

/// What a node restores from its disk when it starts: its hard state, where its log starts, and the entries it
/// still holds.
///
/// A log may start above index 1: entries through `snapshotIndex` were compacted (they were committed, applied to
/// the state machine, and every member held them, so no member can need them again). Only the term of the last
/// compacted entry is kept, so that an append right after it can still be matched.
public struct DurableState: Sendable {
    public var hardState: HardState
    /// The last compacted entry (`.zero` when nothing was compacted) and its term.
    public var snapshotIndex: LogIndex
    public var snapshotTerm: Term
    /// Consecutive entries from `snapshotIndex + 1`, terms never decreasing (from `snapshotTerm`), none after a
    /// torn or corrupt one.
    public var entries: [LogEntry]
    /// The last index the state machine already applied (the first `Ready` reports commits after it); raised to
    /// `snapshotIndex` if lower, since compacted entries were applied.
    public var applied: LogIndex

    public init(hardState: HardState = HardState(), snapshotIndex: LogIndex = .zero, snapshotTerm: Term = .zero,
                entries: [LogEntry] = [], applied: LogIndex = .zero) {
        self.hardState = hardState
        self.snapshotIndex = snapshotIndex
        self.snapshotTerm = snapshotTerm
        self.entries = entries
        self.applied = applied
    }
}

/// The in-memory log: entries from `snapshotIndex + 1` to `lastIndex`, which ones the driver has already been told
/// to persist, and the commit and apply positions. Below `snapshotIndex` nothing is known; at it, only the term.
struct RaftLog: Sendable {
    /// The last compacted entry and its term (`.zero`, `.zero` before any compaction).
    private(set) var snapshotIndex: LogIndex
    private(set) var snapshotTerm: Term
    /// `entries[i]` holds index `snapshotIndex + i + 1`.
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
        var previousTerm = state.snapshotTerm
        for (offset, entry) in state.entries.enumerated() {
            precondition(entry.index == state.snapshotIndex.advanced(by: offset + 1),
                         "restored log: entry \(entry.index) at position \(offset + 1) after \(state.snapshotIndex)")
            precondition(entry.term >= previousTerm, "restored log: term decreases at \(entry.index)")
            previousTerm = entry.term
        }
        precondition(state.snapshotIndex > .zero || state.snapshotTerm == .zero, "restored log: a term for index 0")
        snapshotIndex = state.snapshotIndex
        snapshotTerm = state.snapshotTerm
        let last = state.snapshotIndex.advanced(by: state.entries.count)
        precondition(state.applied <= last, "restored applied \(state.applied) is past the log's end \(last)")
        entries = state.entries
        applied = max(state.applied, state.snapshotIndex)
        committed = max(applied, min(state.hardState.commit, last))
        unstableFrom = last.next
        truncateFrom = nil
    }

    var firstIndex: LogIndex { snapshotIndex.next }
    var lastIndex: LogIndex { snapshotIndex.advanced(by: entries.count) }
    /// The last entry handed to the driver to persist: durable once the driver calls the core again.
    var persistedIndex: LogIndex { unstableFrom.previous }
    var lastTerm: Term { entries.last?.term ?? snapshotTerm }

    /// The position of `index` in `entries`; the caller checked `firstIndex <= index <= lastIndex`.
    private func slot(_ index: LogIndex) -> Int { Int(index.rawValue - snapshotIndex.rawValue) - 1 }

    /// The term at `index`: the snapshot's term at `snapshotIndex` (`.zero` for index 0), nil below it (compacted)
    /// and past the end.
    func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        return index > snapshotIndex && index <= lastIndex ? entries[slot(index)].term : nil
    }

    func entry(at index: LogIndex) -> LogEntry? {
        index > snapshotIndex && index <= lastIndex ? entries[slot(index)] : nil
    }

    /// The log holds an entry at `index` with `term` (index 0 always matches; a compacted index never does).
    func matches(_ index: LogIndex, _ term: Term) -> Bool { self.term(at: index) == term }

    /// A log ending at `(lastIndex, lastTerm)` is at least as up to date as this one (Raft's §5.4.1).
    func isUpToDate(lastIndex: LogIndex, lastTerm: Term) -> Bool {
        lastTerm > self.lastTerm || (lastTerm == self.lastTerm && lastIndex >= self.lastIndex)
    }

    /// The last index at or below `index` whose term is at most `term`: terms never decrease along the log,
    /// so a binary search finds it. Both sides of the fast back-off use it. When the answer lies below this log's
    /// start (compacted), it is some index below `snapshotIndex`: the caller cannot send from there.
    func lastIndex(atOrBelow index: LogIndex, termAtMost term: Term) -> LogIndex {
        guard index >= snapshotIndex, snapshotTerm <= term else { return min(index, snapshotIndex.previous) }
        var low = snapshotIndex.rawValue  // term(snapshotIndex) = snapshotTerm <= term
        var high = min(index, lastIndex).rawValue
        while low < high {
            let middle = high - (high - low) / 2
            if entries[slot(LogIndex(middle))].term <= term { low = middle } else { high = middle - 1 }
        }
        return LogIndex(low)
    }

    /// Consecutive entries from `first`, at most `bytesMax` of them by size but always one when there is one.
    /// Empty when `first` is compacted or past the end.
    func entries(from first: LogIndex, bytesMax: Int) -> ArraySlice<LogEntry> {
        guard first <= lastIndex, first > snapshotIndex else { return [] }
        let start = slot(first)
        var end = start + 1
        var bytes = entries[start].sizeBytes
        while end < entries.count, bytes + entries[end].sizeBytes <= bytesMax {
            bytes += entries[end].sizeBytes
            end += 1
        }
        return entries[start..<end]
    }

    /// Drops the entries through `index` (applied and persisted, checked by the caller) and keeps its term.
    mutating func compact(through index: LogIndex) {
        guard index > snapshotIndex else { return }
        precondition(index <= applied, "compacting through \(index) past the applied \(applied)")
        precondition(index <= persistedIndex, "compacting through \(index) past the persisted \(persistedIndex)")
        snapshotTerm = entries[slot(index)].term
        entries.removeFirst(slot(index) + 1)
        snapshotIndex = index
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
            entries.removeSubrange(slot(first)...)
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
        let taken = unstableFrom <= lastIndex ? Array(entries[slot(unstableFrom)...]) : []
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
