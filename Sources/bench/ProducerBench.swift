#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import Histogram
import Client
import Common
import Remoting
import Synchronization

/// What one producer run measured. Only SEND_OK sends count as messages, toward TPS and MB/s and in
/// `histogram`; every other outcome is counted in `statuses` and its RT goes into `failedHistogram`.
struct ProducerResult: Sendable {
    var seconds: Double
    /// Messages in SEND_OK sends.
    var messages: Int
    var size: Int
    var threads: Int
    var mode: String
    /// Sends by outcome (a batch send counts once).
    var statuses: StatusCounts
    /// RT of SEND_OK sends, microseconds.
    var histogram: Histogram<UInt64>
    /// RT of every other send (non-OK answers, error answers, no answer), microseconds.
    var failedHistogram: Histogram<UInt64>
    /// SEND_OK messages in each second of the run.
    var perSecond: [Int]
    /// The cluster's replication (JSON `replication`: none, async, sync; `ReplicationSetup.detect` for `-n`).
    var replication = "none"
    var replicationLabel = ReplicationMode.none.label
    /// The slaves' lag sampled during the run (nil without a slave).
    var replicationLag: ReplicationLag?
    /// The server's and this client's CPU per SEND_OK message over the measured window.
    var cpu: CPUPerMessage?
    /// With `--rate`: the schedule's target and how far sends fell behind it.
    var openLoop: OpenLoopStats?
    /// With `--hiccups`: how late a sleeping thread woke during the run (`HiccupMeter`).
    var hiccups: HiccupStats?

    var tps: Double { Double(messages) / max(seconds, 1e-9) }
    var mbps: Double { tps * Double(size) / 1_000_000 }
    var sendFailed: Int { statuses[.sendFailed] }
    var responseFailed: Int { statuses[.responseFailed] }
    /// Every send that was not SEND_OK.
    var failed: Int { statuses.notOK }
    func micros(_ percentile: Double) -> UInt64 { Self.micros(histogram, percentile) }
    var maxMicros: UInt64 { histogram.totalCount == 0 ? 0 : histogram.max }
    func failedMicros(_ percentile: Double) -> UInt64 { Self.micros(failedHistogram, percentile) }
    var failedMaxMicros: UInt64 { failedHistogram.totalCount == 0 ? 0 : failedHistogram.max }
    static func micros(_ histogram: Histogram<UInt64>, _ percentile: Double) -> UInt64 {
        histogram.totalCount == 0 ? 0 : histogram.valueAtPercentile(percentile)
    }
    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("p99.99", 99.99)]

    var json: String {
        """
        {"tps":\(format(tps, 1)),"mbps":\(format(mbps, 2)),"p50_us":\(micros(50)),"p90_us":\(micros(90)),"p99_us":\(micros(99)),\
        "p999_us":\(micros(99.9)),"p9999_us":\(micros(99.99)),"max_us":\(maxMicros),\
        "failed":\(failed),"send_failed":\(sendFailed),"response_failed":\(responseFailed),"status_counts":\(statuses.json),\
        "failed_p50_us":\(failedMicros(50)),"failed_p99_us":\(failedMicros(99)),"failed_max_us":\(failedMaxMicros),\
        "messages":\(messages),"seconds":\(format(seconds, 3)),"threads":\(threads),"size":\(size),"mode":"\(mode)",\
        "replication":"\(replication)"\(replicationLag?.jsonMembers ?? "")\(cpu?.jsonMembers ?? "")\(openLoop?.jsonMembers ?? "")\(hiccups?.jsonMembers ?? "")}
        """
    }

    func printSummary() {
        // producer.sh's closing line (its TPS is over the run's last 10 s, ours over the whole run; RT in ms, SEND_OK).
        let averageRT = histogram.totalCount == 0 ? 0 : histogram.mean / 1000
        print("[Complete] Send Total: \(statuses.total) Send TPS: \(Int64(tps)) Max RT(ms): \(maxMicros / 1000)"
              + " Average RT(ms): \(format(averageRT, 3)) Send Failed: \(sendFailed) Response Failed: \(responseFailed)")
        print("Send TPS (average): \(format(tps, 0))  MB/s: \(format(mbps, 1))  messages: \(messages)  seconds: \(format(seconds, 1))  "
              + statuses.labelled(separator: "  "))
        print("Send RT (ms):  " + Self.percentiles.map { "\($0.0) \(format(Double(micros($0.1)) / 1000, 3))" }.joined(separator: "  ")
              + "  max \(format(Double(maxMicros) / 1000, 3))  (SEND_OK, \(statuses[.sendOK]) sends)")
        print("Send status:  " + SendOutcome.allCases.map { "\($0.name) \(statuses[$0])" }.joined(separator: "  "))
        print("Failed send RT (ms):  p50 \(format(Double(failedMicros(50)) / 1000, 3))  p99 \(format(Double(failedMicros(99)) / 1000, 3))"
              + "  max \(format(Double(failedMaxMicros) / 1000, 3))  (\(failed) sends not SEND_OK)")
        print("Replication: \(replicationLabel)")
        if let replicationLag { print(replicationLag.summary) }
        if let cpu { print(cpu.summary) }
        if let openLoop { print(openLoop.summary(achievedTPS: tps)) }
        if let hiccups { print(hiccups.summary) }
    }
}

func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "0" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = "\(rounded)"
    if digits == 0 { text = "\(Int64(rounded))" } else if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
    }
    return text
}

/// The load of `bench producer`: `threads` senders, each its own loop over one shared Producer.
struct ProducerLoad: Sendable {
    var namesrvAddr: String
    var topic = "BenchmarkTest"
    var threads = 64
    var size = 1024
    var durationSeconds: Double? = 20
    var messages: Int?
    var mode = "sync"  // sync | async | oneway
    var batch = 1
    var keys = false
    /// producer.sh's `-l`: tag each message `tag<now ms % tagCount>` (0: no tag).
    var tagCount = 0
    /// producer.sh's `-d true -e level`: the delay level of every message (nil: not delayed).
    var delayLevel: Int?
    /// producer.sh's `-p`: user properties of about this many bytes on every message.
    var propertySize = 0
    /// Async mode: sends in flight per sender.
    var window = 16
    var queues = 8
    /// The cluster's replication and the masters to sample lag from (nil: `ReplicationSetup.detect`).
    var replication: ReplicationSetup?
    /// ACL credentials every request is signed with (nil: none).
    var credentials: SessionCredentials?
    /// Where the broker's CPU time is read (nil: not measured).
    var serverCPU: ServerCPUSource?
    /// Open loop: messages per second on a fixed schedule (nil: each sender sends as soon as it can).
    var rate: Double?
    /// Open loop: how early the send timer releases sends (`DueTimer`).
    var timerSlackNanos = DueTimer.defaultSlackNanos
    /// Measure the machine's own wake-up hiccups beside the load (`HiccupMeter`).
    var hiccups = false
    /// The client's event-loop slice (`ClientConfig.eventLoopSliceMicros`).
    var eventLoopSliceMicros = ClientConfig.eventLoopSliceMicrosDefault

    /// The request timeout of every send (the NATS peer uses the same).
    static let sendTimeoutMillis: Int64 = 10_000

    var plan: LoadPlan {
        LoadPlan(threads: threads, durationSeconds: durationSeconds, messages: messages, perSend: batch,
                 window: mode == "async" ? window : 1, size: size, mode: mode, rate: rate, timerSlackNanos: timerSlackNanos)
    }

    /// Runs the load; `everySecond` gets each second's line (with the replication mode and, with a slave,
    /// the largest lag sampled in that second). With a slave, the masters' HA status is sampled while the
    /// senders run (`ReplicationLagSampler`): the measured window, after the warm-up send.
    func run(everySecond: @escaping @Sendable (String) -> Void) async throws -> ProducerResult {
        try await ensureTopic()
        let setup: ReplicationSetup
        if let replication { setup = replication } else { setup = await ReplicationSetup.detect(namesrvAddr: namesrvAddr, credentials: credentials) }
        var settings = Producer.Settings()
        settings.group = "BenchmarkProducerGroup"
        settings.sendMsgTimeoutMillis = Self.sendTimeoutMillis
        var config = ClientConfig(namesrvAddr: namesrvAddr)
        config.timeoutMillis = Self.sendTimeoutMillis
        config.credentials = credentials
        config.eventLoopSliceMicros = eventLoopSliceMicros
        let producer = Producer(config: config, settings: settings)
        producer.start()
        defer { Task { await producer.shutdown() } }
        // One warm-up send creates the connection and caches the route.
        _ = try await producer.send(Message(topic: topic, body: [UInt8](repeating: 98, count: size)))
        let sampler = setup.masters.isEmpty ? nil : ReplicationLagSampler(masters: setup.masters, namesrvAddr: namesrvAddr)
        let sampling = sampler.map { sampler in Task { await sampler.run() } }
        defer { sampling?.cancel() }
        let label = setup.label
        let meter = hiccups ? HiccupMeter.start() : nil
        // The senders run on the client's event loop (one thread for the connection and the senders).
        var result = try await driveLoad(plan, cpu: serverCPU, executor: producer.client.makeTaskExecutor(), everySecond: { line in
            everySecond(line + " Replication: \(label)" + (sampler?.takeSecond() ?? ""))
        }, send: makeSend(producer))
        result.hiccups = meter?.finish()
        sampling?.cancel()
        await sampling?.value
        result.replication = setup.name
        result.replicationLabel = setup.label
        result.replicationLag = sampler?.finish()
        return result
    }

    /// One send of this load's mode (oneway, batch or single) through `producer`.
    private func makeSend(_ producer: Producer) -> LoadSend {
        let body = (0..<size).map { UInt8(97 + $0 % 26) }
        let (topic, keys, mode, batch, tagCount, delayLevel) = (topic, keys, mode, batch, Int64(tagCount), delayLevel)
        let properties = ProducerShOptions.userProperties(size: propertySize, start: Int.random(in: 0..<100))
        return { sender, sequence in
            func message(_ index: Int) -> Message {
                var message = Message(topic: topic, body: body, tags: tagCount > 0 ? "tag\(wallClockMillis() % tagCount)" : nil,
                                      keys: keys ? ["k\(sender)-\(sequence)-\(index)"] : [], properties: properties)
                if let delayLevel { message.delayTimeLevel = delayLevel }
                return message
            }
            if mode == "oneway" {
                // Nothing comes back: a request written counts as SEND_OK, as in RocketMQ's benchmark.
                return await Self.outcome { try await producer.sendOneway(message(0)); return .sendOK }
            } else if batch > 1 {
                let messages = (0..<batch).map(message)
                return await Self.outcome { try await producer.send(batch: messages).status }
            }
            // One await for the send itself (each async call is a task switch).
            do { return SendOutcome(try await producer.send(message(0)).status) } catch { return Self.outcome(of: error) }
        }
    }

    /// A send's status as the broker answered it; an error code is RESPONSE_FAILED, no answer SEND_FAILED.
    static func outcome(_ body: () async throws -> SendStatus) async -> SendOutcome {
        do { return SendOutcome(try await body()) } catch { return outcome(of: error) }
    }

    /// What a failed send counts as: an error answer is RESPONSE_FAILED, anything else (no answer) SEND_FAILED.
    static func outcome(of error: any Error) -> SendOutcome {
        if let error = error as? ClientError, case .broker = error { return .responseFailed }
        return .sendFailed
    }

    /// Creates the topic with `queues` queues on every master when the NameServer has no route for it.
    func ensureTopic() async throws {
        let admin = Admin(namesrvAddr: namesrvAddr, credentials: credentials)
        defer { Task { await admin.shutdown() } }
        if (try? await admin.topicRoute(topic)) != nil { return }
        var created = false
        for broker in try await admin.clusterInfo() where broker.brokerID == BrokerData.masterID {
            _ = try await admin.updateTopic(topic, brokerAddr: broker.address, cluster: nil, readQueueNums: queues, writeQueueNums: queues,
                                            perm: .readWrite, order: false)
            created = true
        }
        guard created else { throw ValidationErrorText("no broker is registered with \(namesrvAddr)") }
        let deadline = monotonicNanos() + 10_000_000_000
        while monotonicNanos() < deadline, (try? await admin.topicRoute(topic)) == nil { try await Task.sleep(for: .milliseconds(100)) }
    }
}
