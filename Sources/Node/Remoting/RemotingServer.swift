#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Synchronization

/// Where a request came from, for the processor (and for requests the server sends back on the same
/// connection, such as NOTIFY_CONSUMER_IDS_CHANGED).
public struct RequestContext: Sendable {
    public let channel: Channel
    public var eventLoop: EventLoop { channel.eventLoop }
    public var remoteAddress: String { channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?" }
}

/// Answers requests. A response may come later (a held long-polling pull): the connection keeps serving
/// other requests meanwhile. Return nil for no response (one-way requests).
public protocol RemotingProcessor: Sendable {
    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?>
    /// A connection closed (a broker's channel going away drops it from the NameServer at once).
    func connectionClosed(_ context: RequestContext)
}

extension RemotingProcessor {
    public func connectionClosed(_ context: RequestContext) {}
}

/// A TCP server speaking the remoting protocol: one pipeline per connection (frame decoder, encoder,
/// dispatch to the processor). A connection that sends a bad frame is logged and closed; others go on.
///
/// The processor is held as an existential, not a generic parameter: the server lives in this module and the
/// processors in others, and a generic handler would not be specialized across the module boundary (every
/// request would look up generic metadata at run time).
public final class RemotingServer: Sendable {
    public let channel: Channel
    let group: EventLoopGroup

    /// Binds `host:port` (port 0 picks a free one; see `port`).
    public init(host: String = "127.0.0.1", port: Int, group: EventLoopGroup, processor: any RemotingProcessor,
                limits: ConnectionLimits = ConnectionLimits(), invoker: ServerInvoker? = nil,
                log: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        self.group = group
        let budget = FrameBudget(capacity: limits.pendingFrameBytesMax)
        self.budget = budget
        let connections = ConnectionCounter()
        self.connections = connections
        let idle = TimeAmount.milliseconds(limits.idleTimeoutMillis)
        do {
            channel = try await Self.bind(host: host, port: port, group: group, idle: idle, limits: limits, budget: budget,
                                          processor: processor, connections: connections, invoker: invoker, log: log)
        } catch {
            throw ListenError(host: host, port: port, reason: RemotingError.connectReason(error))
        }
    }

    private static func bind(host: String, port: Int, group: EventLoopGroup, idle: TimeAmount, limits: ConnectionLimits,
                             budget: FrameBudget, processor: any RemotingProcessor, connections: ConnectionCounter,
                             invoker: ServerInvoker?, log: @escaping @Sendable (String) -> Void) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        // Reader idleness only: watching writes would cost a promise per response.
                        IdleStateHandler(readTimeout: idle),
                        IdleCloser(log: log),
                        ByteToMessageHandler(RemotingFrameDecoder(limits: limits, budget: budget)),
                        MessageToByteHandler(RemotingFrameEncoder()),
                        ServerHandler(processor: processor, connections: connections, invoker: invoker, log: log),
                    ])
                }
            }
            .bind(host: host, port: port).get()
    }

    /// A server port that could not be bound, by number (`cannot listen on 0.0.0.0:10911 (address already in use)`).
    public struct ListenError: Error, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var reason: String
        public var description: String { "cannot listen on \(host):\(port) (\(reason))" }
    }

    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Bytes reserved by unfinished frames across the connections.
    public let budget: FrameBudget
    /// Connections open now and accepted since start (metrics read them at scrape time).
    public let connections: ConnectionCounter

    public func close() async throws {
        try await channel.close()
    }
}

final class ServerHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = RemotingCommand
    typealias OutboundOut = RemotingCommand
    let processor: any RemotingProcessor
    let log: @Sendable (String) -> Void
    /// Inside a read burst, answers ready at once are written and flushed together at channelReadComplete.
    private var reading = false
    private var needsFlush = false

    let connections: ConnectionCounter
    /// Where answers to requests this side sent go (nil: such answers are dropped).
    let invoker: ServerInvoker?

    init(processor: any RemotingProcessor, connections: ConnectionCounter, invoker: ServerInvoker?, log: @escaping @Sendable (String) -> Void) {
        self.processor = processor
        self.connections = connections
        self.invoker = invoker
        self.log = log
    }

    func channelActive(context: ChannelHandlerContext) {
        connections.opened()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = unwrapInboundIn(data)
        if request.isResponse {  // answers to requests this side sent
            invoker?.complete(request)
            return
        }
        reading = true
        let channel = context.channel
        let future = processor.process(request, context: RequestContext(channel: channel))
        future.whenComplete { [self] result in
            let response: RemotingCommand?
            switch result {
            case .success(let answer): response = answer
            case .failure(let error):
                response = .response(to: request, code: ResponseCode.systemError, remark: "\(error)")
            }
            // C's one-way requests arrive without the one-way flag; answering them is harmless.
            guard var response, !request.isOneway else { return }
            response.opaque = request.opaque
            response.flag |= RemotingCommand.responseFlag
            response.serializeType = request.serializeType
            if channel.eventLoop.inEventLoop && reading {
                channel.write(response, promise: nil)
                needsFlush = true
            } else {
                channel.writeAndFlush(response, promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connections.closed()
        processor.connectionClosed(RequestContext(channel: context.channel))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        log("remoting: closing \(context.remoteAddress.map { "\($0)" } ?? "?"): \(error)")
        context.close(promise: nil)
    }
}

/// Connections of one server: two relaxed atomic adds per connection, none per request.
public final class ConnectionCounter: Sendable {
    private let open = Atomic<Int>(0)
    private let accepted = Atomic<Int64>(0)

    func opened() {
        open.wrappingAdd(1, ordering: .relaxed)
        accepted.wrappingAdd(1, ordering: .relaxed)
    }

    func closed() { open.wrappingSubtract(1, ordering: .relaxed) }

    /// Connections open now.
    public var openCount: Int { open.load(ordering: .relaxed) }
    /// Connections accepted since the server started.
    public var acceptedCount: Int64 { accepted.load(ordering: .relaxed) }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for local clusters and tests).
public func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            _ = bind(fd, pointer, length)
            return getsockname(fd, pointer, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
