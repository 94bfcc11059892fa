#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Client
import Common

// Send round trips as RocketMQ 4.9's mqadmin measures them: sendMsgStatus, clusterRT, checkMsgSendRT. The broker
// commands send to the topic named after the broker (RocketMQ's per-broker topic), created from TBW102 when the
// broker auto-creates topics, through that broker's queues only.

/// Runs `body` with a started Producer of `group`, reporting failures as `reportingFailures` does.
func withProducer(_ options: NameServerOption, group: String, _ body: (Producer) async throws -> Void) async throws {
    let producer = Producer(group: group, namesrvAddr: options.namesrvAddr)
    producer.start()
    try await reportingFailures(shutdown: { await producer.shutdown() }) { try await body(producer) }
}

/// Sends `message` through a queue of `brokerName` (the first of its queues the route offers).
/// - Throws: `ClientError.illegalMessage` when the route has no queue of that broker.
func send(_ producer: Producer, _ message: Message, toBroker brokerName: String) async throws -> SendResult {
    try await producer.send(message, selector: { queues, _ in
        queues.first { $0.brokerName == brokerName } ?? MessageQueue(topic: message.topic, brokerName: brokerName, queueID: -1)
    })
}

/// RocketMQ's send result as Java prints it (`SendResult [sendStatus=..., messageQueue=MessageQueue [...], ...]`).
func javaDescription(_ result: SendResult) -> String {
    "SendResult [sendStatus=\(result.status.rawValue), msgId=\(result.msgID), offsetMsgId=\(result.offsetMsgID), "
        + "messageQueue=\(javaDescription(result.queue)), queueOffset=\(result.queueOffset)]"
}

/// Milliseconds on a monotonic clock, for round trips.
func monotonicMillis() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

struct SendMsgStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sendMsgStatus", abstract: "Send messages to a broker (its own topic) and print each round trip.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "broker name") var brokerName: String
    @Option(name: .customShort("s"), help: "message size in bytes") var messageSize = 128
    @Option(name: .customShort("c"), help: "messages to send") var count = 50

    func validate() throws {
        guard (1...(4 << 20)).contains(messageSize) else { throw ValidationError("-s must be within 1...4194304, not \(messageSize)") }
        guard count >= 0 else { throw ValidationError("-c must be 0 or more, not \(count)") }
    }

    func run() async throws {
        try await withProducer(options, group: "PID_SMSC") { producer in
            let pattern = Array("hello jodie".utf8)  // RocketMQ's filler
            let body = (0..<messageSize).map { pattern[$0 % pattern.count] }
            _ = try await send(producer, Message(topic: brokerName, body: Array(body.prefix(16))), toBroker: brokerName)
            for _ in 0..<count {
                let begin = monotonicMillis()
                let result = try await send(producer, Message(topic: brokerName, body: body), toBroker: brokerName)
                print("rt=\(monotonicMillis() - begin)ms, SendResult=\(javaDescription(result))")
            }
        }
    }
}

/// Sends `amount` messages of `size` bytes through `send` and returns (successes, failures, average RT in ms of all
/// but the first send, as RocketMQ averages it: the first pays for connecting).
func measureSends(amount: Int, _ send: () async throws -> Void) async -> (success: Int, failure: Int, averageMillis: Double) {
    var (success, failure, elapsed) = (0, 0, Int64(0))
    for index in 0..<amount {
        let start = monotonicMillis()
        do {
            try await send()
            success += 1
        } catch {
            failure += 1
        }
        if index != 0 { elapsed += monotonicMillis() - start }
    }
    return (success, failure, amount > 1 ? Double(elapsed) / Double(amount - 1) : 0)
}

/// `value` with two decimals (Java's `%.2f`).
func twoDecimals(_ value: Double) -> String {
    guard value.isFinite else { return "NaN" }
    let hundredths = Int64((value * 100).rounded())
    let fraction = abs(hundredths % 100)
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

struct ClusterRT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusterRT", abstract: "Send RT to every broker of every cluster (or one), every interval.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("a"), help: "messages per broker and round") var amount = 100
    @Option(name: .customShort("s"), help: "message size in bytes") var size = 128
    @Option(name: .customShort("c"), help: "cluster name (default: every cluster)") var clusterName: String?
    @Option(name: .customShort("p"), help: "print as tlog lines (time|room|cluster|broker|rt)") var printAsTlog = false
    @Option(name: .customShort("m"), help: "machine room name for tlog lines") var machineRoom = "noname"
    @Option(name: .customShort("i"), help: "seconds between rounds") var interval = 10
    @Option(help: "stop after this many rounds (default: run until stopped, as RocketMQ's)") var rounds: Int?

    func validate() throws {
        guard amount > 0, (1...(4 << 20)).contains(size), interval >= 0 else { throw ValidationError("-a and -s must be positive, -i 0 or more") }
        guard (rounds ?? 1) > 0 else { throw ValidationError("--rounds must be positive") }
    }

    func run() async throws {
        try await withAdmin(options) { admin in
            let brokers = try await admin.clusterInfo().filter { clusterName == nil || $0.cluster == clusterName }
            guard !brokers.isEmpty else { throw ClientError.illegalMessage("cluster [\(clusterName ?? "*")] not exist") }
            let names = Dictionary(grouping: brokers, by: \.cluster).mapValues { Set($0.map(\.brokerName)).sorted() }
            let producer = Producer(group: "CLUSTER_RT_\(getpid())", namesrvAddr: options.namesrvAddr)
            producer.start()
            defer { Task { await producer.shutdown() } }
            if !printAsTlog {
                print(left("#Cluster Name", 24) + "  " + left("#Broker Name", 24) + "  " + left("#RT", 4) + "  " + left("#successCount", 8)
                      + "  " + left("#failCount", 8))
            }
            let body = [UInt8](repeating: UInt8(ascii: "a"), count: size)
            for round in 0..<(rounds ?? Int.max) {
                if round > 0 { try await Task.sleep(for: .seconds(interval)) }
                for (cluster, brokerNames) in names.sorted(by: { $0.key < $1.key }) {
                    for brokerName in brokerNames {
                        let sent = await measureSends(amount: amount) {
                            _ = try await send(producer, Message(topic: brokerName, body: body), toBroker: brokerName)
                        }
                        print(printAsTlog ? "\(gmt8Time())|\(machineRoom)|\(cluster)|\(brokerName)|\(Int64(sent.averageMillis.rounded()))"
                              : left(cluster, 24) + "  " + left(brokerName, 24) + "  " + left(twoDecimals(sent.averageMillis), 8) + "  "
                                + left("\(sent.success)", 16) + "  " + left("\(sent.failure)", 16))
                    }
                }
            }
        }
    }

    /// `yyyy-MM-dd HH:mm:ss` in GMT+8, the time RocketMQ's tlog lines carry.
    func gmt8Time() -> String {
        var seconds = time(nil) + 8 * 3600
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return "\(Int(parts.tm_year) + 1900)-" + two(Int(parts.tm_mon) + 1) + "-" + two(Int(parts.tm_mday)) + " "
            + two(Int(parts.tm_hour)) + ":" + two(Int(parts.tm_min)) + ":" + two(Int(parts.tm_sec))
    }
}

struct CheckMsgSendRT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkMsgSendRT", abstract: "Send messages to a topic queue by queue in turn and print each round trip.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @Option(name: .customShort("a"), help: "messages to send") var amount = 100
    @Option(name: .customShort("s"), help: "message size in bytes") var size = 128

    func validate() throws {
        guard amount > 0, (1...(4 << 20)).contains(size) else { throw ValidationError("-a and -s must be positive (-s at most 4194304)") }
    }

    func run() async throws {
        try await withProducer(options, group: "CHECK_RT_\(getpid())") { producer in
            let message = Message(topic: topic, body: [UInt8](repeating: UInt8(ascii: "a"), count: size))
            print(left("#Broker Name", 32) + "  " + left("#QID", 4) + "  " + left("#Send Result", 20) + "    #RT")
            var elapsed = Int64(0)
            for index in 0..<amount {
                let start = monotonicMillis()
                var queue: MessageQueue?
                let ok: Bool
                do {
                    queue = try await producer.send(message, selector: { queues, _ in queues[index % queues.count] }).queue
                    ok = true
                } catch {
                    ok = false
                }
                let rt = monotonicMillis() - start
                if index != 0 { elapsed += rt }
                print(left(queue?.brokerName ?? "", 32) + "  " + left(queue.map { "\($0.queueID)" } ?? "", 4) + "  " + left("\(ok)", 20) + "    \(rt)")
            }
            print("Avg RT: " + twoDecimals(amount > 1 ? Double(elapsed) / Double(amount - 1) : 0))
        }
    }
}
