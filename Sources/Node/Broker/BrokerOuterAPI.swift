import Common
import NIOCore
import Remoting
import Synchronization

/// The broker's requests to the NameServers (RocketMQ's `BrokerOuterAPI`): REGISTER_BROKER with its topics to
/// every NameServer, and UNREGISTER_BROKER at shutdown.
final class BrokerOuterAPI: Sendable {
    let config: BrokerConfig
    let client: RemotingClient
    let log: @Sendable (String) -> Void

    /// Registrations asked for while one runs collapse into one more (a burst of topic creations costs two).
    private let pending = Mutex<(running: Bool, again: Bool)>((false, false))

    init(config: BrokerConfig, group: EventLoopGroup, log: @escaping @Sendable (String) -> Void) {
        self.config = config
        client = RemotingClient(group: group)
        self.log = log
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

    /// Registers with every NameServer in turn; a NameServer that does not answer is logged and skipped.
    func registerAll(_ topics: TopicConfigSerializeWrapper) async {
        let body = RegisterBrokerBody(topicConfigSerializeWrapper: topics).encode()
        let crc = body.withUnsafeReadableBytes { rocketMQCRC32($0) }
        for nameServer in config.namesrvAddr {
            let request = RemotingCommand(code: RequestCode.registerBroker, opaque: 0, extFields: [
                "brokerName": config.brokerName, "brokerAddr": brokerAddr, "clusterName": config.brokerClusterName,
                "haServerAddr": haServerAddr.withLock { $0 }, "brokerId": "\(config.brokerID)", "compressed": "false",
                "bodyCrc32": "\(crc)"], body: body)
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
    }

    func unregisterAll() async {
        for nameServer in config.namesrvAddr {
            let request = RemotingCommand(code: RequestCode.unregisterBroker, opaque: 0, extFields: [
                "brokerName": config.brokerName, "brokerAddr": brokerAddr, "clusterName": config.brokerClusterName,
                "brokerId": "\(config.brokerID)"])
            _ = try? await client.invoke(nameServer, request, timeoutMillis: 2_000)
        }
    }

    func close() async { await client.close() }
}
