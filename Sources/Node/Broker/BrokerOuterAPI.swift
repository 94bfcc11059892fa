import Common
import NIOCore
import Remoting
import Replication
import Synchronization

/// The broker's requests to the NameServers (RocketMQ's `BrokerOuterAPI`): REGISTER_BROKER with its topics to
/// every NameServer, and UNREGISTER_BROKER at shutdown.
final class BrokerOuterAPI: Sendable {
    let config: BrokerConfig
    let client: RemotingClient
    let log: @Sendable (String) -> Void
    /// A DLedger member registers with the id its role gives it at that moment.
    let dledger: DLedgerServer?

    /// Registrations asked for while one runs collapse into one more (a burst of topic creations costs two).
    private let registration = CoalescedTask()

    init(config: BrokerConfig, group: EventLoopGroup, dledger: DLedgerServer? = nil, log: @escaping @Sendable (String) -> Void) {
        self.config = config
        client = RemotingClient(group: group)
        self.dledger = dledger
        self.log = log
    }

    /// The id to register now: the configured one, or a DLedger member's (0 while it takes writes, else its Raft
    /// id + 1). Read at each registration, so a member that just stopped leading never registers as master.
    var brokerID: Int64 {
        guard let dledger else { return config.brokerID }
        return dledger.isWritableNow ? 0 : dledger.slaveBrokerID
    }

    /// Re-registers soon with the topics `current()` gives then; calls during a registration coalesce.
    func requestRegistration(_ current: @escaping @Sendable () -> TopicConfigSerializeWrapper) {
        registration.request { [self] in await registerAll(current()) }
    }

    var brokerAddr: String { "\(config.brokerIP1):\(config.listenPort)" }
    /// The HA address this broker serves ("" until it serves one: a slave, or a master before its HA port is up).
    let haServerAddr = Mutex("")
    /// What the NameServers answered a slave: its master's address and HA address.
    let onMasterKnown = Mutex<(@Sendable (_ masterAddr: String, _ masterHA: String?) -> Void)?>(nil)

    /// Registers with every NameServer at once; a NameServer that does not answer is logged and skipped.
    /// - Returns: the master address a NameServer answered with (a slave's or follower's registration), if any.
    @discardableResult
    func registerAll(_ topics: TopicConfigSerializeWrapper) async -> String? {
        let body = RegisterBrokerBody(topicConfigSerializeWrapper: topics).encode()
        let crc = body.withUnsafeReadableBytes { rocketMQCRC32($0) }
        let request = RemotingCommand(code: RequestCode.registerBroker, opaque: 0, extFields: [
            "brokerName": config.brokerName, "brokerAddr": brokerAddr, "clusterName": config.brokerClusterName,
            "haServerAddr": haServerAddr.withLock { $0 }, "brokerId": "\(brokerID)", "compressed": "false",
            "bodyCrc32": "\(crc)"], body: body)
        return await withTaskGroup(of: String?.self) { tasks in
            for nameServer in config.namesrvAddr {
                tasks.addTask { await self.register(request, with: nameServer) }
            }
            var master: String?
            for await answer in tasks { master = master ?? answer }
            return master
        }
    }

    private func register(_ request: RemotingCommand, with nameServer: String) async -> String? {
        do {
            let answer = try await client.invoke(nameServer, request, timeoutMillis: 3_000)
            if answer.code != ResponseCode.success {
                log("broker: register with \(nameServer) answered \(answer.code): \(answer.remark ?? "")")
            } else if let master = answer.extFields["masterAddr"], !master.isEmpty {
                onMasterKnown.withLock { $0 }?(master, answer.extFields["haServerAddr"].flatMap { $0.isEmpty ? nil : $0 })
                return master
            }
        } catch {
            log("broker: cannot register with \(nameServer): \(error)")
        }
        return nil
    }

    /// Whether the DLedger member serving at `address` takes writes now (GET_DLEDGER_STATUS); false when it does
    /// not answer.
    func takesWrites(_ address: String, timeoutMillis: Int64) async -> Bool {
        guard let answer = try? await client.invoke(address, RemotingCommand(code: RequestCode.getDLedgerStatus, opaque: 0),
                                                    timeoutMillis: timeoutMillis) else { return false }
        return (try? DLedgerStatusBody.decode(from: answer.body))?.writable ?? false
    }

    func unregisterAll() async {
        for nameServer in config.namesrvAddr {
            let request = RemotingCommand(code: RequestCode.unregisterBroker, opaque: 0, extFields: [
                "brokerName": config.brokerName, "brokerAddr": brokerAddr, "clusterName": config.brokerClusterName,
                "brokerId": "\(brokerID)"])
            _ = try? await client.invoke(nameServer, request, timeoutMillis: 2_000)
        }
    }

    func close() async { await client.close() }
}
