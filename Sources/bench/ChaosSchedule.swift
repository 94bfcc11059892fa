/// The faults `bench chaos` injects, and the seeded schedule it injects them by.
enum FaultKind: String, Sendable, CaseIterable {
    /// SIGKILL a random broker node, restart it on its store after the pause.
    case kill
    /// SIGSTOP a random broker node, SIGCONT after the pause.
    case suspend
    /// Take a random broker node's link to the bridge down (its own network namespace), up after the pause.
    case partition
    /// `kill` on the master (master/slave) or the DLedger leader.
    case leaderKill = "leader-kill"
    /// `suspend` on the master or the DLedger leader.
    case leaderSuspend = "leader-suspend"
    /// Cut the power of a random broker node: its store's powerfs mount freezes, the process is SIGKILLed, the
    /// mount is aborted (what was not fsynced is gone) and remounted with what was; restart after the pause.
    case power
    /// `power` on the master or the DLedger leader.
    case leaderPower = "leader-power"

    /// Whether the fault picks the master or leader when it is injected (not a node drawn by the schedule).
    var targetsLeader: Bool { self == .leaderKill || self == .leaderSuspend || self == .leaderPower }
    /// Whether the fault cuts power, so every store must be on powerfs (FUSE, root).
    var cutsPower: Bool { self == .power || self == .leaderPower }

    /// `kill,suspend` into kinds; an unknown name is refused with the ones there are.
    static func parseList(_ text: String) throws -> [FaultKind] {
        var kinds: [FaultKind] = []
        for name in text.split(separator: ",").map({ String($0).trimmingCharacters() }) where !name.isEmpty {
            guard let kind = FaultKind(rawValue: name) else {
                throw ValidationErrorText("--faults: \(name) is not a fault this build injects; choose from "
                                          + allCases.map(\.rawValue).joined(separator: ", "))
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        guard !kinds.isEmpty else { throw ValidationErrorText("--faults needs at least one of " + allCases.map(\.rawValue).joined(separator: ", ")) }
        return kinds
    }
}

/// One planned fault: when (seconds from the start of the load), what, and for random-node kinds which node.
struct PlannedFault: Sendable, Equatable {
    var atSeconds: Double
    var kind: FaultKind
    /// Index into the cluster's broker nodes; nil for the leader kinds (found when injected).
    var node: Int?
}

/// SplitMix64: small, seeded, and the same sequence on every machine.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum ChaosSchedule {
    /// A fault every `interval` seconds from `interval` on, while the fault and its pause end before
    /// `duration`; kinds in a seeded shuffle of `kinds` (each appears once before any repeats), nodes drawn
    /// from `0..<nodes`. The same arguments always give the same schedule.
    static func make(seed: UInt64, kinds: [FaultKind], interval: Double, pause: Double, duration: Double,
                     nodes: Int) -> [PlannedFault] {
        precondition(interval > 0 && nodes > 0 && !kinds.isEmpty, "validated by the command")
        var generator = SeededGenerator(seed: seed)
        var plan: [PlannedFault] = []
        var bag: [FaultKind] = []
        var at = interval
        while at + pause < duration && plan.count < 10_000 {
            if bag.isEmpty { bag = kinds.shuffled(using: &generator) }
            let kind = bag.removeFirst()
            let node = Int(generator.next() % UInt64(nodes))
            plan.append(PlannedFault(atSeconds: at, kind: kind, node: kind.targetsLeader ? nil : node))
            at += interval
        }
        return plan
    }

    /// `  12.0 s  kill n1` lines, one a fault.
    static func describe(_ plan: [PlannedFault], names: [String]) -> String {
        plan.map { fault in
            "  \(format(fault.atSeconds, 1)) s  \(fault.kind.rawValue) " + (fault.node.map { names[$0] } ?? "(the leader when injected)")
        }.joined(separator: "\n")
    }
}
