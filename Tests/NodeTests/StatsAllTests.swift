@testable import Broker
import CommitLog
import Client
import Common
import Testing
import TestSupport

/// `mqadmin statsAll` against a real NameServer and broker: the broker's TOPIC_PUT_NUMS and GROUP_GET_NUMS
/// statistics (sampled every few seconds, so the test waits for them), a group's lag, `-a`, `-t`, and the one-line
/// failure when the NameServer cannot be reached.
@Suite(.serialized) struct StatsAllTests {
    func mqadmin(_ arguments: [String]) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("mqadmin") else { throw StoreError(.io, "mqadmin is not built") }
        return try ChildProcess.run([binary] + arguments, seconds: 60)
    }

    /// The rows of a statsAll output (header dropped), each split into its columns.
    func rows(_ output: String) -> [[String]] {
        output.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
    }

    static let header = "#Topic                            #Consumer Group                  #Accumulation      #InTPS     #OutTPS   "
        + "#InMsg24Hour  #OutMsg24Hour"

    /// Waits until `topic`'s queues hold `count` messages, then pulls at most `perQueue` messages of every queue as
    /// `group` and commits where it stopped (0 for a queue it took nothing from).
    /// - Returns: how many messages were pulled.
    func consume(_ topic: String, count: Int64, group: String, perQueue: Int, nameServer: String) async throws -> Int {
        let consumer = PullConsumer(group: group, namesrvAddr: nameServer)
        consumer.start()
        let queues = try await consumer.fetchSubscribeMessageQueues(topic)
        // A send is answered once the commit log holds it; its consume-queue unit is dispatched a moment later.
        let dispatched = await eventually(20) {
            var total: Int64 = 0
            for queue in queues { total += (try? await consumer.maxOffset(queue)) ?? 0 }
            return total == count
        }
        #expect(dispatched)
        var pulled = 0
        for queue in queues {
            let result = try await consumer.pull(queue, offset: 0, maxNums: perQueue)
            pulled += result.messages.count
            try await consumer.updateConsumeOffset(queue, offset: result.status == .found ? result.nextBeginOffset : 0)
        }
        await consumer.shutdown()
        return pulled
    }

    @Test func putsGetsAndLagArePrintedPerTopicAndGroup() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        for topic in ["StatsTopic", "IdleTopic"] {
            #expect(try mqadmin(["updateTopic"] + n + ["-t", topic, "-c", "DefaultCluster", "-r", "2", "-w", "2"]).status == 0)
        }
        let sent = 10
        let producer = Producer(group: "PG-stats", namesrvAddr: broker.nameServer.address)
        producer.start()
        for index in 0..<sent { _ = try await producer.send(Message(topic: "StatsTopic", body: "s\(index)")) }
        await producer.shutdown()
        // Both queues get messages (round robin); 3 of each queue are consumed.
        let consumed = try await consume("StatsTopic", count: Int64(sent), group: "CG-stats", perQueue: 3, nameServer: broker.nameServer.address)
        #expect(consumed == 6)

        let expected = ["StatsTopic", "CG-stats", "\(sent - consumed)", "\(sent)", "\(consumed)"]
        var last = ""
        let sampled = await eventually(40) {
            guard let result = try? mqadmin(["statsAll"] + n + ["-t", "StatsTopic"]) else { return false }
            last = result.output
            let row = rows(result.output).first ?? []
            return result.status == 0 && row.count == 7 && [row[0], row[1], row[2], row[5], row[6]] == expected
        }
        #expect(sampled, "statsAll never showed \(expected): \(last)")
        #expect(last.split(separator: "\n").first.map(String.init) == Self.header, "\(last)")
        #expect(rows(last).count == 1, "-t prints that topic only: \(last)")

        let all = try mqadmin(["statsAll"] + n)
        #expect(all.status == 0)
        let idle = rows(all.output).first { $0.first == "IdleTopic" } ?? []
        #expect(idle == ["IdleTopic", "0", "0.00", "0", "NO_CONSUMER"], "an idle topic has no consumer: \(all.output)")
        #expect(!rows(all.output).contains { $0.first?.hasPrefix("%RETRY%") == true }, "\(all.output)")

        let active = try mqadmin(["statsAll", "-a"] + n)
        #expect(active.status == 0)
        #expect(rows(active.output).map { $0.first ?? "" } == ["StatsTopic"], "-a prints active topics only: \(active.output)")

        let idleOnly = try mqadmin(["statsAll"] + n + ["-t", "IdleTopic"])
        #expect(rows(idleOnly.output).map { $0.first ?? "" } == ["IdleTopic"], "\(idleOnly.output)")
    }

    @Test func unreachableNameServerIsOneLineWithExitStatus1() throws {
        let port = freePort()
        let result = try mqadmin(["statsAll", "-n", "127.0.0.1:\(port)"])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output == "mqadmin: cannot reach NameServer 127.0.0.1:\(port) (connection refused)", "\(result.output)")
    }
}

/// The broker's statistics windows on a made-up clock: sums from the creation's zero sample, the minute sliding
/// while the hour and day keep the total, TPS and per-addition averages, a clock going back; the body's shape.
@Suite struct StatsWindowTests {
    @Test func windowsSumFromCreationAndSlide() {
        let start: Int64 = 1_000_000
        let item = StatsItem(now: start)
        #expect(item.data == BrokerStatsData(statsMinute: BrokerStatsItem(), statsHour: BrokerStatsItem(), statsDay: BrokerStatsItem()))
        item.add(4)
        item.add(6)
        item.sample(now: start + 5_000)
        let first = item.data
        #expect(first.statsMinute == BrokerStatsItem(sum: 10, tps: 2, avgpt: 5), "\(first)")
        #expect(first.statsHour.sum == 10 && first.statsDay.sum == 10)
        for step in 2...14 { item.sample(now: start + Int64(step) * 5_000) }
        let later = item.data
        #expect(later.statsMinute.sum == 0, "the minute no longer holds the adds: \(later)")
        #expect(later.statsHour.sum == 10 && later.statsDay.sum == 10 && later.sum24Hours == 10, "\(later)")
        item.add(1)
        item.sample(now: start)  // the clock went back: ignored
        #expect(item.data == later)
    }

    @Test func groupGetsAreKeyedByTopicAtGroupAndBounded() throws {
        let directory = TemporaryDirectory("stats-items")
        let topics = try TopicConfigManager(storePathRootDir: directory.path, log: { _ in })
        topics.upsert(TopicConfig(topicName: "T"))
        let items = BrokerStatsItems(topics: topics)
        #expect(items.data(name: BrokerStatsItems.topicPutNums, key: "T") != nil, "a topic has put statistics from its creation")
        #expect(items.data(name: BrokerStatsItems.topicPutNums, key: "U") == nil)
        for index in 0...BrokerStatsItems.topicGroupsMax { items.countGet(topic: "T", group: "g\(index)", messages: 2, bytes: 20) }
        items.sample(now: currentTimeMillis() + 5_000)
        #expect(items.data(name: BrokerStatsItems.groupGetNums, key: "T@g0")?.statsMinute.sum == 2)
        #expect(items.data(name: BrokerStatsItems.groupGetSize, key: "T@g0")?.statsDay.sum == 20)
        #expect(items.data(name: BrokerStatsItems.groupGetNums, key: "T@g\(BrokerStatsItems.topicGroupsMax)") == nil, "past the bound")
        #expect(items.data(name: BrokerStatsItems.groupGetNums, key: "Tg0") == nil && items.data(name: "NOPE", key: "T") == nil)
        topics.delete("T")
        items.forget(topic: "T")
        #expect(items.data(name: BrokerStatsItems.topicPutNums, key: "T") == nil && items.data(name: BrokerStatsItems.groupGetNums, key: "T@g0") == nil)
    }

    @Test func brokerStatsDataRoundTripsAndFallsBackToShorterWindows() throws {
        let data = BrokerStatsData(statsMinute: BrokerStatsItem(sum: 3, tps: 0.05, avgpt: 1), statsHour: BrokerStatsItem(sum: 7, tps: 0.5, avgpt: 1),
                                   statsDay: BrokerStatsItem())
        #expect(try BrokerStatsData.decode(from: data.encode()) == data)
        #expect(data.sum24Hours == 7)
        #expect(data.json.compactText.hasPrefix(#"{"statsDay":{"avgpt":"#), "\(data.json.compactText)")
        #expect(throws: BodyError.self) { try BrokerStatsData(json: .object([("statsMinute", .string("x"))])) }
        #expect(try GroupList.decode(from: GroupList(groupList: ["a", "b"]).encode()).groupList == ["a", "b"])
    }
}
