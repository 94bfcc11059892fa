#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Common
import NIOCore
import NIOPosix
import Remoting
import Testing
import TestSupport

/// What a hostile client sends cannot crash, bloat or wedge a role (reliability issue): every test sends the
/// bad input to a real process, then checks the process still answers and kept what it had.
@Suite(.serialized) struct HostileInputTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func deepJSON(_ depth: Int) -> ByteBuffer {
        ByteBuffer(string: String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
    }

    func residentKiB(_ pid: pid_t) -> Int {
        let status = readTextFile("/proc/\(pid)/status") ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test func bodiesNestedAHundredThousandDeepAreRefusedAndBothRolesKeepServing() async throws {
        let broker = try RunningBroker()
        let client = RemotingClient(group: group)
        for code in [RequestCode.heartBeat, RequestCode.lockBatchMQ, RequestCode.unlockBatchMQ] {
            let answer = try await client.invoke(broker.address, RemotingCommand(code: code, opaque: 0, body: deepJSON(100_000)))
            #expect(answer.code == ResponseCode.systemError, "code \(code)")
            #expect(answer.remark?.contains("nested deeper") == true, "code \(code): \(answer.remark ?? "")")
        }
        let nameServer = broker.nameServer.address
        for code in [RequestCode.registerBroker, RequestCode.queryDataVersion] {
            let request = RemotingCommand(code: code, opaque: 0, extFields: [
                "brokerName": "b", "brokerAddr": "127.0.0.1:1", "clusterName": "c", "brokerId": "0"], body: deepJSON(100_000))
            _ = try await client.invoke(nameServer, request)
        }
        // Both still answer, and the broker's registration survived.
        let route = try await client.invoke(nameServer, RemotingCommand(code: RequestCode.getRouteInfoByTopic, opaque: 0,
                                                                        extFields: ["topic": TopicValidator.autoCreateTopicKeyTopic]))
        #expect(route.code == ResponseCode.success)
        #expect(try await client.invoke(broker.address, RemotingCommand(code: RequestCode.getBrokerRuntimeInfo, opaque: 0)).code == 0)
        await client.close()
        #expect(broker.process?.terminate() == 0)
    }

    @Test func aBatchOfEmptyRecordsWithHugeBatchPropertiesIsRefusedBeforeAnyCopy() async throws {
        let broker = try RunningBroker(extraConfig: "maxMessageSize=4194304")
        let client = RemotingClient(group: group)
        var body = ByteBuffer()
        for _ in 0..<47_000 {
            body.writeInteger(Int32(22))
            body.writeInteger(Int32(0))
            body.writeInteger(Int32(0))
            body.writeInteger(Int32(0))
            body.writeInteger(Int32(0))
            body.writeInteger(Int16(0))
        }
        let batchProperties = "P\u{1}" + String(repeating: "x", count: 40_000) + "\u{2}"
        let request = RemotingCommand(code: RequestCode.sendBatchMessage, opaque: 0, extFields: [
            "a": "PG", "b": "Batched", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "0", "h": "0", "i": batchProperties,
            "j": "0", "k": "false", "m": "true"], body: body)
        let before = residentKiB(broker.process!.pid)
        let answer = try await client.invoke(broker.address, request, timeoutMillis: 10_000)
        #expect(answer.code == ResponseCode.messageIllegal, "\(answer.remark ?? "")")
        // 47,000 copies of 40 KB would be 1.9 GB; refusing first keeps the broker within the frame's own size.
        #expect(residentKiB(broker.process!.pid) - before < 200_000, "the broker grew while refusing the batch")
        await client.close()
        #expect(broker.process?.terminate() == 0)
    }

    @Test func systemTopicsAndMalformedNumbersAreRefusedWithAClearRemark() async throws {
        let broker = try RunningBroker()
        let client = RemotingClient(group: group)
        func send(topic: String, queueID: String) async throws -> RemotingCommand {
            try await client.invoke(broker.address, RemotingCommand(code: RequestCode.sendMessageV2, opaque: 0, extFields: [
                "a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": queueID, "f": "0", "g": "0", "h": "0", "i": "",
                "j": "0", "k": "false", "m": "false"], body: ByteBuffer(string: "x")))
        }
        for topic in [TopicValidator.scheduleTopic, TopicValidator.autoCreateTopicKeyTopic, TopicValidator.transactionHalfTopic] {
            let refused = try await send(topic: topic, queueID: "0")
            #expect(refused.code == ResponseCode.noPermission, "\(topic)")
            #expect(refused.remark?.contains("forbidden") == true)
        }
        let malformed = try await send(topic: "Numbers", queueID: "abc")
        #expect(malformed.code == ResponseCode.systemError)
        #expect(malformed.remark?.contains("queueId") == true && malformed.remark?.contains("abc") == true, "\(malformed.remark ?? "")")
        let offset = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.queryConsumerOffset, opaque: 0, extFields: [
            "consumerGroup": "G", "topic": "Numbers", "queueId": "1x"]))
        #expect(offset.code == ResponseCode.systemError)
        #expect(offset.remark?.contains("queueId") == true)
        #expect(try await send(topic: "Numbers", queueID: "0").code == ResponseCode.success)
        await client.close()
        #expect(broker.process?.terminate() == 0)
    }

    @Test func unfinishedFramesDrawOnABoundedBudgetAndMustCompleteInTime() async throws {
        let broker = try RunningBroker(extraConfig: "serverPendingFrameBytesMax=33554432\nserverFrameReadTimeoutMillis=1000\n")
        // Two unfinished 16 MiB frames fit the 32 MiB budget; a third is refused at once.
        let header: [UInt8] = [0x00, 0xFF, 0xFF, 0xF0, 0, 0, 0, 4]
        let first = try #require(RawConnection(port: broker.port))
        let second = try #require(RawConnection(port: broker.port))
        let third = try #require(RawConnection(port: broker.port))
        first.send(header)
        second.send(header)
        #expect(!first.closedByServer(withinMillis: 200))
        third.send(header)
        #expect(third.closedByServer(withinMillis: 5_000), "a frame past the budget closes its connection")
        // A frame trickling in is closed after its deadline, and its reservation returns to the budget.
        for _ in 0..<30 where !first.closedByServer(withinMillis: 100) { first.send([0x41]) }
        #expect(first.closedByServer(withinMillis: 5_000), "a frame slower than serverFrameReadTimeoutMillis closes")
        // Its reservation returns to the budget once the server tore the connection down.
        var admitted: RawConnection?
        for _ in 0..<50 where admitted == nil {
            guard let fourth = RawConnection(port: broker.port) else { break }
            fourth.send(header)
            if !fourth.closedByServer(withinMillis: 200) { admitted = fourth }
        }
        #expect(admitted != nil, "the slow frame's bytes were released")
        let client = RemotingClient(group: group)
        #expect(try await client.invoke(broker.address, RemotingCommand(code: RequestCode.getBrokerRuntimeInfo, opaque: 0)).code == 0)
        await client.close()
        #expect(broker.process?.terminate() == 0)
    }

    @Test func idleConnectionsAreClosed() throws {
        let broker = try RunningBroker(extraConfig: "serverChannelMaxIdleTimeSeconds=1\n")
        let idle = try #require(RawConnection(port: broker.port))
        #expect(idle.closedByServer(withinMillis: 10_000))
        #expect(broker.process?.terminate() == 0)
    }
}
