import CommitLog
import Client
import Common
import Testing
import TestSupport

/// `bench consumer` started before the producer waits for the topic's route and then reads all of it; a new group on
/// a topic with a backlog reads only new messages unless `--from-first`; `bench producer` takes producer.sh's flags
/// (keys, tags, properties, quantity) and prints its `[Complete]` line. Real NameServer, broker and bench processes.
@Suite(.serialized) struct BenchOperatorTests {
    func bench(_ arguments: [String], seconds: Double = 60) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        return try ChildProcess.run([binary] + arguments, seconds: seconds)
    }

    /// Reads `child`'s lines until one contains `marker` or `seconds` pass.
    func readUntil(_ child: ChildProcess, _ marker: String, seconds: Double) -> [String] {
        var lines: [String] = []
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while !lines.contains(where: { $0.contains(marker) }) && monotonicNanos() < deadline {
            guard let more = child.readLines(timeoutMillis: 100) else { break }
            lines += more
        }
        return lines
    }

    @Test func consumerStartedFirstWaitsForTheRouteAndProducerTakesProducerShFlags() async throws {
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        let broker = try RunningBroker()
        let n = broker.nameServer.address
        let consumer = try ChildProcess([binary, "consumer", "-n", n, "-t", "FreshTopic", "-g", "EarlyGroup", "--duration", "8"],
                                        mergeStandardError: true)
        defer { consumer.killHard() }
        var consumed = readUntil(consumer, "waiting up to 60 s for topic FreshTopic", seconds: 20)
        #expect(consumed.contains { $0.contains("waiting up to 60 s for topic FreshTopic to have a route") }, "\(consumed)")

        let produced = try bench(["producer", "-n", n, "-t", "FreshTopic", "-w", "2", "-s", "64", "-q", "40", "-k", "true", "-l", "3",
                                  "-p", "40"])
        #expect(produced.status == 0, "\(produced.output)")
        #expect(produced.output.contains("topic: FreshTopic threadCount: 2 messageSize: 64 keyEnable: true propertySize: 40 tagCount: 3 "
                                         + "traceEnable: false aclEnable: false messageQuantity: 40\ndelayEnable: false delayLevel: 1\n"
                                         + "asyncEnable: false"), "\(produced.output)")
        #expect(produced.output.contains("[Complete] Send Total: 40 Send TPS: ") && produced.output.contains(" Send Failed: 0 Response Failed: 0"),
                "\(produced.output)")

        // The topic was new to the consumer: it reads all of it, the producer's warm-up send included.
        consumed += readUntil(consumer, "Consume TPS (average)", seconds: 30)
        #expect(consumed.contains { $0.hasPrefix("Consume TPS (average): ") && $0.hasSuffix("messages: 41") }, "\(consumed)")

        // Every message carries a tag of three, a key and properties of more than 40 bytes.
        let reader = PullConsumer(group: "FlagReader", namesrvAddr: n)
        reader.start()
        var checked = 0
        for queue in try await reader.fetchSubscribeMessageQueues("FreshTopic") {
            for message in try await reader.pull(queue, offset: 0, maxNums: 32).messages where !message.keys.isEmpty {
                #expect(["tag0", "tag1", "tag2"].contains(message.tags ?? ""), "\(message.properties)")
                let bytes = message.userProperties.filter { $0.key.hasPrefix("prop") }.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
                #expect(bytes > 40 && message.userProperties["prop0"]?.hasPrefix("hello") == true, "\(message.userProperties)")
                checked += 1
            }
        }
        await reader.shutdown()
        #expect(checked == 40)
    }

    @Test func aNewGroupReadsOnlyNewMessagesUnlessFromFirstAndBadFlagsAreRefused() async throws {
        let broker = try RunningBroker()
        let n = broker.nameServer.address
        let produced = try bench(["producer", "-n", n, "-t", "Backlog", "-w", "1", "-s", "32", "--messages", "10"])
        #expect(produced.status == 0, "\(produced.output)")
        // Consumers see a message once the broker has made it visible (flushed under ASYNC_FLUSH): wait for all 11
        // (the warm-up send included), so that the new group's "end" is after every one of them.
        let admin = Admin(namesrvAddr: n)
        let visible = await eventually(10) { ((try? await admin.topicStats("Backlog")) ?? []).reduce(0) { $0 + $1.maxOffset } == 11 }
        await admin.shutdown()
        #expect(visible)
        let fresh = try bench(["consumer", "-n", n, "-t", "Backlog", "-g", "LateGroup", "--duration", "2"])
        #expect(fresh.status == 0 && fresh.output.contains("new group LateGroup: 8 queue(s) start at their end"), "\(fresh.output)")
        #expect(fresh.output.contains("messages: 0"), "\(fresh.output)")
        let first = try bench(["consumer", "-n", n, "-t", "Backlog", "-g", "FirstGroup", "--duration", "3", "--from-first"])
        #expect(first.status == 0 && first.output.contains("messages: 11"), "\(first.output)")

        let noRoute = try bench(["consumer", "-n", n, "-t", "Never", "--route-wait", "1", "--duration", "1"])
        #expect(noRoute.status == 1 && noRoute.output.contains("topic Never has no route after 1 s"), "\(noRoute.output)")
        let noNameServer = try bench(["consumer", "-n", "127.0.0.1:\(freePort())", "-t", "Never", "--duration", "1"])
        #expect(noNameServer.status == 1 && noNameServer.output.contains("cannot reach NameServer"), "\(noNameServer.output)")
        for (flags, reason) in [(["-m", "true"], "message traces are not supported"), (["-a", "true"], "no ACL"),
                                (["-d", "true", "-e", "19"], "-e (delayLevel) must be within 1...18"),
                                (["-q", "5", "--messages", "5"], "give --messages or -q, not both")] {
            let refused = try bench(["producer", "-n", n] + flags)
            #expect(refused.status != 0 && refused.output.contains(reason), "\(flags): \(refused.output)")
        }
    }
}
