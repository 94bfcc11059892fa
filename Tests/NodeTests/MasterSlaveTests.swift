#if canImport(Glibc)
import Glibc
#endif
import Client
import CommitLog
import Common
import IndexFile
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

    /// Waits until the slave copied `topic`'s config from its master (once per sync period).
    func slaveKnows(_ topic: String, _ cluster: RunningGroup) async -> Bool {
        let remoting = RemotingClient(group: group)
        defer { Task { await remoting.close() } }
        return await eventually(10) {
            let topics = try? await remoting.invoke(cluster.slave.address, RemotingCommand(code: RequestCode.getAllTopicConfig, opaque: 0))
            return (try? TopicConfigSerializeWrapper.decode(from: topics?.body))?.topicConfigTable[topic] != nil
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

    /// SYNC_FLUSH on both brokers (on mmap: through the write buffer, the slave's replicated appends included):
    /// a SYNC_MASTER answers SEND_OK, and the slave's log ends where the master's does.
    @Test func syncFlushMasterAndSlaveThroughTheWriteBufferAnswerSendOKAndCatchUp() async throws {
        let cluster = try RunningGroup(masterConfig: "flushDiskType=SYNC_FLUSH\n", slaveConfig: "flushDiskType=SYNC_FLUSH\n")
        defer { cluster.stop() }
        let admin = Admin(namesrvAddr: cluster.namesrvAddr)
        let producer = self.producer(cluster, "PG-syncflush")
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "SyncFlushed", body: "0")))?.status == .sendOK })
        var notOK = 0
        for index in 1..<200 where try await producer.send(Message(topic: "SyncFlushed", body: "\(index)")).status != .sendOK {
            notOK += 1
        }
        #expect(notOK == 0, "\(notOK) of 199 sends were not SEND_OK")
        #expect(await caughtUp(admin, cluster))
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
        #expect(await slaveKnows("Survives", cluster), "the slave copies its master's topics once a sync period")
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

/// The manual switch (the seeds' procedure) and a 2m-2s cluster.
@Suite(.serialized) struct MasterSlaveSwitchTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Every body of (topic, queue 0) on the broker at `address`, read with raw pulls from offset 0.
    func bodies(at address: String, topic: String) async throws -> [String] {
        let client = RemotingClient(group: group)
        defer { Task { await client.close() } }
        var offset: Int64 = 0
        var bodies: [String] = []
        for _ in 0..<100 {
            let answer = try await client.invoke(address, RemotingCommand(code: RequestCode.pullMessage, opaque: 0, extFields: [
                "consumerGroup": "CG-check", "topic": topic, "queueId": "0", "queueOffset": "\(offset)", "maxMsgNums": "32",
                "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"]))
            guard answer.code == ResponseCode.success, let body = answer.body else { break }
            bodies += try MessageDecoder.decodeAll(body).map(\.bodyString)
            offset = Int64(answer.extFields["nextBeginOffset"] ?? "") ?? offset
        }
        return bodies
    }

    func reconfigure(_ broker: RunningBroker, role: String, id: Int) throws {
        let path = broker.directory.path + "/broker.conf"
        var text = try #require(readTextFile(path))
        for old in ["brokerRole=SLAVE", "brokerRole=ASYNC_MASTER", "brokerRole=SYNC_MASTER"] { text = text.replacingFirst(old, with: "brokerRole=\(role)") }
        for old in ["brokerId=0", "brokerId=1"] { text = text.replacingFirst(old, with: "brokerId=\(id)") }
        writeText(path, text)
    }

    @Test func manualSwitchPromotesTheSlaveAndTheOldMasterTruncatesWhatItAloneHad() async throws {
        let cluster = try RunningGroup(masterRole: "ASYNC_MASTER")
        defer { cluster.stop() }
        let admin = Admin(namesrvAddr: cluster.namesrvAddr)
        _ = try await admin.updateTopic("Switched", brokerAddr: cluster.master.address, cluster: nil, readQueueNums: 1,
                                        writeQueueNums: 1, perm: .readWrite, order: false)
        let suite = MasterSlaveTests()
        let producer = suite.producer(cluster, "PG-switch")
        #expect(await eventually(20) { (try? await producer.send(Message(topic: "Switched", body: "common-0")))?.status == .sendOK })
        for index in 1..<100 { _ = try await producer.send(Message(topic: "Switched", body: "common-\(index)")) }
        #expect(await suite.caughtUp(admin, cluster))
        #expect(await suite.slaveKnows("Switched", cluster))
        // The slave stops; its master takes 50 messages the slave never gets, then stops too.
        #expect(cluster.slave.process?.terminate() == 0)
        for index in 0..<50 { _ = try await producer.send(Message(topic: "Switched", body: "forked-\(index)")) }
        await producer.shutdown()
        #expect(cluster.master.process?.terminate() == 0)
        // The slave comes back as the master (brokerId 0), takes new messages, and the old master returns as a slave.
        try reconfigure(cluster.slave, role: "ASYNC_MASTER", id: 0)
        try cluster.slave.start()
        try reconfigure(cluster.master, role: "SLAVE", id: 1)
        let newProducer = suite.producer(cluster, "PG-switch-2")
        #expect(await eventually(20) { (try? await newProducer.send(Message(topic: "Switched", body: "new-0")))?.status == .sendOK })
        for index in 1..<30 { _ = try await newProducer.send(Message(topic: "Switched", body: "new-\(index)")) }
        try cluster.master.start()
        let promoted = cluster.slave.address
        let demoted = cluster.master.address
        #expect(await eventually(30) {
            let newMasterEnd = await suite.commitLogEnd(admin, promoted)
            let oldMasterEnd = await suite.commitLogEnd(admin, demoted)
            return newMasterEnd > 0 && newMasterEnd == oldMasterEnd
        }, "the old master catches up with its new master")
        let expected = (0..<100).map { "common-\($0)" } + (0..<30).map { "new-\($0)" }
        let served = await eventually(20) { (try? await bodies(at: demoted, topic: "Switched")) == expected }
        let actual = (try? await bodies(at: demoted, topic: "Switched")) ?? []
        #expect(served, "the old master serves its new master's log, not the 50 messages only it had: \(actual.count) \(actual.suffix(40))")
        await newProducer.shutdown()
        await admin.shutdown()
    }

    @Test func twoMastersTwoSlavesOnTwoNameServersShowFourBrokersWithRoles() async throws {
        let nameServers = try [RunningNameServer(), RunningNameServer()]
        let a = try RunningGroup(masterRole: "SYNC_MASTER", nameServers: nameServers, brokerName: "broker-a")
        defer { a.stop() }
        let b = try RunningGroup(masterRole: "ASYNC_MASTER", nameServers: nameServers, brokerName: "broker-b")
        defer { b.stop() }
        for nameServer in nameServers {
            let admin = Admin(namesrvAddr: nameServer.address)
            let brokers = try await admin.clusterInfo()
            #expect(brokers.map { "\($0.brokerName)/\($0.brokerID)" } == ["broker-a/0", "broker-a/1", "broker-b/0", "broker-b/1"])
            let roles = await withTaskGroup(of: String.self) { tasks in
                for broker in brokers {
                    tasks.addTask { Dictionary((try? await admin.brokerRuntimeInfo(broker.address)) ?? [], uniquingKeysWith: { a, _ in a })["brokerRole"] ?? "?" }
                }
                return await tasks.reduce(into: [String]()) { $0.append($1) }.sorted()
            }
            #expect(roles == ["ASYNC_MASTER", "SLAVE", "SLAVE", "SYNC_MASTER"])
            await admin.shutdown()
        }
        let listed = try ChildProcess.run([try #require(builtExecutable("mqadmin")), "clusterList", "-n", nameServers[1].address])
        #expect(listed.status == 0)
        #expect(listed.output.split(separator: "\n").filter { $0.contains("DefaultCluster") }.count == 4, "\(listed.output)")
    }
}
