#if canImport(Glibc)
import Glibc
#endif
@_spi(Testing) import Raft
import Testing

/// How much simulation a test run does. `RAFT_SIM_SEEDS` (seeds per fault profile, default 400),
/// `RAFT_SIM_STEPS` (steps per seed, default 4,000) and `RAFT_SIM_FIRST_SEED` (default 0) make longer or
/// different runs: `RAFT_SIM_SEEDS=5000 swift test --filter RaftTests.SimulationTests`.
enum SimulationBudget {
    static let seedsPerProfile = environment("RAFT_SIM_SEEDS") ?? 400
    static let stepsPerSeed = environment("RAFT_SIM_STEPS") ?? 4_000
    static let firstSeed = UInt64(environment("RAFT_SIM_FIRST_SEED") ?? 0)
    /// Each profile's seeds are split in this many test cases, so they run in parallel.
    static let chunksPerProfile = 4
    static let convergeTicksMax = 3_000

    private static func environment(_ name: String) -> Int? {
        guard let text = getenv(name) else { return nil }
        return Int(String(cString: text))
    }
}

/// A contiguous range of seeds under one fault profile.
struct SeedRange: Sendable, CustomTestStringConvertible {
    var profile: FaultProfile
    var seeds: Range<UInt64>
    var testDescription: String { "\(profile.name) seeds \(seeds.lowerBound)..<\(seeds.upperBound)" }

    static let all: [SeedRange] = FaultProfile.all.flatMap { profile in
        let count = UInt64(SimulationBudget.seedsPerProfile)
        let chunks = UInt64(SimulationBudget.chunksPerProfile)
        return (0..<chunks).map { chunk in
            let start = SimulationBudget.firstSeed + count * chunk / chunks
            let end = SimulationBudget.firstSeed + count * (chunk + 1) / chunks
            return SeedRange(profile: profile, seeds: start..<end)
        }
    }
}

/// The simulator over many seeds, and proof that its checks can fail.
@Suite struct SimulationTests {
    /// Every seed runs a group (three nodes, or five for every third seed) through `stepsPerSeed` random steps
    /// under its profile's faults, checking safety after each step, then heals it and checks liveness. A failure
    /// names the seed and step; `Simulation(seed:nodes:faults:)` replays it exactly.
    @Test(arguments: SeedRange.all)
    func simulatedGroupKeepsEveryAcknowledgedEntry(range: SeedRange) {
        var total = SimulationStats()
        for seed in range.seeds {
            var simulation = Simulation(seed: seed, nodes: seed % 3 == 2 ? 5 : 3, faults: range.profile)
            do throws(SimulationFailure) {
                try simulation.run(steps: SimulationBudget.stepsPerSeed)
                try simulation.healAndConverge(ticksMax: SimulationBudget.convergeTicksMax)
            } catch {
                Issue.record("\(error)")
                return
            }
            total.add(simulation.stats)
        }
        print(
            "simulation \(range.testDescription): \(total.steps) steps, \(total.ticks) ticks, "
                + "\(total.acknowledged) of \(total.proposals) proposals acknowledged, \(total.leaderTerms) leaders, "
                + "\(total.crashes) crashes, \(total.partitions) partitions, \(total.transfers) transfers, "
                + "\(total.compactions) compactions")
    }

    /// Each deliberate bug is caught within a few hundred seeds, by a check meant for it, and the failing
    /// seed replays to the same step and message. Acknowledging before the sync breaks two promises: an
    /// acknowledged entry's durable quorum, and the durable match the compactable index is built on.
    @Test(arguments: [
        (InjectedBugs.voteTwiceInOneTerm, ["two leaders in"]),
        (InjectedBugs.acceptAppendWithoutMatching, ["log matching"]),
        (InjectedBugs.acknowledgeBeforeSync, ["durable copies", "compaction past the safe point"]),
        (InjectedBugs.compactPastSafePoint, ["compaction past the safe point"]),
    ])
    func injectedBugIsCaught(bug: InjectedBugs, expected: [String]) {
        var caught: SimulationFailure?
        for seed: UInt64 in 0..<300 where caught == nil {
            var simulation = Simulation(seed: seed, nodes: 3, faults: .partitions, bugs: bug)
            do throws(SimulationFailure) {
                try simulation.run(steps: SimulationBudget.stepsPerSeed)
                try simulation.healAndConverge(ticksMax: SimulationBudget.convergeTicksMax)
            } catch {
                caught = error
            }
        }
        guard let caught else {
            Issue.record("bug \(bug) went unnoticed for 300 seeds")
            return
        }
        #expect(expected.contains { caught.message.contains($0) }, "\(caught)")
        var replay = Simulation(seed: caught.seed, nodes: caught.nodes, faults: .partitions, bugs: bug)
        do throws(SimulationFailure) {
            try replay.run(steps: SimulationBudget.stepsPerSeed)
            try replay.healAndConverge(ticksMax: SimulationBudget.convergeTicksMax)
            Issue.record("seed \(caught.seed) did not fail again")
        } catch {
            #expect(error.step == caught.step)
            #expect(error.message == caught.message)
        }
    }

    /// Replays one seed with a trace of its last 500 events, for a failure found elsewhere:
    /// `RAFT_REPLAY="1003981 3 standard" swift test --filter replayOneSeed` (seed, nodes, profile).
    @Test(.enabled(if: getenv("RAFT_REPLAY") != nil, "set RAFT_REPLAY=\"seed nodes profile\" to replay a seed"))
    func replayOneSeed() throws {
        let fields = String(cString: getenv("RAFT_REPLAY")!).split(separator: " ").map(String.init)
        let seed = try #require(fields.count == 3 ? UInt64(fields[0]) : nil, "RAFT_REPLAY: seed nodes profile")
        let nodes = try #require(Int(fields[1]))
        let profile = try #require(FaultProfile.all.first { $0.name == fields[2] }, "profiles: \(FaultProfile.all)")
        var simulation = Simulation(seed: seed, nodes: nodes, faults: profile)
        simulation.traceLimit = 500
        do throws(SimulationFailure) {
            try simulation.run(steps: SimulationBudget.stepsPerSeed)
            try simulation.healAndConverge(ticksMax: SimulationBudget.convergeTicksMax)
        } catch {
            print(simulation.recentEvents.joined(separator: "\n"))
            print(simulation.summary())
            Issue.record("\(error)")
        }
    }

    @Test func aSeedReplaysExactly() throws {
        func run() throws -> (SimulationStats, [String], String) {
            var simulation = Simulation(seed: 1234, nodes: 5, faults: .standard)
            simulation.traceLimit = 200
            try simulation.run(steps: 4_000)
            return (simulation.stats, simulation.recentEvents, simulation.summary())
        }
        let first = try run()
        let second = try run()
        #expect(first.0 == second.0)
        #expect(first.1 == second.1)
        #expect(first.2 == second.2)
        #expect(first.0.acknowledged > 0, "the run made progress")
    }

    @Test func differentSeedsTakeDifferentPaths() throws {
        var first = Simulation(seed: 1, nodes: 3, faults: .standard)
        var second = Simulation(seed: 2, nodes: 3, faults: .standard)
        try first.run(steps: 2_000)
        try second.run(steps: 2_000)
        #expect(first.stats != second.stats)
    }

    @Test func groupOfOneAndTwoStayLiveAndSafe() throws {
        for nodes in 1...2 {
            for seed: UInt64 in 0..<20 {
                var simulation = Simulation(seed: seed, nodes: nodes, faults: .standard)
                try simulation.run(steps: 2_000)
                try simulation.healAndConverge(ticksMax: SimulationBudget.convergeTicksMax)
            }
        }
    }
}

extension SimulationStats {
    mutating func add(_ other: SimulationStats) {
        steps += other.steps
        ticks += other.ticks
        proposals += other.proposals
        acknowledged += other.acknowledged
        leaderTerms += other.leaderTerms
        delivered += other.delivered
        lost += other.lost
        crashes += other.crashes
        restarts += other.restarts
        partitions += other.partitions
        transfers += other.transfers
        compactions += other.compactions
    }
}
