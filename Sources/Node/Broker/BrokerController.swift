import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting
import Replication

/// A running broker (RocketMQ's `BrokerController`): opens the store and its put pipeline, builds the managers
/// and the processors over them, serves the remoting port, registers with every NameServer (at start, every
/// `registerNameServerPeriod` and when topics change) and persists offsets periodically. It only wires: each
/// manager keeps its own state and lock.
public final class BrokerController: Sendable {
    public let config: BrokerConfig
    public let store: MessageStore
    public let pipeline: PutPipeline
    let services: BrokerServices
    public let server: RemotingServer
    let outer: BrokerOuterAPI
    let replica: ReplicaRole
    let registration: RepeatedTask
    /// The runtime-info TPS samples, once a second.
    let statsSampling: RepeatedTask
    /// consumerOffset.json every 5 s, on a store thread (it fsyncs).
    let offsetPersister: PeriodicThread
    /// Samples the per-topic and per-group statistics into their windows.
    let statsSampler: PeriodicThread
    /// The Prometheus registry and scrape-time collector (`metricsExporterType=PROM`), else nil.
    public let metrics: BrokerMetrics?
    /// `plain_acl.yml` and its watcher when `aclEnable=true`, else nil (and no check runs).
    let acl: PlainPermissionManager?

    /// A broker whose every component logs to `log` (tests; `mqbroker` splits them by file).
    public convenience init(config: BrokerConfig, group: EventLoopGroup, log: @escaping @Sendable (String) -> Void) async throws {
        try await self.init(config: config, group: group, logs: BrokerLogSinks(all: log))
    }

    public init(config: BrokerConfig, group: EventLoopGroup, logs: BrokerLogSinks) async throws {
        let log = logs.broker
        var config = config
        let storeHost = HostAddress(ipv4: config.brokerIP1, port: config.listenPort)
        config.store.commitLog.storeHost = storeHost
        self.config = config
        let acl = try config.acl.aclEnable
            ? PlainPermissionManager(path: config.acl.plainAclFile ?? config.store.storePathRootDir + "/plain_acl.yml", log: log) : nil
        self.acl = acl
        store = try MessageStore(config: config.store, log: logs.store)
        let replication: (HAService?, (DLedgerServer, DLedgerPeerTransport, RemotingServer)?)
        do { replication = try await Self.openReplication(config: config, store: store, group: group, logs: logs) } catch {
            store.close()
            throw error
        }
        let (haService, dledger) = replication
        let outer = BrokerOuterAPI(config: config, group: group, dledger: dledger?.0, log: log)
        self.outer = outer
        if let dledger {
            pipeline = PutPipeline(store: store, dledger: dledger.0)
        } else {
            pipeline = PutPipeline(store: store, role: config.brokerRole, replicas: config.brokerRole == .syncMaster ? haService : nil)
        }
        let metrics = config.metrics.enabled ? BrokerMetrics() : nil
        self.metrics = metrics
        do {
            services = try Self.makeServices(config: config, storeHost: storeHost, pipeline: pipeline, outer: outer, log: log,
                                             stats: BrokerStats(send: metrics?.send))
            let services = services
            if let dledger {
                replica = .dledger(DLedgerMember(parts: dledger, services: services, group: group))
            } else {
                replica = try ReplicaRole(haService: haService, services: services, group: group, log: logs.store)
            }
            server = try await RemotingServer(host: "0.0.0.0", port: config.listenPort, group: group,
                                              processor: Self.makeProcessor(services, replica: replica, acl: acl),
                                              limits: config.connectionLimits, invoker: services.invoker, log: logs.remoting)
        } catch {
            haService?.close()
            dledger?.0.close()
            try? await dledger?.2.close()
            store.close()
            throw error
        }
        metrics?.attach(services: services, replica: replica, server: server, eventLoop: group.next())
        store.onMessageArriving { [holds = services.holds] topic, queueID, _ in holds.wake(topic: topic, queueID: queueID) }
        let period = TimeAmount.milliseconds(config.registerNameServerPeriodMillis)
        let services = services
        registration = group.next().scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            Task { await outer.registerAll(services.registrationTopics) }
        }
        statsSampling = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [stats = services.stats] _ in
            stats.sample()
        }
        offsetPersister = PeriodicThread(name: "persist-offsets", intervalNanos: 5_000_000_000) { services.offsets.persist() }
        statsSampler = PeriodicThread(name: "stats-sampler", intervalNanos: UInt64(StatsWindows.minuteStepMillis) * 1_000_000) {
            services.statsItems.sample()
        }
        replica.start(outer: outer)
        acl?.startWatching()
        if config.brokerRole != .slave && !config.dledgerEnabled { services.schedule.start() }
        if config.brokerRole != .slave || config.dledgerEnabled { services.transactions.start() }
        await outer.registerAll(services.registrationTopics)
    }

    /// The HA service of a master, or a DLedger member and its port (nothing for a slave: its HA client comes later).
    private static func openReplication(config: BrokerConfig, store: MessageStore, group: EventLoopGroup,
                                        logs: BrokerLogSinks) async throws
        -> (HAService?, (DLedgerServer, DLedgerPeerTransport, RemotingServer)?) {
        if config.dledgerEnabled {
            return (nil, try await DLedgerMember.open(config: config, store: store, group: group, log: logs.dledger))
        }
        return (config.brokerRole == .slave ? nil : try HAService(commitLog: store.commitLog, settings: config.ha, log: logs.store), nil)
    }

    private static func makeServices(config: BrokerConfig, storeHost: HostAddress, pipeline: PutPipeline, outer: BrokerOuterAPI,
                                     log: @escaping @Sendable (String) -> Void, stats: BrokerStats) throws -> BrokerServices {
        let root = config.store.storePathRootDir
        let topics = try TopicConfigManager(storePathRootDir: root, log: log)
        let offsets = try ConsumerOffsetManager(storePathRootDir: root, log: log)
        let producers = ProducerManager()
        let runtime = BrokerRuntimeSettings(config)
        let topicsChanged: @Sendable () -> Void = { outer.requestRegistration { runtime.masked(topics.wrapper) } }
        if config.brokerRole != .slave || config.dledgerEnabled, config.autoCreateTopicEnable, topics.topic(TopicValidator.autoCreateTopicKeyTopic) == nil {
            topics.upsert(TopicConfig(topicName: TopicValidator.autoCreateTopicKeyTopic, readQueueNums: config.defaultTopicQueueNums,
                                      writeQueueNums: config.defaultTopicQueueNums, perm: .all))
        }
        return BrokerServices(
            config: config, storeHost: storeHost, pipeline: pipeline, topics: topics,
            offsets: offsets, consumers: ConsumerManager(), producers: producers, invoker: ServerInvoker(), runtime: runtime,
            subscriptionGroups: try SubscriptionGroupManager(storePathRootDir: root, log: log), locks: RebalanceLockManager(),
            holds: PullRequestHoldService(store: pipeline.store), schedule: try ScheduleMessageService(pipeline: pipeline, log: log),
            transactions: TransactionalMessageService(
                pipeline: pipeline, settings: config.transaction, offsets: offsets, producers: producers, storeHost: storeHost,
                createTopic: { name, queues in
                    if topics.createIfAbsent(TopicConfig(topicName: name, readQueueNums: queues, writeQueueNums: queues)) { topicsChanged() }
                }, log: log),
            stats: stats, statsItems: BrokerStatsItems(topics: topics), topicsChanged: topicsChanged, log: log)
    }

    /// The processors by code; with ACL every request passes `AclCheckingProcessor` first (one place, before any
    /// processor), without it nothing stands in between.
    private static func makeProcessor(_ services: BrokerServices, replica: ReplicaRole, acl: PlainPermissionManager?) -> any RemotingProcessor {
        let processor = BrokerProcessor(send: SendMessageProcessor(services: services), others: [
            PullMessageProcessor(services: services), ClientManageProcessor(services: services),
            ConsumerManageProcessor(services: services), AdminBrokerProcessor(services: services, replica: replica),
            QueryMessageProcessor(services: services), DLedgerAdminProcessor(replica: replica), QueryConsumeQueueProcessor(services: services),
            EndTransactionProcessor(services: services), ConsumerRelayProcessor(services: services),
            AclConfigProcessor(services: services, permissions: acl),
        ])
        guard let acl else { return processor }
        return AclCheckingProcessor(inner: processor, permissions: acl)
    }

    /// The port clients dial (the configured one, or the one picked for port 0).
    public var port: Int { server.port }

    /// The HA port a master serves its slaves on (nil for a slave or a DLedger member).
    public var haPort: Int? {
        if case .master(let service) = replica { return service.port }
        return nil
    }

    /// Graceful stop: unregister from every NameServer, stop serving, persist the tables, flush and close the store.
    public func close() async {
        metrics?.stop()
        acl?.stop()
        registration.cancel()
        statsSampling.cancel()
        offsetPersister.stop()
        statsSampler.stop()
        await replica.close()
        await outer.unregisterAll()
        await outer.close()
        try? await server.close()
        services.holds.stop()
        services.schedule.stop()
        services.transactions.stop()
        services.offsets.persist()
        services.topics.persist()
        store.close()
    }
}
