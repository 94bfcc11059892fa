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

    struct Image: Sendable {
        var hardState = HardState()
        var entries: [LogEntry] = []

        var lastIndex: LogIndex { LogIndex(UInt64(entries.count)) }

        func entry(at index: LogIndex) -> LogEntry? {
            index > .zero && index <= lastIndex ? entries[Int(index.rawValue) - 1] : nil
        }

        mutating func apply(_ write: Write) {
            switch write {
            case .truncate(let from):
                let keep = Int(from.rawValue) - 1
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
