#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Client
import Common
import Testing
import TestSupport

/// Runs the built mqadmin with `arguments` (in `directory` when given, for commands that write files).
func runMQAdmin(_ arguments: [String], in directory: String? = nil) throws -> (status: Int32?, output: String) {
    guard let binary = builtExecutable("mqadmin") else { throw StoreError(.io, "mqadmin is not built") }
    guard let directory else { return try ChildProcess.run([binary] + arguments) }
    let quoted = ([binary] + arguments).map { "'" + $0 + "'" }.joined(separator: " ")
    return try ChildProcess.run(["/bin/sh", "-c", "cd '\(directory)' && exec \(quoted)"])
}

/// The lines of a table's output that start with `prefix` (after leading spaces).
func rows(_ output: String, startingWith prefix: String) -> [[Substring]] {
    output.split(separator: "\n").filter { $0.drop { $0 == " " }.hasPrefix(prefix) }.map { $0.split(separator: " ") }
}

/// mqadmin's group commands (RocketMQ 4.9's `updateSubGroup`, `deleteSubGroup`, `getConsumerConfig`,
/// `consumerConnection`, `producerConnection`, `consumerStatus`, `brokerConsumeStats`, `consumerProgress` without `-g`)
/// against a real NameServer and broker with a live Swift producer and push consumer: each prints RocketMQ's columns
/// in RocketMQ's order, and a bad argument or a missing group is one `mqadmin:` line with exit status 1.
@Suite(.serialized) struct MQAdminGroupTests {
    @Test func groupCommandsShowSettingsMembersAndTheirOwnReports() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        #expect(try runMQAdmin(["updateTopic"] + n + ["-t", "GroupTopic", "-c", "DefaultCluster", "-r", "2", "-w", "2"]).status == 0)

        let update = try runMQAdmin(["updateSubGroup"] + n + ["-b", broker.address, "-g", "G1", "-r", "3", "-q", "2"])
        #expect(update.status == 0, "\(update.output)")
        #expect(update.output.contains("create subscription group to \(broker.address) success."))
        #expect(update.output.contains("SubscriptionGroupConfig [groupName=G1, consumeEnable=true, consumeFromMinEnable=false, "
            + "consumeBroadcastEnable=false, retryQueueNums=2, retryMaxTimes=3, brokerId=0"), "\(update.output)")
        let config = try runMQAdmin(["getConsumerConfig"] + n + ["-g", "G1"])
        #expect(config.status == 0 && config.output.contains("=============================DefaultCluster:broker-t============================="),
                "\(config.output)")
        #expect(rows(config.output, startingWith: "retryMaxTimes").first?.last == "3", "\(config.output)")

        let producer = Producer(group: "PG1", namesrvAddr: broker.nameServer.address)
        producer.start()
        defer { Task { await producer.shutdown() } }
        _ = try await producer.send(Message(topic: "GroupTopic", body: "one"))
        let consumer = PushConsumer(group: "G1", namesrvAddr: broker.nameServer.address)
        consumer.subscribe("GroupTopic", expression: "TagA || TagB")
        consumer.registerListener { _ in .consumeSuccess }
        try await consumer.start()
        let clientID = consumer.client.clientID

        let connection = try runMQAdmin(["consumerConnection"] + n + ["-g", "G1"])
        #expect(connection.status == 0, "\(connection.output)")
        #expect(rows(connection.output, startingWith: "#ClientId").first == ["#ClientId", "#ClientAddr", "#Language", "#Version"])
        #expect(rows(connection.output, startingWith: clientID).first?.last == "V4_9_7", "\(connection.output)")
        #expect(rows(connection.output, startingWith: "GroupTopic").first?.joined(separator: " ") == "GroupTopic TagA || TagB")
        #expect(connection.output.contains("ConsumeType: CONSUME_PASSIVELY") && connection.output.contains("MessageModel: CLUSTERING"))

        let producers = try runMQAdmin(["producerConnection"] + n + ["-g", "PG1", "-t", "GroupTopic"])
        #expect(producers.status == 0 && rows(producers.output, startingWith: "0001").first?[1] == Substring(producer.client.clientID),
                "\(producers.output)")

        #expect(await eventually(20) { !consumer.assignedQueues.isEmpty }, "the consumer holds queues once it rebalanced")
        let status = try runMQAdmin(["consumerStatus"] + n + ["-g", "G1", "-i", clientID])
        #expect(status.status == 0, "\(status.output)")
        for section in ["#Consumer Properties#", "#Consumer Subscription#", "#Consumer Offset#", "#Consumer MQ Detail#", "#Consumer RT&TPS#"] {
            #expect(status.output.contains(section), "\(section) in \(status.output)")
        }
        #expect(status.output.contains("PROP_CONSUME_TYPE") && status.output.contains("ProcessQueueInfo [commitOffset="), "\(status.output)")
        let files = TemporaryDirectory("consumer-status")
        let all = try runMQAdmin(["consumerStatus"] + n + ["-g", "G1"], in: files.path)
        #expect(all.status == 0 && all.output.contains("#ConsumerRunningInfoFile") && all.output.contains("Rebalance OK"), "\(all.output)")
        let path = rows(all.output, startingWith: "1 ").first?.last.map { files.path + "/" + $0 } ?? "-"
        #expect(access(path, R_OK) == 0, "consumerStatus wrote \(path)")

        let groups = try runMQAdmin(["consumerProgress"] + n)
        #expect(rows(groups.output, startingWith: "#Group").first == ["#Group", "#Count", "#Version", "#Type", "#Model", "#TPS", "#Diff", "Total"])
        #expect(rows(groups.output, startingWith: "G1 ").first?.prefix(5) == ["G1", "1", "V4_9_7", "PUSH", "CLUSTERING"], "\(groups.output)")

        // Offsets commit every 5 s; the group's row appears once one is committed.
        #expect(await eventually(20) {
            rows((try? runMQAdmin(["brokerConsumeStats"] + n + ["-b", broker.address]).output) ?? "", startingWith: "GroupTopic").contains {
                $0[1] == "G1"
            }
        })
        let stats = try runMQAdmin(["brokerConsumeStats"] + n + ["-b", broker.address])
        #expect(rows(stats.output, startingWith: "#Topic").first?.prefix(5) == ["#Topic", "#Group", "#Broker", "Name", "#QID"])
        #expect(stats.output.contains("Diff Total: 0"), "\(stats.output)")

        await consumer.shutdown()
        let delete = try runMQAdmin(["deleteSubGroup"] + n + ["-b", broker.address, "-g", "G1", "-r", "true"])
        #expect(delete.status == 0 && delete.output.contains("delete subscription group [G1] from broker [\(broker.address)] success."),
                "\(delete.output)")
        let gone = try runMQAdmin(["getConsumerConfig"] + n + ["-g", "G1"])
        #expect(gone.status == 1 && gone.output.contains("G1"), "\(gone.output)")
    }

    @Test func badArgumentsAndMissingGroupsAreOneLineErrors() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let cases: [([String], String)] = [
            (["updateSubGroup", "-b", broker.address, "-g", "G", "-s", "maybe"], "-s must be true or false"),
            (["updateSubGroup", "-g", "G"], "give a broker address"),
            (["updateSubGroup", "-c", "NoCluster", "-g", "G"], "no master broker in cluster NoCluster"),
            (["deleteSubGroup", "-g", "G"], "give a broker address"),
            (["getConsumerConfig", "-g", "NoGroup"], "NoGroup"),
            (["consumerConnection", "-g", "NoGroup"], "NoGroup"),
            (["consumerStatus", "-g", "NoGroup"], "NoGroup"),
            (["producerConnection", "-g", "NoGroup", "-t", "TBW102"], "NoGroup"),
            (["brokerConsumeStats", "-b", broker.address, "-t", "0"], "-t must be a positive"),
            (["resetOffsetByTime", "-g", "G", "-t", "TBW102", "-s", "yesterday"], "-s must be now"),
            (["skipAccumulatedMessage", "-g", "G", "-t", "NoTopic"], "NoTopic"),
            (["cloneGroupOffset", "-s", "NoGroup", "-d", "G2", "-t", "TBW102"], "NoGroup"),
        ]
        for (arguments, reason) in cases {
            let result = try runMQAdmin([arguments[0]] + n + Array(arguments.dropFirst()))
            let lines = result.output.split(separator: "\n")
            #expect(result.status == 1, "\(arguments): \(result.output)")
            #expect(lines.count == 1 && lines.first?.hasPrefix("mqadmin: ") == true && result.output.contains(reason),
                    "\(arguments): \(result.output)")
        }
    }
}
