import CommitLog
import Broker
import Client
import Common
import NameServer
import Remoting
import Replication
import Testing
import TestSupport

/// `mqadmin` as a user runs it: every command against a real NameServer and broker, RocketMQ-shaped
/// tables, and a clear message with a non-zero exit when something is missing.
@Suite(.serialized) struct MQAdminTests {
    func mqadmin(_ arguments: [String]) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("mqadmin") else { throw StoreError(.io, "mqadmin is not built") }
        return try ChildProcess.run([binary] + arguments)
    }

    @Test func everyCommandWorksAgainstARealCluster() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let cluster = try mqadmin(["clusterList"] + n)
        #expect(cluster.status == 0)
        #expect(cluster.output.contains("#Cluster Name") && cluster.output.contains("broker-t") && cluster.output.contains(broker.address))

        let update = try mqadmin(["updateTopic"] + n + ["-t", "AdminTopic", "-c", "DefaultCluster", "-r", "2", "-w", "2"])
        #expect(update.status == 0, "\(update.output)")
        #expect(update.output.contains("create topic to \(broker.address) success"))
        #expect(await eventually(10) { (try? mqadmin(["topicList"] + n).output.contains("AdminTopic")) == true })

        let sent = try mqadmin(["sendMessage"] + n + ["-t", "AdminTopic", "-p", "admin body", "-k", "ak1", "-c", "TagZ", "-u", "color=red"])
        #expect(sent.status == 0, "\(sent.output)")
        let row = sent.output.split(separator: "\n").last?.split(separator: " ", omittingEmptySubsequences: true) ?? []
        #expect(row.count == 5 && row[2] == "SEND_OK", "\(sent.output)")
        let offsetMsgID = row.count == 5 ? String(row[4]) : ""

        let route = try mqadmin(["topicRoute"] + n + ["-t", "AdminTopic"])
        #expect(route.output.contains("\"writeQueueNums\":2") && route.output.contains(broker.address))
        let status = try mqadmin(["topicStatus"] + n + ["-t", "AdminTopic"])
        #expect(status.output.contains("#Min Offset") && status.output.split(separator: "\n").count == 3)
        let byID = try mqadmin(["queryMsgById"] + n + ["-i", offsetMsgID])
        #expect(byID.status == 0 && byID.output.contains("admin body") && byID.output.contains("[TagZ]") && byID.output.contains("color=red"),
                "\(byID.output)")
        let byKey = try mqadmin(["queryMsgByKey"] + n + ["-t", "AdminTopic", "-k", "ak1"])
        #expect(byKey.status == 0 && byKey.output.contains("#Message ID"), "\(byKey.output)")
        let consumed = try mqadmin(["consumeMessage"] + n + ["-t", "AdminTopic"])
        #expect(consumed.output.contains("BODY: admin body") && consumed.output.contains("Consumed 1 message(s)."), "\(consumed.output)")
        let brokerStatus = try mqadmin(["brokerStatus"] + n + ["-b", broker.address])
        #expect(brokerStatus.output.contains("msgPutTotalTodayNow") && brokerStatus.output.contains("commitLogMaxOffset"))

        // A group's progress after it committed an offset.
        let consumer = PullConsumer(group: "AdminGroup", namesrvAddr: broker.nameServer.address)
        consumer.start()
        for queue in try await consumer.fetchSubscribeMessageQueues("AdminTopic") {
            try await consumer.updateConsumeOffset(queue, offset: try await consumer.maxOffset(queue))
        }
        await consumer.shutdown()
        let progress = try mqadmin(["consumerProgress"] + n + ["-g", "AdminGroup"])
        #expect(progress.status == 0 && progress.output.contains("#Consumer Offset") && progress.output.contains("Diff Total: 0"), "\(progress.output)")

        let delete = try mqadmin(["deleteTopic"] + n + ["-t", "AdminTopic", "-c", "DefaultCluster"])
        #expect(delete.status == 0, "\(delete.output)")
        #expect(try mqadmin(["topicRoute"] + n + ["-t", "AdminTopic"]).status == 1)
    }

    @Test func missingThingsAreClearErrorsWithANonZeroExit() async throws {
        let nowhere = try mqadmin(["topicList", "-n", "127.0.0.1:\(freePort())"])
        #expect(nowhere.status == 1)
        #expect(nowhere.output.contains("cannot reach NameServer"), "\(nowhere.output)")

        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let route = try mqadmin(["topicRoute"] + n + ["-t", "NoSuchTopic"])
        #expect(route.status == 1 && route.output.contains("NoSuchTopic"), "\(route.output)")
        let key = try mqadmin(["queryMsgByKey"] + n + ["-t", "TBW102", "-k", "none"])
        #expect(key.status == 1 && key.output.contains("no message"), "\(key.output)")
        let progress = try mqadmin(["consumerProgress"] + n + ["-g", "NoGroup"])
        #expect(progress.status == 1 && progress.output.contains("NoGroup"), "\(progress.output)")
        let badID = try mqadmin(["queryMsgById"] + n + ["-i", "xyz"])
        #expect(badID.status == 1 && badID.output.contains("no message with id xyz"), "\(badID.output)")
        let usage = try mqadmin(["updateTopic"] + n)
        #expect(usage.status != 0 && usage.output.contains("-t"), "\(usage.output)")
    }
}
