import CommitLog
import Common
import Metrics
import NIOCore
import Prometheus
import Remoting
import Replication
import Synchronization

/// A broker's metrics in one Prometheus registry. The message path touches only the pre-created handles in
/// `SendMetrics` and the per-topic pull counters; everything else is read at scrape time from what the broker
/// keeps anyway: queue offsets (messages in per topic), consumer offsets (lag per queue), the commit log's flush
/// totals, the HA and DLedger status, the file system, the remoting server's connection count.
///
/// **Thread:** `collect` from any thread, one scrape at a time; the TPS sampler runs every second on an event loop.
public final class BrokerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let send: SendMetrics
    private let scrape: Mutex<ScrapeRegistry?>
    let tps = TPSWindow()
    private let parts = Mutex<Parts?>(nil)
    private struct Parts {
        var services: BrokerServices
        var replica: ReplicaRole
        var server: RemotingServer
        var sampler: RepeatedTask
    }

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["rocketmq_send_rt_seconds"] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(3),
        ]
        send = SendMetrics(factory: factory)
        scrape = Mutex(ScrapeRegistry(registry: registry, help: Self.help))
    }

    /// Starts the TPS sampler once the broker's parts exist.
    func attach(services: BrokerServices, replica: ReplicaRole, server: RemotingServer, eventLoop: EventLoop) {
        let sampler = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { [tps] _ in
            tps.sample(TopicTotals(services: services))
        }
        parts.withLock { $0 = Parts(services: services, replica: replica, server: server, sampler: sampler) }
    }

    func stop() { parts.withLock { $0?.sampler.cancel() } }

    /// Refreshes every value read at scrape time (call before `registry.emit`).
    public func collect() {
        guard let parts = parts.withLock({ $0 }) else { return }
        scrape.withLock { holder in
            guard let scrape = holder else { return }
            let totals = TopicTotals(services: parts.services)
            let rates = tps.rates()
            for (topic, count) in totals.put {
                scrape.counter("rocketmq_messages_in_total", [("topic", topic)], total: Double(count))
                scrape.gauge("rocketmq_topic_put_tps", [("topic", topic)], rates.put[topic] ?? 0)
            }
            for (topic, count) in totals.get {
                scrape.counter("rocketmq_messages_out_total", [("topic", topic)], total: Double(count))
                scrape.gauge("rocketmq_topic_get_tps", [("topic", topic)], rates.get[topic] ?? 0)
            }
            scrape.gauge("rocketmq_broker_put_tps", [], rates.putAll)
            scrape.gauge("rocketmq_broker_get_tps", [], rates.getAll)
            Self.collectStore(parts.services, into: scrape)
            Self.collectConsumerLag(parts.services, into: scrape)
            Self.collectReplication(parts.replica, into: scrape)
            scrape.gauge("rocketmq_connections", [("port", "client")], Double(parts.server.connections.openCount))
            scrape.counter("rocketmq_connections_accepted_total", [("port", "client")], total: Double(parts.server.connections.acceptedCount))
            scrape.sweep()
        }
    }

    static func collectStore(_ services: BrokerServices, into scrape: ScrapeRegistry) {
        let log = services.store.commitLog
        let flush = log.flushNanos
        scrape.counter("rocketmq_storage_flush_total", total: Double(log.flushCount))
        scrape.counter("rocketmq_storage_flush_seconds_total", total: Double(flush.total) / 1e9)
        scrape.gauge("rocketmq_storage_flush_last_seconds", [], Double(flush.last) / 1e9)
        scrape.gauge("rocketmq_storage_flush_behind_bytes", [], Double(log.wroteOffset &- log.flushedOffset))
        scrape.gauge("rocketmq_storage_size_bytes", [], Double(log.wroteOffset &- log.minOffset))
        scrape.gauge("rocketmq_storage_dispatch_behind_bytes", [], Double(services.store.dispatchBehindBytes))
        scrape.gauge("rocketmq_storage_disk_used_ratio", [], Double(diskUsedPercent(log.settings.storePathCommitLog) ?? 0) / 100)
    }

    /// Lag per consumer group and queue: the queue's max offset minus the group's committed offset.
    static func collectConsumerLag(_ services: BrokerServices, into scrape: ScrapeRegistry) {
        for (key, queues) in services.offsets.wrapper.offsetTable {
            guard let at = key.firstIndex(of: "@") else { continue }
            let topic = String(key[..<at])
            let group = String(key[key.index(after: at)...])
            for (queueID, offset) in queues {
                let labels = [("group", group), ("topic", topic), ("queue", "\(queueID)")]
                let max = services.store.maxOffset(topic: topic, queueID: queueID)
                scrape.gauge("rocketmq_consumer_lag_messages", labels, Double(Swift.max(0, max - offset)))
                scrape.gauge("rocketmq_consumer_offset", labels, Double(offset))
            }
        }
    }

    static func collectReplication(_ replica: ReplicaRole, into scrape: ScrapeRegistry) {
        switch replica {
        case .master(let service):
            let status = service.status
            scrape.gauge("rocketmq_ha_in_sync_slaves", [], Double(status.inSyncSlaveCount))
            for slave in status.slaves {
                scrape.gauge("rocketmq_ha_lag_bytes", [("slave", slave.remoteAddress)], Double(slave.lagBytes))
                scrape.gauge("rocketmq_ha_lag_seconds", [("slave", slave.remoteAddress)], Double(slave.lagMillis) / 1000)
            }
        case .slave(let client, _):
            let status = client.status
            scrape.gauge("rocketmq_ha_connected", [], status.isConnected ? 1 : 0)
            let behind = status.masterOffset.map { $0 > status.offset ? $0 - status.offset : 0 } ?? 0
            scrape.gauge("rocketmq_ha_slave_behind_bytes", [], Double(behind))
        case .dledger(let member):
            let status = member.server.status()
            scrape.gauge("rocketmq_dledger_term", [], Double(status.term))
            scrape.gauge("rocketmq_dledger_leader", [], status.writable ? 1 : 0)
            scrape.gauge("rocketmq_dledger_commit_index", [], Double(status.commitIndex))
            scrape.gauge("rocketmq_dledger_last_index", [], Double(status.lastIndex))
            for peer in status.members {
                guard let lag = peer.lag else { continue }
                scrape.gauge("rocketmq_dledger_lag_entries", [("member", peer.name)], Double(lag))
            }
        }
    }

    static let help = [
        "rocketmq_messages_in_total": "Messages stored per topic (the sum of its queues' max offsets)",
        "rocketmq_messages_out_total": "Messages pulled per topic since start",
        "rocketmq_topic_put_tps": "Messages stored per second per topic, over the last 10 s",
        "rocketmq_topic_get_tps": "Messages pulled per second per topic, over the last 10 s",
        "rocketmq_broker_put_tps": "Messages stored per second, over the last 10 s",
        "rocketmq_broker_get_tps": "Messages pulled per second, over the last 10 s",
        "rocketmq_storage_flush_total": "Commit-log flushes (msync/fdatasync rounds) since start",
        "rocketmq_storage_flush_seconds_total": "Time spent in those flushes",
        "rocketmq_storage_flush_last_seconds": "The last flush's duration",
        "rocketmq_storage_flush_behind_bytes": "Bytes written but not yet flushed",
        "rocketmq_storage_size_bytes": "Bytes held by the commit log",
        "rocketmq_storage_dispatch_behind_bytes": "Bytes not yet dispatched to consume queues and the index",
        "rocketmq_storage_disk_used_ratio": "Used share of the file system holding the commit log",
        "rocketmq_consumer_lag_messages": "Messages not yet consumed, per group and queue",
        "rocketmq_consumer_offset": "Committed consumer offset, per group and queue",
        "rocketmq_ha_in_sync_slaves": "Slaves within haSlaveFallbehindMax of the master",
        "rocketmq_ha_lag_bytes": "Bytes a slave is behind the master",
        "rocketmq_ha_lag_seconds": "How far behind in time a slave's acknowledged offset is",
        "rocketmq_ha_connected": "Whether this slave is connected to its master",
        "rocketmq_ha_slave_behind_bytes": "Bytes this slave is behind its master's last reported offset",
        "rocketmq_dledger_term": "The Raft term", "rocketmq_dledger_leader": "1 while this member leads and takes writes",
        "rocketmq_dledger_commit_index": "Raft commit index", "rocketmq_dledger_last_index": "Raft last log index",
        "rocketmq_dledger_lag_entries": "Entries a member is behind the leader's log (on the leader)",
        "rocketmq_connections": "Open client connections", "rocketmq_connections_accepted_total": "Client connections accepted",
    ]
}
