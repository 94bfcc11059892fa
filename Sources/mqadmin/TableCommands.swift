import ArgumentParser
import Client
import Common
import Remoting

struct ClusterList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clusterList", abstract: "List cluster infos.")
    @OptionGroup var options: NameServerOption
    @Flag(name: [.customShort("m"), .customLong("moreStats")], help: "Print more stats") var moreStats = false

    func run() async throws {
        try await withAdmin(options) { admin in
            let brokers = try await admin.clusterInfo()
            if moreStats {
                print(left("#Cluster Name", 16) + "  " + left("#Broker Name", 32) + " " + right("#InTotalYest", 14) + " "
                      + right("#OutTotalYest", 14) + " " + right("#InTotalToday", 14) + " " + right("#OutTotalToday", 14))
                for broker in brokers {
                    // One row per broker address; zeros when it does not answer (as RocketMQ prints them).
                    let info = await runtimeInfo(admin, broker.address)
                    func value(_ key: String) -> Int64 { Int64(info[key] ?? "") ?? 0 }
                    let numbers = [value("msgPutTotalTodayMorning") - value("msgPutTotalYesterdayMorning"),
                                   value("msgGetTotalTodayMorning") - value("msgGetTotalYesterdayMorning"),
                                   value("msgPutTotalTodayNow") - value("msgPutTotalTodayMorning"),
                                   value("msgGetTotalTodayNow") - value("msgGetTotalTodayMorning")]
                    print(left(broker.cluster, 16) + "  " + left(broker.brokerName, 32) + numbers.map { " " + right("\($0)", 14) }.joined())
                }
                return
            }
            print(left("#Cluster Name", 16) + "  " + left("#Broker Name", 22) + "  " + left("#BID", 4) + "  " + left("#Addr", 22) + " "
                  + left("#Version", 16) + " " + right("#InTPS(LOAD)", 19) + " " + right("#OutTPS(LOAD)", 19) + " " + right("#PCWait(ms)", 10)
                  + " " + right("#Hour", 5) + " " + right("#SPACE", 6))
            let now = currentTimeMillis()
            for broker in brokers {
                let info = await runtimeInfo(admin, broker.address)
                func first(_ key: String) -> Double { Double(info[key]?.split(separator: " ").first ?? "") ?? 0 }
                let hour = Int64(info["earliestMessageTimeStamp"] ?? "").map { Double(now - $0) / 3_600_000 } ?? 0
                let space = Double(info["commitLogDiskRatio"] ?? "") ?? 0
                let inTPS = fixed(first("putTps"), 2)
                let outTPS = fixed(first("getTransferedTps"), 2)
                print(left(broker.cluster, 16) + "  " + left(broker.brokerName, 22) + "  " + left("\(broker.brokerID)", 4) + "  "
                      + left(broker.address, 22) + " " + left(info["brokerVersionDesc"] ?? "", 16) + " "
                      + right(right(inTPS, 9) + "(\(info["sendThreadPoolQueueSize"] ?? "null"),\(info["sendThreadPoolQueueHeadWaitTimeMills"] ?? "null")ms)", 19)
                      + " "
                      + right(right(outTPS, 9) + "(\(info["pullThreadPoolQueueSize"] ?? "null"),\(info["pullThreadPoolQueueHeadWaitTimeMills"] ?? "null")ms)", 19)
                      + " " + right(info["pageCacheLockTimeMills"] ?? "null", 10) + " " + right(fixed(hour, 2), 5) + " " + right(fixed(space, 4), 6))
            }
        }
    }

    /// A broker's runtime info, empty when it does not answer (RocketMQ prints the row anyway).
    func runtimeInfo(_ admin: Admin, _ address: String) async -> [String: String] {
        guard let pairs = try? await admin.brokerRuntimeInfo(address) else { return [:] }
        return Dictionary(pairs, uniquingKeysWith: { a, _ in a })
    }
}

struct BrokerStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "brokerStatus", abstract: "Fetch broker runtime status data.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "Broker address") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "which cluster") var clusterName: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            if let brokerAddr {
                for (key, value) in try await admin.brokerRuntimeInfo(brokerAddr) { print(left(key, 32) + ": " + value) }
                return
            }
            let brokers = try await admin.clusterInfo()
            let targets = clusterName.map { name in brokers.filter { $0.cluster == name } } ?? brokers
            if let clusterName, targets.isEmpty { throw failArgument("no broker in cluster \(clusterName)") }
            for broker in targets {
                do {
                    for (key, value) in try await admin.brokerRuntimeInfo(broker.address) {
                        print(left(broker.address, 24) + " " + left(key, 32) + ": " + value)
                    }
                } catch {
                    FileHandleLite.standardError("mqadmin: \(broker.address): \(error)\n")
                }
            }
        }
    }
}

struct ConsumerProgress: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "consumerProgress", abstract: "Query consumers's progress, speed.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("g"), help: "consumer group name") var group: String?
    @Option(name: .customShort("t"), help: "topic name") var topic: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            guard let group else { return try await listGroups(admin) }
            let rows = try await admin.consumeProgress(group: group, topic: topic)
            guard !rows.isEmpty else { throw failArgument("consumer group \(group) has no offsets on any broker") }
            print(left("#Topic", 64) + "  " + left("#Broker Name", 32) + "  " + left("#QID", 4) + "  " + left("#Broker Offset", 20) + "  "
                  + left("#Consumer Offset", 20) + "  " + left("#Diff", 20) + "  #LastTime")
            for row in rows {
                print(left(front(row.queue.topic, 64), 64) + "  " + left(front(row.queue.brokerName, 32), 32) + "  " + left("\(row.queue.queueID)", 4)
                      + "  " + left("\(row.brokerOffset)", 20) + "  " + left("\(row.consumerOffset)", 20) + "  " + left("\(row.diff)", 20) + "  "
                      + (row.lastTimestamp == 0 ? "N/A" : formatSeconds(row.lastTimestamp)))
            }
            print("")
            print("Consume TPS: 0.00")
            print("Diff Total: \(rows.reduce(0) { $0 + $1.diff })")
        }
    }

    /// Every group with a retry topic (RocketMQ finds groups that way): members online, their lowest version,
    /// consume type and model, and the group's total diff.
    func listGroups(_ admin: Admin) async throws {
        print(left("#Group", 64) + "  " + left("#Count", 6) + "  " + left("#Version", 24) + " " + left("#Type", 5) + "  " + left("#Model", 14)
              + "  " + left("#TPS", 7) + "  #Diff Total")
        let prefix = TopicValidator.retryGroupTopicPrefix
        for topic in try await admin.topicList() where topic.hasPrefix(prefix) {
            let group = String(topic.dropFirst(prefix.count))
            let diff = ((try? await admin.consumeProgress(group: group)) ?? []).reduce(0) { $0 + $1.diff }
            let connection = try? await admin.consumerConnection(group: group)
            let count = connection?.connectionSet.count ?? 0
            let push = connection?.consumeType == "CONSUME_PASSIVELY"
            print(left(front(group, 64), 64) + "  " + left("\(count)", 6) + "  "
                  + left(count > 0 ? MQVersion.description(connection!.minVersion) : "OFFLINE", 24) + " "
                  + left(count > 0 ? (push ? "PUSH" : "PULL") : "", 5) + "  " + left(count > 0 && push ? connection!.messageModel : "", 14)
                  + "  " + left("0", 7) + "  \(diff)")
        }
    }
}

struct TopicRoute: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topicRoute", abstract: "Examine topic route info.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic name") var topic: String

    func run() async throws {
        try await withAdmin(options) { admin in
            let (json, _) = try await admin.topicRoute(topic)
            print(fastjsonPretty(try JSONValue.parse(json)))
        }
    }
}

/// fastjson's `PrettyFormat` (what RocketMQ's tools print): a tab per level, `"name":value` with no space, a line
/// per member or element, and numeric map keys (a broker id) bare, on the brace's line.
func fastjsonPretty(_ value: JSONValue, indent: Int = 0) -> String {
    let newline = { (level: Int) in "\n" + String(repeating: "\t", count: level) }
    switch value {
    case .object(let members), .bareKeyObject(let members):
        guard !members.isEmpty else { return "{}" }
        var text = "{"
        for (index, (key, member)) in members.enumerated() {
            if index > 0 { text += "," }
            if Int64(key) != nil {
                text += key + ":"
            } else {
                text += newline(indent + 1) + JSONValue.string(key).compactText + ":"
            }
            text += fastjsonPretty(member, indent: indent + 1)
        }
        return text + newline(indent) + "}"
    case .array(let items):
        guard !items.isEmpty else { return "[]" }
        return "[" + items.map { newline(indent + 1) + fastjsonPretty($0, indent: indent + 1) }.joined(separator: ",") + newline(indent) + "]"
    default:
        return value.compactText
    }
}
