#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Client
import CommitLog
import Common
import Remoting
import Synchronization

/// `bench failover`: a DLedger group of three brokers (and a NameServer) started beside this bench, senders
/// (Swift client, no retries, each body sent once) running throughout, and the leader killed (or stopped) again
/// and again: per round, kill → a new member takes writes, and kill → the first send acknowledged after the kill;
/// the killed member is brought back and must catch up before the next round. At the end every member's commit log
/// is read from its files and every acknowledged body must be there exactly once.
struct FailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover", abstract: "Failover of a local DLedger group: time to a new leader and to the first acknowledged send.")
    @Option(help: "Leader faults (rounds)") var kills = 10
    @Option(name: .short, help: "Sender tasks") var w = 8
    @Flag(help: "SIGSTOP the leader (SIGCONT before the next round) instead of SIGKILL") var stop = false
    @Option(help: "flushDiskType of the members: async or sync") var flush = "async"

    func run() async throws {
        let group = try DLedgerBenchGroup(flush: flush)
        defer { group.stop() }
        let admin = Admin(namesrvAddr: group.namesrvAddr, timeoutMillis: 1_000)
        let leader = try await group.waitForLeader(admin, excluding: nil, seconds: 30)
        _ = try await admin.updateTopic("FailoverBench", brokerAddr: group.address(leader), cluster: nil, readQueueNums: 8,
                                        writeQueueNums: 8, perm: .readWrite, order: false)
        try await group.waitUntilFollowersKnow("FailoverBench", leader: leader)
        let senders = FailoverSenders(namesrvAddr: group.namesrvAddr, count: w)
        senders.start(topic: "FailoverBench")
        var rounds: [(leader: Double, send: Double)] = []
        for round in 1...kills {
            try await senders.waitForAcks(200, seconds: 60)
            let current = try await group.waitForLeader(admin, excluding: nil, seconds: 30)
            let faultAt = monotonicNanos()
            group.fault(current, stop: stop)
            let next = try await group.waitForLeader(admin, excluding: current, seconds: 30)
            let electedMillis = Double(monotonicNanos() - faultAt) / 1e6
            let sentAt = try await senders.firstAck(after: faultAt, seconds: 60)
            let sendMillis = Double(sentAt - faultAt) / 1e6
            rounds.append((electedMillis, sendMillis))
            print("round \(round): n\(current) \(stop ? "stopped" : "killed"); n\(next) takes writes after \(format(electedMillis, 0)) ms, "
                  + "first acknowledged send after \(format(sendMillis, 0)) ms")
            try group.recover(current, stop: stop)
            try await group.waitForCatchUp(admin, member: current, seconds: 60)
        }
        let acknowledged = await senders.finish()
        try await group.waitForConvergence(admin, seconds: 60)
        await admin.shutdown()
        group.stopGracefully()
        try report(rounds, acknowledged: acknowledged, logs: try (0..<3).map { try group.bodies(of: $0) })
    }

    private func report(_ rounds: [(leader: Double, send: Double)], acknowledged: [String], logs: [[String]]) throws {
        func summary(_ values: [Double]) -> String {
            let sorted = values.sorted()
            return "p50 \(format(sorted[sorted.count / 2], 0)) ms, max \(format(sorted.last ?? 0, 0)) ms"
        }
        print("kill → new leader:        " + summary(rounds.map(\.leader)) + " over \(rounds.count) \(stop ? "stops" : "kills")")
        print("kill → first acked send:  " + summary(rounds.map(\.send)))
        let checks = logs.enumerated().map { ChaosCheck.replica("n\($0.offset)", bodies: $0.element, acknowledged: acknowledged) }
        for check in checks {
            print("\(check.name): \(check.records) records; of \(acknowledged.count) acknowledged messages \(check.missing.count) lost, "
                  + "\(check.repeated) repeated")
            if !check.missing.isEmpty { print("  lost: \(check.missing.prefix(20))") }
        }
        if checks.contains(where: { !$0.missing.isEmpty }) { throw ExitCode(1) }
    }
}

/// Senders that send unique bodies until finished and remember what was acknowledged, and when.
final class FailoverSenders: Sendable {
    let producer: Producer
    let count: Int
    /// Each acknowledged send: its body, when it was sent and when its answer came.
    private let acknowledged = Mutex<[(body: String, sentAt: UInt64, at: UInt64)]>([])
    private let stopping = Atomic<Bool>(false)
    private let tasks = Mutex<[Task<Void, Never>]>([])

    init(namesrvAddr: String, count: Int) {
        producer = makeFaultProducer(namesrvAddr: namesrvAddr, group: "PG-failover", timeoutMillis: 1_000)
        self.count = count
    }

    func start(topic: String) {
        let started = (0..<count).map { sender in
            Task { [self] in
                var sequence = 0
                while !stopping.load(ordering: .relaxed) {
                    let body = "s\(sender)-\(sequence)"
                    sequence += 1
                    let sentAt = monotonicNanos()
                    if (try? await producer.send(Message(topic: topic, body: body)))?.status == .sendOK {
                        acknowledged.withLock { $0.append((body, sentAt, monotonicNanos())) }
                    } else {
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
            }
        }
        tasks.withLock { $0 = started }
    }

    /// Waits until `more` sends were acknowledged from now on.
    func waitForAcks(_ more: Int, seconds: Double) async throws {
        let target = acknowledged.withLock { $0.count } + more
        try await poll(seconds, "\(more) acknowledged sends") { acknowledged.withLock { $0.count } >= target }
    }

    /// When the first send made after `time` was acknowledged (answers to sends made before it, which a stopped
    /// leader may still deliver, do not count).
    func firstAck(after time: UInt64, seconds: Double) async throws -> UInt64 {
        var found: UInt64?
        try await poll(seconds, "an acknowledged send after the fault") {
            // From the end back to the fault: the list is long, the part after the fault short.
            found = acknowledged.withLock { list in list.reversed().prefix { $0.at > time }.filter { $0.sentAt > time }.map(\.at).min() }
            return found != nil
        }
        return found!
    }

    func finish() async -> [String] {
        stopping.store(true, ordering: .relaxed)
        for task in tasks.withLock({ $0 }) { await task.value }
        await producer.shutdown()
        return acknowledged.withLock { $0.map(\.body) }
    }
}

/// Polls `condition` every 5 ms for at most `seconds`.
func poll(_ seconds: Double, _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    while monotonicNanos() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    throw ValidationErrorText("no \(what) within \(format(seconds, 0)) s")
}
