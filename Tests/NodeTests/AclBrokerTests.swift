import Client
import CommitLog
import Common
import NIOCore
import NIOPosix
import Remoting
import Testing
import TestSupport

/// A real `mqbroker` with `aclEnable=true` driven by the Swift client and `mqadmin`: the right keys send and pull;
/// a wrong secret, an unknown key, no key, a DENY topic and a non-admin's admin request are refused NO_PERMISSION
/// with RocketMQ's remark and store nothing (the queues' max offsets stay where they were); a rewritten
/// `plain_acl.yml` takes effect without a restart, a broken one keeps the last good rules; the ACL commands write
/// the file back.
@Suite(.serialized) struct AclBrokerTests {
    static let user = SessionCredentials(accessKey: "RocketMQ", secretKey: "12345678")
    static let admin = SessionCredentials(accessKey: "rocketmq2", secretKey: "87654321")

    static func aclFile(denyTopicPerm: String = "DENY") -> String {
        """
        # accounts for the ACL tests
        globalWhiteRemoteAddresses:
        accounts:
          - accessKey: RocketMQ
            secretKey: "12345678"
            admin: false
            defaultTopicPerm: DENY
            defaultGroupPerm: SUB
            topicPerms:
              - AclTopic=PUB|SUB
              - DenyTopic=\(denyTopicPerm)
          - accessKey: rocketmq2
            secretKey: '87654321'
            admin: true
        """
    }

    /// A NameServer and a broker with ACL on, `plain_acl.yml` beside its `broker.conf`.
    static func aclBroker(_ file: String = aclFile()) throws -> RunningBroker {
        let broker = try RunningBroker(nameServers: [try RunningNameServer()], brokerName: "broker-t", startNow: false,
                                       extraConfig: "aclEnable=true\nautoCreateTopicEnable=false")
        writeText(broker.directory.path + "/plain_acl.yml", file)
        try broker.start()
        return broker
    }

    func producer(_ broker: RunningBroker, _ credentials: SessionCredentials?) -> Producer {
        var config = ClientConfig(namesrvAddr: broker.nameServer.address)
        config.credentials = credentials
        var settings = Producer.Settings()
        settings.group = "PG_ACL"
        settings.retryTimesWhenSendFailed = 0
        let producer = Producer(config: config, settings: settings)
        producer.start()
        return producer
    }

    /// The sum of a topic's max offsets, read with the admin's keys.
    func storedCount(_ broker: RunningBroker, _ topic: String) async throws -> Int64 {
        var config = ClientConfig(namesrvAddr: broker.nameServer.address)
        config.credentials = Self.admin
        let consumer = PullConsumer(group: "CG_COUNT", config: config)
        consumer.start()
        defer { Task { await consumer.shutdown() } }
        var total: Int64 = 0
        for queue in try await consumer.fetchSubscribeMessageQueues(topic) { total += try await consumer.maxOffset(queue) }
        return total
    }

    func createTopics(_ broker: RunningBroker, _ topics: [String]) async throws {
        let admin = Admin(namesrvAddr: broker.nameServer.address, credentials: Self.admin)
        defer { Task { await admin.shutdown() } }
        for topic in topics {
            _ = try await admin.updateTopic(topic, brokerAddr: broker.address, cluster: nil, readQueueNums: 2, writeQueueNums: 2,
                                            perm: .readWrite, order: false)
        }
        #expect(await eventually(10) { (try? await admin.topicRoute(topics.last!)) != nil })
    }

    /// The remark of a refused send (nil when it was stored).
    func refusal(_ producer: Producer, _ topic: String) async -> String? {
        do {
            _ = try await producer.send(Message(topic: topic, body: "refused?"))
            return nil
        } catch ClientError.broker(let code, let remark, _) {
            #expect(code == ResponseCode.noPermission, "\(remark)")
            return remark
        } catch {
            return "\(error)"
        }
    }

    @Test func rightKeysWorkAndEveryWrongOneIsRefusedStoringNothing() async throws {
        let broker = try Self.aclBroker()
        try await createTopics(broker, ["AclTopic", "DenyTopic"])

        let user = producer(broker, Self.user)
        let sent = try await user.send(Message(topic: "AclTopic", body: "with the right keys"))
        #expect(sent.status == .sendOK)
        var config = ClientConfig(namesrvAddr: broker.nameServer.address)
        config.credentials = Self.user
        let consumer = PullConsumer(group: "CG_ACL", config: config)
        consumer.start()
        let queue = try #require(try await consumer.fetchSubscribeMessageQueues("AclTopic").first { $0 == sent.queue })
        var bodies: [String] = []
        #expect(await eventually(10) {
            bodies = (try? await consumer.pull(queue, offset: 0).messages.map(\.bodyString)) ?? []
            return !bodies.isEmpty
        })
        #expect(bodies == ["with the right keys"])
        await consumer.shutdown()

        #expect(await refusal(user, "DenyTopic") == "No default permission for topic:DenyTopic")
        let wrongSecret = producer(broker, SessionCredentials(accessKey: "RocketMQ", secretKey: "not-the-secret"))
        #expect(await refusal(wrongSecret, "AclTopic") == "Check signature failed for accessKey=RocketMQ")
        let unknown = producer(broker, SessionCredentials(accessKey: "stranger", secretKey: "12345678"))
        #expect(await refusal(unknown, "AclTopic") == "No acl config for stranger")
        let anonymous = producer(broker, nil)
        #expect(await refusal(anonymous, "AclTopic") == "No accessKey is configured")
        for refused in [wrongSecret, unknown, anonymous] { await refused.shutdown() }
        // One more good send after the refused ones: queues are built in log order, so once it is counted anything
        // stored before it would be counted too.
        #expect(try await user.send(Message(topic: "AclTopic", body: "after the refusals")).status == .sendOK)
        await user.shutdown()
        #expect(await eventually(10) { (try? await storedCount(broker, "AclTopic")) == 2 })
        #expect(try await storedCount(broker, "DenyTopic") == 0)

        // A non-admin's admin request: refused, and the topic is not created.
        let notAdmin = Admin(namesrvAddr: broker.nameServer.address, credentials: Self.user)
        do {
            _ = try await notAdmin.updateTopic("SneakyTopic", brokerAddr: broker.address, cluster: nil, readQueueNums: 1, writeQueueNums: 1,
                                               perm: .readWrite, order: false)
            Issue.record("a non-admin created a topic")
        } catch ClientError.broker(let code, let remark, _) {
            #expect(code == ResponseCode.noPermission)
            #expect(remark == "Need admin permission for request code=17, but accessKey=RocketMQ is not")
        }
        await notAdmin.shutdown()
        // The broker's own topic table (GET_ALL_TOPIC_CONFIG, asked with the admin's keys) has no such topic.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = RemotingClient(group: group, credentials: Self.admin)
        let topics = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.getAllTopicConfig, opaque: 0))
        #expect(topics.code == ResponseCode.success)
        let text = topics.body.map { String(buffer: $0) } ?? ""
        #expect(text.contains("AclTopic") && !text.contains("SneakyTopic"))
        await client.close()
        try await group.shutdownGracefully()
    }

    @Test func aReloadChangesPermissionsWithoutARestartAndABadFileKeepsTheLastRules() async throws {
        let broker = try Self.aclBroker()
        try await createTopics(broker, ["DenyTopic"])
        let user = producer(broker, Self.user)
        #expect(await refusal(user, "DenyTopic") == "No default permission for topic:DenyTopic")

        #expect(TextFile.writeAtomically(broker.directory.path + "/plain_acl.yml", Self.aclFile(denyTopicPerm: "PUB")))
        #expect(await eventually(10) { await refusal(user, "DenyTopic") == nil })
        #expect(await eventually(10) { ((try? await storedCount(broker, "DenyTopic")) ?? 0) >= 1 })

        #expect(TextFile.writeAtomically(broker.directory.path + "/plain_acl.yml", "accounts:\n  - accessKey: RocketMQ\n\tsecretKey: x\n"))
        var logged: [String] = []
        let deadline = monotonicNanos() + 10_000_000_000
        while !logged.contains(where: { $0.contains("keeping the previous rules") }) && monotonicNanos() < deadline {
            logged += broker.process?.readLines(timeoutMillis: 100) ?? []
        }
        let line = logged.first { $0.contains("keeping the previous rules") }
        #expect(line?.contains("plain_acl.yml:3: tab in indentation") == true, "\(logged)")
        #expect(await refusal(user, "DenyTopic") == nil)  // the last good rules still allow it
        await user.shutdown()
    }

    @Test func aBadFileStopsStartUpNamingTheLine() throws {
        let broker = try RunningBroker(nameServers: [try RunningNameServer()], brokerName: "broker-t", startNow: false,
                                       extraConfig: "aclEnable=true")
        writeText(broker.directory.path + "/plain_acl.yml", "accounts:\n  - accessKey: RocketMQ\n    secretKey: 12345678\n    defaultTopicPerm: ALL\n")
        #expect(throws: (any Error).self) { try broker.start() }
        let text = broker.bootLines.joined(separator: "\n")
        #expect(text.contains("plain_acl.yml:2") && text.contains("defaultTopicPerm \"ALL\""), "\(text)")
    }

    func mqadmin(_ arguments: [String]) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("mqadmin") else { throw StoreError(.io, "mqadmin is not built") }
        return try ChildProcess.run([binary] + arguments)
    }

    /// The five ACL commands of mqadmin with an admin's keys: each change is in force at once and written back to
    /// `plain_acl.yml` with its data version bumped; a non-admin's keys are refused and change nothing.
    @Test func mqadminAclCommandsChangeTheFileAndTheRules() async throws {
        let broker = try Self.aclBroker()
        let path = broker.directory.path + "/plain_acl.yml"
        let n = ["-n", broker.nameServer.address, "-ak", "rocketmq2", "-sk", "87654321"]
        let update = try mqadmin(["updateAclConfig"] + n + ["-b", broker.address, "-a", "newUser1", "-s", "newSecret1", "-i", "PUB",
                                                           "-u", "SUB", "-t", "AclTopic=PUB|SUB,DenyTopic=DENY"])
        #expect(update.status == 0 && update.output.contains("create or update plain access config to \(broker.address) success"), "\(update.output)")
        let written = try PlainAclFile.parse(TextFile.read(path) ?? "", file: path)
        let added = try #require(written.accounts.first { $0.accessKey == "newUser1" })
        #expect(added.secretKey == "newSecret1" && added.defaultTopicPerm == "PUB" && added.topicPerms == ["AclTopic=PUB|SUB", "DenyTopic=DENY"])
        #expect(written.dataVersion.counter == 1)

        try await createTopics(broker, ["AclTopic", "DenyTopic"])
        let newUser = producer(broker, SessionCredentials(accessKey: "newUser1", secretKey: "newSecret1"))
        #expect(try await newUser.send(Message(topic: "AclTopic", body: "from a new account")).status == .sendOK)
        #expect(await refusal(newUser, "DenyTopic") == "No default permission for topic:DenyTopic")

        let shown = try mqadmin(["getAccessConfig"] + n + ["-b", broker.address])
        #expect(shown.status == 0 && shown.output.contains("newUser1") && shown.output.contains("[AclTopic=PUB|SUB, DenyTopic=DENY]"), "\(shown.output)")
        let version = try mqadmin(["clusterAclConfigVersion"] + n + ["-c", "DefaultCluster"])
        let row = version.output.split(separator: "\n").first { $0.contains(path) }.map { $0.split(separator: " ") } ?? []
        #expect(version.status == 0 && row.count >= 5 && row[4] == "1", "\(version.output)")

        let white = try mqadmin(["updateGlobalWhiteAddr"] + n + ["-b", broker.address, "-g", "10.10.103.*,192.168.0.*"])
        #expect(white.status == 0, "\(white.output)")
        #expect(try PlainAclFile.parse(TextFile.read(path) ?? "", file: path).globalWhiteRemoteAddresses == ["10.10.103.*", "192.168.0.*"])
        let badWhite = try mqadmin(["updateGlobalWhiteAddr"] + n + ["-b", broker.address, "-g", "10.10.300.1"])
        #expect(badWhite.status == 1 && badWhite.output.contains("code 211"), "\(badWhite.output)")

        let notAdmin = try mqadmin(["deleteAclConfig", "-n", broker.nameServer.address, "--access-key", "RocketMQ", "--secret-key", "12345678",
                                    "-b", broker.address, "-a", "newUser1"])
        #expect(notAdmin.status == 1 && notAdmin.output.contains("Need admin permission for request code=51"), "\(notAdmin.output)")
        let delete = try mqadmin(["deleteAclConfig"] + n + ["-b", broker.address, "-a", "newUser1"])
        #expect(delete.status == 0, "\(delete.output)")
        let after = try PlainAclFile.parse(TextFile.read(path) ?? "", file: path)
        #expect(!after.accounts.contains { $0.accessKey == "newUser1" } && after.dataVersion.counter == 3)
        #expect(await refusal(newUser, "AclTopic") == "No acl config for newUser1")
        await newUser.shutdown()
    }

    /// `bench producer` and `bench consumer` against the ACL broker with `-ak`/`-sk`: every send and receipt succeeds;
    /// without keys every send fails.
    @Test func benchTakesCredentials() async throws {
        let broker = try Self.aclBroker()
        try await createTopics(broker, ["AclTopic"])
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        let n = ["-n", broker.nameServer.address, "-t", "AclTopic", "-w", "2", "-s", "64", "--messages", "20"]
        let signed = try ChildProcess.run([binary, "producer"] + n + ["-ak", "RocketMQ", "-sk", "12345678"], seconds: 120)
        #expect(signed.status == 0 && signed.output.contains("Send Failed: 0"), "\(signed.output)")
        #expect(signed.output.contains("replication no slave"), "\(signed.output)")  // the broker's role read with the keys
        let unsigned = try ChildProcess.run([binary, "producer"] + n, seconds: 120)
        #expect(unsigned.status != 0 || !unsigned.output.contains("Send Failed: 0"), "\(unsigned.output)")
        // 20 and the warm-up send; nothing of the unsigned run.
        #expect(await eventually(10) { (try? await storedCount(broker, "AclTopic")) == 21 })
    }
}
