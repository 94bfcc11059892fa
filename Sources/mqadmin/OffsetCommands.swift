import ArgumentParser
import Client
import Common
import Remoting

struct BrokerConsumeStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brokerConsumeStats", abstract: "Fetch broker consume stats data.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "Broker address") var brokerAddr: String
    @Option(name: .customShort("t"), help: "request timeout Millis") var timeoutMillis: Int64 = 50_000
    @Option(name: .customShort("l"), help: "level") var diffLevel: Int64 = 0
    @Option(name: .customShort("o"), help: "order topic") var order: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            guard timeoutMillis > 0 else { throw failArgument("-t must be a positive number of milliseconds") }
            let orderOnly = try parseBool(order, option: "-o") ?? false
            let list = try await admin.brokerConsumeStats(brokerAddr: brokerAddr, orderOnly: orderOnly, timeoutMillis: timeoutMillis)
            print(left("#Topic", 64) + "  " + left("#Group", 64) + "  " + left("#Broker Name", 32) + "  " + left("#QID", 4) + "  "
                  + left("#Broker Offset", 20) + "  " + left("#Consumer Offset", 20) + "  " + left("#Diff", 20) + "  #LastTime")
            for (group, statsList) in list.consumeStatsList {
                for stats in statsList {
                    for queue in stats.offsetTable.keys.sorted() {
                        let offsets = stats.offsetTable[queue]!
                        let diff = offsets.brokerOffset - offsets.consumerOffset
                        guard diff >= diffLevel, offsets.lastTimestamp > 0 else { continue }
                        print(left(front(queue.topic, 64), 64) + "  " + left(group, 64) + "  " + left(front(queue.brokerName, 32), 32) + "  "
                              + left("\(queue.queueID)", 4) + "  " + left("\(offsets.brokerOffset)", 20) + "  "
                              + left("\(offsets.consumerOffset)", 20) + "  " + left("\(diff)", 20) + "  " + formatSeconds(offsets.lastTimestamp))
                    }
                }
            }
            print("\nDiff Total: \(list.totalDiff)")
        }
    }
}

/// `now`, a number of milliseconds, or `yyyy-MM-dd#HH:mm:ss:SSS` (RocketMQ's `-s` of resetOffsetByTime).
func parseResetTimestamp(_ text: String) throws -> Int64 {
    let trimmed = String(text.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    if trimmed == "now" { return -1 }
    if let millis = Int64(trimmed) { return millis }
    if let millis = parseMillisTimestamp(trimmed) { return millis }
    throw failArgument("-s must be now, milliseconds since the epoch or yyyy-MM-dd#HH:mm:ss:SSS, not \(text)")
}

/// Resets online members through their brokers, or, with none online, commits the offsets directly (RocketMQ's
/// fallback to the old reset); `header`, when given, is the line printed first, told which name RocketMQ's line gives the
/// group in that case (`group` online, `consumerGroup` offline).
func resetOffsets(_ admin: Admin, group: String, topic: String, timestamp: Int64, force: Bool,
                  header: ((String) -> String)?) async throws {
    let table: [MessageQueue: Int64]
    do {
        table = try await admin.resetOffsetByTimestamp(topic: topic, group: group, timestamp: timestamp, force: force)
    } catch ClientError.broker(let code, _, _) where code == ResponseCode.consumerNotOnline {
        let rows = try await admin.resetOffsetOffline(topic: topic, group: group, timestamp: timestamp, force: force)
        if let header { print(header("consumerGroup")) }
        print([ "#brokerName", "#queueId", "#brokerOffset", "#consumerOffset", "#timestampOffset", "#rollbackOffset"]
            .map { left($0, 20) }.joined(separator: "  "))
        for row in rows {
            print([front(row.queue.brokerName, 32), "\(row.queue.queueID)", "\(row.brokerOffset)", "\(row.consumerOffset)",
                   "\(row.timestampOffset)", "\(row.rollbackOffset)"].map { left($0, 20) }.joined(separator: "  "))
        }
        return
    }
    if let header { print(header("group")) }
    print(left("#brokerName", 40) + "  " + left("#queueId", 40) + "  " + left("#offset", 40))
    for queue in table.keys.sorted() {
        print(left(front(queue.brokerName, 32), 40) + "  " + left("\(queue.queueID)", 40) + "  " + left("\(table[queue]!)", 40))
    }
}

struct ResetOffsetByTime: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resetOffsetByTime", abstract: "Reset consumer offset by timestamp(without client restart).")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("g"), help: "set the consumer group") var group: String
    @Option(name: .customShort("t"), help: "set the topic") var topic: String
    @Option(name: .customShort("s"), help: "set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]") var timestamp: String
    @Option(name: .customShort("f"), help: "set the force rollback by timestamp switch[true|false]") var force: String?
    @Flag(name: .customShort("c"), help: "reset c++ client offset (the broker sends the same body to every client here)") var cpp = false

    func run() async throws {
        try await withAdmin(options) { admin in
            let millis = try parseResetTimestamp(timestamp)
            let force = try parseBool(force, option: "-f") ?? true
            let (group, topic, text) = (group, topic, timestamp)
            let header = { (name: String) in
                "rollback consumer offset by specified \(name)[\(group)], topic[\(topic)], force[\(force)], "
                    + "timestamp(string)[\(text)], timestamp(long)[\(millis)]"
            }
            try await resetOffsets(admin, group: group, topic: topic, timestamp: millis, force: force, header: header)
        }
    }
}

struct SkipAccumulatedMessage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "skipAccumulatedMessage", abstract: "Skip all messages that are accumulated (not consumed) currently.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("g"), help: "set the consumer group") var group: String
    @Option(name: .customShort("t"), help: "set the topic") var topic: String
    @Option(name: .customShort("f"), help: "set the force rollback by timestamp switch[true|false]") var force: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            let force = try parseBool(force, option: "-f") ?? true
            try await resetOffsets(admin, group: group, topic: topic, timestamp: -1, force: force, header: nil)
        }
    }
}

struct CloneGroupOffset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cloneGroupOffset", abstract: "clone offset from other group.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("s"), help: "set source consumer group") var sourceGroup: String
    @Option(name: .customShort("d"), help: "set destination consumer group") var targetGroup: String
    @Option(name: .customShort("t"), help: "set the topic") var topic: String
    @Option(name: .customShort("o"), help: "the group or the topic is offline") var offline: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            _ = try parseBool(offline, option: "-o")
            let rows = try await admin.consumeProgress(group: sourceGroup, topic: topic)
            guard !rows.isEmpty else { throw failArgument("consumer group \(sourceGroup) has no offsets of topic \(topic) on any broker") }
            for row in rows where row.consumerOffset >= 0 {
                try await admin.updateConsumeOffset(row.queue, group: targetGroup, offset: row.consumerOffset)
            }
            print("clone group offset success. srcGroup[\(sourceGroup)], destGroup=[\(targetGroup)], topic[\(topic)]")
        }
    }
}
