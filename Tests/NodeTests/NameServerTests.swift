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

/// A real `mqnamesrv` process on 127.0.0.1, driven over the wire.
final class RunningNameServer {
    let process: ChildProcess
    let address: String
    let directory = TemporaryDirectory("namesrv")
    var output: [String] = []

    init(extraConfig: String = "") throws {
        guard let binary = builtExecutable("mqnamesrv") else { throw StoreError(.io, "mqnamesrv is not built; run swift build") }
        let configPath = directory.path + "/namesrv.properties"
        let fd = open(configPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let text = "listenPort=0\n" + extraConfig
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        process = try ChildProcess([binary, "-c", configPath, "--logs-dir", directory.path + "/logs"])
        let deadline = monotonicNanos() + 20_000_000_000
        var port: String?
        while port == nil && monotonicNanos() < deadline {
            guard let lines = process.readLines(timeoutMillis: 100) else { break }
            output += lines
            port = lines.first { $0.contains("boot success") }?.split(separator: "=").last.map(String.init)
        }
        guard let port else { throw StoreError(.io, "mqnamesrv did not start: \(output)") }
        address = "127.0.0.1:\(port)"
    }
}

@Suite(.serialized) struct NameServerTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func registration(broker: String = "broker-a", address: String = "127.0.0.1:10911", id: Int64 = 0,
                      topics: [(String, Int)] = [("TopicTest", 4)], counter: Int = 1) -> RemotingCommand {
        let table = topics.map { "\"\($0.0)\":{\"order\":false,\"perm\":6,\"readQueueNums\":\($0.1),\"topicFilterType\":\"SINGLE_TAG\",\"topicName\":\"\($0.0)\",\"topicSysFlag\":0,\"writeQueueNums\":\($0.1)}" }
        let body = "{\"filterServerList\":[],\"topicConfigSerializeWrapper\":{\"dataVersion\":{\"counter\":\(counter),\"timestamp\":1700000000000},\"topicConfigTable\":{\(table.joined(separator: ","))}}}"
        let crc = Array(body.utf8).withUnsafeBytes { rocketCRC32($0) }
        return RemotingCommand(code: RequestCode.registerBroker, opaque: 0, extFields: [
            "brokerName": broker, "brokerAddr": address, "clusterName": "DefaultCluster", "haServerAddr": "127.0.0.1:10912",
            "brokerId": "\(id)", "compressed": "false", "bodyCrc32": "\(crc)"], body: ByteBuffer(string: body))
    }

    func route(_ client: RemotingClient, _ nameServer: String, _ topic: String, version: Int32 = 63) async throws -> RemotingCommand {
        var request = RemotingCommand(code: RequestCode.getRouteInfoByTopic, opaque: 0, extFields: ["topic": topic])
        request.version = version
        return try await client.invoke(nameServer, request)
    }

    @Test func brokerRegistrationMakesRoutesInBothJSONForms() async throws {
        let nameServer = try RunningNameServer()
        let client = RemotingClient(group: group)
        #expect(try await client.invoke(nameServer.address, registration()).code == 0)
        #expect(try await client.invoke(nameServer.address, registration(address: "127.0.0.1:10921", id: 1)).extFields["masterAddr"] == "127.0.0.1:10911")
        let form1 = try await route(client, nameServer.address, "TopicTest")
        #expect(form1.code == 0)
        #expect(form1.body.map { String(buffer: $0) } == #"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#)
        let form2 = try await route(client, nameServer.address, "TopicTest", version: 407)
        #expect(form2.body.map { String(buffer: $0) }?.contains(#"{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"}"#) == true)
        let missing = try await route(client, nameServer.address, "Nope")
        #expect(missing.code == ResponseCode.topicNotExist)
        #expect(missing.remark == "No topic route info in name server for the topic: Nope")
        let cluster = try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.getBrokerClusterInfo, opaque: 0))
        #expect(cluster.body.map { String(buffer: $0) }?.contains(#""clusterAddrTable":{"DefaultCluster":["broker-a"]}"#) == true)
        let topics = try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.getAllTopicListFromNameServer, opaque: 0))
        #expect(topics.body.map { String(buffer: $0) } == #"{"topicList":["TopicTest"]}"#)
        #expect(try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.deleteTopicInNamesrv, opaque: 0, extFields: ["topic": "TopicTest"])).code == 0)
        #expect(try await route(client, nameServer.address, "TopicTest").code == ResponseCode.topicNotExist)
        await client.close()
        #expect(nameServer.process.terminate() == 0, "SIGTERM stops the NameServer with exit 0")
    }

    /// A DLedger member registers as a slave (id 2) first, then, elected, as the master with the same data version:
    /// its topics (TBW102 among them, which auto-creation needs) must reach the routes then.
    @Test func anAddressThatBecomesMasterBringsItsTopicsWithAnUnchangedDataVersion() async throws {
        let nameServer = try RunningNameServer()
        let client = RemotingClient(group: group)
        #expect(try await client.invoke(nameServer.address, registration(id: 2, topics: [("TBW102", 8)], counter: 5)).code == 0)
        #expect(try await route(client, nameServer.address, "TBW102").code == ResponseCode.topicNotExist, "a slave's topics make no route")
        #expect(try await client.invoke(nameServer.address, registration(id: 0, topics: [("TBW102", 8)], counter: 5)).code == 0)
        let elected = try await route(client, nameServer.address, "TBW102")
        #expect(elected.code == 0, "the new master's topics are routed")
        #expect(elected.body.map { String(buffer: $0) }?.contains(#""brokerAddrs":{0:"127.0.0.1:10911"}"#) == true)
        await client.close()
        _ = nameServer.process.terminate()
    }

    @Test func silentBrokerExpiresAndAClosedConnectionDropsItAtOnce() async throws {
        let nameServer = try RunningNameServer(extraConfig: "scanNotActiveBrokerInterval=200\nbrokerChannelExpiredTime=1000\n")
        let keeper = RemotingClient(group: group)
        #expect(try await keeper.invoke(nameServer.address, registration(broker: "broker-b", address: "127.0.0.1:20911", topics: [("Kept", 2)])).code == 0)
        // A broker whose connection closes is dropped at once.
        let leaving = RemotingClient(group: group)
        #expect(try await leaving.invoke(nameServer.address, registration(broker: "broker-c", address: "127.0.0.1:30911", topics: [("Gone", 2)])).code == 0)
        #expect(try await route(keeper, nameServer.address, "Gone").code == 0)
        await leaving.close()
        #expect(await eventually(5) { (try? await route(keeper, nameServer.address, "Gone").code) == ResponseCode.topicNotExist })
        // A silent broker (still connected) goes after brokerChannelExpiredTime.
        #expect(try await route(keeper, nameServer.address, "Kept").code == 0)
        #expect(await eventually(10) { (try? await route(keeper, nameServer.address, "Kept").code) == ResponseCode.topicNotExist })
        await keeper.close()
        _ = nameServer.process.terminate()
    }

    @Test func kvConfigBadRequestsAndUnknownCodes() async throws {
        let nameServer = try RunningNameServer()
        let client = RemotingClient(group: group)
        let put = RemotingCommand(code: RequestCode.putKVConfig, opaque: 0, extFields: ["namespace": "ORDER_TOPIC_CONFIG", "key": "T", "value": "broker-a:4"])
        #expect(try await client.invoke(nameServer.address, put).code == 0)
        let get = try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.getKVConfig, opaque: 0, extFields: ["namespace": "ORDER_TOPIC_CONFIG", "key": "T"]))
        #expect(get.extFields["value"] == "broker-a:4")
        let absent = try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.getKVConfig, opaque: 0, extFields: ["namespace": "X", "key": "Y"]))
        #expect(absent.code == ResponseCode.queryNotFound)
        let unknown = try await client.invoke(nameServer.address, RemotingCommand(code: 4242, opaque: 0))
        #expect(unknown.code == ResponseCode.requestCodeNotSupported)
        let lacking = try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.registerBroker, opaque: 0, extFields: ["brokerName": "x"]))
        #expect(lacking.code == ResponseCode.systemError)
        #expect(lacking.remark?.contains("brokerAddr") == true)
        var badCRC = registration()
        badCRC.extFields["bodyCrc32"] = "12345"
        #expect(try await client.invoke(nameServer.address, badCRC).code == ResponseCode.systemError)
        await client.close()
        _ = nameServer.process.terminate()
    }

    @Test func badFramesCloseOneConnectionAndTheNameServerKeepsServing() async throws {
        let nameServer = try RunningNameServer()
        let client = RemotingClient(group: group)
        #expect(try await client.invoke(nameServer.address, registration()).code == 0)
        let port = Int(nameServer.address.split(separator: ":")[1])!
        let frames: [[UInt8]] = [
            [0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1],                       // a 2 GiB length
            [0, 0, 0, 8, 0, 0, 0, 4] + Array("nope".utf8),              // a header that is not JSON
            [0, 0, 0, 8, 0, 0, 0, 0x40] + Array("{}{}".utf8),           // a header longer than its frame
            [0, 0, 0, 6, 9, 0, 0, 2] + Array("{}".utf8),                // an unknown serialize type
            [0, 0, 0, 0x10, 0, 0, 0, 0x0C] + Array("{\"opaque\":1}".utf8), // no code
        ]
        for frame in frames { #expect(serverClosesAfterSending(frame, toPort: port), "\(frame)") }
        // A frame cut short is simply incomplete: the connection stays open until the peer goes.
        #expect(try await route(client, nameServer.address, "TopicTest").code == 0, "routes survive bad frames")
        let missing = try await client.invoke(nameServer.address, RemotingCommand(code: RequestCode.getRouteInfoByTopic, opaque: 0))
        #expect(missing.code == ResponseCode.systemError)
        #expect(missing.remark?.contains("topic") == true)
        await client.close()
        #expect(nameServer.process.terminate() == 0)
    }

    /// A role started by a process that then dies (a crashed test run) stops by itself with MQ_EXIT_WITH_PARENT.
    @Test func roleStopsWhenItsParentDies() throws {
        guard let binary = builtExecutable("mqnamesrv") else { throw StoreError(.io, "mqnamesrv is not built") }
        let directory = TemporaryDirectory("orphan")
        writeText(directory.path + "/ns.properties", "listenPort=0\n")
        let started = try ChildProcess.run(["/bin/sh", "-c",
            "MQ_EXIT_WITH_PARENT=$$ '\(binary)' -c '\(directory.path)/ns.properties' >/dev/null 2>&1 </dev/null & echo $!"])
        let pid = try #require(started.output.split(separator: "\n").first.flatMap { Int32($0) })
        // Running: it exists and is not a zombie waiting for its new parent to reap it.
        func running() -> Bool {
            guard kill(pid, 0) == 0 else { return false }
            return !(readTextFile("/proc/\(pid)/stat") ?? "").contains(") Z ")
        }
        let deadline = monotonicNanos() + 10_000_000_000
        while running() && monotonicNanos() < deadline { usleep(50_000) }
        #expect(!running(), "the orphaned mqnamesrv \(pid) is still running")
        if running() { kill(pid, SIGKILL) }
    }

    @Test func badConfigValueStopsStartUpNamingFileLineAndKey() throws {
        guard let binary = builtExecutable("mqnamesrv") else { Issue.record("mqnamesrv is not built"); return }
        let directory = TemporaryDirectory("namesrv-conf")
        let path = directory.path + "/namesrv.properties"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let text = "# comment\nlistenPort=0\nscanNotActiveBrokerInterval=soon\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let process = try ChildProcess([binary, "-c", path])
        var lines: [String] = []
        let deadline = monotonicNanos() + 10_000_000_000
        while monotonicNanos() < deadline, let more = process.readLines(timeoutMillis: 100) { lines += more }
        #expect(lines.contains { $0.contains("namesrv.properties:3: scanNotActiveBrokerInterval must be an integer") }, "\(lines)")
    }
}
