import Common
import Logging
import Remoting
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Settings every client role shares.
public struct ClientConfig: Sendable {
    /// `host:port;host:port`: the NameServers, tried in turn when one does not answer.
    public var namesrvAddr: String
    public var instanceName: String = "DEFAULT"
    /// How long a request may take.
    public var timeoutMillis: Int64 = 3_000
    public var pollNameServerIntervalMillis: Int64 = 30_000
    public var heartbeatBrokerIntervalMillis: Int64 = 30_000
    /// Header serialisation of our requests: the binary form by default (no JSON on the hot path).
    public var serializeType: SerializeType = .rocketmq
    /// Plain-ACL credentials (RocketMQ's `AclClientRPCHook`): every request to a NameServer or broker is signed.
    public var credentials: SessionCredentials?
    /// The scheduler slice of the client's event loops in microseconds (0: the kernel's default; else 100...100000,
    /// Linux 6.12 or later): a short one lets a loop run soon after an answer arrives (`ThreadSlice`).
    public var eventLoopSliceMicros = ClientConfig.eventLoopSliceMicrosDefault
    public static let eventLoopSliceMicrosDefault = 250

    public init(namesrvAddr: String) { self.namesrvAddr = namesrvAddr }

    var nameServers: [String] { namesrvAddr.split(separator: ";").map { $0.trimmingCharacters(in: " ") }.filter { !$0.isEmpty } }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}

/// What a producer or consumer shares with its brokers: the remoting client, routes from the
/// NameServers (with fail-over between them), the client id and periodic heartbeats.
public final class ClientInstance: Sendable {
    public let config: ClientConfig
    public let clientID: String
    let remoting: RemotingClient
    let group: MultiThreadedEventLoopGroup
    private let state = Mutex<State>(State())
    /// Heartbeat body builder (the producer's and consumer's groups) and server-request handler, set once at start.
    let heartbeatBody = Mutex<@Sendable () -> HeartbeatData>({ HeartbeatData(clientID: "") })
    let serverRequests = ServerRequestHandler()
    private let timers = Mutex<[Task<Void, Never>]>([])

    struct State {
        var routes: [String: TopicRouteData] = [:]
        /// Per topic: the producer's write queues and each broker's master address, computed once per route.
        var publish: [String: PublishInfo] = [:]
        var nameServerIndex = 0
        var closed = false
        /// The broker id each queue's last pull answer suggested reading from next (`suggestWhichBrokerId`).
        var suggested: [MessageQueue: Int64] = [:]
    }

    public init(config: ClientConfig, threads: Int = 1) {
        self.config = config
        let pid = getpid()
        clientID = "127.0.0.1@\(pid)#\(config.instanceName)#\(UInt32.random(in: 0...UInt32.max))"
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.group = group
        // A policy or limit that refuses the slice is logged; the client works on with the kernel's.
        let micros = config.eventLoopSliceMicros
        ThreadSlice.request(micros: micros, for: group) { problem in
            Logger(label: "RocketmqClient").warning(
                "client: eventLoopSliceMicros=\(micros) not applied, the event loop keeps the kernel's slice: \(problem)")
        }
        let handler = serverRequests
        remoting = RemotingClient(group: group, credentials: config.credentials) { command, channel in handler.handle(command, channel) }
    }

    /// Starts route refresh and heartbeats.
    func start() {
        every(millis: config.pollNameServerIntervalMillis) { [weak self] in await self?.refreshRoutes() }
        every(millis: config.heartbeatBrokerIntervalMillis) { [weak self] in await self?.sendHeartbeats() }
    }

    /// Adds a periodic task that ends with the instance.
    func every(millis: Int64, _ body: @escaping @Sendable () async -> Void) {
        let task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(millis))
                if Task.isCancelled { return }
                await body()
            }
        }
        timers.withLock { $0.append(task) }
    }

    /// An executor on the event loop this client's connections use: tasks that prefer it send and get their
    /// answers without a thread switch (`EventLoopTaskExecutor`).
    public func makeTaskExecutor() -> EventLoopTaskExecutor { remoting.makeTaskExecutor() }

    public func shutdown() async {
        let tasks = timers.withLock { tasks in defer { tasks.removeAll() }; return tasks }
        for task in tasks { task.cancel() }
        state.withLock { $0.closed = true }
        await remoting.close()
        try? await group.shutdownGracefully()
    }

    // MARK: Requests

    /// Sends a request and returns the response (any code).
    func invoke(_ address: String, code: Int32, fields: [String: String] = [:], body: ByteBuffer? = nil,
                timeoutMillis: Int64? = nil) async throws -> RemotingCommand {
        guard !state.withLock({ $0.closed }) else { throw ClientError.notStarted }
        var request = RemotingCommand(code: code, opaque: 0, extFields: fields, body: body, serializeType: config.serializeType)
        request.language = .other
        return try await remoting.invoke(address, request, timeoutMillis: timeoutMillis ?? config.timeoutMillis)
    }

    /// Sends a request and insists on SUCCESS.
    func call(_ address: String, code: Int32, fields: [String: String] = [:], body: ByteBuffer? = nil,
              timeoutMillis: Int64? = nil) async throws -> RemotingCommand {
        let response = try await invoke(address, code: code, fields: fields, body: body, timeoutMillis: timeoutMillis)
        guard response.code == ResponseCode.success else {
            throw ClientError.broker(code: response.code, remark: response.remark ?? "", address: address)
        }
        return response
    }

    /// Asks the NameServers in turn (starting with the last one that answered) until one answers.
    public func callNameServer(code: Int32, fields: [String: String] = [:], body: ByteBuffer? = nil) async throws -> RemotingCommand {
        let servers = config.nameServers
        guard !servers.isEmpty else { throw ClientError.noNameServer("no NameServer address given (-n or NAMESRV_ADDR)") }
        let first = state.withLock { $0.nameServerIndex }
        var failures: [String] = []
        for step in 0..<servers.count {
            let index = (first + step) % servers.count
            do {
                let response = try await invoke(servers[index], code: code, fields: fields, body: body)
                state.withLock { $0.nameServerIndex = index }
                return response
            } catch let error as RemotingError {
                failures.append(error.peerAndReason)
            }
        }
        throw ClientError.noNameServer(failures.count == 1 ? "cannot reach NameServer \(failures[0])"
                                       : "cannot reach any NameServer: " + failures.joined(separator: "; "))
    }

    // MARK: Routes

    /// The route of `topic`, from the cache unless `refresh`; nil when the NameServers know no such topic.
    public func route(_ topic: String, refresh: Bool = false) async throws -> TopicRouteData? {
        if !refresh, let cached = state.withLock({ $0.routes[topic] }) { return cached }
        let response = try await callNameServer(code: RequestCode.getRouteInfoByTopic, fields: ["topic": topic])
        guard response.code == ResponseCode.success, let body = response.body, body.readableBytes > 0 else {
            if response.code == ResponseCode.topicNotExist || response.code == ResponseCode.success { return nil }
            throw ClientError.broker(code: response.code, remark: response.remark ?? "", address: "NameServer")
        }
        let route = try TopicRouteData.decode(from: body)
        let changed = state.withLock { state -> Bool in
            defer {
                state.routes[topic] = route
                state.publish[topic] = PublishInfo(route: route, topic: topic)
            }
            return state.routes[topic] != route
        }
        if changed { await sendHeartbeats(to: route.allAddresses) }
        return route
    }

    /// The broker id to read `queue` from: the last suggestion, else the master.
    func suggestedBroker(_ queue: MessageQueue) -> Int64 { state.withLock { $0.suggested[queue] } ?? BrokerData.masterID }

    func suggestBroker(_ id: Int64, for queue: MessageQueue) { state.withLock { $0.suggested[queue] = id } }

    func forgetRoute(_ topic: String) {
        state.withLock {
            _ = $0.routes.removeValue(forKey: topic)
            _ = $0.publish.removeValue(forKey: topic)
        }
    }

    /// The cached publish view of `topic` (after `route(topic)` found one).
    func publishInfo(_ topic: String) -> PublishInfo? { state.withLock { $0.publish[topic] } }

    var knownTopics: [String] { state.withLock { Array($0.routes.keys) } }

    func refreshRoutes() async {
        for topic in knownTopics { _ = try? await route(topic, refresh: true) }
    }

    var brokerAddresses: [String] { state.withLock { Set($0.routes.values.flatMap(\.allAddresses)).sorted() } }

    // MARK: Heartbeats

    func sendHeartbeats(to addresses: [String]? = nil) async {
        let body = heartbeatBody.withLock { $0 }().encode()
        for address in addresses ?? brokerAddresses {
            _ = try? await invoke(address, code: RequestCode.heartBeat, body: body)
        }
    }

}

/// A route as a producer uses it: write queues with their master addresses.
struct PublishInfo: Sendable {
    var queues: [MessageQueue]
    var masters: [String: String]

    init(route: TopicRouteData, topic: String) {
        queues = route.publishQueues(topic: topic)
        masters = [:]
        for broker in route.brokerDatas { if let address = broker.masterAddress { masters[broker.brokerName] = address } }
    }
}

/// Where requests a broker sends us (NOTIFY_CONSUMER_IDS_CHANGED, GET_CONSUMER_RUNNING_INFO ...) go, with the
/// connection they came on (an answer goes back on it); set once a consumer starts. CHECK_TRANSACTION_STATE goes to
/// `transactionCheck` (a transaction producer's).
final class ServerRequestHandler: Sendable {
    let body = Mutex<@Sendable (RemotingCommand, Channel) -> Void>({ _, _ in })
    let transactionCheck = Mutex<(@Sendable (RemotingCommand, Channel) -> Void)?>(nil)
    func handle(_ command: RemotingCommand, _ channel: Channel) {
        if command.code == RequestCode.checkTransactionState, let check = transactionCheck.withLock({ $0 }) { return check(command, channel) }
        body.withLock { $0 }(command, channel)
    }
}
