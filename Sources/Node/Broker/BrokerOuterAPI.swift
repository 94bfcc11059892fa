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
    private let pending = Mutex<(running: Bool, again: Bool)>((false, false))

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
        let start = pending.withLock { state -> Bool in
            if state.running {
                state.again = true
                return false
            }
            state.running = true
            return true
        }
        guard start else { return }
        Task {
            while true {
                await registerAll(current())
                let more = pending.withLock { state -> Bool in
                    if state.again {
                        state.again = false
                        return true
                    }
                    state.running = false
                    return false
                }
                if !more { return }
            }
        }
    }

    var brokerAddr: String { "\(config.brokerIP1):\(config.listenPort)" }
    /// The HA address this broker serves ("" until it serves one: a slave, or a master before its HA port is up).
    let haServerAddr = Mutex("")
    /// What the NameServers answered a slave: its master's address and HA address.
    let onMasterKnown = Mutex<(@Sendable (_ masterAddr: String, _ masterHA: String?) -> Void)?>(nil)

    /// Registers with every NameServer at once; a NameServer that does not answer is logged and skipped.
    func registerAll(_ topics: TopicConfigSerializeWrapper) async {
        let body = RegisterBrokerBody(topicConfigSerializeWrapper: topics).encode()
        let crc = body.withUnsafeReadableBytes { rocketMQCRC32($0) }
        let request = RemotingCommand(code: RequestCode.registerBroker, opaque: 0, extFields: [
            "brokerName": config.brokerName, "brokerAddr": brokerAddr, "clusterName": config.brokerClusterName,
            "haServerAddr": haServerAddr.withLock { $0 }, "brokerId": "\(brokerID)", "compressed": "false",
            "bodyCrc32": "\(crc)"], body: body)
        await withTaskGroup(of: Void.self) { tasks in
            for nameServer in config.namesrvAddr {
                tasks.addTask { await self.register(request, with: nameServer) }
            }
        }
    }

    private func register(_ request: RemotingCommand, with nameServer: String) async {
        do {
            let answer = try await client.invoke(nameServer, request, timeoutMillis: 3_000)
            if answer.code != ResponseCode.success {
                log("broker: register with \(nameServer) answered \(answer.code): \(answer.remark ?? "")")
            } else if let master = answer.extFields["masterAddr"], !master.isEmpty {
                onMasterKnown.withLock { $0 }?(master, answer.extFields["haServerAddr"].flatMap { $0.isEmpty ? nil : $0 })
            }
        } catch {
            log("broker: cannot register with \(nameServer): \(error)")
        }
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
