#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Client
import Common

struct ConsumerStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "consumerStatus", abstract: "Query consumer's internal data structure.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("g"), help: "consumer group name") var group: String
    @Option(name: .customShort("i"), help: "The consumer's client id") var clientID: String?
    @Option(name: .customShort("b"), help: "broker address") var brokerAddr: String?
    @Flag(name: .customShort("s"), help: "Run jstack command in the consumer progress (not supported by Swift consumers)") var jstack = false

    func run() async throws {
        try await withAdmin(options) { admin in
            if let clientID {
                print(formatRunningInfo(try await admin.consumerRunningInfo(group: group, clientID: clientID, jstack: jstack)), terminator: "")
                return
            }
            let connection = try await admin.consumerConnection(group: group, brokerAddr: brokerAddr)
            let now = currentTimeMillis()
            print(left("#Index", 10) + " " + left("#ClientId", 40) + " " + left("#Version", 20) + " #ConsumerRunningInfoFile")
            var infos: [(String, ConsumerRunningInfo)] = []
            for member in connection.connectionSet.sorted(by: { $0.clientId < $1.clientId }) {
                do {
                    let info = try await admin.consumerRunningInfo(group: group, clientID: member.clientId, jstack: jstack)
                    let path = "\(now)/\(member.clientId)"
                    try writeFile(path, formatRunningInfo(info))
                    infos.append((member.clientId, info))
                    print(left("\(infos.count)", 10) + " " + left(member.clientId, 40) + " " + left(MQVersion.description(member.version), 20)
                          + " " + path)
                } catch {
                    FileHandleLite.standardError("mqadmin: consumer \(member.clientId): \(error)\n")
                }
            }
            guard !infos.isEmpty else { return }
            if sameSubscription(infos.map(\.1), now: now) {
                print("\n\nSame subscription in the same group of consumer", terminator: "")
                print("\n\nRebalance OK")
                for (id, info) in infos { print(analyzeProcessQueue(id, info, now: now), terminator: "") }
            } else {
                print("\n\nWARN: Different subscription in the same group of consumer!!!", terminator: "")
            }
        }
    }

    /// RocketMQ's `analyzeSubscription`: push consumers running for over two minutes must subscribe alike.
    func sameSubscription(_ infos: [ConsumerRunningInfo], now: Int64) -> Bool {
        guard let first = infos.first, first.properties[ConsumerRunningInfo.propConsumeType] == "CONSUME_PASSIVELY",
              let started = Int64(first.properties[ConsumerRunningInfo.propConsumerStartTimestamp] ?? ""), now - started > 120_000
        else { return true }
        func key(_ info: ConsumerRunningInfo) -> [String] { info.subscriptionSet.map { "\($0.topic)\u{1}\($0.subString)" }.sorted() }
        return infos.allSatisfy { key($0) == key(first) } && !first.subscriptionSet.isEmpty
    }

    /// RocketMQ's `analyzeProcessQueue`: unlocked orderly queues, and queues with messages nobody consumed for a minute.
    func analyzeProcessQueue(_ clientID: String, _ info: ConsumerRunningInfo, now: Int64) -> String {
        guard info.properties[ConsumerRunningInfo.propConsumeType] == "CONSUME_PASSIVELY" else { return "" }
        let orderly = info.properties[ConsumerRunningInfo.propConsumeOrderly] == "true"
        var text = ""
        for queue in info.mqTable.keys.sorted() {
            let process = info.mqTable[queue]!
            if orderly {
                if !process.locked {
                    text += "\(clientID) \(javaQueue(queue)) can't lock for a while, \(now - process.lastLockTimestamp)ms\n"
                } else if process.droped && process.tryUnlockTimes > 0 {
                    text += "\(clientID) \(javaQueue(queue)) unlock \(process.tryUnlockTimes) times, still failed\n"
                }
            } else if now - process.lastConsumeTimestamp > 60_000 && process.cachedMsgCount > 0 {
                text += "\(clientID) \(javaQueue(queue)) can't consume for a while, maybe blocked, \(now - process.lastConsumeTimestamp)ms\n"
            }
        }
        return text
    }

    func writeFile(_ path: String, _ text: String) throws {
        if let slash = path.lastIndex(of: "/") { _ = mkdir(String(path[..<slash]), 0o755) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failArgument("cannot write \(path): errno \(errno)") }
        defer { close(fd) }
        var text = text
        let written = text.withUTF8 { write(fd, $0.baseAddress, $0.count) }
        guard written == text.utf8.count else { throw failArgument("cannot write \(path): short write") }
    }
}

/// Java's `MessageQueue.toString`.
func javaQueue(_ queue: MessageQueue) -> String {
    "MessageQueue [topic=\(queue.topic), brokerName=\(queue.brokerName), queueId=\(queue.queueID)]"
}

/// RocketMQ's `UtilAll.timeMillisToHumanString`: yyyyMMddHHmmssSSS in local time.
func humanMillis(_ millis: Int64) -> String {
    var seconds = time_t(millis / 1000)
    var parts = tm()
    localtime_r(&seconds, &parts)
    return "\(Int(parts.tm_year) + 1900)" + two(Int(parts.tm_mon) + 1) + two(Int(parts.tm_mday)) + two(Int(parts.tm_hour))
        + two(Int(parts.tm_min)) + two(Int(parts.tm_sec)) + three(Int(millis % 1000))
}

/// RocketMQ's `ConsumerRunningInfo.formatString`.
func formatRunningInfo(_ info: ConsumerRunningInfo) -> String {
    var text = "#Consumer Properties#\n"
    for key in info.properties.keys.sorted() { text += left(key, 40) + ": " + info.properties[key]! + "\n" }
    text += "\n\n#Consumer Subscription#\n"
    for (index, subscription) in info.subscriptionSet.sorted(by: { $0.topic < $1.topic }).enumerated() {
        let number = String(index + 1)
        text += String(repeating: "0", count: max(0, 3 - number.count)) + number + " Topic: " + left(subscription.topic, 40)
            + " ClassFilter: " + left("false", 8) + " SubExpression: " + subscription.subString + "\n"
    }
    text += "\n\n#Consumer Offset#\n" + left("#Topic", 64) + "  " + left("#Broker Name", 32) + "  " + left("#QID", 4) + "  "
        + left("#Consumer Offset", 20) + "\n"
    let queues = info.mqTable.keys.sorted()
    for queue in queues {
        text += left(queue.topic, 32) + "  " + left(queue.brokerName, 32) + "  " + left("\(queue.queueID)", 4) + "  "
            + left("\(info.mqTable[queue]!.commitOffset)", 20) + "\n"
    }
    text += "\n\n#Consumer MQ Detail#\n" + left("#Topic", 64) + "  " + left("#Broker Name", 32) + "  " + left("#QID", 4) + "  "
        + left("#ProcessQueueInfo", 20) + "\n"
    for queue in queues {
        let p = info.mqTable[queue]!
        text += left(queue.topic, 64) + "  " + left(queue.brokerName, 32) + "  " + left("\(queue.queueID)", 4) + "  "
            + "ProcessQueueInfo [commitOffset=\(p.commitOffset), cachedMsgMinOffset=\(p.cachedMsgMinOffset), "
            + "cachedMsgMaxOffset=\(p.cachedMsgMaxOffset), cachedMsgCount=\(p.cachedMsgCount), cachedMsgSizeInMiB=\(p.cachedMsgSizeInMiB), "
            + "transactionMsgMinOffset=\(p.transactionMsgMinOffset), transactionMsgMaxOffset=\(p.transactionMsgMaxOffset), "
            + "transactionMsgCount=\(p.transactionMsgCount), locked=\(p.locked), tryUnlockTimes=\(p.tryUnlockTimes), "
            + "lastLockTimestamp=\(humanMillis(p.lastLockTimestamp)), droped=\(p.droped), "
            + "lastPullTimestamp=\(humanMillis(p.lastPullTimestamp)), lastConsumeTimestamp=\(humanMillis(p.lastConsumeTimestamp))]\n"
    }
    text += "\n\n#Consumer RT&TPS#\n" + left("#Topic", 64) + "  " + right("#Pull RT", 14) + " " + right("#Pull TPS", 14) + " "
        + right("#Consume RT", 14) + " " + right("#ConsumeOK TPS", 14) + " " + right("#ConsumeFailed TPS", 18) + " "
        + right("#ConsumeFailedMsgsInHour", 25) + "\n"
    for topic in info.statusTable.keys.sorted() {
        let s = info.statusTable[topic]!
        text += left(topic, 32) + "  " + right(fixed(s.pullRT, 2), 14) + " " + right(fixed(s.pullTPS, 2), 14) + " "
            + right(fixed(s.consumeRT, 2), 14) + " " + right(fixed(s.consumeOKTPS, 2), 14) + " " + right(fixed(s.consumeFailedTPS, 2), 18)
            + " " + right("\(s.consumeFailedMsgs)", 25) + "\n"
    }
    if let jstack = info.jstack { text += "\n\n#Consumer jstack#\n" + jstack }
    return text
}
