import Client
import Common

/// A cluster `bench chaos` injects faults into: broker nodes it can kill, suspend and partition, the one that
/// leads now, and a wait for everything to be whole again before the messages are read back.
protocol ChaosCluster: AnyObject {
    var namesrvAddr: String { get }
    /// Where the stores, configs and logs are (removed by `stop()`).
    var directory: String { get }
    /// The broker nodes faults target (not the NameServer).
    var nodes: [NodeProcess] { get }
    var network: NodeNetwork? { get }
    /// `DLedger group of 3, ASYNC_FLUSH`: for the report.
    var label: String { get }
    /// What the mode promises under this run's faults (`power`: with power cuts among them).
    func guarantee(power: Bool) -> ChaosGuarantee
    /// The node that takes writes now (the master; the DLedger leader), nil when none does within `seconds`.
    func leader(_ admin: Admin, seconds: Double) async -> Int?
    /// Creates `topic` with `queues` queues where writes go, and waits until the cluster serves it.
    func createTopic(_ topic: String, queues: Int, admin: Admin) async throws
    /// Waits until every node runs and has caught up (nothing in flight).
    func waitWhole(_ admin: Admin, seconds: Double) async throws
    /// Stops the brokers (SIGTERM) and reads each one's commit log from its files: name and bodies in log order.
    func stopAndReadLogs() throws -> [(name: String, bodies: [String])]
    /// Stops every process, removes the namespaces and the stores.
    func stop()
}

/// What a mode promises about acknowledged messages under the faults the run injects.
struct ChaosGuarantee: Sendable {
    /// The promise in words, for the report.
    var claim: String
    /// Whether the promise is "no acknowledged message lost" under this run's faults.
    var promisesNoLoss: Bool
    /// Whether every node's log must hold every acknowledged message once the cluster is whole (DLedger: every
    /// member applied the leader's log; SYNC_MASTER: the slave had each before it was acknowledged).
    var everyLogHoldsAll: Bool
}

extension DLedgerBenchGroup: ChaosCluster {
    var nodes: [NodeProcess] { members }
    var label: String { "DLedger group of 3 (\(flushLabel))" }
    func guarantee(power: Bool) -> ChaosGuarantee { .dledger(syncFlush: flushLabel == "SYNC_FLUSH", power: power) }

    func stopAndReadLogs() throws -> [(name: String, bodies: [String])] {
        stopGracefully()
        return try members.indices.map { (members[$0].name, try bodies(of: $0)) }
    }

    func leader(_ admin: Admin, seconds: Double) async -> Int? {
        try? await waitForLeader(admin, excluding: nil, seconds: seconds)
    }

    func createTopic(_ topic: String, queues: Int, admin: Admin) async throws {
        let leader = try await waitForLeader(admin, excluding: nil, seconds: 30)
        _ = try await admin.updateTopic(topic, brokerAddr: address(leader), cluster: nil, readQueueNums: queues, writeQueueNums: queues,
                                        perm: .readWrite, order: false)
        try await waitUntilFollowersKnow(topic, leader: leader)
        try await waitForRoute(topic, admin: admin)
    }

    func waitWhole(_ admin: Admin, seconds: Double) async throws {
        try await waitForConvergence(admin, seconds: seconds)
    }
}

extension LocalCluster: ChaosCluster {
    var nodes: [NodeProcess] { brokers }
    var label: String { shape.description }
    func guarantee(power: Bool) -> ChaosGuarantee {
        .masterSlave(shape.replication, syncFlush: shape.flush == "sync", power: power)
    }

    func leader(_ admin: Admin, seconds: Double) async -> Int? { 0 }

    func stopAndReadLogs() throws -> [(name: String, bodies: [String])] {
        for node in brokers.reversed() { node.stop() }
        return try zip(brokers, ["store", "slave-store"]).map { ($0.name, try commitLogBodies(storePathRootDir: "\(directory)/\($1)")) }
    }

    func createTopic(_ topic: String, queues: Int, admin: Admin) async throws {
        _ = try await admin.updateTopic(topic, brokerAddr: brokerAddress, cluster: nil, readQueueNums: queues, writeQueueNums: queues,
                                        perm: .readWrite, order: false)
        try await waitForRoute(topic, admin: admin)
    }

    func waitWhole(_ admin: Admin, seconds: Double) async throws {
        try await poll(seconds, "the master answering") { (try? await admin.brokerRuntimeInfo(brokerAddress)) != nil }
        if shape.replication != .none { try await waitForSlave(seconds: seconds) }
    }
}

/// Waits until the NameServer has a route for `topic` (brokers register every 30 s, and at once on a new topic).
func waitForRoute(_ topic: String, admin: Admin) async throws {
    try await poll(30, "a route for \(topic)") { (try? await admin.topicRoute(topic)) != nil }
}
