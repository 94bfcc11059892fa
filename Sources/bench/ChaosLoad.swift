import Client
import CommitLog
import Common
import Remoting
import Synchronization

/// Sends at a fixed rate (open loop: a send is due every 1/rate s whether or not earlier ones were answered, at
/// most `inFlightMax` in flight) with a unique key and body each (`<run>-<n>`), no retries, and records every
/// send with its answer for `ChaosCheck`.
final class ChaosLoad: Sendable {
    let producer: Producer
    let topic: String
    let run: String
    let rate: Double
    static let inFlightMax = 4_096
    private let sends = Mutex<[ChaosSend]>([])
    private let reasons = Mutex<[String: Int]>([:])
    private let inFlight = Atomic<Int>(0)
    /// Sends not made because `inFlightMax` were in flight.
    let skipped = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)

    init(namesrvAddr: String, topic: String, run: String, rate: Double, timeoutMillis: Int64) {
        producer = makeFaultProducer(namesrvAddr: namesrvAddr, group: "PG-chaos", timeoutMillis: timeoutMillis)
        self.topic = topic
        self.run = run
        self.rate = rate
    }

    /// Sends until `stop()`; returns once every send made has its answer (each is bounded by the send timeout).
    func drive() async {
        let period = UInt64(1e9 / rate)
        let started = monotonicNanos()
        var sequence = 0
        await withDiscardingTaskGroup { group in
            while !stopping.load(ordering: .relaxed) {
                let due = started + UInt64(sequence) * period
                let now = monotonicNanos()
                if due > now { try? await Task.sleep(for: .nanoseconds(due - now)) }
                if stopping.load(ordering: .relaxed) { break }
                let key = "\(run)-\(sequence)"
                sequence += 1
                guard inFlight.add(1, ordering: .relaxed).newValue <= Self.inFlightMax else {
                    inFlight.subtract(1, ordering: .relaxed)
                    skipped.add(1, ordering: .relaxed)
                    continue
                }
                group.addTask { [self] in
                    await send(key)
                    inFlight.subtract(1, ordering: .relaxed)
                }
            }
        }
    }

    /// Orderly sends: one sender per queue, each waiting for an answer before its next send (due every
    /// `queues`/rate s), keys `<run>-q<queue>-<n>`, each to its queue by a selector, as RocketMQ's orderly
    /// producers do. Returns once every sender has stopped.
    func driveOrderly(queues: Int) async {
        let period = UInt64(1e9 / rate * Double(queues))
        await withDiscardingTaskGroup { group in
            for queue in 0..<queues {
                group.addTask { [self] in
                    var due = monotonicNanos()
                    var sequence = 0
                    while !stopping.load(ordering: .relaxed) {
                        let now = monotonicNanos()
                        if due > now { try? await Task.sleep(for: .nanoseconds(due - now)) }
                        await send("\(run)-q\(queue)-\(sequence)", queue: Int32(queue))
                        sequence += 1
                        due = max(due + period, monotonicNanos())
                    }
                }
            }
        }
    }

    private func send(_ key: String, queue: Int32? = nil) async {
        let sentAt = monotonicNanos()
        let answer: ChaosAnswer
        do {
            let message = Message(topic: topic, body: Array(key.utf8), keys: [key])
            let result: SendResult
            if let queue {
                result = try await producer.send(message, selector: { queues, _ in
                    queues.first { $0.queueID == queue } ?? queues[Int(queue) % queues.count]
                })
            } else {
                result = try await producer.send(message)
            }
            answer = result.status == .sendOK ? .ok : .unknown
            if answer != .ok { count(result.status.rawValue) }
        } catch {
            answer = Self.answer(to: error)
            count(Self.reason(error))
        }
        let record = ChaosSend(key: key, sentAt: sentAt, answeredAt: monotonicNanos(), answer: answer)
        sends.withLock { $0.append(record) }
    }

    private func count(_ reason: String) { reasons.withLock { $0[reason, default: 0] += 1 } }

    /// Sends not acknowledged, by why: the status, the error code, or what the connection did.
    var reasonCounts: [String: Int] { reasons.withLock { $0 } }

    /// `code 2 (remark...)`, `timeout`, `connection closed`, `cannot connect`, `no route`: short, so they group.
    static func reason(_ error: Error) -> String {
        switch error {
        case RemotingError.timeout: "timeout"
        case RemotingError.connectionClosed: "connection closed"
        case RemotingError.connectFailed: "cannot connect"
        case ClientError.broker(let code, let remark, _): "code \(code) (\(remark.prefix(60)))"
        case ClientError.noRoute: "no route"
        default: "\(error)".prefix(60).description
        }
    }

    /// A send that was refused or never left is `failed`; one that may have reached the broker is `unknown`.
    static func answer(to error: Error) -> ChaosAnswer {
        switch error {
        case RemotingError.timeout, RemotingError.connectionClosed: .unknown
        case is RemotingError: .failed
        case is ClientError: .failed
        default: .unknown
        }
    }

    func stop() { stopping.store(true, ordering: .relaxed) }

    /// Every send answered so far.
    var history: [ChaosSend] { sends.withLock { $0 } }
    var okCount: Int { sends.withLock { $0.lazy.filter { $0.answer == .ok }.count } }

    func shutdown() async { await producer.shutdown() }
}

/// A started producer for sends under faults: each send goes once (no retry on another broker, no latency-based
/// avoidance), so its answer is the answer to that one attempt.
func makeFaultProducer(namesrvAddr: String, group: String, timeoutMillis: Int64) -> Producer {
    var settings = Producer.Settings()
    settings.group = group
    settings.retryTimesWhenSendFailed = 0
    settings.sendLatencyFaultEnable = false
    settings.sendMsgTimeoutMillis = timeoutMillis
    var config = ClientConfig(namesrvAddr: namesrvAddr)
    config.timeoutMillis = timeoutMillis
    let producer = Producer(config: config, settings: settings)
    producer.start()
    return producer
}

/// One message read back: the queue it was read from and its key (its body).
struct ConsumedMessage: Sendable, Equatable {
    var queue: Int32
    var key: String
}

/// Reads `topic` back from every queue, from each queue's first offset to its last, through the broker that takes
/// writes (the master; the DLedger leader), in queue order. Bounded: at most `seconds`, and a queue that stops
/// advancing ends.
func consumeAll(topic: String, namesrvAddr: String, seconds: Double) async throws -> [ConsumedMessage] {
    let consumer = PullConsumer(group: "CG-chaos-\(monotonicNanos())", namesrvAddr: namesrvAddr)
    consumer.start()
    defer { Task { await consumer.shutdown() } }
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    var keys: [ConsumedMessage] = []
    var queues: [MessageQueue] = []
    try await poll(seconds, "the queues of \(topic)") {
        queues = (try? await consumer.fetchSubscribeMessageQueues(topic)) ?? []
        return !queues.isEmpty
    }
    for queue in queues {
        var offset = try await consumer.minOffset(queue)
        let end = try await consumer.maxOffset(queue)
        while offset < end {
            guard monotonicNanos() < deadline else { throw ValidationErrorText("reading \(topic) back took over \(format(seconds, 0)) s") }
            guard let result = try? await consumer.pull(queue, offset: offset, maxNums: 32) else { continue }
            if result.status == .offsetIllegal { offset = max(offset + 1, result.nextBeginOffset); continue }
            keys += result.messages.map { ConsumedMessage(queue: queue.queueID, key: $0.bodyString) }
            guard result.nextBeginOffset > offset else { break }
            offset = result.nextBeginOffset
        }
    }
    return keys
}
