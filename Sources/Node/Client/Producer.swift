import Common
import Remoting
import NIOCore
import Synchronization

public enum SendStatus: String, Sendable {
    case sendOK = "SEND_OK"
    case flushDiskTimeout = "FLUSH_DISK_TIMEOUT"
    case flushSlaveTimeout = "FLUSH_SLAVE_TIMEOUT"
    case slaveNotAvailable = "SLAVE_NOT_AVAILABLE"
}

public struct SendResult: Sendable, CustomStringConvertible {
    public var status: SendStatus
    /// The producer-made id (UNIQ_KEY); comma-separated for a batch.
    public var msgID: String {
        get { msgIDText.string }
        set { msgIDText = .text(newValue) }
    }
    /// The broker's id (store host + commit-log offset).
    public var offsetMsgID: String {
        get { offsetMsgIDText.string }
        set { offsetMsgIDText = .text(newValue) }
    }
    public var queue: MessageQueue
    public var queueOffset: Int64
    /// The ids as they came (packed: written out as text only when read).
    var msgIDText: IDText
    var offsetMsgIDText: IDText

    init(status: SendStatus, msgID: IDText, offsetMsgID: IDText, queue: MessageQueue, queueOffset: Int64) {
        self.status = status
        msgIDText = msgID
        offsetMsgIDText = offsetMsgID
        self.queue = queue
        self.queueOffset = queueOffset
    }

    public var description: String {
        "SendResult [sendStatus=\(status.rawValue), msgId=\(msgID), offsetMsgId=\(offsetMsgID), messageQueue=\(queue), queueOffset=\(queueOffset)]"
    }
}

/// Avoids brokers that failed or answered slowly (RocketMQ's MQFaultStrategy): after each send a broker is
/// unavailable for a time picked from its latency; an error counts as 30 s of latency.
struct LatencyFaultTolerance {
    static let latencyMax: [Int64] = [50, 100, 550, 1_000, 2_000, 3_000, 15_000]
    static let notAvailableDuration: [Int64] = [0, 0, 30_000, 60_000, 120_000, 180_000, 600_000]
    var availableAt: [String: Int64] = [:]

    mutating func update(_ brokerName: String, latencyMillis: Int64, isolation: Bool, now: Int64) {
        let duration = Self.duration(latencyMillis: latencyMillis, isolation: isolation)
        if duration == 0 { availableAt[brokerName] = nil } else { availableAt[brokerName] = now + duration }
    }

    /// How long a broker is skipped after a send that took `latencyMillis` (0: not at all).
    static func duration(latencyMillis: Int64, isolation: Bool) -> Int64 {
        let latency = isolation ? 30_000 : latencyMillis
        for index in stride(from: latencyMax.count - 1, through: 0, by: -1) where latency >= latencyMax[index] {
            return notAvailableDuration[index]
        }
        return 0
    }

    func isAvailable(_ brokerName: String, now: Int64) -> Bool { (availableAt[brokerName] ?? 0) <= now }
}

/// A RocketMQ producer: sync, async, one-way, orderly (a queue selector) and batch sends, with retries on
/// another broker, latency fault tolerance, route refresh and NameServer fail-over.
public final class Producer: Sendable {
    public struct Settings: Sendable {
        public var group = "DEFAULT_PRODUCER"
        public var sendMsgTimeoutMillis: Int64 = 3_000
        /// Extra attempts (on another broker when there is one) after a failed sync or async send.
        public var retryTimesWhenSendFailed = 2
        public var maxMessageSize = 4 * 1024 * 1024
        public var defaultTopicQueueNums = 4
        /// Skip brokers that just failed or were slow (on by default here; Java's default is off).
        public var sendLatencyFaultEnable = true
        public init() {}
    }

    public let client: ClientInstance
    public let settings: Settings
    private let state = Mutex<State>(State())
    private let nextQueue = Atomic<Int>(Int.random(in: 0..<1024))

    struct State {
        var started = false
        var faults = LatencyFaultTolerance()
    }

    public init(config: ClientConfig, settings: Settings = Settings()) {
        client = ClientInstance(config: config)
        self.settings = settings
    }

    public convenience init(group: String, namesrvAddr: String) {
        var settings = Settings()
        settings.group = group
        self.init(config: ClientConfig(namesrvAddr: namesrvAddr), settings: settings)
    }

    public func start() {
        let clientID = client.clientID
        let group = settings.group
        client.heartbeatBody.withLock {
            $0 = { HeartbeatData(clientID: clientID, producerGroups: [group]) }
        }
        client.start()
        state.withLock { $0.started = true }
    }

    /// Unregisters from every broker and closes the connections.
    public func shutdown() async {
        guard state.withLock({ state in defer { state.started = false }; return state.started }) else { return }
        for address in client.brokerAddresses {
            _ = try? await client.invoke(address, code: RequestCode.unregisterClient,
                                         fields: ["clientID": client.clientID, "producerGroup": settings.group], timeoutMillis: 1_000)
        }
        await client.shutdown()
    }

    // MARK: Sending

    /// Sends and waits for the broker's answer; retries on another broker after a failure.
    nonisolated(nonsending) public func send(_ message: Message, timeoutMillis: Int64? = nil) async throws -> SendResult {
        try await send([message], batch: false, selector: nil, timeoutMillis: timeoutMillis ?? settings.sendMsgTimeoutMillis)
    }

    /// Sends in the background; `completion` gets the result (or the last error).
    public func send(_ message: Message, completion: @escaping @Sendable (Result<SendResult, Error>) -> Void) {
        Task {
            do { completion(.success(try await send(message))) } catch { completion(.failure(error)) }
        }
    }

    /// Sends messages of one topic as one batch (stored together, each its own message).
    public func send(batch messages: [Message], timeoutMillis: Int64? = nil) async throws -> SendResult {
        guard let first = messages.first else { throw ClientError.badResponse("an empty batch") }
        guard messages.allSatisfy({ $0.topic == first.topic }) else { throw ClientError.badResponse("a batch must keep to one topic") }
        guard messages.allSatisfy({ $0.delayTimeLevel == 0 }) else { throw ClientError.badResponse("batch messages cannot be delayed") }
        return try await send(messages, batch: true, selector: nil, timeoutMillis: timeoutMillis ?? settings.sendMsgTimeoutMillis)
    }

    /// Sends to the queue `selector` picks from the topic's write queues (orderly messages); no retry elsewhere.
    public func send(_ message: Message, selector: @escaping @Sendable ([MessageQueue], Message) -> MessageQueue,
                     timeoutMillis: Int64? = nil) async throws -> SendResult {
        try await send([message], batch: false, selector: selector, timeoutMillis: timeoutMillis ?? settings.sendMsgTimeoutMillis)
    }

    /// Sends without waiting for (or getting) an answer.
    public func sendOneway(_ message: Message) async throws {
        guard state.withLock({ $0.started }) else { throw ClientError.notStarted }
        var message = message
        try prepare(&message)
        let (queues, defaultTopic) = try await publishQueues(message.topic)
        guard let queue = chooseQueue(queues, avoiding: nil) else { throw ClientError.noRoute(topic: message.topic) }
        guard let address = try await masterAddress(message.topic, queue.brokerName, defaultTopic: defaultTopic) else {
            throw ClientError.noRoute(topic: message.topic)
        }
        let request = makeRequest(message, queue: queue, batch: nil).command(serializeType: client.config.serializeType)
        try await client.remoting.invokeOneway(address, request)
    }

    /// Sends with retries on other brokers; `sysFlag` marks a transaction's half message. `messages` is consumed:
    /// the caller's array (a one-element literal for a single send) is prepared in place instead of copied first.
    /// A single message's UNIQ_KEY and WAIT are written into the request, not added to its properties.
    nonisolated(nonsending) func send(_ messages: consuming [Message], batch: Bool, selector: (@Sendable ([MessageQueue], Message) -> MessageQueue)?,
              timeoutMillis: Int64, sysFlag: Int32 = 0) async throws -> SendResult {
        guard state.withLock({ $0.started }) else { throw ClientError.notStarted }
        let bornTimestamp = currentTimeMillis()
        var added: (uniqueID: PackedID?, addWait: Bool) = (nil, false)
        if batch {
            for index in messages.indices { try prepare(&messages[index]) }
        } else {
            added = try prepareSingle(messages[0], now: bornTimestamp)
        }
        let batchBody = batch ? MessageBatch.encode(messages) : nil
        let start = uptimeNanos()
        let attempts = selector == nil ? 1 + settings.retryTimesWhenSendFailed : 1
        var lastBroker: String?
        var lastError: (any Error)?
        for attempt in 0..<attempts {
            let attemptAt = attempt == 0 ? start : uptimeNanos()
            let elapsed = Int64((attemptAt - start) / 1_000_000)
            guard elapsed < timeoutMillis else { break }
            // The cached route (the usual case) is read without an await: each async call is a task switch.
            let cached = attempt == 0 ? client.publishInfo(messages[0].topic).flatMap { $0.queues.isEmpty ? nil : $0 } : nil
            let (queues, defaultTopic): ([MessageQueue], Bool)
            if let cached { (queues, defaultTopic) = (cached.queues, false) } else {
                do { (queues, defaultTopic) = try await publishQueues(messages[0].topic, refresh: attempt > 0) } catch {
                    // No writable queue with a master (a DLedger group electing one): the next send asks again.
                    forgetRoutes(messages[0].topic)
                    lastError = error
                    continue
                }
            }
            let picked = selector.map { $0(queues, messages[0]) } ?? chooseQueue(queues, avoiding: lastBroker)
            var address = picked.flatMap { cached?.masters[$0.brokerName] }
            let routedWithoutAwait = address != nil
            if address == nil, let picked { address = try await masterAddress(messages[0].topic, picked.brokerName, defaultTopic: defaultTopic) }
            guard let queue = picked, let address else {
                // No master right now (a DLedger group electing one): the next send asks the NameServers again.
                forgetRoutes(messages[0].topic)
                lastError = ClientError.noRoute(topic: messages[0].topic)
                continue
            }
            lastBroker = queue.brokerName
            var request = makeRequest(messages[0], queue: queue, batch: batchBody, sysFlag: sysFlag, bornTimestamp: bornTimestamp)
            (request.uniqueID, request.addWait) = added
            let sentAt = routedWithoutAwait ? attemptAt : uptimeNanos()  // from the cache: microseconds since the start
            do {
                let response = client.config.serializeType == .rocketmq
                    ? try await client.remoting.invoke(address, request: request, timeoutMillis: timeoutMillis - elapsed)
                    : try await client.remoting.invoke(address, request.command(serializeType: client.config.serializeType),
                                                       timeoutMillis: timeoutMillis - elapsed)  // JSON headers
                updateFault(queue.brokerName, since: sentAt, isolation: false)
                guard let status = Self.status(response.code) else {
                    let error = ClientError.broker(code: response.code, remark: response.remark ?? "", address: address)
                    // Codes worth another broker; anything else (an illegal message...) fails at once.
                    guard Self.retriedCodes.contains(response.code) else { throw error }
                    lastError = error
                    client.forgetRoute(messages[0].topic)
                    continue
                }
                return result(status, response, messages, uniqueID: added.uniqueID, queue: queue)
            } catch let error as RemotingError {
                updateFault(queue.brokerName, since: sentAt, isolation: true)
                // The broker stopped answering (it died, or lost its role): the next send reads the route again.
                forgetRoutes(messages[0].topic)
                lastError = error
            }
        }
        throw lastError ?? ClientError.noRoute(topic: messages[0].topic)
    }

    static func status(_ code: Int32) -> SendStatus? {
        switch code {
        case ResponseCode.success: .sendOK
        case ResponseCode.flushDiskTimeout: .flushDiskTimeout
        case ResponseCode.flushSlaveTimeout: .flushSlaveTimeout
        case ResponseCode.slaveNotAvailable: .slaveNotAvailable
        default: nil
        }
    }

    /// The result of a stored send: the ids kept packed (text only when read), the queue as the broker answered.
    private func result(_ status: SendStatus, _ response: RemotingCommand, _ messages: borrowing [Message], uniqueID: PackedID?,
                        queue: MessageQueue) -> SendResult {
        // The three fields in one walk over the header (each lookup by name would walk it from the start).
        var found: (msgID: HeaderFields.Value?, queueID: HeaderFields.Value?, queueOffset: HeaderFields.Value?)
        response.fields?.forEach { key, value in
            if found.msgID == nil, HeaderFields.Value.equal(key, "msgId") { found.msgID = value }
            else if found.queueID == nil, HeaderFields.Value.equal(key, "queueId") { found.queueID = value }
            else if found.queueOffset == nil, HeaderFields.Value.equal(key, "queueOffset") { found.queueOffset = value }
            return found.msgID == nil || found.queueID == nil || found.queueOffset == nil
        }
        let ids: IDText
        if let uniqueID {
            ids = .packed(uniqueID)
        } else if messages.count == 1 {  // its id as it is, no array and no joined copy
            ids = .text(messages[0].properties[MessageConst.uniqueClientMessageIDKeyIndex] ?? "")
        } else {
            ids = .text(messages.map { $0.properties[MessageConst.uniqueClientMessageIDKeyIndex] ?? "" }.joined(separator: ","))
        }
        return SendResult(status: status, msgID: ids, offsetMsgID: IDText(found.msgID),
                          queue: MessageQueue(topic: messages[0].topic, brokerName: queue.brokerName,
                                              queueID: found.queueID?.int32 ?? queue.queueID),
                          queueOffset: found.queueOffset?.int64 ?? -1)
    }

    /// Drops the cached routes of `topic` and of TBW102 (its fallback), so the next send reads both again.
    private func forgetRoutes(_ topic: String) {
        client.forgetRoute(topic)
        client.forgetRoute(TopicValidator.autoCreateTopicKeyTopic)
    }

    /// Answers worth trying another broker for (Java's `retryResponseCodes`); anything else fails at once.
    static let retriedCodes: Set<Int32> = [
        ResponseCode.systemError, ResponseCode.serviceNotAvailable, ResponseCode.noPermission, ResponseCode.topicNotExist,
        ResponseCode.systemBusy,
    ]

    /// Checks a message and adds what every send carries (UNIQ_KEY, WAIT): a batch's messages carry them in its body.
    private func prepare(_ message: inout Message) throws {
        let (uniqueID, addWait) = try prepareSingle(message)
        message.properties.reserveCapacity(message.properties.pairs.count + 2)  // the two below grow it once
        if let uniqueID { message.properties.append(MessageConst.uniqueClientMessageIDKeyIndex, uniqueID.hexString) }
        if addWait { message.properties.append(MessageConst.waitStoreMsgOK, "true") }
    }

    /// Checks a message; the UNIQ_KEY to add (nil when it has one) and whether WAIT is to be added, with the
    /// properties' length counting both.
    private func prepareSingle(_ message: borrowing Message, now: Int64 = currentTimeMillis()) throws -> (uniqueID: PackedID?, addWait: Bool) {
        if let problem = TopicValidator.problem(with: message.topic) { throw ClientError.illegalMessage(problem) }
        guard !message.body.isEmpty else { throw ClientError.badResponse("the message body is empty") }
        guard message.body.count <= settings.maxMessageSize else {
            throw ClientError.messageTooLarge(message.body.count, max: settings.maxMessageSize)
        }
        let uniqueID = message.properties[MessageConst.uniqueClientMessageIDKeyIndex] == nil ? UniqueID.nextPacked(now: now) : nil
        let addWait = message.properties[MessageConst.waitStoreMsgOK] == nil
        let byteCount = message.properties.byteCount + (uniqueID == nil ? 0 : SendRequest.uniqueKey.utf8CodeUnitCount + 2 + PackedID.hexCount)
            + (addWait ? SendRequest.waitPair.utf8CodeUnitCount : 0)
        guard byteCount <= MessageProperties.byteCountMax else {
            throw ClientError.illegalMessage("the message properties take \(byteCount) bytes; at most \(MessageProperties.byteCountMax) fit")
        }
        return (uniqueID, addWait)
    }

    /// The topic's write queues, or TBW102's (at most `defaultTopicQueueNums`) so the broker creates the topic.
    func publishQueues(_ topic: String, refresh: Bool = false) async throws -> ([MessageQueue], Bool) {
        if !refresh, let cached = client.publishInfo(topic), !cached.queues.isEmpty { return (cached.queues, false) }
        if let route = try await client.route(topic, refresh: refresh) {
            let queues = route.publishQueues(topic: topic)
            if !queues.isEmpty { return (queues, false) }
        }
        guard let fallback = try await client.route(TopicValidator.autoCreateTopicKeyTopic, refresh: refresh) else { throw ClientError.noRoute(topic: topic) }
        let queues = fallback.queueDatas.filter { $0.perm.isWriteable && fallback.masterAddress($0.brokerName) != nil }.flatMap { data in
            (0..<min(settings.defaultTopicQueueNums, data.writeQueueNums)).map { MessageQueue(topic: topic, brokerName: data.brokerName, queueID: Int32($0)) }
        }
        guard !queues.isEmpty else { throw ClientError.noRoute(topic: topic) }
        return (queues, true)
    }

    /// The master address of `brokerName` for `topic` (or TBW102's when the topic has no route yet).
    func masterAddress(_ topic: String, _ brokerName: String, defaultTopic: Bool) async throws -> String? {
        if !defaultTopic, let address = client.publishInfo(topic)?.masters[brokerName] { return address }
        return try await client.route(defaultTopic ? TopicValidator.autoCreateTopicKeyTopic : topic)?.masterAddress(brokerName)
    }

    /// Round-robin over the queues, skipping unavailable brokers and (on a retry) the last one tried.
    func chooseQueue(_ queues: [MessageQueue], avoiding lastBroker: String?) -> MessageQueue? {
        guard !queues.isEmpty else { return nil }
        let start = nextQueue.wrappingAdd(1, ordering: .relaxed).oldValue
        if settings.sendLatencyFaultEnable, let faults = state.withLock({ $0.faults.availableAt.isEmpty ? nil : $0.faults }) {
            let now = currentTimeMillis()
            for step in 0..<queues.count {
                let queue = queues[((start &+ step) & Int.max) % queues.count]
                if queue.brokerName != lastBroker, faults.isAvailable(queue.brokerName, now: now) { return queue }
            }
        }
        for step in 0..<queues.count {
            let queue = queues[((start &+ step) & Int.max) % queues.count]
            if queue.brokerName != lastBroker { return queue }
        }
        return queues[(start & Int.max) % queues.count]
    }

    private func updateFault(_ brokerName: String, since: UInt64, isolation: Bool) {
        guard settings.sendLatencyFaultEnable else { return }
        let latency = Int64((uptimeNanos() - since) / 1_000_000)
        guard LatencyFaultTolerance.duration(latencyMillis: latency, isolation: isolation) > 0 else {
            // A quick answer (the usual case): the broker is available; no clock read, nothing to clear mostly.
            state.withLock { state in
                if !state.faults.availableAt.isEmpty { state.faults.availableAt[brokerName] = nil }
            }
            return
        }
        let now = currentTimeMillis()
        state.withLock { $0.faults.update(brokerName, latencyMillis: latency, isolation: isolation, now: now) }
    }

    private func makeRequest(_ message: Message, queue: MessageQueue, batch: ByteBuffer?, sysFlag: Int32 = 0,
                             bornTimestamp: Int64 = currentTimeMillis()) -> SendRequest {
        SendRequest(group: settings.group, topic: message.topic, defaultTopicQueueNums: settings.defaultTopicQueueNums, queueID: queue.queueID,
                    sysFlag: sysFlag, bornTimestamp: bornTimestamp, flag: message.flag, properties: message.properties, uniqueID: nil,
                    addWait: false, body: batch == nil ? message.body : [], batch: batch)
    }

    /// SEND_MESSAGE_V2 (or SEND_BATCH_MESSAGE with `batch`) as a command, the message sent as it is (its
    /// properties as they stand): the fields written straight into the header buffer, no dictionary, no JSON.
    public static func sendRequest(_ message: Message, group: String, queueID: Int32, defaultTopicQueueNums: Int = 4,
                                   batch: ByteBuffer? = nil, serializeType: SerializeType = .rocketmq, sysFlag: Int32 = 0) -> RemotingCommand {
        SendRequest(group: group, topic: message.topic, defaultTopicQueueNums: defaultTopicQueueNums, queueID: queueID, sysFlag: sysFlag,
                    bornTimestamp: currentTimeMillis(), flag: message.flag, properties: message.properties, uniqueID: nil, addWait: false,
                    body: batch == nil ? message.body : [], batch: batch).command(serializeType: serializeType)
    }
}
