#if canImport(Glibc)
import Glibc
#endif
import Client
import CommitLog
import Common
import NIOCore
import NIOPosix
import Remoting
import Synchronization
import Testing
import TestSupport

/// A master and a slave of one broker name (real processes) sharing NameServers.
final class RunningGroup {
    let nameServers: [RunningNameServer]
    var master: RunningBroker
    var slave: RunningBroker
    var namesrvAddr: String { nameServers.map(\.address).joined(separator: ";") }

    static let common = "mappedFileSizeCommitLog=1048576\nmaxMessageSize=65536\nslaveSynchronizeInterval=1000\n"

    init(masterRole: String = "SYNC_MASTER", masterConfig: String = "", slaveConfig: String = "", startSlave: Bool = true,
         nameServers: [RunningNameServer]? = nil, brokerName: String = "broker-g") throws {
        self.nameServers = try nameServers ?? [RunningNameServer()]
        master = try RunningBroker(nameServers: self.nameServers, brokerName: brokerName,
                                   extraConfig: Self.common + "brokerRole=\(masterRole)\nbrokerId=0\n" + masterConfig)
        slave = try RunningBroker(nameServers: self.nameServers, brokerName: brokerName, startNow: startSlave,
                                  extraConfig: Self.common + "brokerRole=SLAVE\nbrokerId=1\n" + slaveConfig)
    }

    func stop() {
        _ = slave.process?.terminate()
        _ = master.process?.terminate()
    }
}

/// Master/slave replication over real processes (issue 11): SYNC_MASTER's answers while the slave is stopped, a
/// late empty slave, a slave killed and restarted, reads from the slave after the master dies, the manual switch
/// with a slave that was ahead, and a 2m-2s cluster on two NameServers.
@Suite(.serialized) struct MasterSlaveTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func runtime(_ admin: Admin, _ address: String) async -> [String: String] {
        Dictionary((try? await admin.brokerRuntimeInfo(address)) ?? [], uniquingKeysWith: { first, _ in first })
    }

    func commitLogEnd(_ admin: Admin, _ address: String) async -> UInt64 {
        UInt64(await runtime(admin, address)["commitLogMaxOffset"] ?? "") ?? 0
    }

    /// Waits until the slave's log ends where the master's does.
    func caughtUp(_ admin: Admin, _ group: RunningGroup, seconds: Double = 30) async -> Bool {
        await eventually(seconds) {
            let masterEnd = await commitLogEnd(admin, group.master.address)
            let slaveEnd = await commitLogEnd(admin, group.slave.address)
            return masterEnd > 0 && masterEnd == slaveEnd
        }
    }

    func producer(_ group: RunningGroup, _ name: String) -> Producer {
        var settings = Producer.Settings()
        settings.group = name
        settings.retryTimesWhenSendFailed = 0
        settings.sendLatencyFaultEnable = false
        let producer = Producer(config: ClientConfig(namesrvAddr: group.namesrvAddr), settings: settings)
        producer.start()
        return producer
    }

    @Test func syncMasterAnswersFlushSlaveTimeoutWhileItsSlaveIsStoppedThenSendOK() async throws {
        let cluster = try RunningGroup(masterConfig: "slaveTimeout=800\n")
        defer { cluster.stop() }
        let admin = Admin(namesrvAddr: cluster.namesrvAddr)
        let producer = self.producer(cluster, "PG-sync")
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "Replicated", body: "first")))?.status == .sendOK })
        let slavePID = try #require(cluster.slave.process?.pid)
        kill(slavePID, SIGSTOP)
        var timedOut = 0
        for index in 0..<3 {
            let result = try await producer.send(Message(topic: "Replicated", body: "while-stopped-\(index)"))
            if result.status == .flushSlaveTimeout { timedOut += 1 }
        }
        #expect(timedOut == 3, "sends answer FLUSH_SLAVE_TIMEOUT while the slave cannot acknowledge")
        kill(slavePID, SIGCONT)
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "Replicated", body: "after")))?.status == .sendOK })
        // Nothing was lost: the slave holds every byte the master does.
        #expect(await caughtUp(admin, cluster))
        await producer.shutdown()
        await admin.shutdown()
    }

    @Test func anEmptySlaveStartedLateCatchesUpAndCopiesTheMastersTables() async throws {
        let cluster = try RunningGroup(masterRole: "ASYNC_MASTER", startSlave: false)
        defer { cluster.stop() }
        let admin = Admin(namesrvAddr: cluster.namesrvAddr)
        _ = try await admin.updateTopic("LateTables", brokerAddr: cluster.master.address, cluster: nil, readQueueNums: 2,
                                        writeQueueNums: 2, perm: .readWrite, order: false)
        let producer = self.producer(cluster, "PG-late")
        let body = [UInt8](repeating: 7, count: 1_000)
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "LateTables", body: body)))?.status == .sendOK })
        for _ in 0..<3_500 { _ = try await producer.send(Message(topic: "LateTables", body: body)) }  // several 1 MiB files
        let pull = PullConsumer(group: "CG-late", namesrvAddr: cluster.namesrvAddr)
        pull.start()
        let queue = MessageQueue(topic: "LateTables", brokerName: "broker-g", queueID: 1)
        try await pull.updateConsumeOffset(queue, offset: 42)
        try cluster.slave.start()
        #expect(await caughtUp(admin, cluster), "the empty slave reaches the master's end")
        let slaveStart = UInt64(await runtime(admin, cluster.slave.address)["commitLogMinOffset"] ?? "") ?? 0
        #expect(slaveStart > 0 && slaveStart % 1_048_576 == 0, "an empty slave starts at the master's last file (\(slaveStart))")
        // Topic config and consumer offsets arrive within a sync period (1 s here).
        let remoting = RemotingClient(group: group)
        #expect(await eventually(10) {
            let topics = try? await remoting.invoke(cluster.slave.address, RemotingCommand(code: RequestCode.getAllTopicConfig, opaque: 0))
            return (try? TopicConfigSerializeWrapper.decode(from: topics?.body))?.topicConfigTable["LateTables"] != nil
        })
        #expect(await eventually(10) {
            let offsets = try? await remoting.invoke(cluster.slave.address, RemotingCommand(code: RequestCode.queryConsumerOffset, opaque: 0,
                extFields: ["consumerGroup": "CG-late", "topic": "LateTables", "queueId": "1"]))
            return offsets?.extFields["offset"] == "42"
        })
        await remoting.close()
        await pull.shutdown()
        await producer.shutdown()
        await admin.shutdown()
    }

    @Test func aSlaveKilledAndRestartedCatchesUpAndItsQueuesEqualTheMasters() async throws {
        let cluster = try RunningGroup(masterRole: "ASYNC_MASTER")
        defer { cluster.stop() }
        let admin = Admin(namesrvAddr: cluster.namesrvAddr)
        let producer = self.producer(cluster, "PG-restart")
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "Restarted", body: "0")))?.status == .sendOK })
        for index in 1..<300 { _ = try await producer.send(Message(topic: "Restarted", body: "\(index)")) }
        #expect(await caughtUp(admin, cluster))
        cluster.slave.process?.killHard()
        for index in 300..<900 { _ = try await producer.send(Message(topic: "Restarted", body: "\(index)")) }
        try cluster.slave.start()
        #expect(await caughtUp(admin, cluster))
        let remoting = RemotingClient(group: group)
        for queue in 0..<8 {
            func end(_ address: String) async throws -> String? {
                try await remoting.invoke(address, RemotingCommand(code: RequestCode.getMaxOffset, opaque: 0, extFields: [
                    "topic": "Restarted", "queueId": "\(queue)"])).extFields["offset"]
            }
            let masterEnd = try await end(cluster.master.address)
            #expect(await eventually(10) { (try? await end(cluster.slave.address)) == masterEnd }, "queue \(queue)")
        }
        await remoting.close()
        await producer.shutdown()
        await admin.shutdown()
    }

    @Test func aPushConsumerKeepsConsumingFromTheSlaveAfterTheMasterDies() async throws {
        let cluster = try RunningGroup(masterRole: "ASYNC_MASTER")
        defer { cluster.stop() }
        let admin = Admin(namesrvAddr: cluster.namesrvAddr)
        _ = try await admin.updateTopic("Survives", brokerAddr: cluster.master.address, cluster: nil, readQueueNums: 1,
                                        writeQueueNums: 1, perm: .readWrite, order: false)
        let producer = self.producer(cluster, "PG-survive")
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "Survives", body: "m0")))?.status == .sendOK })
        for index in 1..<40 { _ = try await producer.send(Message(topic: "Survives", body: "m\(index)")) }
        #expect(await caughtUp(admin, cluster))
        // The listener holds its first batch until the master is dead, and flow control keeps the consumer from
        // pulling more than a few messages ahead: the rest must come from the slave.
        var settings = PushConsumer.Settings(group: "CG-survive")
        settings.consumeFromWhere = .firstOffset
        settings.pullBatchSize = 1
        settings.pullThresholdForQueue = 2
        let consumer = PushConsumer(config: ClientConfig(namesrvAddr: cluster.namesrvAddr), settings: settings)
        consumer.subscribe("Survives")
        let received = Received()
        let gate = Atomic<Bool>(false)
        consumer.registerListener { messages in
            while !gate.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(20)) }
            received.add(messages)
            return .consumeSuccess
        }
        try await consumer.start()
        #expect(await eventually(20) { consumer.cachedMessageCount(MessageQueue(topic: "Survives", brokerName: "broker-g", queueID: 0)) > 0 })
        // The slave knows the topic once a sync period has passed (it copies its master's topics).
        let remoting = RemotingClient(group: group)
        #expect(await eventually(10) {
            let topics = try? await remoting.invoke(cluster.slave.address, RemotingCommand(code: RequestCode.getAllTopicConfig, opaque: 0))
            return (try? TopicConfigSerializeWrapper.decode(from: topics?.body))?.topicConfigTable["Survives"] != nil
        })
        await remoting.close()
        cluster.master.process?.killHard()
        gate.store(true, ordering: .relaxed)
        let all = Set((0..<40).map { "m\($0)" })
        let done = await eventually(60) { received.bodies == all }
        #expect(done, "received \(received.bodies.count) of 40: \(received.bodies.sorted()); queues \(consumer.assignedQueues)")
        await consumer.shutdown()
        await producer.shutdown()
        await admin.shutdown()
    }
}
