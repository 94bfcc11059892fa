import CommitLog
import IndexFile
import NIOCore
import Synchronization

/// A running broker: the store, the remoting server, registration with every NameServer (at start,
/// every `registerNameServerPeriod` and when topics change) and periodic offset persistence.
public final class BrokerServer: Sendable {
    public let broker: Broker
    public let server: RemotingServer<BrokerProcessor>
    let client: RemotingClient
    let registration: RepeatedTask
    /// consumerOffset.json every 5 s, on a store thread (it fsyncs).
    let offsetPersister: PeriodicThread
    let log: @Sendable (String) -> Void

    public init(config: BrokerConfig, group: EventLoopGroup, log: @escaping @Sendable (String) -> Void) async throws {
        self.log = log
        let broker = try Broker(config: config, log: log)
        self.broker = broker
        let client = RemotingClient(group: group)
        self.client = client
        let register: @Sendable () -> Void = {
            Task { await BrokerServer.registerAll(broker: broker, client: client, log: log) }
        }
        do {
            server = try await RemotingServer(host: "0.0.0.0", port: config.listenPort, group: group,
                                              processor: BrokerProcessor(broker: broker, topicsChanged: register), log: log)
        } catch {
            broker.close()
            throw error
        }
        let period = TimeAmount.milliseconds(config.registerNameServerPeriodMillis)
        registration = group.next().scheduleRepeatedTask(initialDelay: period, delay: period) { _ in register() }
        offsetPersister = PeriodicThread(name: "persist-offsets", intervalNanos: 5_000_000_000) { broker.persistOffsets() }
        broker.schedule.start()
        await BrokerServer.registerAll(broker: broker, client: client, log: log)
    }

    /// The port clients dial (the configured one, or the one picked for port 0).
    public var port: Int { server.port }

    static func registerAll(broker: Broker, client: RemotingClient, log: @Sendable (String) -> Void) async {
        let config = broker.config
        let body = broker.registrationBody()
        let crc = Array(body.utf8).withUnsafeBytes { rocketCRC32($0) }
        let address = "\(config.brokerIP1):\(config.listenPort)"
        for nameServer in config.namesrvAddr {
            let request = RemotingCommand(code: RequestCode.registerBroker, opaque: 0, extFields: [
                "brokerName": config.brokerName, "brokerAddr": address, "clusterName": config.brokerClusterName,
                "haServerAddr": "\(config.brokerIP1):\(config.listenPort + 1)", "brokerId": "\(config.brokerID)",
                "compressed": "false", "bodyCrc32": "\(crc)"], body: ByteBuffer(string: body))
            do {
                let answer = try await client.invoke(nameServer, request, timeoutMillis: 3_000)
                if answer.code != 0 { log("broker: register with \(nameServer) answered \(answer.code): \(answer.remark ?? "")") }
            } catch {
                log("broker: cannot register with \(nameServer): \(error)")
            }
        }
    }

    /// Graceful stop: unregister from every NameServer, stop serving, flush and close the store.
    public func close() async {
        registration.cancel()
        offsetPersister.stop()
        let config = broker.config
        for nameServer in config.namesrvAddr {
            let request = RemotingCommand(code: RequestCode.unregisterBroker, opaque: 0, extFields: [
                "brokerName": config.brokerName, "brokerAddr": "\(config.brokerIP1):\(config.listenPort)",
                "clusterName": config.brokerClusterName, "brokerId": "\(config.brokerID)"])
            _ = try? await client.invoke(nameServer, request, timeoutMillis: 2_000)
        }
        await client.close()
        try? await server.close()
        broker.close()
    }
}
