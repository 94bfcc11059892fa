#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import NIOCore
import NIOPosix
import Broker
import Client
import Common
import NameServer
import Remoting
import Replication
import Testing
import TestSupport

func freePort() -> Int { freeLoopbackPort() }

func writeText(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

/// A real mqnamesrv and mqbroker on 127.0.0.1.
final class RunningBroker {
    let nameServer: RunningNameServer
    let otherNameServers: [RunningNameServer]
    let directory = TemporaryDirectory("broker")
    let port = freePort()
    var process: ChildProcess?
    /// What the last start printed up to "boot success".
    var bootLines: [String] = []
    var address: String { "127.0.0.1:\(port)" }

    convenience init(extraConfig: String = "", nameServers: Int = 1) throws {
        let servers = try (0..<nameServers).map { _ in try RunningNameServer() }
        try self.init(nameServers: servers, brokerName: "broker-t", extraConfig: extraConfig)
    }

    /// A broker registering with NameServers that already run (several brokers of a cluster share them).
    init(nameServers: [RunningNameServer], brokerName: String, startNow: Bool = true, extraConfig: String = "") throws {
        nameServer = nameServers[0]
        otherNameServers = Array(nameServers.dropFirst())
        let addresses = nameServers.map(\.address).joined(separator: ";")
        writeText(directory.path + "/broker.conf", """
            brokerName=\(brokerName)
            brokerIP1=127.0.0.1
            listenPort=\(port)
            haListenPort=\(freePort())
            namesrvAddr=\(addresses)
            storePathRootDir=\(directory.path)/store
            mappedFileSizeCommitLog=16777216
            maxMessageSize=65536
            \(extraConfig)
            """)
        if startNow { try start() }
    }

    func start() throws {
        guard let binary = builtExecutable("mqbroker") else { throw StoreError(.io, "mqbroker is not built") }
        let child = try ChildProcess([binary, "-c", directory.path + "/broker.conf"])
        var lines: [String] = []
        let deadline = monotonicNanos() + 30_000_000_000
        while !lines.contains(where: { $0.contains("boot success") }) && monotonicNanos() < deadline {
            guard let more = child.readLines(timeoutMillis: 100) else { break }
            lines += more
        }
        bootLines = lines
        guard lines.contains(where: { $0.contains("boot success") }) else { throw StoreError(.io, "mqbroker did not start: \(lines)") }
        process = child
    }
}

/// The broker process over the wire: bad input answered or its connection closed, the rest served;
/// admin requests; configuration errors.
@Suite(.serialized) struct BrokerTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func send(_ client: RemotingClient, _ broker: RunningBroker, topic: String, body: [UInt8], keys: String = "") async throws -> RemotingCommand {
        var request = RemotingCommand(code: RequestCode.sendMessageV2, opaque: 0, extFields: [
            "a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "\(wallClockMillis())", "h": "0",
            "i": keys.isEmpty ? "" : "KEYS\u{1}\(keys)\u{2}", "j": "0", "k": "false", "m": "false"])
        request.body = ByteBuffer(bytes: body)
        return try await client.invoke(broker.address, request)
    }

    @Test func badRequestsGetClearErrorsAndNothingStoredIsLost() async throws {
        let broker = try RunningBroker()
        let client = RemotingClient(group: group)
        let kept = try await send(client, broker, topic: "Good", body: Array("kept".utf8))
        #expect(kept.code == 0)
        #expect(kept.extFields["msgId"]?.count == 32)
        #expect(kept.extFields["MSG_REGION"] == "DefaultRegion")
        let oversized = try await send(client, broker, topic: "Good", body: [UInt8](repeating: 1, count: 70_000))
        #expect(oversized.code == ResponseCode.messageIllegal)
        #expect(oversized.remark?.contains("maxMessageSize") == true)
        let illegal = try await send(client, broker, topic: "bad topic!", body: [1])
        #expect(illegal.code == ResponseCode.systemError)
        #expect(illegal.remark?.contains("illegal") == true)
        let noTopic = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.sendMessageV2, opaque: 0, extFields: ["a": "PG"]))
        #expect(noTopic.code == ResponseCode.systemError)
        let pullMissing = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.pullMessage, opaque: 0, extFields: ["topic": "Good"]))
        #expect(pullMissing.code == ResponseCode.systemError)
        let unknown = try await client.invoke(broker.address, RemotingCommand(code: 7777, opaque: 0))
        #expect(unknown.code == ResponseCode.requestCodeNotSupported)
        // A 2 GiB length and a header that is not JSON close only that connection.
        for garbage: [UInt8] in [[0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1], [0, 0, 0, 8, 0, 0, 0, 4] + Array("nope".utf8)] {
            #expect(serverClosesAfterSending(garbage, toPort: broker.port), "the broker closes a connection that sent a bad frame")
        }
        // Everything stored is still there and the broker still serves (a send is answered once the commit log
        // holds it; its consume-queue unit is dispatched a moment later).
        var pull = RemotingCommand(code: -1, opaque: 0)
        #expect(await eventually(10) {
            pull = (try? await client.invoke(broker.address, RemotingCommand(code: RequestCode.pullMessage, opaque: 0, extFields: [
                "consumerGroup": "G", "topic": "Good", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32", "sysFlag": "4",
                "commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"]))) ?? pull
            return pull.code == 0
        })
        #expect(pull.extFields["maxOffset"] == "1")
        #expect(try await send(client, broker, topic: "Good", body: Array("after".utf8)).code == 0)
        await client.close()
        #expect(broker.process?.terminate() == 0)
    }

    @Test func adminRequestsCreateQueryAndDeleteTopics() async throws {
        let broker = try RunningBroker()
        let client = RemotingClient(group: group)
        let create = RemotingCommand(code: RequestCode.updateAndCreateTopic, opaque: 0, extFields: [
            "topic": "AdminTopic", "defaultTopic": "TBW102", "readQueueNums": "3", "writeQueueNums": "3", "perm": "6",
            "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"])
        #expect(try await client.invoke(broker.address, create).code == 0)
        #expect(try await send(client, broker, topic: "AdminTopic", body: [1, 2], keys: "order-42").code == 0)
        let stats = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.getTopicStatsInfo, opaque: 0, extFields: ["topic": "AdminTopic"]))
        #expect(stats.body.map { String(buffer: $0) }?.contains("\"queueId\":2") == true)
        // The route reaches the NameServer once the broker re-registers.
        var routed = false
        let deadline = monotonicNanos() + 5_000_000_000
        while !routed && monotonicNanos() < deadline {
            let route = try await client.invoke(broker.nameServer.address, RemotingCommand(code: RequestCode.getRouteInfoByTopic, opaque: 0, extFields: ["topic": "AdminTopic"]))
            routed = route.code == 0 && route.body.map { String(buffer: $0) }?.contains("\"readQueueNums\":3") == true
            if !routed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(routed)
        let queryRequest = RemotingCommand(code: RequestCode.queryMessage, opaque: 0, extFields: [
            "topic": "AdminTopic", "key": "order-42", "maxNum": "8", "beginTimestamp": "0", "endTimestamp": "\(Int64.max)"])
        // The key is found once dispatch has indexed the message.
        #expect(await eventually(5) { (try? await client.invoke(broker.address, queryRequest).code) == ResponseCode.success })
        let query = try await client.invoke(broker.address, queryRequest)
        #expect((query.body?.readableBytes ?? 0) > 0)
        let runtime = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.getBrokerRuntimeInfo, opaque: 0))
        #expect(runtime.body.map { String(buffer: $0) }?.contains("\"brokerVersionDesc\"") == true)
        #expect(try await client.invoke(broker.address, RemotingCommand(code: RequestCode.deleteTopicInBroker, opaque: 0, extFields: ["topic": "AdminTopic"])).code == 0)
        let gone = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.getTopicStatsInfo, opaque: 0, extFields: ["topic": "AdminTopic"]))
        #expect(gone.code == ResponseCode.topicNotExist)
        await client.close()
        _ = broker.process?.terminate()
    }

    @Test func brokerRegistersWithEveryNameServerAndUnregistersOnSigterm() async throws {
        let broker = try RunningBroker(nameServers: 2)
        let client = RemotingClient(group: group)
        for nameServer in [broker.nameServer] + broker.otherNameServers {
            let route = try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.getRouteInfoByTopic, opaque: 0, extFields: ["topic": "TBW102"]))
            #expect(route.code == 0, "TBW102 is routed by \(nameServer.address)")
            #expect(route.body.map { String(buffer: $0) }?.contains("\"perm\":7") == true)
        }
        #expect(broker.process?.terminate() == 0)
        for nameServer in [broker.nameServer] + broker.otherNameServers {
            let route = try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.getRouteInfoByTopic, opaque: 0, extFields: ["topic": "TBW102"]))
            #expect(route.code == ResponseCode.topicNotExist, "a stopped broker unregistered from \(nameServer.address)")
        }
        await client.close()
    }

    func heartbeat(_ client: RemotingClient, _ broker: RunningBroker, clientID: String, group: String) async throws -> RemotingCommand {
        let body = "{\"clientID\":\"\(clientID)\",\"consumerDataSet\":[{\"consumeFromWhere\":0,\"consumeType\":1,\"groupName\":\"\(group)\",\"messageModel\":1,\"subscriptionDataSet\":[{\"subString\":\"*\",\"subVersion\":\"1\",\"topic\":\"T\"}]}]}\n"
        return try await client.invoke(broker.address, RemotingCommand(code: RequestCode.heartBeat, opaque: 0, body: ByteBuffer(string: body)))
    }

    @Test func membershipChangeNotifiesTheGroupsConsumers() async throws {
        let broker = try RunningBroker()
        let notified = NotificationBox()
        let first = RemotingClient(group: group) { command, _ in
            if command.code == RequestCode.notifyConsumerIdsChanged { notified.add(command.extFields["consumerGroup"] ?? "") }
        }
        let second = RemotingClient(group: group)
        #expect(try await heartbeat(first, broker, clientID: "client-1", group: "G").code == 0)
        #expect(try await heartbeat(second, broker, clientID: "client-2", group: "G").code == 0)
        let list = try await first.invoke(broker.address, RemotingCommand(code: RequestCode.getConsumerListByGroup, opaque: 0, extFields: ["consumerGroup": "G"]))
        #expect(list.body.map { String(buffer: $0) } == #"{"consumerIdList":["client-1","client-2"]}"#)
        let deadline = monotonicNanos() + 5_000_000_000
        while notified.count < 2 && monotonicNanos() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(notified.count >= 2, "client-1 hears of its own join and of client-2's")
        let before = notified.count
        await second.close()  // a closed connection removes its client and notifies the rest
        while notified.count == before && monotonicNanos() < deadline + 5_000_000_000 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(notified.count > before)
        let after = try await first.invoke(broker.address, RemotingCommand(code: RequestCode.getConsumerListByGroup, opaque: 0, extFields: ["consumerGroup": "G"]))
        #expect(after.body.map { String(buffer: $0) } == #"{"consumerIdList":["client-1"]}"#)
        // The retry topic exists and is routed.
        let route = try await first.invoke(broker.nameServer.address, RemotingCommand(code: RequestCode.getRouteInfoByTopic, opaque: 0, extFields: ["topic": "%RETRY%G"]))
        #expect(route.code == 0)
        await first.close()
        _ = broker.process?.terminate()
    }

    @Test func delayedMessageDueDuringARestartIsDeliveredOnce() async throws {
        let broker = try RunningBroker()
        let client = RemotingClient(group: group)
        var request = RemotingCommand(code: RequestCode.sendMessageV2, opaque: 0, extFields: [
            "a": "PG", "b": "Later", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "0", "h": "0",
            "i": "DELAY\u{1}2\u{2}", "j": "0", "k": "false", "m": "false"])
        request.body = ByteBuffer(string: "due in 5 s")
        #expect(try await client.invoke(broker.address, request).code == 0)
        await client.close()
        #expect(broker.process?.terminate() == 0)
        try await Task.sleep(for: .seconds(6))  // due while the broker is down
        try broker.start()
        let reader = RemotingClient(group: group)
        var found: [String] = []
        let deadline = monotonicNanos() + 10_000_000_000
        while found.isEmpty && monotonicNanos() < deadline {
            let pull = try await reader.invoke(broker.address, RemotingCommand(code: RequestCode.pullMessage, opaque: 0, extFields: [
                "consumerGroup": "R", "topic": "Later", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32", "sysFlag": "4",
                "commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"]))
            if pull.code == 0, let body = pull.body { found.append(String(buffer: body)) } else { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(found.count == 1)
        #expect(found.first?.contains("due in 5 s") == true)
        // Delivered once: the schedule's progress was kept, so it is not put again.
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await reader.invoke(broker.address, RemotingCommand(code: RequestCode.getMaxOffset, opaque: 0, extFields: ["topic": "Later", "queueId": "0"])).extFields["offset"] == "1")
        await reader.close()
        _ = broker.process?.terminate()
    }

    @Test func badBrokerConfStopsStartUpNamingFileLineKeyAndAllowedValues() throws {
        guard let binary = builtExecutable("mqbroker") else { Issue.record("mqbroker is not built"); return }
        let directory = TemporaryDirectory("broker-conf")
        writeText(directory.path + "/broker.conf", "brokerName=b\nsurpriseKey=1\nflushDiskType=SOMETIMES\n")
        let process = try ChildProcess([binary, "-c", directory.path + "/broker.conf"])
        var lines: [String] = []
        let deadline = monotonicNanos() + 10_000_000_000
        while monotonicNanos() < deadline, let more = process.readLines(timeoutMillis: 100) { lines += more }
        #expect(lines.contains { $0.contains("broker.conf:2: unknown key surpriseKey") }, "\(lines)")
        #expect(lines.contains { $0.contains("broker.conf:3: flushDiskType must be ASYNC_FLUSH or SYNC_FLUSH, not \"SOMETIMES\"") }, "\(lines)")
    }
}

final class NotificationBox: @unchecked Sendable {
    private let lock = ConditionLock()
    private var groups: [String] = []
    func add(_ group: String) { lock.withLock { groups.append(group) } }
    var count: Int { lock.withLock { groups.count } }
}
