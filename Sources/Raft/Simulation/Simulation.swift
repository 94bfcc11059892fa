// A seeded cluster of RaftCores over a simulated network and disks. One generator drives every choice, so
// a seed replays exactly: the same steps, the same faults, the same failure.

/// A broken invariant (or a cluster that did not converge), with the seed and step that replay it.
public struct SimulationFailure: Error, CustomStringConvertible, Sendable {
    public var seed: UInt64
    public var profile: String
    public var nodes: Int
    public var step: Int
    public var message: String
    public var description: String {
        "seed \(seed), \(nodes) nodes, \(profile), step \(step): \(message) "
            + "(replay: Simulation(seed: \(seed), nodes: \(nodes), faults: .\(profile)))"
    }
}

/// Counts of what happened in a run.
public struct SimulationStats: Sendable, Hashable {
    public var steps = 0
    public var ticks: UInt64 = 0
    /// Entries clients proposed (to leaders or not), and those their leader acknowledged as committed.
    public var proposals = 0
    public var acknowledged = 0
    /// Nodes that became leader, as their `Ready`s reported.
    public var leaderTerms = 0
    /// Messages delivered, and lost (dropped, cut off, to a crashed node, or over the network's capacity).
    public var delivered = 0
    public var lost = 0
    public var crashes = 0
    public var restarts = 0
    public var partitions = 0
    public var transfers = 0
    /// Times a node compacted its log.
    public var compactions = 0
    public init() {}
}

/// A simulated Raft group: nodes with their cores and disks, a network, clients, faults and the checker.
///
/// ```swift
/// var simulation = Simulation(seed: seed, nodes: 3, faults: .standard)
/// for _ in 0..<20_000 {
///     simulation.step()
///     try simulation.checkInvariants()
/// }
/// try simulation.healAndConverge(ticksMax: 5_000)
/// ```
public struct Simulation: Sendable {
    struct Node: Sendable {
        let config: RaftConfig
        var core: RaftCore?
        var disk = SimDisk()
        /// A `Ready` written to the disk and waiting for its sync; the core is not called meanwhile.
        var awaitingSync: Ready?
        /// The core was called since its last `Ready` was taken.
        var dirty = false
        /// Bumped at every restart: a client's pending proposal dies with the process that took it.
        var incarnation = 0
        var applied: LogIndex = .zero
        var isUp: Bool { core != nil }
    }

    struct Proposal: Sendable {
        var node: Int
        var incarnation: Int
        var index: LogIndex
        var term: Term
    }

    public let seed: UInt64
    public let profile: FaultProfile
    public internal(set) var stats = SimulationStats()
    /// Keep the last this many events in `recentEvents` (0: none; tracing costs time).
    public var traceLimit = 0
    public internal(set) var recentEvents: [String] = []

    var faults: FaultProfile
    let bugs: InjectedBugs
    var rng: SplitMix64
    var nodes: [Node]
    var network: SimNetwork
    var checker = InvariantChecker()
    var proposals: [UInt64: Proposal] = [:]
    var nextProposalID: UInt64 = 1
    var failure: SimulationFailure?

    /// A group of `nodes` members (ids 0 ..< nodes), all starting empty.
    public init(seed: UInt64, nodes: Int = 3, faults: FaultProfile = .standard) {
        self.init(seed: seed, nodes: nodes, faults: faults, bugs: [])
    }

    /// The same, with deliberate protocol bugs in every core, to show that the checks catch them.
    @_spi(Testing) public init(seed: UInt64, nodes count: Int, faults: FaultProfile, bugs: InjectedBugs) {
        precondition((1...9).contains(count), "a simulation has 1 to 9 nodes")
        self.seed = seed
        profile = faults
        self.faults = faults
        self.bugs = bugs
        rng = SplitMix64(seed: seed)
        network = SimNetwork(nodeCount: count)
        let members = (0..<count).map { NodeID(UInt32($0)) }
        // The settings vary with the seed: one entry per append or many, one append in flight or several, and
        // a quarter of the groups each without pre-vote or without check-quorum (safety must not depend on them).
        let appendBytesMax = [1, 120, 300, 2_000][rng.index(below: 4)]
        let inflightAppendsMax = 1 + rng.index(below: 8)
        let uncommittedBytesMax = [200, 1_000, 8_000][rng.index(below: 3)]
        let heartbeatTicks = 1 + rng.index(below: 3)
        let preVote = rng.index(below: 4) != 0
        let checkQuorum = rng.index(below: 4) != 0
        nodes = []
        for member in members {
            do {
                var config = try RaftConfig(
                    id: member, members: members, electionTicks: 10, heartbeatTicks: heartbeatTicks,
                    preVote: preVote, checkQuorum: checkQuorum,
                    inflightAppendsMax: inflightAppendsMax, appendBytesMax: appendBytesMax,
                    uncommittedBytesMax: uncommittedBytesMax,
                    preferredLeader: faults.preferFirstNode ? members[0] : nil, transferLagMax: 50)
                config.injectedBugs = bugs
                let core = RaftCore(config: config, restoring: DurableState(), seed: rng.next())
                nodes.append(Node(config: config, core: core))
            } catch {
                fatalError("simulation config: \(error)")
            }
        }
    }

    /// One event: a message delivered, a node's `Ready` written or synced, a tick, a proposal, or a fault.
    public mutating func step() {
        guard failure == nil else { return }
        stats.steps += 1
        if rng.chance(perMille: faults.proposePerMille) {
            propose()
            return
        }
        if rng.chance(perMille: faults.compactPerMille) {
            compactSomeNode()
            return
        }
        if injectFault() { return }
        let roll = rng.next(below: 100)
        if roll < 15 {
            tick()
        } else if roll < 55, let node = nodeWithWork() {
            handleReady(node)
        } else {
            deliverOne()
        }
    }

    /// Throws the first broken safety property: two leaders in a term, a leader missing a committed entry,
    /// logs that share an entry but differ before it, two nodes applying different entries at an index, an
    /// acknowledged entry without a durable quorum or truncated.
    public mutating func checkInvariants() throws(SimulationFailure) {
        if let failure { throw failure }
        for node in nodes.indices {
            guard let core = nodes[node].core else { continue }
            if core.role == .leader, let violation = checker.observeLeader(core) { fail(violation) }
            if let violation = checker.observeCommit(core) { fail(violation) }
        }
        if let failure { throw failure }
    }

    /// Runs `steps` steps, checking the invariants after each.
    public mutating func run(steps: Int) throws(SimulationFailure) {
        for _ in 0..<steps {
            step()
            try checkInvariants()
        }
    }

    // MARK: Events

    mutating func fail(_ message: String) {
        guard failure == nil else { return }
        failure = SimulationFailure(
            seed: seed, profile: profile.name, nodes: nodes.count, step: stats.steps, message: message)
    }

    mutating func trace(_ event: @autoclosure () -> String) {
        guard traceLimit > 0 else { return }
        if recentEvents.count >= traceLimit { recentEvents.removeFirst(recentEvents.count - traceLimit + 1) }
        recentEvents.append("\(stats.steps) t\(stats.ticks): \(event())")
    }

    /// Every running node that is not waiting for its disk counts one tick (one in thirty misses it: clocks drift).
    mutating func tick(skewPerMille: Int = 30) {
        stats.ticks += 1
        for node in nodes.indices where nodes[node].isUp && nodes[node].awaitingSync == nil {
            if rng.chance(perMille: skewPerMille) { continue }
            nodes[node].core!.tick()
            nodes[node].dirty = true
        }
    }

    /// A node with a `Ready` to take or a sync to finish, chosen at random.
    private mutating func nodeWithWork() -> Int? {
        let busy = nodes.indices.filter { nodes[$0].awaitingSync != nil || nodes[$0].dirty }
        return busy.isEmpty ? nil : busy[rng.index(below: busy.count)]
    }

    /// Delivers one message that may arrive now (a few random picks; none found is a quiet step).
    private mutating func deliverOne() {
        for _ in 0..<4 {
            guard !network.inFlight.isEmpty else { return }
            let position = rng.index(below: network.inFlight.count)
            let candidate = network.inFlight[position]
            if candidate.deliverAt > stats.ticks { continue }
            if nodes[Int(candidate.message.target.rawValue)].awaitingSync != nil { continue }
            deliver(network.remove(at: position).message)
            return
        }
    }

    mutating func deliver(_ message: RaftMessage) {
        let target = Int(message.target.rawValue)
        guard nodes[target].isUp, !network.isCut(message.source, message.target) else {
            stats.lost += 1
            return
        }
        stats.delivered += 1
        trace("deliver \(message)")
        nodes[target].core!.step(message)
        nodes[target].dirty = true
    }

    /// A client sends an entry with a unique id: usually to the leader with the highest term, else anywhere.
    private mutating func propose() {
        let leaders = nodes.indices.filter { nodes[$0].core?.role == .leader && nodes[$0].awaitingSync == nil }
        let target: Int
        if let newest = leaders.max(by: { nodes[$0].core!.term < nodes[$1].core!.term }), rng.chance(perMille: 900) {
            target = newest
        } else {
            target = rng.index(below: nodes.count)
        }
        guard nodes[target].isUp, nodes[target].awaitingSync == nil else { return }
        proposeEntry(at: target, paddingBytes: rng.index(below: 41))
    }

    /// Proposes an entry with a fresh client id (its first 8 bytes) at `target`; returns the id if accepted.
    @discardableResult
    mutating func proposeEntry(at target: Int, paddingBytes: Int) -> UInt64? {
        let id = nextProposalID
        nextProposalID += 1
        var payload = withUnsafeBytes(of: id.littleEndian) { Array($0) }
        payload.append(contentsOf: repeatElement(UInt8(truncatingIfNeeded: id), count: paddingBytes))
        stats.proposals += 1
        nodes[target].dirty = true
        guard case .accepted(let index, let term) = nodes[target].core!.propose(payload) else { return nil }
        proposals[id] = Proposal(node: target, incarnation: nodes[target].incarnation, index: index, term: term)
        trace("n\(target) accepts id \(id) at \(index) \(term)")
        return id
    }
}
