// mqadmin: RocketMQ's admin commands (the ones listed in `mqadmin --help`) over the Swift client.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

import Client
import Common
import Remoting

struct NameServerOption: ParsableArguments {
    @Option(name: .customShort("n"), help: "NameServer address(es), host:port;host:port")
    var namesrvAddr: String = ProcessInfoLite.environment("NAMESRV_ADDR") ?? "127.0.0.1:9876"
    @OptionGroup var acl: AclCredentialOptions

    /// A client configuration for the NameServers, signing requests when credentials were given.
    var clientConfig: ClientConfig {
        var config = ClientConfig(namesrvAddr: namesrvAddr)
        config.credentials = acl.credentials
        return config
    }
}

enum ProcessInfoLite {
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}

/// Runs `body`, then `shutdown` (also on failure); a failure becomes `mqadmin: <reason>` and exit status 1.
func reportingFailures(shutdown: () async -> Void, _ body: () async throws -> Void) async throws {
    do {
        try await body()
        await shutdown()
    } catch let exit as ExitCode {
        await shutdown()
        throw exit
    } catch {
        await shutdown()
        FileHandleLite.standardError("mqadmin: \(error)\n")
        throw ExitCode(1)
    }
}

/// Runs `body` with an Admin, reporting failures as `reportingFailures` does.
func withAdmin(_ options: NameServerOption, _ body: (Admin) async throws -> Void) async throws {
    let admin = Admin(namesrvAddr: options.namesrvAddr, credentials: options.acl.credentials)
    try await reportingFailures(shutdown: { await admin.shutdown() }) { try await body(admin) }
}

enum FileHandleLite {
    static func standardError(_ text: String) {
        var text = text
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

func formatTime(_ millis: Int64) -> String {
    guard millis > 0 else { return "-" }
    var seconds = time_t(millis / 1000)
    var parts = tm()
    localtime_r(&seconds, &parts)
    return "\(Int(parts.tm_year) + 1900)-" + two(Int(parts.tm_mon) + 1) + "-" + two(Int(parts.tm_mday)) + " "
        + two(Int(parts.tm_hour)) + ":" + two(Int(parts.tm_min)) + ":" + two(Int(parts.tm_sec)) + "," + three(Int(millis % 1000))
}
func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
func three(_ value: Int) -> String { value < 10 ? "00\(value)" : value < 100 ? "0\(value)" : "\(value)" }

@main
struct MQAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqadmin",
        abstract: "Administer a RocketMQ-compatible cluster through its NameServers.",
        subcommands: [ClusterList.self, TopicList.self, UpdateTopic.self, DeleteTopic.self, TopicRoute.self, TopicStatus.self,
                      BrokerStatus.self, HAStatus.self, ConsumerProgress.self, QueryMsgByID.self, QueryMsgByKey.self, SendMessage.self,
                      ConsumeMessage.self, DLedgerStatusCommand.self, LeadershipTransferCommand.self,
                      QueryMsgByUniqueKey.self, QueryMsgByOffset.self, PrintMsg.self, PrintMsgByQueue.self, SendMsgStatus.self,
                      ClusterRT.self, CheckMsgSendRT.self, QueryCq.self,
                      UpdateSubGroup.self, DeleteSubGroup.self, ConsumerConnectionCommand.self, ProducerConnectionCommand.self,
                      ConsumerStatus.self, GetConsumerConfig.self, BrokerConsumeStats.self, ResetOffsetByTime.self,
                      SkipAccumulatedMessage.self, CloneGroupOffset.self, GetBrokerConfig.self, UpdateBrokerConfig.self,
                      UpdateTopicPerm.self, WipeWritePerm.self, AddWritePerm.self, TopicClusterList.self, AllocateMQ.self,
                      UpdateKvConfig.self, DeleteKvConfig.self, GetNamesrvConfig.self, UpdateNamesrvConfig.self,
                      UpdateOrderConf.self, CleanExpiredCQ.self, CleanUnusedTopic.self, StatsAll.self] + aclCommands)
}

struct TopicList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topicList", abstract: "List every topic the NameServer knows.")
    @OptionGroup var options: NameServerOption

    func run() async throws {
        try await withAdmin(options) { admin in
            for topic in try await admin.topicList() { print(topic) }
        }
    }
}

struct UpdateTopic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateTopic", abstract: "Create or update a topic.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic name") var topic: String
    @Option(name: .customShort("b"), help: "broker address host:port") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "cluster name (every master of it)") var clusterName: String?
    @Option(name: .customShort("r"), help: "read queue count") var readQueueNums = 8
    @Option(name: .customShort("w"), help: "write queue count") var writeQueueNums = 8
    @Option(name: .customShort("p"), help: "permission: 2 write, 4 read, 6 both") var perm = 6
    @Option(name: .customShort("o"), help: "order topic") var order = false

    func validate() throws {
        if let problem = TopicValidator.refusal(creating: topic) { throw ValidationError(problem) }
        if let problem = TopicValidator.refusal(readQueueNums: readQueueNums, writeQueueNums: writeQueueNums, perm: perm) {
            throw ValidationError(problem)
        }
    }

    func run() async throws {
        try await withAdmin(options) { admin in
            let targets = try await admin.updateTopic(topic, brokerAddr: brokerAddr, cluster: clusterName, readQueueNums: readQueueNums,
                                                      writeQueueNums: writeQueueNums, perm: Permission(rawValue: perm), order: order)
            for target in targets {
                print("create topic to \(target) success.")
            }
            print("TopicConfig [topicName=\(topic), readQueueNums=\(readQueueNums), writeQueueNums=\(writeQueueNums), perm=\(Permission(rawValue: perm)), order=\(order)]")
        }
    }
}

struct DeleteTopic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deleteTopic", abstract: "Delete a topic from brokers and NameServers.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic name") var topic: String
    @Option(name: .customShort("c"), help: "cluster name") var clusterName: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            _ = try await admin.deleteTopic(topic, cluster: clusterName)
            print("delete topic [\(topic)] from cluster [\(clusterName ?? "*")] success.")
            print("delete topic [\(topic)] from NameServer success.")
        }
    }
}

struct TopicStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topicStatus", abstract: "Offsets of every queue of a topic.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic name") var topic: String

    func run() async throws {
        try await withAdmin(options) { admin in
            let rows = try await admin.topicStats(topic)  // fetched before the header: a failure prints only its line
            print(pad("#Broker Name", 34) + pad("#QID", 6) + pad("#Min Offset", 22) + pad("#Max Offset", 24) + "#Last Updated")
            for stats in rows {
                print(pad(stats.queue.brokerName, 34) + pad("\(stats.queue.queueID)", 6) + pad("\(stats.minOffset)", 22)
                      + pad("\(stats.maxOffset)", 24) + formatTime(stats.lastUpdateTimestamp))
            }
        }
    }
}

struct HAStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "haStatus", abstract: "Master/slave replication: a master's slaves (offset, lag, in sync), or a slave's master.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "broker address host:port") var brokerAddr: String

    func run() async throws {
        try await withAdmin(options) { admin in
            let info = try await admin.haStatus(brokerAddr)
            if let client = info.haClientRuntimeInfo {
                print("#Role SLAVE  #Master " + (client.masterAddr.isEmpty ? "-" : client.masterAddr)
                      + "  #Connected \(client.connected)  #Offset \(client.maxOffset)"
                      + "  #Last Push " + (client.lastReadTimestamp > 0 ? formatTime(client.lastReadTimestamp) : "-"))
                return
            }
            print("#Role MASTER  #Commit Log Max Offset \(info.masterCommitLogMaxOffset)  #In Sync Slaves \(info.inSyncSlaveNums)")
            print(pad("#Slave Address", 24) + pad("#Ack Offset", 22) + pad("#Lag (bytes)", 16) + pad("#Lag (ms)", 12) + "#In Sync")
            for connection in info.haConnectionInfo {
                print(pad(connection.addr, 24) + pad("\(connection.slaveAckOffset)", 22) + pad("\(connection.diff)", 16)
                      + pad("\(connection.lagMillis)", 12) + "\(connection.inSync)")
            }
        }
    }
}

/// RocketMQ's message detail (queryMsgById, queryMsgByOffset; queryMsgByUniqueKey leaves out the OffsetID line).
func printMessage(_ message: MessageExt, showOffsetID: Bool = true) {
    if showOffsetID { print(pad("OffsetID:", 21) + message.offsetMsgID) }
    print(pad("Topic:", 21) + message.topic)
    print(pad("Tags:", 21) + "[\(message.tags ?? "")]")
    print(pad("Keys:", 21) + "[\(message.keys.joined(separator: " "))]")
    print(pad("Queue ID:", 21) + "\(message.queueID)")
    print(pad("Queue Offset:", 21) + "\(message.queueOffset)")
    print(pad("CommitLog Offset:", 21) + "\(message.commitLogOffset)")
    print(pad("Reconsume Times:", 21) + "\(message.reconsumeTimes)")
    print(pad("Born Timestamp:", 21) + formatTime(message.bornTimestamp))
    print(pad("Store Timestamp:", 21) + formatTime(message.storeTimestamp))
    print(pad("Born Host:", 21) + message.bornHost.description)
    print(pad("Store Host:", 21) + message.storeHost.description)
    print(pad("System Flag:", 21) + "\(message.sysFlag.rawValue)")
    print(pad("Properties:", 21) + "{" + message.properties.map { "\($0.0)=\($0.1)" }.joined(separator: ", ") + "}")
    print(pad("Message Body:", 21) + message.bodyString)
}

struct QueryMsgByID: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queryMsgById",
        abstract: "Show a message by its offset id (#OffsetMsgId), or by its unique key (#MsgId) when it is not one.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("i"), help: "offsetMsgId or msgId (unique key), 32 hex digits; several separated by commas") var msgID: String
    @Option(name: .customShort("t"), help: "topic to look for a unique key in (default: every topic)") var topic: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            for id in msgID.split(separator: ",").map({ $0.drop { $0 == " " }.trimmingSuffix(while: { $0 == " " }) }) where !id.isEmpty {
                if let message = try await admin.messages(byID: id, topic: topic).first { printMessage(message) }
            }
        }
    }
}

struct QueryMsgByKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queryMsgByKey", abstract: "Find messages by key.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @Option(name: .customShort("k"), help: "key") var key: String

    func run() async throws {
        try await withAdmin(options) { admin in
            let messages = try await admin.queryMessage(topic: topic, key: key)
            guard !messages.isEmpty else {
                FileHandleLite.standardError("mqadmin: no message of topic \(topic) with key \(key)\n")
                throw ExitCode(1)
            }
            print(pad("#Message ID", 34) + pad("#QID", 6) + "#Offset")
            for message in messages { print(pad(message.msgID, 34) + pad("\(message.queueID)", 6) + "\(message.queueOffset)") }
        }
    }
}

struct SendMessage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sendMessage", abstract: "Send one message.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @Option(name: .customShort("p"), help: "message body") var body: String
    @Option(name: .customShort("k"), help: "keys (space separated)") var keys: String?
    @Option(name: .customShort("c"), help: "tags") var tags: String?
    @Option(name: .customShort("u"), help: "user property key=value (repeatable)") var userProperties: [String] = []
    @Option(name: .customShort("b"), help: "broker name") var brokerName: String?
    @Option(name: .customShort("i"), help: "queue id") var queueID: Int32?

    func run() async throws {
        var properties: [String: String] = [:]
        for pair in userProperties {
            guard let equals = pair.firstIndex(of: "=") else { throw ValidationError("-u wants key=value, got \(pair)") }
            properties[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        var settings = Producer.Settings()
        settings.group = "TOOLS_PRODUCER"
        let producer = Producer(config: options.clientConfig, settings: settings)
        producer.start()
        let message = Message(topic: topic, body: body, tags: tags, keys: keys?.split(separator: " ").map(String.init) ?? [],
                              properties: properties)
        try await reportingFailures(shutdown: { await producer.shutdown() }) {
            let result: SendResult
            if brokerName != nil || queueID != nil {
                let (brokerName, queueID) = (brokerName, queueID)
                result = try await producer.send(message, selector: { queues, _ in
                    queues.first { (brokerName == nil || $0.brokerName == brokerName) && (queueID == nil || $0.queueID == queueID) } ?? queues[0]
                })
            } else {
                result = try await producer.send(message)
            }
            print(pad("#Broker Name", 32) + pad("#QID", 6) + pad("#Send Result", 22) + pad("#MsgId", 34) + "#OffsetMsgId")
            print(pad(result.queue.brokerName, 32) + pad("\(result.queue.queueID)", 6) + pad(result.status.rawValue, 22) + pad(result.msgID, 34)
                  + result.offsetMsgID)
        }
    }
}

struct ConsumeMessage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "consumeMessage", abstract: "Print messages of a topic (pulled, offsets not committed).")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @Option(name: .customShort("b"), help: "broker name") var brokerName: String?
    @Option(name: .customShort("i"), help: "queue id") var queueID: Int32?
    @Option(name: .customShort("o"), help: "start offset (default: each queue's first)") var offset: Int64?
    @Option(name: .customShort("c"), help: "at most this many messages") var count = 128
    @Option(name: .customShort("s"), help: "subscription expression") var expression = "*"
    @Option(name: .customShort("g"), help: "consumer group") var group = "TOOLS_CONSUMER"

    func run() async throws {
        let consumer = PullConsumer(group: group, config: options.clientConfig)
        consumer.start()
        try await reportingFailures(shutdown: { await consumer.shutdown() }) {
            var printed = 0
            let queues = try await consumer.fetchSubscribeMessageQueues(topic).filter {
                (brokerName == nil || $0.brokerName == brokerName) && (queueID == nil || $0.queueID == queueID)
            }
            for queue in queues where printed < count {
                var next: Int64
                if let offset { next = offset } else { next = try await consumer.minOffset(queue) }
                // Read up to the queue's end as it is now; a message stored just before may still be on its way
                // into the queue, so an empty answer below the end is retried for a moment.
                let end = try await consumer.maxOffset(queue)
                var quietUntil = uptimeNanos() + 3_000_000_000
                while printed < count && next < end && uptimeNanos() < quietUntil {
                    let result = try await consumer.pull(queue, expression: expression, offset: next, maxNums: min(32, count - printed))
                    for message in result.messages where printed < count {
                        print("MSGID: \(message.msgID) \(queue) OFFSET: \(message.queueOffset) TAGS: \(message.tags ?? "") KEYS: \(message.keys.joined(separator: " ")) PROPERTIES: {\(message.userProperties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))} BODY: \(message.bodyString)")
                        printed += 1
                    }
                    if result.nextBeginOffset > next {
                        next = result.nextBeginOffset
                        quietUntil = uptimeNanos() + 3_000_000_000
                    } else {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
            print("Consumed \(printed) message(s).")
        }
    }
}
