@_spi(Testing) import Raft

/// Settings for a hand-driven test group; each test changes what it is about.
struct TestSettings {
    var electionTicks = 10
    var heartbeatTicks = 2
    var preVote = true
    var checkQuorum = true
    var inflightAppendsMax = 64
    var appendBytesMax = 64 << 10
    var uncommittedBytesMax = 64 << 20
    var preferredLeader: NodeID?
    var transferLagMax = 1_000
    var bugs: InjectedBugs = []
}

func node(_ raw: UInt32) -> NodeID { NodeID(raw) }

func makeConfig(_ id: Int, members count: Int, _ settings: TestSettings = TestSettings()) -> RaftConfig {
    let members = (0..<count).map { NodeID(UInt32($0)) }
    var config = try! RaftConfig(
        id: NodeID(UInt32(id)), members: members, electionTicks: settings.electionTicks,
        heartbeatTicks: settings.heartbeatTicks, preVote: settings.preVote, checkQuorum: settings.checkQuorum,
        inflightAppendsMax: settings.inflightAppendsMax, appendBytesMax: settings.appendBytesMax,
        uncommittedBytesMax: settings.uncommittedBytesMax, preferredLeader: settings.preferredLeader,
        transferLagMax: settings.transferLagMax)
    config.injectedBugs = settings.bugs
    return config
}

/// A log with one entry per term given: `entries(terms: [1, 1, 2])` is #1 t1, #2 t1, #3 t2.
func entries(terms: [UInt64]) -> [LogEntry] {
    terms.enumerated().map { offset, term in
        LogEntry(index: LogIndex(UInt64(offset + 1)), term: Term(term), payload: [UInt8(offset), UInt8(term)])
    }
}

/// A group whose messages move only when the test says so; links can be cut one way or both.
struct TestCluster {
    var nodes: [RaftCore]
    var inFlight: [RaftMessage] = []
    /// Directed links that lose everything: (source, target).
    var cut: Set<[UInt32]> = []
    /// Every `Ready` each node produced, in order.
    var readies: [[Ready]]

    init(count: Int = 3, settings: TestSettings = TestSettings(), durable: [DurableState]? = nil) {
        nodes = (0..<count).map { index in
            RaftCore(
                config: makeConfig(index, members: count, settings), restoring: durable?[index] ?? DurableState(),
                seed: UInt64(index) &* 7919)
        }
        readies = Array(repeating: [], count: count)
    }

    /// Takes every node's `Ready`s until one is empty (as if each was persisted) and queues their messages.
    mutating func collect() {
        for index in nodes.indices {
            for _ in 0..<10 {
                let ready = nodes[index].takeReady()
                if ready.isEmpty { break }
                readies[index].append(ready)
                inFlight.append(contentsOf: ready.messagesToSend)
            }
        }
    }

    /// Delivers messages (and their answers) until none is left; cut links lose theirs.
    mutating func deliverAll(roundsMax: Int = 100) {
        for _ in 0..<roundsMax {
            collect()
            if inFlight.isEmpty { return }
            let batch = inFlight
            inFlight = []
            for message in batch where !cut.contains([message.source.rawValue, message.target.rawValue]) {
                nodes[Int(message.target.rawValue)].step(message)
            }
        }
    }

    /// Ticks the given nodes (all by default) `times` times, delivering everything after each tick.
    mutating func tick(_ times: Int, only: [Int]? = nil) {
        for _ in 0..<times {
            for index in only ?? Array(nodes.indices) { nodes[index].tick() }
            deliverAll()
        }
    }

    /// Makes `index` campaign and delivers until the election is decided.
    mutating func elect(_ index: Int) {
        nodes[index].campaign()
        deliverAll()
    }

    mutating func isolate(_ index: Int) {
        for other in nodes.indices where other != index {
            cut.insert([UInt32(index), UInt32(other)])
            cut.insert([UInt32(other), UInt32(index)])
        }
    }

    mutating func heal() { cut = [] }

    /// The node that leads in the highest term, if any.
    var leader: Int? {
        nodes.indices.filter { nodes[$0].role == .leader }.max { nodes[$0].term < nodes[$1].term }
    }

    /// Proposes `payload` at `index` and returns where it went.
    @discardableResult
    mutating func propose(at index: Int, _ payload: [UInt8] = [1, 2, 3]) -> ProposeResult {
        nodes[index].propose(payload)
    }
}
