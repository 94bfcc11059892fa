import CommitLog
import Client
import Common
import Testing
import TestSupport

/// mqadmin's message commands against a real NameServer and broker: queryMsgById with the #MsgId sendMessage prints
/// (a unique key, found through the unique-key fallback), queryMsgByUniqueKey, queryMsgByOffset, printMsg,
/// printMsgByQueue, sendMsgStatus, clusterRT and checkMsgSendRT, with RocketMQ's columns, order and footers.
@Suite(.serialized) struct MessageCommandTests {
    func mqadmin(_ arguments: [String]) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("mqadmin") else { throw StoreError(.io, "mqadmin is not built") }
        return try ChildProcess.run([binary] + arguments, seconds: 60)
    }

    func lines(_ output: String) -> [String] { output.split(separator: "\n").map(String.init) }

    /// Sends one message with mqadmin; returns (#MsgId, #OffsetMsgId, queue id).
    func send(_ n: [String], topic: String, body: String, tags: String) throws -> (msgID: String, offsetMsgID: String, queueID: String) {
        let sent = try mqadmin(["sendMessage"] + n + ["-t", topic, "-p", body, "-c", tags, "-i", "0"])
        let row = lines(sent.output).last?.split(separator: " ", omittingEmptySubsequences: true).map(String.init) ?? []
        guard sent.status == 0, row.count == 5, row[2] == "SEND_OK" else { throw StoreError(.io, "sendMessage failed: \(sent.output)") }
        return (row[3], row[4], row[1])
    }

    @Test func messagesAreFoundByEveryIdAndPrintedAsRocketMQPrintsThem() throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        #expect(try mqadmin(["updateTopic"] + n + ["-t", "MsgTopic", "-c", "DefaultCluster", "-r", "2", "-w", "2"]).status == 0)
        let first = try send(n, topic: "MsgTopic", body: "first body", tags: "TagA")
        _ = try send(n, topic: "MsgTopic", body: "second body", tags: "TagB")
        _ = try send(n, topic: "MsgTopic", body: "third body", tags: "TagA")

        // The #MsgId is a unique key: its digits decode to no usable address, so the unique-key look-up finds it,
        // with or without the topic.
        for extra in [[], ["-t", "MsgTopic"]] {
            let byID = try mqadmin(["queryMsgById"] + n + ["-i", first.msgID] + extra)
            #expect(byID.status == 0 && byID.output.contains("first body") && byID.output.contains("[TagA]"), "\(byID.output)")
            #expect(lines(byID.output).first == "OffsetID:            \(first.offsetMsgID)", "\(byID.output)")
        }
        let byOffsetID = try mqadmin(["queryMsgById"] + n + ["-i", first.offsetMsgID])
        #expect(byOffsetID.status == 0 && byOffsetID.output.contains("first body"), "\(byOffsetID.output)")
        let both = try mqadmin(["queryMsgById"] + n + ["-i", "\(first.offsetMsgID), \(first.msgID)"])
        #expect(both.status == 0 && lines(both.output).filter { $0.hasPrefix("OffsetID:") }.count == 2, "\(both.output)")
        let unknownKey = try mqadmin(["queryMsgById"] + n + ["-i", "0A0B0C0D0E0F000000000000000000FF", "-t", "MsgTopic"])
        #expect(unknownKey.status == 1 && lines(unknownKey.output).count == 1 && unknownKey.output.contains("not in topic MsgTopic"),
                "\(unknownKey.output)")

        let unique = try mqadmin(["queryMsgByUniqueKey"] + n + ["-i", first.msgID, "-t", "MsgTopic"])
        let uniqueLines = lines(unique.output)
        #expect(unique.status == 0 && uniqueLines.first == "Topic:               MsgTopic", "\(unique.output)")
        #expect(uniqueLines.map { String($0.prefix(21)).trimmingSuffix(while: { $0 == " " }) }.prefix(5)
                == ["Topic:", "Tags:", "Keys:", "Queue ID:", "Queue Offset:"], "\(unique.output)")

        let atOffset = try mqadmin(["queryMsgByOffset"] + n + ["-t", "MsgTopic", "-b", "broker-t", "-i", "0", "-o", "1"])
        #expect(atOffset.status == 0 && atOffset.output.contains("second body") && atOffset.output.contains("Queue Offset:        1"),
                "\(atOffset.output)")
        let pastEnd = try mqadmin(["queryMsgByOffset"] + n + ["-t", "MsgTopic", "-b", "broker-t", "-i", "0", "-o", "9"])
        #expect(pastEnd.status == 1 && pastEnd.output.contains("no message at offset 9"), "\(pastEnd.output)")

        let printed = lines(try mqadmin(["printMsg"] + n + ["-t", "MsgTopic", "-s", "TagA"]).output)
        #expect(printed.first == "minOffset=0, maxOffset=3, MessageQueue [topic=MsgTopic, brokerName=broker-t, queueId=0]", "\(printed)")
        let messageLines = printed.filter { $0.hasPrefix("MSGID: ") }
        #expect(messageLines.count == 2 && messageLines[0].hasPrefix("MSGID: \(first.msgID) MessageExt [brokerName=broker-t, queueId=0, "),
                "\(printed)")
        #expect(messageLines.allSatisfy { $0.hasSuffix(" BODY: first body") || $0.hasSuffix(" BODY: third body") }, "\(printed)")
        #expect(printed.filter { $0 == "--------------------------------------------------------" }.count == 2, "one footer per queue")
        let since2000 = lines(try mqadmin(["printMsg"] + n + ["-t", "MsgTopic", "-b", "2000-01-01#00:00:00:000"]).output)
        #expect(since2000.first == "minOffset=0, maxOffset=3, MessageQueue [topic=MsgTopic, brokerName=broker-t, queueId=0]", "\(since2000)")
        let badTime = try mqadmin(["printMsg"] + n + ["-t", "MsgTopic", "-b", "yesterday"])
        #expect(badTime.status == 1 && badTime.output.contains("yesterday is neither milliseconds nor yyyy-MM-dd#HH:mm:ss:SSS"), "\(badTime.output)")
        let noBodies = try mqadmin(["printMsg"] + n + ["-t", "MsgTopic", "-d", "false"])
        #expect(noBodies.output.contains("BODY: NOT PRINT BODY") && !noBodies.output.contains("first body"), "\(noBodies.output)")

        let byQueue = lines(try mqadmin(["printMsgByQueue"] + n + ["-t", "MsgTopic", "-a", "broker-t", "-i", "0", "-f", "true"]).output)
        #expect(byQueue == ["Tag: TagA                           Count: 2", "Tag: TagB                           Count: 1"], "\(byQueue)")
        let withMessages = try mqadmin(["printMsgByQueue"] + n + ["-t", "MsgTopic", "-a", "broker-t", "-i", "0", "-p", "true", "-d", "true"])
        #expect(lines(withMessages.output).filter { $0.hasPrefix("MSGID: ") }.count == 3, "\(withMessages.output)")
    }

    @Test func queryCqPrintsConsumeQueueUnitsFromAnIndex() throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        #expect(try mqadmin(["updateTopic"] + n + ["-t", "CqTopic", "-c", "DefaultCluster", "-r", "2", "-w", "2"]).status == 0)
        for body in ["one", "two", "three"] { _ = try send(n, topic: "CqTopic", body: body, tags: "TagA") }
        let cq = lines(try mqadmin(["queryCq"] + n + ["-t", "CqTopic", "-q", "0", "-i", "1", "-c", "5"]).output)
        let rule = "======================================"
        #expect(cq.prefix(3) == ["Queue data: ", "max: 3, min: 0", rule], "\(cq)")
        #expect(cq.count == 9 && cq[3] == "idx: 1" && cq[6] == "idx: 2" && cq[5] == rule && cq[8] == rule, "\(cq)")
        let tagsCode = javaStringHash("TagA")
        #expect(cq[4].hasPrefix("ConsumeQueueData{physicOffset=") && cq[4].contains(", tagsCode=\(tagsCode), extendDataJson='null', "
                                                                                    + "bitMap='null', eval=false, msg='null'}"), "\(cq)")
        let offline = lines(try mqadmin(["queryCq"] + n + ["-t", "CqTopic", "-q", "0", "-i", "0", "-g", "NoGroup"]).output)
        #expect(offline.prefix(3) == ["Filter data: ", "NoGroup@CqTopic is not online!", rule] && offline.count == 3 + 3 + 9, "\(offline)")
        let pastEnd = try mqadmin(["queryCq"] + n + ["-t", "CqTopic", "-q", "0", "-i", "7"])
        #expect(pastEnd.status == 1 && pastEnd.output == "mqadmin: Index 7 of 0@CqTopic is not exist!", "\(pastEnd.output)")
        let noQueue = try mqadmin(["queryCq"] + n + ["-t", "CqTopic", "-q", "9", "-i", "0"])
        #expect(noQueue.status == 1 && noQueue.output.contains("9@CqTopic is not exist!"), "\(noQueue.output)")
    }

    @Test func queryConsumeQueueBodyRoundTripsAndIsBounded() throws {
        let body = QueryConsumeQueueResponseBody(filterData: "G@T is not online!", queueData: [
            ConsumeQueueData(physicOffset: 0, physicSize: 120, tagsCode: -5, eval: true),
            ConsumeQueueData(physicOffset: 1 << 40, physicSize: 64, tagsCode: 7),
        ], maxQueueIndex: 9, minQueueIndex: 2)
        #expect(try QueryConsumeQueueResponseBody.decode(from: body.encode()) == body)
        let units = String(repeating: "{\"physicOffset\":1,\"physicSize\":2},", count: QueryConsumeQueueResponseBody.unitsMax + 1)
        #expect(throws: BodyError.self) { try QueryConsumeQueueResponseBody.decode(from: "{\"queueData\":[\(units.dropLast())]}") }
    }

    @Test func sendRoundTripsAreMeasuredPerBrokerAndPerQueue() throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let status = lines(try mqadmin(["sendMsgStatus"] + n + ["-b", "broker-t", "-s", "64", "-c", "3"]).output)
        #expect(status.count == 3, "\(status)")
        #expect(status.allSatisfy { $0.hasPrefix("rt=") && $0.contains("ms, SendResult=SendResult [sendStatus=SEND_OK, msgId=")
            && $0.contains("messageQueue=MessageQueue [topic=broker-t, brokerName=broker-t, queueId=") }, "\(status)")

        let rt = lines(try mqadmin(["clusterRT"] + n + ["-a", "5", "-s", "32", "--rounds", "1"]).output)
        #expect(rt.count == 2, "\(rt)")
        #expect(rt.first == "#Cluster Name" + String(repeating: " ", count: 13) + "#Broker Name" + String(repeating: " ", count: 14)
                + "#RT   #successCount  #failCount", "\(rt)")
        let row = rt.last?.split(separator: " ", omittingEmptySubsequences: true).map(String.init) ?? []
        #expect(row.count == 5 && row[0] == "DefaultCluster" && row[1] == "broker-t" && Double(row[2]) != nil && row[3] == "5" && row[4] == "0",
                "\(rt)")
        let noCluster = try mqadmin(["clusterRT"] + n + ["-c", "Elsewhere", "--rounds", "1"])
        #expect(noCluster.status == 1 && noCluster.output == "mqadmin: cluster [Elsewhere] not exist", "\(noCluster.output)")

        #expect(try mqadmin(["updateTopic"] + n + ["-t", "RTTopic", "-c", "DefaultCluster", "-r", "2", "-w", "2"]).status == 0)
        let check = lines(try mqadmin(["checkMsgSendRT"] + n + ["-t", "RTTopic", "-a", "4", "-s", "16"]).output)
        #expect(check.count == 6 && check.first?.hasPrefix("#Broker Name") == true && check.last?.hasPrefix("Avg RT: ") == true, "\(check)")
        let queues = check.dropFirst().dropLast().map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(queues.map { $0.count >= 3 ? $0[1] : "" } == ["0", "1", "0", "1"], "queue by queue in turn: \(check)")
        #expect(queues.allSatisfy { $0.count == 4 && $0[0] == "broker-t" && $0[2] == "true" }, "\(check)")
    }
}
