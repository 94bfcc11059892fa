// What a simulated node's driver does: carry out each `Ready` (write, sync, send, apply), crash and restart.

extension Simulation {
    /// Takes a node's `Ready` and writes it, or, when one is written already, syncs it and completes it. The
    /// sync is a step of its own, so a crash can fall between the write and the sync.
    mutating func handleReady(_ node: Int) {
        if let ready = nodes[node].awaitingSync {
            nodes[node].awaitingSync = nil
            complete(ready, on: node)
            return
        }
        nodes[node].dirty = false
        let ready = nodes[node].core!.takeReady()
        guard !ready.isEmpty else { return }
        persist(ready, on: node)
        if !ready.needsSync {
            complete(ready, on: node)
        } else if bugs.contains(.acknowledgeBeforeSync) {
            var unsynced = ready
            unsynced.messagesToSend = []
            unsynced.committed = nil
            nodes[node].awaitingSync = unsynced
            for message in ready.messagesToSend { send(message) }
            if let committed = ready.committed { apply(committed, on: node) }
        } else {
            nodes[node].awaitingSync = ready
        }
    }

    private mutating func persist(_ ready: Ready, on node: Int) {
        let id = nodes[node].config.id
        if let from = ready.truncateFrom {
            guard from > nodes[node].disk.current.hardState.commit, from > nodes[node].disk.current.snapshotIndex else {
                return fail("\(id) truncates from \(from), at or below its durable commit")
            }
            if let violation = checker.observeTruncation(from: from, of: nodes[node].disk.current, by: id) {
                return fail(violation)
            }
            trace("\(id) truncates from \(from)")
            nodes[node].disk.write(.truncate(from: from))
        }
        if let first = ready.entriesToPersist.first {
            let log = nodes[node].disk.current
            guard first.index == log.lastIndex.next else {
                return fail("\(id) persists \(first.index) after its log's end \(log.lastIndex)")
            }
            let previousTerm = log.term(at: first.index.previous) ?? .zero
            if let violation = checker.observeWrite(ready.entriesToPersist, previousTerm: previousTerm, by: id) {
                return fail(violation)
            }
            nodes[node].disk.write(.append(ready.entriesToPersist))
        }
        if let hardState = ready.hardState { nodes[node].disk.write(.hardState(hardState)) }
    }

    /// The writes are durable: send the messages, apply the committed entries, answer the clients. The node
    /// then has a `Ready` to take again (its durable writes may commit entries).
    private mutating func complete(_ ready: Ready, on node: Int) {
        nodes[node].disk.sync()
        nodes[node].dirty = true
        for message in ready.messagesToSend { send(message) }
        if let committed = ready.committed { apply(committed, on: node) }
        if let member = ready.rebuildNeeded.first {
            return fail("\(member) needs entries \(nodes[node].config.id) compacted (its log starts after \(nodes[node].core!.snapshotIndex))")
        }
        if let change = ready.roleChange {
            trace("n\(node) is \(change)")
            if change.role == .leader { stats.leaderTerms += 1 }
        }
    }

    private mutating func send(_ message: RaftMessage) {
        if rng.chance(perMille: faults.dropPerMille) {
            stats.lost += 1
            return
        }
        let copies = rng.chance(perMille: faults.duplicatePerMille) ? 2 : 1
        for _ in 0..<copies {
            let deliverAt = stats.ticks + rng.next(below: UInt64(faults.delayTicksMax) + 1)
            if !network.send(message, deliverAt: deliverAt) { stats.lost += 1 }
        }
    }

    /// Applies committed entries read back from the node's log; the proposer answers its client.
    private mutating func apply(_ range: Range<LogIndex>, on node: Int) {
        let id = nodes[node].config.id
        guard range.lowerBound == nodes[node].applied.next else {
            return fail("\(id) applies from \(range.lowerBound) after applying through \(nodes[node].applied)")
        }
        for index in range.lowerBound.rawValue..<range.upperBound.rawValue {
            guard let entry = nodes[node].disk.current.entry(at: LogIndex(index)) else {
                return fail("\(id) applies #\(index) beyond its log's end \(nodes[node].disk.current.lastIndex)")
            }
            if let violation = checker.observeApply(entry, by: id) { return fail(violation) }
            nodes[node].applied = entry.index
            if entry.kind == .normal { acknowledgeIfProposedHere(entry, on: node) }
        }
    }

    /// The node that accepted this entry (same process, same index and term) answers the client: acknowledged.
    private mutating func acknowledgeIfProposedHere(_ entry: LogEntry, on node: Int) {
        guard entry.payload.count >= 8 else { return fail("entry \(entry.index) has no client id") }
        let clientID = entry.payload.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard let proposal = proposals[clientID], proposal.node == node,
            proposal.incarnation == nodes[node].incarnation, proposal.index == entry.index, proposal.term == entry.term
        else { return }
        proposals[clientID] = nil
        let copies = nodes.count { $0.disk.durable.holds(entry.index, entry.term) }
        stats.acknowledged += 1
        trace("n\(node) acknowledges id \(clientID) at \(entry.index)")
        if let violation = checker.observeAcknowledgement(
            entry, id: clientID, durableCopies: copies, quorum: nodes[node].config.quorum)
        {
            fail(violation)
        }
    }

    /// At most one fault per step, at the profile's rates. Returns whether one happened.
    mutating func injectFault() -> Bool {
        if rng.chance(perMille: faults.crashPerMille) {
            let up = nodes.indices.filter { nodes[$0].isUp }
            if !up.isEmpty { crash(up[rng.index(below: up.count)]) }
        } else if rng.chance(perMille: faults.restartPerMille) {
            let down = nodes.indices.filter { !nodes[$0].isUp }
            if !down.isEmpty { restart(down[rng.index(below: down.count)]) }
        } else if nodes.count > 1, rng.chance(perMille: faults.partitionPerMille) {
            stats.partitions += 1
            let what = network.partition(&rng)
            trace("partition: \(what)")
        } else if rng.chance(perMille: faults.healPerMille) {
            network.heal()
            trace("heal")
        } else if rng.chance(perMille: faults.transferPerMille) {
            requestTransfer()
        } else {
            return false
        }
        return true
    }

    mutating func crash(_ node: Int) {
        stats.crashes += 1
        trace("crash n\(node)")
        nodes[node].disk.crash(&rng, tearPerMille: faults.tearPerMille)
        nodes[node].core = nil
        nodes[node].awaitingSync = nil
        nodes[node].dirty = false
        nodes[node].applied = .zero
    }

    mutating func restart(_ node: Int) {
        stats.restarts += 1
        trace("restart n\(node)")
        let state = nodes[node].disk.durable.durableState
        nodes[node].core = RaftCore(config: nodes[node].config, restoring: state, seed: rng.next())
        nodes[node].applied = state.snapshotIndex  // compacted entries are in its state machine
        nodes[node].incarnation += 1
        nodes[node].dirty = true
    }

    private mutating func requestTransfer() {
        guard let leader = nodes.indices.first(where: { nodes[$0].core?.role == .leader && nodes[$0].awaitingSync == nil })
        else { return }
        let target = NodeID(UInt32(rng.index(below: nodes.count)))
        stats.transfers += 1
        let result = nodes[leader].core!.transferLeadership(to: target)
        trace("n\(leader) transfers to \(target): \(result)")
        nodes[leader].dirty = true
    }
}
