#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Broker
import Client
import Common
import NameServer
import Remoting
import Replication
import Synchronization
import Testing
import TestSupport

/// Messages a listener saw, shared with the test.
final class Received: Sendable {
    let messages = Mutex<[MessageExt]>([])
    func add(_ batch: [MessageExt]) { messages.withLock { $0 += batch } }
    var all: [MessageExt] { messages.withLock { $0 } }
    var bodies: Set<String> { Set(all.map(\.bodyString)) }
}

/// Polls `condition` every 50 ms for at most `seconds`.
func eventually(_ seconds: Double, _ condition: () async -> Bool) async -> Bool {
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    while monotonicNanos() < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}

/// The Swift client against real mqnamesrv/mqbroker processes: every send mode, push (clustering,
/// broadcasting, orderly, retry) and pull consumers, offsets across a broker restart, delay, rebalance,
/// NameServer fail-over.
@Suite(.serialized) struct ClientTests {
    static let fastRetry = "messageDelayLevel=1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s"

    func makeTopic(_ broker: RunningBroker, _ topic: String, queues: Int = 4) async throws {
        let admin = Admin(namesrvAddr: broker.nameServer.address)
        _ = try await admin.updateTopic(topic, brokerAddr: broker.address, cluster: nil, readQueueNums: queues, writeQueueNums: queues,
                                        perm: .readWrite, order: false)
        // The broker re-registers on topic changes; wait until the NameServer routes it.
        _ = await eventually(10) { (try? await admin.topicRoute(topic)) != nil }
        await admin.shutdown()
    }

    @Test func everySendModeReachesAPushConsumerWithEveryFieldIntact() async throws {
        let broker = try RunningBroker()
        try await makeTopic(broker, "SwiftAll")
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        var expected: [String: (tags: String, keys: [String], color: String)] = [:]
        for index in 0..<10 {
            let message = Message(topic: "SwiftAll", body: "sync-\(index)", tags: "TagA", keys: ["k\(index)", "common"], properties: ["color": "red\(index)"])
            let result = try await producer.send(message)
            #expect(result.status == .sendOK)
            #expect(result.offsetMsgID.count == 32 && result.queueOffset >= 0)
            expected["sync-\(index)"] = ("TagA", ["k\(index)", "common"], "red\(index)")
        }
        let asyncDone = Mutex<Int>(0)
        for index in 0..<10 {
            producer.send(Message(topic: "SwiftAll", body: "async-\(index)", tags: "TagB", properties: ["color": "blue"])) { result in
                if case .success(let sent) = result, sent.status == .sendOK { asyncDone.withLock { $0 += 1 } }
            }
            expected["async-\(index)"] = ("TagB", [], "blue")
        }
        #expect(await eventually(10) { asyncDone.withLock { $0 } == 10 }, "every async send's callback reports SEND_OK")
        for index in 0..<5 {
            try await producer.sendOneway(Message(topic: "SwiftAll", body: "oneway-\(index)", tags: "TagC", properties: ["color": "green"]))
            expected["oneway-\(index)"] = ("TagC", [], "green")
        }
        for index in 0..<8 {
            let result = try await producer.send(Message(topic: "SwiftAll", body: "orderly-\(index)", tags: "TagD", properties: ["color": "o"]),
                                                 selector: { queues, _ in queues[index % 2] })
            #expect(result.queue.queueID == Int32(index % 2))
            expected["orderly-\(index)"] = ("TagD", [], "o")
        }
        let batch = (0..<6).map { Message(topic: "SwiftAll", body: "batch-\($0)", tags: "TagE", keys: ["b\($0)"], properties: ["color": "b"]) }
        let batchResult = try await producer.send(batch: batch)
        #expect(batchResult.msgID.split(separator: ",").count == 6)
        for index in 0..<6 { expected["batch-\(index)"] = ("TagE", ["b\(index)"], "b") }

        let received = Received()
        var settings = PushConsumer.Settings(group: "CG-all")
        settings.consumeFromWhere = .firstOffset
        let consumer = PushConsumer(config: ClientConfig(namesrvAddr: broker.nameServer.address), settings: settings)
        consumer.subscribe("SwiftAll", expression: "*")
        consumer.registerListener { messages in
            received.add(messages)
            return .consumeSuccess
        }
        try await consumer.start()
        let complete = await eventually(20) { received.bodies.count == expected.count }
        #expect(complete, "received \(received.bodies.count) of \(expected.count)")
        for message in received.all {
            guard let want = expected[message.bodyString] else { Issue.record("unexpected \(message.bodyString)"); continue }
            #expect(message.topic == "SwiftAll")
            #expect(message.tags == want.tags)
            #expect(message.keys == want.keys)
            #expect(message.userProperties["color"] == want.color)
            #expect(message.property("UNIQ_KEY")?.count == 32)
        }
        await consumer.shutdown()
        await producer.shutdown()
    }

    @Test func tagSubscriptionFiltersAndFailedMessagesComeBackThroughTheRetryTopic() async throws {
        let broker = try RunningBroker(extraConfig: Self.fastRetry)
        try await makeTopic(broker, "SwiftRetry")
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        for index in 0..<12 {
            _ = try await producer.send(Message(topic: "SwiftRetry", body: "m\(index)", tags: index % 3 == 0 ? "Skip" : "Keep"))
        }
        let received = Received()
        var settings = PushConsumer.Settings(group: "CG-retry")
        settings.consumeFromWhere = .firstOffset
        let consumer = PushConsumer(config: ClientConfig(namesrvAddr: broker.nameServer.address), settings: settings)
        consumer.subscribe("SwiftRetry", expression: "Keep || Other")
        consumer.registerListener { messages in
            received.add(messages)
            // Every even-numbered message fails the first time.
            let body = messages[0].bodyString
            let number = Int(body.dropFirst()) ?? 0
            return number % 2 == 0 && messages[0].reconsumeTimes == 0 ? .reconsumeLater : .consumeSuccess
        }
        try await consumer.start()
        let keep = Set((0..<12).filter { $0 % 3 != 0 }.map { "m\($0)" })
        let retried = Set(keep.filter { (Int($0.dropFirst()) ?? 1) % 2 == 0 })
        let done = await eventually(30) {
            let again = Set(received.all.filter { $0.reconsumeTimes > 0 }.map(\.bodyString))
            return received.bodies == keep && again == retried
        }
        #expect(done, "received \(received.all.map { "\($0.bodyString)/\($0.reconsumeTimes)" })")
        #expect(!received.all.contains { $0.tags == "Skip" })
        #expect(received.all.filter { $0.reconsumeTimes > 0 }.allSatisfy { $0.topic == "SwiftRetry" }, "retried messages show their real topic")
        await consumer.shutdown()
        await producer.shutdown()
    }

    @Test func broadcastingDeliversEverythingToEveryMemberAndKeepsOffsetsLocally() async throws {
        let broker = try RunningBroker()
        try await makeTopic(broker, "SwiftBroadcast")
        let offsets = TemporaryDirectory("offsets")
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        let members = (0..<2).map { index -> (PushConsumer, Received) in
            var settings = PushConsumer.Settings(group: "CG-broadcast")
            settings.messageModel = .broadcasting
            settings.consumeFromWhere = .firstOffset
            settings.offsetStoreDir = offsets.path
            var config = ClientConfig(namesrvAddr: broker.nameServer.address)
            config.instanceName = "member\(index)"
            let consumer = PushConsumer(config: config, settings: settings)
            let received = Received()
            consumer.subscribe("SwiftBroadcast")
            consumer.registerListener { messages in received.add(messages); return .consumeSuccess }
            return (consumer, received)
        }
        for (consumer, _) in members { try await consumer.start() }
        for index in 0..<20 { _ = try await producer.send(Message(topic: "SwiftBroadcast", body: "b\(index)")) }
        let all = Set((0..<20).map { "b\($0)" })
        for (consumer, received) in members {
            #expect(await eventually(20) { received.bodies == all })
            #expect(consumer.assignedQueues.count == 4)
            await consumer.shutdown()
        }
        let file = readTextFile(offsets.path + "/member0/CG-broadcast/offsets.json") ?? ""
        #expect(file.contains(#"{"brokerName":"broker-t","queueId":0,"topic":"SwiftBroadcast"}:"#), "local offsets: \(file)")
        await producer.shutdown()
    }

    @Test func pullConsumerReadsEveryQueueAndCommittedOffsetsSurviveABrokerRestart() async throws {
        let broker = try RunningBroker()
        try await makeTopic(broker, "SwiftPull")
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        for index in 0..<40 { _ = try await producer.send(Message(topic: "SwiftPull", body: "p\(index)", tags: "T", keys: ["key\(index)"])) }
        await producer.shutdown()
        let consumer = PullConsumer(group: "CG-pull", namesrvAddr: broker.nameServer.address)
        consumer.start()
        let queues = try await consumer.fetchSubscribeMessageQueues("SwiftPull")
        #expect(queues.count == 4)
        // A send is answered once the commit log holds it; its consume-queue unit is dispatched a moment later.
        #expect(await eventually(20) {
            var total: Int64 = 0
            for queue in queues { total += (try? await consumer.maxOffset(queue)) ?? 0 }
            return total == 40
        })
        var bodies: [String] = []
        for queue in queues {
            var offset = try await consumer.minOffset(queue)
            while true {
                let result = try await consumer.pull(queue, expression: "T", offset: offset, maxNums: 7)
                bodies += result.messages.map(\.bodyString)
                #expect(result.messages.allSatisfy { $0.keys.first?.hasPrefix("key") == true })
                if result.status != .found { break }
                offset = result.nextBeginOffset
            }
            #expect(offset == (try await consumer.maxOffset(queue)))
            try await consumer.updateConsumeOffset(queue, offset: offset)
        }
        #expect(Set(bodies) == Set((0..<40).map { "p\($0)" }))
        #expect(bodies.count == 40)
        // A pull past the end answers NO_NEW_MSG; with long polling it waits for the next message.
        let empty = try await consumer.pull(queues[0], offset: try await consumer.maxOffset(queues[0]))
        #expect(empty.status == .noNewMessage)
        await consumer.shutdown()

        // Offsets are persisted by the broker and survive a restart.
        #expect(broker.process?.terminate() == 0)
        try broker.start()
        let again = PullConsumer(group: "CG-pull", namesrvAddr: broker.nameServer.address)
        again.start()
        for queue in queues {
            let committed = try await again.fetchConsumeOffset(queue)
            #expect(committed == (try await again.maxOffset(queue)))
        }
        await again.shutdown()
    }

    @Test func delayedMessageArrivesAfterItsDelay() async throws {
        let broker = try RunningBroker()
        try await makeTopic(broker, "SwiftDelay")
        let received = Received()
        var settings = PushConsumer.Settings(group: "CG-delay")
        settings.consumeFromWhere = .firstOffset
        let consumer = PushConsumer(config: ClientConfig(namesrvAddr: broker.nameServer.address), settings: settings)
        consumer.subscribe("SwiftDelay")
        consumer.registerListener { messages in received.add(messages); return .consumeSuccess }
        try await consumer.start()
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        var message = Message(topic: "SwiftDelay", body: "later")
        message.delayTimeLevel = 2  // 5 s
        let sentAt = wallClockMillis()
        _ = try await producer.send(message)
        #expect(await eventually(20) { !received.all.isEmpty })
        let arrivedAt = wallClockMillis()
        #expect(arrivedAt - sentAt >= 4_500, "arrived after \(arrivedAt - sentAt) ms")
        #expect(received.all.first?.bodyString == "later")
        await consumer.shutdown()
        await producer.shutdown()
    }

    @Test func orderlyConsumerSeesEachQueueInOrderAndHoldsItsLocks() async throws {
        let broker = try RunningBroker()
        try await makeTopic(broker, "SwiftOrder")
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        for index in 0..<40 {
            _ = try await producer.send(Message(topic: "SwiftOrder", body: "\(index % 4):\(index)"), selector: { queues, _ in queues[index % 4] })
        }
        let received = Received()
        let failedOnce = Mutex<Bool>(false)
        var settings = PushConsumer.Settings(group: "CG-order")
        settings.consumeFromWhere = .firstOffset
        settings.suspendCurrentQueueMillis = 100
        let consumer = PushConsumer(config: ClientConfig(namesrvAddr: broker.nameServer.address), settings: settings)
        consumer.subscribe("SwiftOrder")
        consumer.registerOrderlyListener { messages in
            // One suspension: the same message must come again before anything after it.
            if messages[0].bodyString == "1:5", failedOnce.withLock({ let first = !$0; $0 = true; return first }) { return .suspendCurrentQueueAMoment }
            received.add(messages)
            return .success
        }
        try await consumer.start()
        #expect(await eventually(20) { received.all.count == 40 })
        for queue in 0..<4 {
            let sequence = received.all.filter { $0.bodyString.hasPrefix("\(queue):") }.map { Int($0.bodyString.split(separator: ":")[1])! }
            #expect(sequence == sequence.sorted() && sequence.count == 10, "queue \(queue): \(sequence)")
        }
        await consumer.shutdown()
        await producer.shutdown()
    }

    @Test func threePushConsumersShareTheQueuesAndTakeOverWhenOneStops() async throws {
        let broker = try RunningBroker()
        try await makeTopic(broker, "SwiftRebalance", queues: 8)
        let received = Received()
        func member(_ index: Int) -> PushConsumer {
            var settings = PushConsumer.Settings(group: "CG-rebalance")
            settings.consumeFromWhere = .firstOffset
            settings.rebalanceIntervalMillis = 1_000
            settings.persistOffsetIntervalMillis = 500
            var config = ClientConfig(namesrvAddr: broker.nameServer.address)
            config.instanceName = "m\(index)"
            let consumer = PushConsumer(config: config, settings: settings)
            consumer.subscribe("SwiftRebalance")
            consumer.registerListener { messages in received.add(messages); return .consumeSuccess }
            return consumer
        }
        let members = (0..<3).map(member)
        for consumer in members { try await consumer.start() }
        let shared = await eventually(15) {
            let sets = members.map { Set($0.assignedQueues.filter { $0.topic == "SwiftRebalance" }) }
            return sets.map(\.count).reduce(0, +) == 8 && sets[0].isDisjoint(with: sets[1]) && sets[1].isDisjoint(with: sets[2])
                && sets[0].isDisjoint(with: sets[2]) && sets.allSatisfy { $0.count >= 2 }
        }
        #expect(shared, "assignments: \(members.map { $0.assignedQueues.map(\.queueID) })")
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        for index in 0..<80 { _ = try await producer.send(Message(topic: "SwiftRebalance", body: "r\(index)")) }
        #expect(await eventually(15) { received.bodies.count == 80 })
        await members[2].shutdown()
        let takenOver = await eventually(15) {
            let sets = members[0..<2].map { Set($0.assignedQueues.filter { $0.topic == "SwiftRebalance" }) }
            return sets.map(\.count).reduce(0, +) == 8 && sets[0].isDisjoint(with: sets[1])
        }
        #expect(takenOver, "after one stopped: \(members[0..<2].map { $0.assignedQueues.map(\.queueID) })")
        for index in 80..<160 { _ = try await producer.send(Message(topic: "SwiftRebalance", body: "r\(index)")) }
        let all = Set((0..<160).map { "r\($0)" })
        #expect(await eventually(20) { received.bodies == all }, "missing \(all.subtracting(received.bodies).sorted().prefix(10))")
        for consumer in members[0..<2] { await consumer.shutdown() }
        await producer.shutdown()
    }

    @Test func pullsPauseWhileTheListenerFallsBehind() async throws {
        let broker = try RunningBroker()
        try await makeTopic(broker, "SwiftFlow", queues: 1)
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        for index in 0..<300 { _ = try await producer.send(Message(topic: "SwiftFlow", body: "f\(index)")) }
        let received = Received()
        let released = Atomic<Bool>(false)
        var settings = PushConsumer.Settings(group: "CG-flow")
        settings.consumeFromWhere = .firstOffset
        settings.pullThresholdForQueue = 20
        settings.pullBatchSize = 8
        let consumer = PushConsumer(config: ClientConfig(namesrvAddr: broker.nameServer.address), settings: settings)
        consumer.subscribe("SwiftFlow")
        consumer.registerListener { messages in
            // The listener is stuck until the test lets it go.
            while !released.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(10)) }
            received.add(messages)
            return .consumeSuccess
        }
        try await consumer.start()
        let queue = MessageQueue(topic: "SwiftFlow", brokerName: "broker-t", queueID: 0)
        #expect(await eventually(10) { consumer.cachedMessageCount(queue) >= 20 })
        var most = 0
        for _ in 0..<40 {  // 2 s: pulls stay paused, the cache does not grow past threshold + one batch
            most = max(most, consumer.cachedMessageCount(queue))
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(most <= 20 + 8, "cached \(most) messages with a threshold of 20")
        released.store(true, ordering: .relaxed)
        #expect(await eventually(20) { received.bodies.count == 300 }, "received \(received.bodies.count)")
        await consumer.shutdown()
        await producer.shutdown()
    }

    @Test func producingGoesOnWhenOneOfTwoNameServersIsDown() async throws {
        let broker = try RunningBroker(nameServers: 2)
        let addresses = broker.nameServer.address + ";" + broker.otherNameServers[0].address
        // Both NameServers know the broker before the first one goes.
        _ = await eventually(10) {
            let admin = Admin(namesrvAddr: broker.otherNameServers[0].address)
            defer { Task { await admin.shutdown() } }
            return (try? await admin.clusterInfo().count) == 1
        }
        let producer = Producer(group: "PG", namesrvAddr: addresses)
        producer.start()
        #expect(try await producer.send(Message(topic: "SwiftNS1", body: "before")).status == .sendOK)
        broker.nameServer.process.killHard()
        // A new topic needs a route lookup: the first NameServer fails, the second answers (TBW102).
        for index in 0..<5 {
            #expect(try await producer.send(Message(topic: "SwiftNS2", body: "after\(index)")).status == .sendOK)
        }
        await producer.shutdown()
    }

    @Test func clearErrorsForNoNameServerUnknownTopicAndOversizedBody() async throws {
        let nobody = Producer(group: "PG", namesrvAddr: "127.0.0.1:\(freePort())")
        nobody.start()
        await #expect(throws: ClientError.self) { _ = try await nobody.send(Message(topic: "T", body: "x")) }
        await nobody.shutdown()

        let broker = try RunningBroker(extraConfig: "autoCreateTopicEnable=false")
        let producer = Producer(group: "PG", namesrvAddr: broker.nameServer.address)
        producer.start()
        do {
            _ = try await producer.send(Message(topic: "NoSuchTopic", body: "x"))
            Issue.record("a send to a missing topic succeeded")
        } catch {
            #expect("\(error)".contains("NoSuchTopic") || "\(error)".contains("route"), "\(error)")
        }
        try await makeTopic(broker, "SwiftBig")
        do {
            _ = try await producer.send(Message(topic: "SwiftBig", body: [UInt8](repeating: 1, count: 100_000)))
            Issue.record("an oversized body was stored")
        } catch {
            #expect("\(error)".contains("13") || "\(error)".contains("exceeds"), "\(error)")
        }
        #expect(try await producer.send(Message(topic: "SwiftBig", body: "fine")).status == .sendOK)
        await producer.shutdown()
    }
}
