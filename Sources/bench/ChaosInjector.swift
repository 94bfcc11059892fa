#if canImport(Glibc)
import Glibc
#endif
import Client
import CommitLog
import Dispatch
import Synchronization

/// Injects planned faults into a `ChaosCluster` and heals them, recording each as a `ChaosFault`. Starting a
/// node waits for its boot line (blocking), so that work runs on a Dispatch thread, off the pool the senders use.
final class ChaosInjector: @unchecked Sendable {
    // @unchecked: the cluster and its nodes are touched by the run's one injecting task, one call at a time, and
    // by the interrupt path only after that task has stopped (or when the process is about to exit).
    let cluster: ChaosCluster
    let admin: Admin
    let started: UInt64
    private(set) var faults: [ChaosFault] = []
    /// Faults not injected (no leader found), with why.
    private(set) var skipped: [String] = []
    private var downLinks = Set<Int>()

    init(cluster: ChaosCluster, admin: Admin, started: UInt64) {
        self.cluster = cluster
        self.admin = admin
        self.started = started
    }

    /// Injects `planned`, waits `pause` seconds (or until `interrupted`), heals it.
    func inject(_ planned: PlannedFault, pause: Double, interrupted: StopFlag) async throws {
        let node: Int
        if let chosen = planned.node {
            node = chosen
        } else if let leader = await cluster.leader(admin, seconds: 5) {
            node = leader
        } else {
            skipped.append("\(planned.kind.rawValue) at \(format(planned.atSeconds, 1)) s: no leader within 5 s")
            return
        }
        let target = cluster.nodes[node]
        // A random node may be the leader: the report says so (the master's name says it already).
        let leads = planned.node != nil && target.name != "master" ? await cluster.leader(admin, seconds: 0.5) == node : false
        let name = target.name + (leads ? " (leader)" : "")
        let injectedAt = monotonicNanos()
        var detail: String?
        switch planned.kind {
        case .kill, .leaderKill: target.kill()
        case .suspend, .leaderSuspend: target.suspend()
        case .partition:
            try cluster.network!.isolate(node)  // validated: partition runs only with namespaces
            downLinks.insert(node)
        case .power, .leaderPower:
            // Off the pool: the cut waits (briefly) for powerfs to freeze and for the mount to go.
            detail = Self.describeCut(try await offPool { try target.powerOff() })
        }
        faults.append(ChaosFault(kind: planned.kind, node: name, injectedAt: injectedAt, healedAt: nil, detail: detail))
        print("[\(format(seconds(injectedAt), 1)) s] \(planned.kind.rawValue) \(name)" + (detail.map { ": \($0)" } ?? ""))
        await sleepUntil( injectedAt + UInt64(pause * 1e9), interrupted: interrupted)
        try await heal(node)
        faults[faults.count - 1].healedAt = monotonicNanos()
        print("[\(format(seconds(monotonicNanos()), 1)) s] healed \(target.name)")
    }

    /// `unsynced 12288 bytes, torn /commitlog/...[4096,8704)of[4096,12288)` from powerfs's `frozen torn=...
    /// volatile_bytes=...` line (the whole line when it has another shape).
    static func describeCut(_ frozen: String) -> String {
        var fields: [Substring: Substring] = [:]
        for field in frozen.split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        guard let unsynced = fields["volatile_bytes"], let torn = fields["torn"] else { return frozen }
        return "unsynced \(unsynced) bytes, torn \(torn)"
    }

    /// Brings `node` back: its link up, SIGCONT, or a restart on its store (remounted first after a power cut).
    func heal(_ node: Int) async throws {
        if downLinks.contains(node) {
            try cluster.network?.heal(node)
            downLinks.remove(node)
        }
        let target = cluster.nodes[node]
        if target.suspended { target.resume() }
        if !target.running { try await offPool { try target.start() } }
    }

    /// Heals every node (after the last fault, or an interrupt).
    func healAll() async throws {
        for node in cluster.nodes.indices { try await heal(node) }
    }

    func seconds(_ time: UInt64) -> Double { Double(time - min(time, started)) / 1e9 }
}

/// Sleeps until `deadline` (monotonic nanoseconds) or until `interrupted`, polling every 50 ms.
func sleepUntil(_ deadline: UInt64, interrupted: StopFlag) async {
    for _ in 0..<1_000_000 {
        let now = monotonicNanos()
        guard now < deadline, !interrupted.isSet else { return }
        try? await Task.sleep(for: .nanoseconds(min(deadline - now, 50_000_000)))
    }
}

/// Runs blocking `work` on a Dispatch thread and waits for it.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// What SIGINT does during a chaos run: the first stops the run (it heals, reads back and reports what it has);
/// a second one stops every process and namespace at once and exits.
final class InterruptHandler: @unchecked Sendable {
    // @unchecked: `cleanup` is set once before the source is armed; the source runs on its own serial queue.
    let interrupted = StopFlag()
    private var source: DispatchSourceSignal?
    private let queue = DispatchQueue(label: "bench.chaos.signals")
    private let count = Atomic<Int>(0)

    func install(cleanup: @escaping @Sendable () -> Void) {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: queue)
        source.setEventHandler { [self] in
            if count.add(1, ordering: .relaxed).newValue == 1 {
                print("\nInterrupted: stopping the faults and the load, healing, reading back what was sent (Ctrl-C again to quit now)")
                interrupted.set()
            } else {
                print("\nInterrupted again: stopping every process, mount and namespace")
                cleanup()
                _exit(130)
            }
        }
        source.resume()
        self.source = source
    }
}

/// A flag set once (an interrupt, the end of a load) and read by loops that must stop.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
