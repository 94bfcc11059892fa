import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting
import Replication
import Synchronization

/// A slave's link to its master (RocketMQ's `SlaveSynchronize` and the slave half of `HAService`): it learns the
/// master from `haMasterAddress` or from the NameServers' REGISTER_BROKER answers, checks before replicating that
/// its log is not ahead of the master's (a slave that was ahead, such as an old master coming back after a
/// switch, truncates to where the master's log ends instead of serving a fork), points the HA client at the
/// master, and every `slaveSynchronizeInterval` copies the master's topics (21), consumer offsets (43), delay
/// offsets (45) and subscription groups (201).
///
/// **Thread:** any; the checks and copies run as tasks, one at a time.
final class SlaveSynchronize: Sendable {
    let services: BrokerServices
    /// Nil for a DLedger member: the Raft log replicates its commit log; this only copies the tables.
    private let haClient: HAClient?
    let client: RemotingClient
    private struct Master: Equatable {
        var brokerAddr: String
        var haAddr: String
    }
    private struct State {
        var master: Master?
        /// The master whose log this slave was checked against (the HA client follows only that one).
        var checked: Master?
        var syncing = false
        var timer: Task<Void, Never>?
        /// Re-checks the log after the HA session ended, until the master answers.
        var recheck: Task<Void, Never>?
    }
    private let state = Mutex(State())

    init(services: BrokerServices, haClient: HAClient?, group: EventLoopGroup) {
        self.services = services
        self.haClient = haClient
        client = RemotingClient(group: group)
    }

    /// Starts the periodic copy.
    func start() {
        let interval = services.config.slaveSynchronizeIntervalMillis
        let task = Task { [weak self] in
            while !Task.isCancelled {
                await self?.synchronizeAll()
                try? await Task.sleep(for: .milliseconds(interval))
            }
        }
        state.withLock { $0.timer = task }
        haClient?.holdAfterSessionEnds { [weak self] in self?.masterSessionEnded() }
    }

    /// The HA session ended: the master may come back with a shorter log (a power cut took its unsynced tail), so
    /// replication resumes only after `agreeWithMaster` checked this log against it again — every 500 ms until
    /// the master answers.
    func masterSessionEnded() {
        services.log("slave: HA session with the master ended; the log is checked against the master before replication resumes")
        state.withLock { state in
            state.checked = nil
            state.recheck?.cancel()
            state.recheck = Task { [weak self] in
                while !Task.isCancelled, let self {
                    await self.synchronizeAll()
                    if self.state.withLock({ $0.checked != nil }) { return }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }
    }

    func close() async {
        for task in state.withLock({ [$0.timer, $0.recheck] }) { task?.cancel() }
        haClient?.setMasterAddress(nil)
        await client.close()
    }

    /// The NameServers named this slave's master (every registration answers it).
    func masterKnown(brokerAddr: String, haAddr: String?) {
        let fixed = services.config.haMasterAddress
        guard let ha = fixed ?? haAddr ?? (haClient == nil ? "" : nil) else { return }
        let master = Master(brokerAddr: brokerAddr, haAddr: ha)
        let changed = state.withLock { state -> Bool in
            defer { state.master = master }
            return state.master != master
        }
        if changed {
            services.log("slave: master is \(brokerAddr) (HA \(ha))")
            Task { await synchronizeAll() }
        }
    }

    /// One round: check the log against a new master, then copy its tables.
    func synchronizeAll() async {
        let master: Master? = state.withLock { state in
            guard !state.syncing, let master = state.master else { return nil }
            state.syncing = true
            return master
        }
        guard let master else { return }
        defer { state.withLock { $0.syncing = false } }
        if let haClient, state.withLock({ $0.checked }) != master {
            guard await agreeWithMaster(master.brokerAddr) else { return }
            state.withLock { $0.checked = master }
            haClient.setMasterAddress(master.haAddr)
        }
        // A DLedger member that leads now keeps its own tables.
        guard services.brokerRole == .slave, master.brokerAddr != services.brokerAddr else { return }
        await copyTables(from: master.brokerAddr)
    }

    /// Copies the master's four tables; a table the master does not answer is kept as it is.
    private func copyTables(from master: String) async {
        if let topics = await fetch(TopicConfigSerializeWrapper.self, RequestCode.getAllTopicConfig, from: master),
           services.topics.replaceAll(with: topics) {
            services.log("slave: copied \(topics.topicConfigTable.count) topics from master \(master)")
            services.topicsChanged()
        }
        if let offsets = await fetch(ConsumerOffsetSerializeWrapper.self, RequestCode.getAllConsumerOffset, from: master) {
            services.offsets.replaceAll(with: offsets)
            services.offsets.persist()
        }
        if let delays = await fetch(DelayOffsetSerializeWrapper.self, RequestCode.getAllDelayOffset, from: master) {
            services.schedule.replaceAll(with: delays)
            services.schedule.persist()
        }
        if let groups = await fetch(SubscriptionGroupWrapper.self, RequestCode.getAllSubscriptionGroupConfig, from: master) {
            services.subscriptionGroups.replaceAll(with: groups)
        }
    }

    private func fetch<Body: RemotingBody>(_ type: Body.Type, _ code: Int32, from master: String) async -> Body? {
        do {
            let answer = try await client.invoke(master, RemotingCommand(code: code, opaque: 0), timeoutMillis: 5_000)
            guard answer.code == ResponseCode.success else {
                services.log("slave: master \(master) answered \(answer.code) to request \(code): \(answer.remark ?? "")")
                return nil
            }
            return try Body.decode(from: answer.body)
        } catch {
            services.log("slave: cannot copy request \(code)'s table from \(master): \(error)")
            return nil
        }
    }
}
