// Compaction in the simulator: a node drops entries through its safe point at random moments, in memory and
// (sometimes, or to a lower index) on its disk, and the checker verifies that nothing dropped can ever be needed.

extension Simulation {
    /// A random running node between `Ready`s compacts through its applied index (the core caps it at its safe
    /// point); its disk follows to that index or to a lower one, or not at all this time (the driver compacts its
    /// file less often than its memory).
    mutating func compactSomeNode() {
        let idle = nodes.indices.filter { nodes[$0].isUp && nodes[$0].awaitingSync == nil }
        guard !idle.isEmpty else { return }
        let node = idle[rng.index(below: idle.count)]
        let id = nodes[node].config.id
        let before = nodes[node].core!.snapshotIndex
        let wish = nodes[node].applied
        var dropped: [LogEntry] = []
        var index = before.next
        while index <= wish, let entry = nodes[node].core!.entry(at: index) {
            dropped.append(entry)
            index = index.next
        }
        let after = nodes[node].core!.compact(through: wish)
        guard after > before else { return }
        stats.compactions += 1
        trace("\(id) compacts through \(after)")
        for entry in dropped where entry.index <= after {
            if let violation = checkCompacted(entry, by: id) { return fail(violation) }
        }
        let diskTarget = rng.chance(perMille: 500) ? after : before.advanced(by: rng.index(below: before.distance(to: after) + 1))
        nodes[node].disk.compact(through: diskTarget)
    }

    /// An entry a node drops must be the committed one at its index, and every node must hold it durably (or have
    /// compacted it): else some node could need it, and nobody could send it.
    private func checkCompacted(_ entry: LogEntry, by id: NodeID) -> String? {
        let index = Int(entry.index.rawValue)
        guard index <= checker.committed.count, checker.committed[index - 1] == EntryIdentity(entry) else {
            return "\(id) compacts \(entry.index) (\(entry.term)), which is not the committed entry there"
        }
        for other in nodes where !other.disk.durable.holds(entry.index, entry.term) {
            return "compaction past the safe point: \(id) drops \(entry.index) (\(entry.term)), which \(other.config.id) does not hold"
        }
        return nil
    }
}
