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
    public let server: RemotingServer<BrokerProcessor>
    let outer: BrokerOuterAPI
    let registration: RepeatedTask
    /// consumerOffset.json every 5 s, on a store thread (it fsyncs).
    let offsetPersister: PeriodicThread

    public init(config: BrokerConfig, group: EventLoopGroup, log: @escaping @Sendable (String) -> Void) async throws {
        guard config.brokerRole != .slave else {
            throw StoreError(.badConfig, "brokerRole=SLAVE: master/slave replication is not built yet; run this broker as ASYNC_MASTER or SYNC_MASTER")
        }
        var config = config
        let storeHost = HostAddress(ipv4: config.brokerIP1, port: config.listenPort)
        config.store.commitLog.storeHost = storeHost
        self.config = config
        store = try MessageStore(config: config.store, log: log)
        pipeline = PutPipeline(store: store, role: config.brokerRole)
        let outer = BrokerOuterAPI(config: config, group: group, log: log)
        self.outer = outer
        do {
            services = try Self.makeServices(config: config, storeHost: storeHost, pipeline: pipeline, outer: outer, log: log)
            let processor = Self.makeProcessor(services)
            server = try await RemotingServer(host: "0.0.0.0", port: config.listenPort, group: group, processor: processor,
                                              limits: config.connectionLimits, log: log)
        } catch {
            store.close()
            throw error
        }
        store.onMessageArriving { [holds = services.holds] topic, queueID, _ in holds.wake(topic: topic, queueID: queueID) }
        let period = TimeAmount.milliseconds(config.registerNameServerPeriodMillis)
        let services = services
        registration = group.next().scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            Task { await outer.registerAll(services.topics.wrapper) }
        }
        offsetPersister = PeriodicThread(name: "persist-offsets", intervalNanos: 5_000_000_000) { services.offsets.persist() }
        services.schedule.start()
        await outer.registerAll(services.topics.wrapper)
    }

    private static func makeServices(config: BrokerConfig, storeHost: HostAddress, pipeline: PutPipeline, outer: BrokerOuterAPI,
                                     log: @escaping @Sendable (String) -> Void) throws -> BrokerServices {
        let root = config.store.storePathRootDir
        let topics = try TopicConfigManager(storePathRootDir: root, log: log)
        if config.autoCreateTopicEnable && topics.topic(TopicValidator.autoCreateTopicKeyTopic) == nil {
            topics.upsert(TopicConfig(topicName: TopicValidator.autoCreateTopicKeyTopic, readQueueNums: config.defaultTopicQueueNums,
                                      writeQueueNums: config.defaultTopicQueueNums, perm: .all))
        }
        return BrokerServices(
            config: config, storeHost: storeHost, pipeline: pipeline, topics: topics,
            offsets: try ConsumerOffsetManager(storePathRootDir: root, log: log), consumers: ConsumerManager(),
            subscriptionGroups: try SubscriptionGroupManager(storePathRootDir: root, log: log), locks: RebalanceLockManager(),
            holds: PullRequestHoldService(store: pipeline.store), schedule: try ScheduleMessageService(pipeline: pipeline, log: log),
            stats: BrokerStats(),
            topicsChanged: { outer.requestRegistration { topics.wrapper } }, log: log)
    }

    private static func makeProcessor(_ services: BrokerServices) -> BrokerProcessor {
        BrokerProcessor(send: SendMessageProcessor(services: services), others: [
            PullMessageProcessor(services: services), ClientManageProcessor(services: services),
            ConsumerManageProcessor(services: services), AdminBrokerProcessor(services: services),
            QueryMessageProcessor(services: services),
        ])
    }

    /// The port clients dial (the configured one, or the one picked for port 0).
    public var port: Int { server.port }

    /// Graceful stop: unregister from every NameServer, stop serving, persist the tables, flush and close the store.
    public func close() async {
        registration.cancel()
        offsetPersister.stop()
        await outer.unregisterAll()
        await outer.close()
        try? await server.close()
        services.holds.stop()
        services.schedule.stop()
        services.offsets.persist()
        services.topics.persist()
        store.close()
    }
}
