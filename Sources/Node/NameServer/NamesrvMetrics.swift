import Observability
import Prometheus
import Remoting

/// A NameServer's metrics, all read at scrape time: brokers and clusters registered, topics routed, connections.
public final class NamesrvMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let brokers: Gauge
    private let clusters: Gauge
    private let topics: Gauge
    private let connections: Gauge
    private let accepted: Gauge
    private let routes: RouteInfoManager
    private let server: RemotingServer

    public init(nameServer: NamesrvController) {
        routes = nameServer.routes
        server = nameServer.server
        brokers = registry.gauge("rocketmq_namesrv_brokers", help: "Broker addresses registered (masters and slaves)")
        clusters = registry.gauge("rocketmq_namesrv_clusters", help: "Clusters with a registered broker")
        topics = registry.gauge("rocketmq_namesrv_topics", help: "Topics with a route")
        connections = registry.gauge("rocketmq_connections", labels: [("port", "client")], help: "Open client connections")
        accepted = registry.gauge("rocketmq_connections_accepted", labels: [("port", "client")],
                                      help: "Client connections accepted since start")
    }

    /// Refreshes the values (call before `registry.emit`).
    public func collect() {
        let info = routes.clusterInfo()
        brokers.set(Double(info.brokerAddrTable.values.reduce(0) { $0 + $1.brokerAddrs.count }))
        clusters.set(Double(info.clusterAddrTable.count))
        topics.set(Double(routes.topics().count))
        connections.set(Double(server.connections.openCount))
        accepted.set(Double(server.connections.acceptedCount))
    }
}
