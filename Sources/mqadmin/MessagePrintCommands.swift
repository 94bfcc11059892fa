import ArgumentParser
import Client
import Common

/// What `printMsg` and `printMsgByQueue` read: the charset (`-c`), the subscription (`-s`) and the time range
/// (`-b`, `-e`).
struct MessageRangeOptions: ParsableArguments {
    @Option(name: .customShort("c"), help: "charset (UTF-8 only)") var charsetName = "UTF-8"
    @Option(name: .customShort("s"), help: "subscription expression (TagA || TagB)") var subExpression = "*"
    @Option(name: .customShort("b"), help: "begin time: milliseconds or yyyy-MM-dd#HH:mm:ss:SSS") var beginTimestamp: String?
    @Option(name: .customShort("e"), help: "end time: milliseconds or yyyy-MM-dd#HH:mm:ss:SSS") var endTimestamp: String?

    func validate() throws {
        guard charsetName.uppercased() == "UTF-8" || charsetName.uppercased() == "UTF8" else { throw ValidationError("-c: only UTF-8 is supported") }
    }

    /// The offsets to read `queue` between: its first and end, or the offsets the broker finds for the `-b` / `-e` times.
    func offsets(_ consumer: PullConsumer, _ queue: MessageQueue) async throws -> (Int64, Int64) {
        var lower = try await consumer.minOffset(queue)
        var upper = try await consumer.maxOffset(queue)
        if let beginTimestamp { lower = try await consumer.searchOffset(queue, timestamp: try parseTimestamp(beginTimestamp)) }
        if let endTimestamp { upper = try await consumer.searchOffset(queue, timestamp: try parseTimestamp(endTimestamp)) }
        return (lower, upper)
    }
}

/// The most pulls one queue gets (32 messages each): a bound on a command reading a huge queue.
let printPullsMax = 1_000_000

struct PrintMsg: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "printMsg", abstract: "Print every message of a topic, queue by queue.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @OptionGroup var range: MessageRangeOptions
    @Option(name: .customShort("d"), help: "print bodies (true, the default, or false)") var printBody = true

    func run() async throws {
        try await withPullConsumer(options) { consumer in
            for queue in try await consumer.fetchSubscribeMessageQueues(topic) {
                let (lower, upper) = try await range.offsets(consumer, queue)
                print("minOffset=\(lower), maxOffset=\(upper), \(javaDescription(queue))")
                var offset = lower
                for _ in 0..<printPullsMax where offset < upper {
                    let result = try await consumer.pull(queue, expression: range.subExpression, offset: offset, maxNums: 32)
                    offset = result.nextBeginOffset
                    if result.status == .found {
                        for var message in result.messages {
                            message.brokerName = queue.brokerName
                            print(messageLine(message, printBody: printBody))
                        }
                    } else if result.status == .noMatchedMessage {
                        print("\(javaDescription(queue)) no matched msg. status=\(result.status.rawValue), offset=\(offset)")
                    } else {
                        print("\(javaDescription(queue)) print msg finished. status=\(result.status.rawValue), offset=\(offset)")
                        break
                    }
                }
                print("--------------------------------------------------------")
            }
        }
    }
}

struct PrintMsgByQueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "printMsgByQueue", abstract: "Read one queue: print its messages (-p true) or count them by tag (-f true).")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @Option(name: .customShort("a"), help: "broker name") var brokerName: String
    @Option(name: .customShort("i"), help: "queue id") var queueID: Int32
    @OptionGroup var range: MessageRangeOptions
    @Option(name: .customShort("p"), help: "print messages (true or false, the default)") var printMessages = false
    @Option(name: .customShort("d"), help: "print bodies (true or false, the default)") var printBody = false
    @Option(name: .customShort("f"), help: "count messages by tag (true or false, the default)") var calculateByTag = false

    func run() async throws {
        try await withPullConsumer(options) { consumer in
            _ = try await consumer.fetchSubscribeMessageQueues(topic)  // the route, so the broker name resolves
            let queue = MessageQueue(topic: topic, brokerName: brokerName, queueID: queueID)
            let (lower, upper) = try await range.offsets(consumer, queue)
            var tagCounts: [String: Int] = [:]
            var offset = lower
            for _ in 0..<printPullsMax where offset < upper {
                let result = try await consumer.pull(queue, expression: range.subExpression, offset: offset, maxNums: 32)
                offset = result.nextBeginOffset
                guard result.status == .found else { break }
                for var message in result.messages {
                    message.brokerName = brokerName
                    if calculateByTag, let tag = message.tags, !tag.isEmpty { tagCounts[tag, default: 0] += 1 }
                    if printMessages { print(messageLine(message, printBody: printBody)) }
                }
            }
            for (tag, count) in tagCounts.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) {
                print("Tag: " + left(tag, 30) + " Count: \(count)")
            }
        }
    }
}
