import Client
import Common
import Synchronization
import Testing
import TestSupport

/// mqadmin's offset commands and tables against real processes: `resetOffsetByTime` moves a live Swift push
/// consumer (the broker sends it RESET_CONSUMER_CLIENT_OFFSET and it consumes again from there),
/// `skipAccumulatedMessage` and `cloneGroupOffset` on an offline group, and the table fixes (`clusterList`'s load
/// columns, `brokerStatus`'s RocketMQ keys with measured TPS, `topicRoute` in fastjson's pretty format).
@Suite(.serialized) struct MQAdminOffsetTests {
    @Test func resetOffsetByTimeRewindsALiveConsumerAndOfflineGroupsAreResetDirectly() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        #expect(try runMQAdmin(["updateTopic"] + n + ["-t", "ResetTopic", "-c", "DefaultCluster", "-r", "2", "-w", "2"]).status == 0)
        let producer = Producer(group: "PG2", namesrvAddr: broker.nameServer.address)
        producer.start()
        defer { Task { await producer.shutdown() } }
        for index in 0..<10 { _ = try await producer.send(Message(topic: "ResetTopic", body: "m\(index)")) }

        let received = Atomic<Int>(0)
        var settings = PushConsumer.Settings(group: "G2")
        settings.consumeFromWhere = .firstOffset
        settings.persistOffsetIntervalMillis = 500
        let consumer = PushConsumer(config: ClientConfig(namesrvAddr: broker.nameServer.address), settings: settings)
        consumer.subscribe("ResetTopic")
        consumer.registerListener { messages in
            received.wrappingAdd(messages.count, ordering: .relaxed)
            return .consumeSuccess
        }
        try await consumer.start()
        #expect(await eventually(20) { received.load(ordering: .relaxed) >= 10 })
        #expect(await eventually(20) { (try? runMQAdmin(["consumerProgress"] + n + ["-g", "G2"]).output.contains("Diff Total: 0")) == true })

        let reset = try runMQAdmin(["resetOffsetByTime"] + n + ["-g", "G2", "-t", "ResetTopic", "-s", "0"])
        #expect(reset.status == 0, "\(reset.output)")
        #expect(reset.output.contains("rollback consumer offset by specified group[G2], topic[ResetTopic], force[true], "
            + "timestamp(string)[0], timestamp(long)[0]"), "\(reset.output)")
        #expect(rows(reset.output, startingWith: "#brokerName").first == ["#brokerName", "#queueId", "#offset"])
        #expect(rows(reset.output, startingWith: "broker-t").map { $0.last } == ["0", "0"], "\(reset.output)")
        // The consumer applied the reset: it receives every message a second time.
        #expect(await eventually(20) { received.load(ordering: .relaxed) >= 20 }, "received \(received.load(ordering: .relaxed))")
        #expect(await eventually(20) { (try? runMQAdmin(["consumerProgress"] + n + ["-g", "G2"]).output.contains("Diff Total: 0")) == true })
        await consumer.shutdown()

        // Offline: five more messages wait; skipping commits each queue's end directly.
        for index in 0..<5 { _ = try await producer.send(Message(topic: "ResetTopic", body: "late\(index)")) }
        #expect(await eventually(10) { (try? runMQAdmin(["consumerProgress"] + n + ["-g", "G2"]).output.contains("Diff Total: 5")) == true })
        let skip = try runMQAdmin(["skipAccumulatedMessage"] + n + ["-g", "G2", "-t", "ResetTopic"])
        #expect(skip.status == 0, "\(skip.output)")
        #expect(rows(skip.output, startingWith: "#brokerName").first
            == ["#brokerName", "#queueId", "#brokerOffset", "#consumerOffset", "#timestampOffset", "#rollbackOffset"], "\(skip.output)")
        #expect(try runMQAdmin(["consumerProgress"] + n + ["-g", "G2"]).output.contains("Diff Total: 0"))

        let clone = try runMQAdmin(["cloneGroupOffset"] + n + ["-s", "G2", "-d", "G3", "-t", "ResetTopic"])
        #expect(clone.status == 0 && clone.output.contains("clone group offset success. srcGroup[G2], destGroup=[G3], topic[ResetTopic]"),
                "\(clone.output)")
        let cloned = try runMQAdmin(["consumerProgress"] + n + ["-g", "G3"])
        #expect(cloned.output.contains("Diff Total: 0") && rows(cloned.output, startingWith: "ResetTopic").count == 2, "\(cloned.output)")
    }

    @Test func clusterListBrokerStatusAndTopicRouteLookLikeRocketMQs() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let producer = Producer(group: "PG3", namesrvAddr: broker.nameServer.address)
        producer.start()
        defer { Task { await producer.shutdown() } }
        #expect(try runMQAdmin(["updateTopic"] + n + ["-t", "TableTopic", "-b", broker.address, "-r", "1", "-w", "1"]).status == 0)
        _ = try await producer.send(Message(topic: "TableTopic", body: "x"))

        // putTps has its 10-second window after 11 samples (one a second).
        #expect(await eventually(30) {
            let status = (try? runMQAdmin(["brokerStatus"] + n + ["-b", broker.address]).output) ?? ""
            return rows(status, startingWith: "putTps").first.map { $0.count >= 3 && Double($0[2]) != nil } ?? false
        })
        let status = try runMQAdmin(["brokerStatus"] + n + ["-b", broker.address])
        let keys = Set(rows(status.output, startingWith: "").compactMap { $0.first.map(String.init) })
        #expect(keys.count >= 40, "\(keys.count) keys: \(status.output)")
        for key in ["putTps", "getTransferedTps", "getFoundTps", "getMissTps", "bootTimestamp", "runtime", "msgPutTotalTodayNow",
                    "earliestMessageTimeStamp", "commitLogDiskRatio", "consumeQueueDiskRatio", "pageCacheLockTimeMills",
                    "sendThreadPoolQueueSize", "commitLogDirCapacity", "remainHowManyDataToFlush", "putMessageTimesTotal"] {
            #expect(keys.contains(key), "\(key) in \(status.output)")
        }
        let earliest = rows(status.output, startingWith: "earliestMessageTimeStamp").first?.last.flatMap { Int64($0) } ?? 0
        #expect(earliest > currentTimeMillis() - 600_000 && earliest <= currentTimeMillis(), "\(status.output)")
        #expect(rows(status.output, startingWith: "msgPutTotalTodayNow").first?.last == "1")
        let flushes = rows(status.output, startingWith: "commitLogFlushCount").first?.last.flatMap { Int($0) }
        #expect(flushes.map { $0 >= 0 } == true, "commitLogFlushCount in \(status.output)")

        let cluster = try runMQAdmin(["clusterList"] + n)
        #expect(rows(cluster.output, startingWith: "#Cluster").first
            == ["#Cluster", "Name", "#Broker", "Name", "#BID", "#Addr", "#Version", "#InTPS(LOAD)", "#OutTPS(LOAD)", "#PCWait(ms)",
                "#Hour", "#SPACE"], "\(cluster.output)")
        let row = rows(cluster.output, startingWith: "DefaultCluster").first ?? []
        #expect(row.count == 10 && row[2] == "0" && row[3] == Substring(broker.address) && row[4] == "V4_9_7", "\(cluster.output)")
        #expect(row.count == 10 && row[5].hasSuffix("(0,0ms)") && Double(row[8]) != nil && Double(row[9]) != nil, "\(cluster.output)")
        let more = try runMQAdmin(["clusterList", "-m"] + n)
        #expect(more.output.contains("#InTotalYest") && rows(more.output, startingWith: "DefaultCluster").first?.last == "0", "\(more.output)")

        let route = try runMQAdmin(["topicRoute"] + n + ["-t", "TableTopic"])
        #expect(route.output.hasPrefix("{\n\t\"brokerDatas\":[\n\t\t{\n\t\t\t\"brokerAddrs\":{0:\"\(broker.address)\"\n\t\t\t},"),
                "\(route.output)")
        #expect(route.output.contains("\n\t\"queueDatas\":[\n\t\t{\n\t\t\t\"brokerName\":\"broker-t\",\n\t\t\t\"perm\":6,"), "\(route.output)")
    }
}
