#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Client
import Common

// Message look-ups as RocketMQ 4.9's mqadmin does them: queryMsgByUniqueKey, queryMsgByOffset, printMsg,
// printMsgByQueue. Printed fields follow RocketMQ's order; where Java prints an object (`MessageExt [...]`,
// `MessageQueue [...]`) the same field names come in the same order.

/// Java's `MessageQueue.toString()`.
func javaDescription(_ queue: MessageQueue) -> String {
    "MessageQueue [topic=\(queue.topic), brokerName=\(queue.brokerName), queueId=\(queue.queueID)]"
}

/// The `MSGID: <id> MessageExt [...] BODY: <body>` line of printMsg and printMsgByQueue (RocketMQ's field order; the
/// body inside the brackets is given by its length, the text follows `BODY:`).
func messageLine(_ message: MessageExt, printBody: Bool) -> String {
    let properties = "{" + message.properties.map { "\($0.0)=\($0.1)" }.joined(separator: ", ") + "}"
    return "MSGID: \(message.msgID) MessageExt [brokerName=\(message.brokerName), queueId=\(message.queueID), "
        + "storeSize=\(message.storeSize), queueOffset=\(message.queueOffset), sysFlag=\(message.sysFlag.rawValue), "
        + "bornTimestamp=\(message.bornTimestamp), bornHost=/\(message.bornHost), storeTimestamp=\(message.storeTimestamp), "
        + "storeHost=/\(message.storeHost), msgId=\(message.offsetMsgID), commitLogOffset=\(message.commitLogOffset), "
        + "reconsumeTimes=\(message.reconsumeTimes), toString()=Message{topic='\(message.topic)', flag=\(message.flag), "
        + "properties=\(properties), body=[\(message.body.count) bytes]}] BODY: " + (printBody ? message.bodyString : "NOT PRINT BODY")
}

/// A time option as RocketMQ takes it: milliseconds since 1970, or `yyyy-MM-dd#HH:mm:ss:SSS` (local time).
func parseTimestamp(_ text: String) throws -> Int64 {
    if let millis = Int64(text) { return millis }
    let parts = text.split(whereSeparator: { "-#:".contains($0) }).compactMap { Int32($0) }
    guard parts.count == 7 else { throw ValidationError("\(text) is neither milliseconds nor yyyy-MM-dd#HH:mm:ss:SSS") }
    var fields = tm()
    (fields.tm_year, fields.tm_mon, fields.tm_mday) = (parts[0] - 1900, parts[1] - 1, parts[2])
    (fields.tm_hour, fields.tm_min, fields.tm_sec, fields.tm_isdst) = (parts[3], parts[4], parts[5], -1)
    return Int64(mktime(&fields)) * 1000 + Int64(parts[6])
}

/// Runs `body` with a started PullConsumer of RocketMQ's tools group, reporting failures as `reportingFailures` does.
func withPullConsumer(_ options: NameServerOption, _ body: (PullConsumer) async throws -> Void) async throws {
    let consumer = PullConsumer(group: "TOOLS_CONSUMER", namesrvAddr: options.namesrvAddr)
    consumer.start()
    try await reportingFailures(shutdown: { await consumer.shutdown() }) { try await body(consumer) }
}

struct QueryMsgByUniqueKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queryMsgByUniqueKey", abstract: "Show a message by its unique key (the #MsgId sendMessage prints).")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("i"), help: "msgId (the producer-made unique key)") var msgID: String
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @Flag(name: .customShort("a"), help: "print every message with the key (at most 32), not only the first stored") var showAll = false

    func run() async throws {
        try await withAdmin(options) { admin in
            let messages = try await admin.messages(byUniqueKey: msgID, topic: topic)
            guard !messages.isEmpty else { throw ClientError.illegalMessage("no message of topic \(topic) with unique key \(msgID)") }
            for (index, message) in messages.prefix(showAll ? 32 : 1).enumerated() {
                if index > 0 { print("") }
                printMessage(message, showOffsetID: false)
            }
        }
    }
}

struct QueryMsgByOffset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queryMsgByOffset", abstract: "Show the message at a queue offset.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @Option(name: .customShort("b"), help: "broker name") var brokerName: String
    @Option(name: .customShort("i"), help: "queue id") var queueID: Int32
    @Option(name: .customShort("o"), help: "queue offset") var offset: Int64

    func run() async throws {
        try await withPullConsumer(options) { consumer in
            let queue = MessageQueue(topic: topic, brokerName: brokerName, queueID: queueID)
            _ = try await consumer.fetchSubscribeMessageQueues(topic)  // the route, so the broker name resolves
            let result = try await consumer.pull(queue, offset: offset, maxNums: 1)
            guard result.status == .found, var message = result.messages.first else {
                throw ClientError.illegalMessage("no message at offset \(offset) of \(javaDescription(queue)): \(result.status.rawValue)"
                                                 + " (the queue holds \(result.minOffset)..<\(result.maxOffset))")
            }
            message.brokerName = brokerName
            printMessage(message)
        }
    }
}
