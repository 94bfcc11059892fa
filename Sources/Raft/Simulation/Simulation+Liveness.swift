// Liveness, once faults stop: the group elects a leader, every node converges on its log, and a new entry
// commits everywhere.

extension Simulation {
    /// Stops every fault, heals the network, restarts crashed nodes, then runs rounds (all deliverable messages
    /// delivered and every `Ready` completed, then one tick) until one leader leads every node, every node holds
    /// and commits the leader's whole log, and an entry proposed then is acknowledged and held by every node.
    /// Safety is still checked after every round.
    ///
    /// - Throws: a broken invariant, or no convergence within `ticksMax` ticks.
    public mutating func healAndConverge(ticksMax: Int) throws(SimulationFailure) {
        try checkInvariants()
        faults = FaultProfile(name: profile.name, proposePerMille: 0, delayTicksMax: 1)
        network.heal()
        for node in nodes.indices where !nodes[node].isUp { restart(node) }
        let start = stats.ticks
        var probe: UInt64?
        while stats.ticks - start < UInt64(ticksMax) {
            runRound()
            try checkInvariants()
            guard let leader = convergedLeader() else { continue }
            if let id = probe, proposals[id] == nil {
                // Acknowledged, and every node holds and commits the leader's whole log.
                try checkAcknowledgedEverywhere()
                return
            }
            // No probe yet, or its leader lost office before acknowledging it: propose one at this leader.
            probe = proposeEntry(at: leader, paddingBytes: 0)
        }
        fail("no convergence within \(ticksMax) ticks after healing: \(summary())")
        try checkInvariants()
    }

    /// One line per node: role, term, leader, last index and commit.
    public func summary() -> String {
        nodes.indices.map { node in
            guard let core = nodes[node].core else { return "n\(node) down" }
            return "n\(node) \(core.role) \(core.term) leader \(core.leader.map { "\($0)" } ?? "-") last \(core.lastIndex) commit \(core.commitIndex)"
        }.joined(separator: "; ")
    }

    /// Delivers everything deliverable and completes every `Ready` until nothing moves, then ticks once.
    private mutating func runRound() {
        for _ in 0..<100 {
            var moved = false
            for node in nodes.indices where nodes[node].awaitingSync != nil || nodes[node].dirty {
                handleReady(node)
                if nodes[node].awaitingSync != nil { handleReady(node) }
                moved = true
            }
            var position = 0
            while position < network.inFlight.count {
                let candidate = network.inFlight[position]
                if candidate.deliverAt <= stats.ticks && nodes[Int(candidate.message.target.rawValue)].awaitingSync == nil {
                    deliver(network.remove(at: position).message)
                    moved = true
                } else {
                    position += 1
                }
            }
            if !moved { break }
        }
        tick(skewPerMille: 0)
    }

    /// The node every node follows, in one term, with one log, all committed; nil while that is not so.
    private func convergedLeader() -> Int? {
        guard let leader = nodes.indices.first(where: { nodes[$0].core?.role == .leader }) else { return nil }
        let core = nodes[leader].core!
        guard core.commitIndex == core.lastIndex else { return nil }
        for node in nodes {
            guard let other = node.core, other.term == core.term, other.leader == core.config.id,
                other.lastIndex == core.lastIndex, other.commitIndex == core.commitIndex
            else { return nil }
        }
        return leader
    }

    /// Every acknowledged entry is in every node's durable log.
    private mutating func checkAcknowledgedEverywhere() throws(SimulationFailure) {
        for (index, acked) in checker.acknowledged.sorted(by: { $0.key < $1.key }) {
            for node in nodes where !node.disk.durable.holds(index, acked.term) {
                fail("acknowledged entry \(index) (id \(acked.id)) is missing from \(node.config.id) after converging")
                try checkInvariants()
            }
        }
    }
}
