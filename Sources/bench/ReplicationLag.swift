import Client
import CommitLog
import Common
import Remoting
import Synchronization

/// The replication a run meets: its name (JSON `replication`), its label (lines, tables, legends) and the
/// masters whose slaves are sampled for lag (none without a slave).
struct ReplicationSetup: Sendable {
    var name: String
    var label: String
    var masters: [String]

    /// A cluster this bench started: its mode is known, and `master` is the one master.
    init(_ mode: ReplicationMode, master: String) {
        name = mode.rawValue
        label = mode.label
        masters = mode == .async || mode == .sync ? [master] : []  // the HA lag is sampled from a master with a slave
    }

    init(name: String, label: String, masters: [String]) {
        self.name = name
        self.label = label
        self.masters = masters
    }

    /// An existing cluster (`-n`): each master's `brokerRole` (GET_BROKER_RUNTIME_INFO) and its slave
    /// connections (GET_BROKER_HA_STATUS) give its mode: SYNC_MASTER is `sync`, ASYNC_MASTER with a slave
    /// connected `async`, without one `none`; a master that does not answer both is `unknown`. Masters of
    /// different modes give a name like `async+none`.
    static func detect(namesrvAddr: String, credentials: SessionCredentials? = nil) async -> ReplicationSetup {
        let admin = Admin(namesrvAddr: namesrvAddr, timeoutMillis: 3_000, credentials: credentials)
        defer { Task { await admin.shutdown() } }
        var names: [String] = []
        var labels: [String] = []
        var masters: [String] = []
        for broker in (try? await admin.clusterInfo()) ?? [] where broker.brokerID == BrokerData.masterID {
            let runtime = (try? await admin.brokerRuntimeInfo(broker.address)) ?? []
            let role = runtime.first { $0.0 == "brokerRole" }?.1
            let slaves = (try? await admin.haStatus(broker.address))?.haConnectionInfo.count ?? 0
            let mode: ReplicationMode? = switch role {
            case "SYNC_MASTER": .sync
            case "ASYNC_MASTER": slaves > 0 ? .async : ReplicationMode.none
            default: nil
            }
            let (name, label) = mode.map { ($0.rawValue, $0.label) } ?? ("unknown", "unknown")
            if !names.contains(name) {
                names.append(name)
                labels.append(label)
            }
            if let mode, mode != .none { masters.append(broker.address) }
        }
        if names.isEmpty { return ReplicationSetup(name: "unknown", label: "unknown", masters: []) }
        return ReplicationSetup(name: names.joined(separator: "+"), label: labels.joined(separator: " + "), masters: masters)
    }
}

/// One look at the masters' HA status: how far the slowest slave is behind.
struct LagSample: Sendable {
    /// Seconds since sampling began.
    var atSeconds: Double
    /// The largest `diff` over the slave connections: bytes of the master's log the slave has not reported.
    var bytes: Int64
    /// The largest `lagMillis`: milliseconds since that slave last reported everything the master had.
    var millis: Int64
}

/// Replication lag observed during a run: the masters' own view (GET_BROKER_HA_STATUS), polled every
/// `intervalMillis`. An observation at that granularity, not a per-message latency: a slave that falls
/// behind and catches up between two polls is not seen.
struct ReplicationLag: Sendable {
    static let intervalMillis: Int64 = 100

    var samples: [LagSample]
    /// Polls that got no answer within the admin timeout, or found no slave connected.
    var missed: Int

    func bytes(_ percentile: Double) -> Int64 { Self.nearestRank(samples.map(\.bytes), percentile) }
    func millis(_ percentile: Double) -> Int64 { Self.nearestRank(samples.map(\.millis), percentile) }
    var maxBytes: Int64 { samples.map(\.bytes).max() ?? 0 }
    var maxMillis: Int64 { samples.map(\.millis).max() ?? 0 }

    /// The smallest sample with at least `percentile` % of the samples at or below it (nearest rank).
    static func nearestRank(_ values: [Int64], _ percentile: Double) -> Int64 {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((percentile / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// The JSON members (each with a leading comma) that join the producer's object.
    var jsonMembers: String {
        ",\"replication_lag_interval_ms\":\(Self.intervalMillis),\"replication_lag_samples\":\(samples.count)"
            + ",\"replication_lag_missed\":\(missed)"
            + ",\"replication_lag_p50_ms\":\(millis(50)),\"replication_lag_p99_ms\":\(millis(99)),\"replication_lag_max_ms\":\(maxMillis)"
            + ",\"replication_lag_p50_bytes\":\(bytes(50)),\"replication_lag_p99_bytes\":\(bytes(99))"
            + ",\"replication_lag_max_bytes\":\(maxBytes)"
    }

    var summary: String {
        "Replication lag (master's HA status every \(Self.intervalMillis) ms, \(samples.count) samples, \(missed) missed):  "
            + "bytes p50 \(bytes(50))  p99 \(bytes(99))  max \(maxBytes);  ms p50 \(millis(50))  p99 \(millis(99))  max \(maxMillis)"
    }
}

/// Polls the masters' HA status every `ReplicationLag.intervalMillis` while the load runs (`run()` in a task
/// of its own, cancelled when the load ends). Each poll is one GET_BROKER_HA_STATUS per master on an admin
/// connection of its own.
final class ReplicationLagSampler: Sendable {
    private struct State {
        var samples: [LagSample] = []
        var missed = 0
        /// The largest lag seen since the last per-second line.
        var second: (bytes: Int64, millis: Int64)?
    }

    private let masters: [String]
    private let admin: Admin
    private let state = Mutex(State())

    init(masters: [String], namesrvAddr: String) {
        self.masters = masters
        admin = Admin(namesrvAddr: namesrvAddr, timeoutMillis: 1_000)
    }

    /// Samples until cancelled, on ticks `intervalMillis` apart (a slow poll skips the ticks it overran).
    func run() async {
        let started = monotonicNanos()
        let interval = UInt64(ReplicationLag.intervalMillis) * 1_000_000
        var tick = started
        while !Task.isCancelled {
            let sample = await poll(at: Double(monotonicNanos() - started) / 1e9)
            state.withLock { state in
                guard let sample else { return state.missed += 1 }
                state.samples.append(sample)
                let second = state.second ?? (0, 0)
                state.second = (max(second.bytes, sample.bytes), max(second.millis, sample.millis))
            }
            let now = monotonicNanos()
            while tick <= now { tick += interval }
            do { try await Task.sleep(for: .nanoseconds(Int64(tick - now))) } catch { break }
        }
        await admin.shutdown()
    }

    /// The worst slave over every master; nil when a master did not answer or had no slave connected.
    private func poll(at seconds: Double) async -> LagSample? {
        var sample = LagSample(atSeconds: seconds, bytes: 0, millis: 0)
        for master in masters {
            guard let info = try? await admin.haStatus(master), !info.haConnectionInfo.isEmpty else { return nil }
            for connection in info.haConnectionInfo {
                sample.bytes = max(sample.bytes, connection.diff)
                sample.millis = max(sample.millis, connection.lagMillis)
            }
        }
        return sample
    }

    /// ` Lag(bytes): … Lag(ms): …` for the per-second line: the largest lag sampled since the last call.
    func takeSecond() -> String {
        let second = state.withLock { state in
            defer { state.second = nil }
            return state.second
        }
        guard let second else { return " Lag(bytes): - Lag(ms): -" }
        return " Lag(bytes): \(second.bytes) Lag(ms): \(second.millis)"
    }

    func finish() -> ReplicationLag {
        state.withLock { ReplicationLag(samples: $0.samples, missed: $0.missed) }
    }
}
