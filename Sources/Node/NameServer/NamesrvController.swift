import Common
import NIOCore
import Observability
import Remoting

/// `namesrv.properties` settings.
public struct NamesrvConfig: Sendable {
    public var listenPort: Int = 9876
    /// How often brokers are checked for liveness (`scanNotActiveBrokerInterval`).
    public var scanNotActiveBrokerIntervalMillis: Int64 = 5_000
    /// A broker silent this long is dropped (RocketMQ's fixed 120 s, a setting here).
    public var brokerChannelExpiredTimeMillis: Int64 = 120_000
    /// Idle timeout (`serverChannelMaxIdleTimeSeconds`), frame size and deadlines of the port.
    public var connectionLimits = ConnectionLimits()
    /// The Prometheus endpoint (`metricsExporterType=PROM`, `metricsPromExporterHost`, `metricsPromExporterPort`).
    public var metrics = MetricsSettings()
    /// Routes carry the topic's `orderTopicConf` from the KV namespace ORDER_TOPIC_CONFIG (`orderMessageEnable`).
    public var orderMessageEnable = false
    public init() {}
}

/// A running NameServer (RocketMQ's `NamesrvController`): the remoting server, the route and KV tables, and
/// the liveness scan that drops silent brokers.
public final class NamesrvController: Sendable {
    public let server: RemotingServer
    public let routes: RouteInfoManager
    public let kv: KVConfigManager
    public let settings: NamesrvRuntimeConfig
    private let scan: RepeatedTask

    /// - Parameters:
    ///   - log: routes and liveness (`namesrv.log`).
    ///   - remotingLog: the port's bad frames and idle closes (`remoting.log`); `log` when nil.
    public init(config: NamesrvConfig, group: EventLoopGroup, host: String = "0.0.0.0",
                log: @escaping @Sendable (String) -> Void = { _ in },
                remotingLog: (@Sendable (String) -> Void)? = nil) async throws {
        let routes = RouteInfoManager()
        self.routes = routes
        kv = KVConfigManager()
        let settings = NamesrvRuntimeConfig(config)
        self.settings = settings
        server = try await RemotingServer(host: host, port: config.listenPort, group: group,
                                          processor: NameServerProcessor(routes: routes, kv: kv, settings: settings, log: log),
                                          limits: config.connectionLimits,
                                          log: remotingLog ?? log)
        let interval = TimeAmount.milliseconds(config.scanNotActiveBrokerIntervalMillis)
        scan = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let expiry = settings.current.brokerChannelExpiredTimeMillis
            for address in routes.expire(now: currentTimeMillis(), expiryMillis: expiry) {
                log("namesrv: broker \(address) dropped: silent for more than \(expiry) ms")
            }
        }
    }

    public var port: Int { server.port }

    public func close() async throws {
        scan.cancel()
        try await server.close()
    }
}
