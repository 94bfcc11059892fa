@_spi(Testing) import Raft
import Testing

@Test func smoke() throws {
    for profile in FaultProfile.all {
        for seed: UInt64 in 0..<20 {
            var simulation = Simulation(seed: seed, nodes: 3, faults: profile)
            try simulation.run(steps: 3_000)
            try simulation.healAndConverge(ticksMax: 2_000)
            if seed == 0 { print(profile.name, simulation.stats) }
        }
    }
}

@Test func bugsQuick() throws {
    for bugs in [InjectedBugs.commitOldTermByCounting] {
        for profile in FaultProfile.all {
            var failures = 0
            var first: String?
            for seed: UInt64 in 0..<100 { for n in [3, 5] {
                var simulation = Simulation(seed: seed, nodes: n, faults: profile, bugs: bugs)
                do {
                    try simulation.run(steps: 3_000)
                    try simulation.healAndConverge(ticksMax: 2_000)
                } catch {
                    failures += 1
                    if first == nil { first = "\(error)" }
                }
            }}
            print(bugs.rawValue, profile.name, failures, first ?? "")
        }
    }
}
