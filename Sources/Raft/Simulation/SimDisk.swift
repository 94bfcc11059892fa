// One node's disk in the simulator: writes land in a page cache and become durable only when synced.

/// A simulated disk holding one node's log and hard state, written as one ordered stream (a write-ahead log,
/// as `Ready` requires: the hard state written with entries never becomes durable before them).
///
/// Writes change `current` (what a read sees) at once and `durable` only at `sync()`. A crash keeps a random
/// prefix of the unsynced writes, and the first write it loses may be torn (only some of an append's entries
/// arrive, as recovery would truncate a torn tail at its first bad record). Synced data is never lost and never
/// flipped: a bit flip is the commit log's CRC's business, below Raft.
struct SimDisk: Sendable {
    enum Write: Sendable {
        case truncate(from: LogIndex)
        case append([LogEntry])
        case hardState(HardState)
    }

    /// The log from its compacted start, and the hard state.
    struct Image: Sendable {
        var hardState = HardState()
        /// The last compacted entry and its term; `entries` hold `snapshotIndex + 1 ... lastIndex`.
        var snapshotIndex = LogIndex.zero
        var snapshotTerm = Term.zero
        var entries: [LogEntry] = []

        var lastIndex: LogIndex { snapshotIndex.advanced(by: entries.count) }

        func entry(at index: LogIndex) -> LogEntry? {
            index > snapshotIndex && index <= lastIndex ? entries[Int(index.rawValue - snapshotIndex.rawValue) - 1] : nil
        }

        /// The term at `index`: the snapshot's at `snapshotIndex`, nil below it and past the end.
        func term(at index: LogIndex) -> Term? {
            index == snapshotIndex ? snapshotTerm : entry(at: index)?.term
        }

        /// Holds the committed entry `(index, term)`, or compacted it (compacted entries were committed ones).
        func holds(_ index: LogIndex, _ term: Term) -> Bool {
            index < snapshotIndex || self.term(at: index) == term
        }

        /// What a restart restores.
        var durableState: DurableState {
            DurableState(hardState: hardState, snapshotIndex: snapshotIndex, snapshotTerm: snapshotTerm,
                         entries: entries, applied: snapshotIndex)
        }

        mutating func apply(_ write: Write) {
            switch write {
            case .truncate(let from):
                precondition(from > snapshotIndex, "a truncation from \(from) reaches the compacted \(snapshotIndex)")
                let keep = Int(from.rawValue - snapshotIndex.rawValue) - 1
                if keep < entries.count { entries.removeSubrange(keep...) }
            case .append(let appended):
                precondition(appended.first.map { $0.index == lastIndex.next } ?? true, "a write leaves a gap in the log")
                entries.append(contentsOf: appended)
            case .hardState(let state):
                hardState = state
            }
        }
    }

    private(set) var durable = Image()
    private(set) var current = Image()
    private var unsynced: [Write] = []

    mutating func write(_ write: Write) {
        current.apply(write)
        unsynced.append(write)
    }

    mutating func sync() {
        durable = current
        unsynced.removeAll(keepingCapacity: true)
    }

    /// Rewrites the log from `index + 1` as the driver does (a new file, synced, renamed over the old one, the
    /// directory synced): durable at once, and a crash keeps either the old or the new image, never a mix. Only
    /// between `Ready`s (nothing unsynced), never past the log's end.
    mutating func compact(through index: LogIndex) {
        precondition(unsynced.isEmpty, "compaction with unsynced writes")
        guard index > current.snapshotIndex else { return }
        guard let term = current.term(at: index) else { preconditionFailure("compacting \(index) past the log's end") }
        current.entries.removeFirst(Int(index.rawValue - current.snapshotIndex.rawValue))
        current.snapshotIndex = index
        current.snapshotTerm = term
        durable = current
    }

    /// Power loss: what survives of the unsynced writes is decided by `rng`.
    mutating func crash(_ rng: inout SplitMix64, tearPerMille: Int) {
        var image = durable
        let kept = rng.index(below: unsynced.count + 1)
        for write in unsynced.prefix(kept) { image.apply(write) }
        if kept < unsynced.count, case .append(let entries) = unsynced[kept], entries.count > 1,
            rng.chance(perMille: tearPerMille)
        {
            image.apply(.append(Array(entries.prefix(1 + rng.index(below: entries.count - 1)))))
        }
        durable = image
        current = image
        unsynced.removeAll()
    }
}
