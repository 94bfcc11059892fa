import ArgumentParser
import Client
import Common

struct StatsAll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statsAll", abstract: "Topic and Consumer tps stats: per topic and consuming group, lag, TPS and the last 24 hours.")
    @OptionGroup var options: NameServerOption
    @Flag(name: .customShort("a"), help: "print active topics only (messages in or out in the last 24 hours)") var activeTopic = false
    @Option(name: .customShort("t"), help: "print this topic only") var topic: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            let topics = try await admin.topicList()  // an unreachable NameServer fails here, before the header
            print(left("#Topic", 32) + "  " + left("#Consumer Group", 32) + " " + right("#Accumulation", 12) + " " + right("#InTPS", 11) + " "
                  + right("#OutTPS", 11) + " " + right("#InMsg24Hour", 14) + " " + right("#OutMsg24Hour", 14))
            for name in topics where !TopicValidator.isRetryOrDLQ(name) {
                if let topic, !topic.isEmpty, name != topic { continue }
                // As RocketMQ's: a topic whose route or groups cannot be read is left out.
                guard let rows = try? await admin.traffic(topic: name) else { continue }
                for row in rows { if let line = Self.line(row, activeOnly: activeTopic) { print(line) } }
            }
        }
    }

    /// A row as RocketMQ prints it (names cut at 64 characters), or nil when `activeOnly` and nothing moved.
    static func line(_ row: Admin.TopicTraffic, activeOnly: Bool) -> String? {
        let topic = left(String(row.topic.prefix(64)), 64) + "  "
        guard let group = row.group else {
            guard !activeOnly || row.inMsg24Hour > 0 else { return nil }
            return topic + left("", 32) + " " + right("0", 12) + " " + right(twoDecimals(row.inTPS), 11) + " " + right("", 11) + " "
                + right("\(row.inMsg24Hour)", 14) + " " + right("NO_CONSUMER", 14)
        }
        guard !activeOnly || row.inMsg24Hour > 0 || row.outMsg24Hour > 0 else { return nil }
        return topic + left(String(group.prefix(64)), 64) + " " + right("\(row.accumulation)", 12) + " " + right(twoDecimals(row.inTPS), 11)
            + " " + right(twoDecimals(row.outTPS), 11) + " " + right("\(row.inMsg24Hour)", 14) + " " + right("\(row.outMsg24Hour)", 14)
    }
}
