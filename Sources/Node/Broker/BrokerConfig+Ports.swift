import Common

extension BrokerConfig {
    /// The ports this broker listens on, with the `broker.conf` key that sets each: the client port, a master's HA
    /// port, a DLedger member's own peer port, and the metrics port when enabled. `mqbroker` checks them before
    /// recovery.
    public var listeningPorts: [(key: String, port: Int, host: String?)] {
        var ports: [(key: String, port: Int, host: String?)] = [("listenPort", listenPort, nil)]
        if dledgerEnabled {
            if let me = dledger.peers.first(where: { $0.name == dledger.selfName }),
               let port = me.address.split(separator: ":").last.flatMap({ Int($0) }) {
                ports.append(("dLegerPeers", port, nil))
            }
        } else if brokerRole != .slave {
            ports.append((haListenPortSet ? "haListenPort" : "haListenPort (listenPort + 1)", ha.haListenPort, ha.haListenHost))
        }
        if metrics.enabled { ports.append(("metricsPromExporterPort", metrics.port, metrics.host)) }
        return ports
    }
}
