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
    /// The connection's spare buffer for an answer's header fields (nil: none kept, as in tests).
    let spareFields: SpareFields?
    /// The server's handler of the connection, for answers given later without a future (`answer(_:to:)`).
    private var handler: ServerHandler?
    public var eventLoop: EventLoop { channel.eventLoop }

    init(channel: Channel) {
        self.channel = channel
        spareFields = nil
    }

    init(channel: Channel, spareFields: SpareFields, handler: ServerHandler) {
        self.channel = channel
        self.spareFields = spareFields
        self.handler = handler
    }

    /// True when the processor may answer `.deferred` and call `answer(_:to:)` later (the server's contexts).
    public var answersLater: Bool { handler != nil }

    /// The same context without the deferred door, for callers that need a future (`RemotingProcessor.process`).
    public var futuresOnly: RequestContext {
        var context = self
        context.handler = nil
        return context
    }

    /// Answers `request` (answered `.deferred`) from a task on the connection's event loop: the answer is written
    /// with the others given in the same event-loop tick, with no future or callback.
    public func answer(_ response: RemotingCommand?, to request: RemotingCommand) {
        guard let handler else { preconditionFailure("answer(_:to:) needs the server's context (answersLater)") }
        handler.answerLater(response, to: request, channel: channel)
    }

    /// As `answer(_:to:)`, for one of a batch of answers given by one task: the answer is encoded now and written
    /// by `writeHeldAnswers()`, which the task calls after its batch (one write and flush per connection).
    public func holdAnswer(_ response: RemotingCommand?, to request: RemotingCommand) {
        guard let handler else { preconditionFailure("holdAnswer(_:to:) needs the server's context (answersLater)") }
        handler.answerLater(response, to: request, channel: channel, writing: false)
    }

    /// Writes and flushes the answers `holdAnswer` encoded (nothing when a read burst's end writes them).
    public func writeHeldAnswers() {
        handler?.writeHeld()
    }

    /// A writer for an answer's header fields. On the connection's event loop it reuses the buffer of an answer
    /// the server has already written (clearing a buffer nobody else holds allocates nothing); otherwise it
    /// allocates one of `capacity` bytes.
    public func fieldsWriter(capacity: Int) -> HeaderFields.Writer {
        if let spareFields, spareFields.buffer != nil, channel.eventLoop.inEventLoop {
            return HeaderFields.Writer(reusing: spareFields.buffer.take()!)  // moved: the writer holds the only reference
        }
        return HeaderFields.Writer(allocator: channel.allocator, capacity: capacity)
    }
    /// What a processor keeps for this connection (the send processor: the topics it was last sent to). Only on
    /// the connection's event loop, and only for connections a server accepted: elsewhere it reads nil and
    /// setting it does nothing.
    public var connectionState: AnyObject? {
        get { spareFields != nil && channel.eventLoop.inEventLoop ? spareFields!.processorState : nil }
        nonmutating set {
            guard let spareFields, channel.eventLoop.inEventLoop else { return }
            spareFields.processorState = newValue
        }
    }

    /// The peer's socket address: the connection's copy, taken when it was accepted (the channel's getter takes a
    /// lock on every call).
    public var peerAddress: SocketAddress? { spareFields.map(\.peer) ?? channel.remoteAddress }

    public var remoteAddress: String { channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?" }
}

/// A processor's answer: ready now (no future, no callback: the server writes it with the read burst's other
/// answers in one buffer), or later.
public enum RemotingAnswer: Sendable {
    case now(RemotingCommand?)
    case later(EventLoopFuture<RemotingCommand?>)
    /// The processor kept the context and calls `RequestContext.answer(_:to:)` later, on the event loop (only with
    /// a context that `answersLater`).
    case deferred

    /// The answer as a future (for callers that want one; they pass `futuresOnly` contexts, never answered `.deferred`).
    public func future(on eventLoop: EventLoop) -> EventLoopFuture<RemotingCommand?> {
        switch self {
        case .now(let response): eventLoop.makeSucceededFuture(response)
        case .later(let future): future
        case .deferred: preconditionFailure("a deferred answer has no future: call with context.futuresOnly")
        }
    }
}

/// A connection's buffer for answers' header fields, handed back after each answer written at once: touched on
/// the connection's event loop only. With the peer's address, fixed when the connection was accepted.
final class SpareFields: @unchecked Sendable {
    var buffer: ByteBuffer?
    let peer: SocketAddress?
    /// `RequestContext.connectionState`.
    var processorState: AnyObject?

    init(peer: SocketAddress?) { self.peer = peer }
    /// A larger buffer (an answer with big fields) is not kept.
    static let bytesMax = 1024

    /// Keeps the fields' buffer of an answer just encoded, when it is a small one.
    func keep(_ fields: HeaderFields?) {
        guard let fields, fields.bytes.storageCapacity <= Self.bytesMax else { return }
        buffer = fields.bytes
    }
}

/// Answers requests. A response may come later (a held long-polling pull): the connection keeps serving
/// other requests meanwhile. Return nil for no response (one-way requests).
public protocol RemotingProcessor: Sendable {
    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?>
    /// The server calls this one: a processor whose answers are often ready at once (SEND) answers `.now`;
    /// the default waits for `process`.
    func answer(_ request: RemotingCommand, context: RequestContext) -> RemotingAnswer
    /// A connection closed (a broker's channel going away drops it from the NameServer at once).
    func connectionClosed(_ context: RequestContext)
}

extension RemotingProcessor {
    public func connectionClosed(_ context: RequestContext) {}
    public func answer(_ request: RemotingCommand, context: RequestContext) -> RemotingAnswer {
        .later(process(request, context: context))
    }
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
                    let handler = ServerHandler(processor: processor, connections: connections, invoker: invoker, peer: channel.remoteAddress,
                                                log: log)
                    try channel.pipeline.syncOperations.addHandlers([
                        // Reader idleness only: watching writes would cost a promise per response.
                        IdleStateHandler(readTimeout: idle),
                        IdleCloser(log: log),
                        ByteToMessageHandler(RemotingFrameDecoder(limits: limits, budget: budget, sink: handler)),
                        // After the handler: its answers go out already encoded (one buffer per read burst), and
                        // requests this side sends (`ServerInvoker`) come from the tail through the encoder.
                        handler,
                        MessageToByteHandler(RemotingFrameEncoder()),
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
    typealias OutboundOut = ByteBuffer
    let processor: any RemotingProcessor
    let log: @Sendable (String) -> Void
    /// Answers are encoded into `outbound` on the event loop and written and flushed together: a read burst's at
    /// channelReadComplete, later ones by a task queued behind their completions (one buffer and one write for
    /// many answers). Touched on the event loop only.
    private var reading = false
    private var needsFlush = false
    private var writeScheduled = false
    private var outbound: ByteBuffer?
    /// The buffer last written, kept for the next burst.
    private var written: ByteBuffer?
    private let spareFields: SpareFields
    /// Past this many bytes a burst's answers are written before it ends; a buffer grown past it is not kept.
    static let outboundBytesMax = 64 * 1024

    let connections: ConnectionCounter
    /// Where answers to requests this side sent go (nil: such answers are dropped).
    let invoker: ServerInvoker?

    init(processor: any RemotingProcessor, connections: ConnectionCounter, invoker: ServerInvoker?, peer: SocketAddress?,
         log: @escaping @Sendable (String) -> Void) {
        self.processor = processor
        spareFields = SpareFields(peer: peer)
        self.connections = connections
        self.invoker = invoker
        self.log = log
    }

    func channelActive(context: ChannelHandlerContext) {
        connections.opened()
        context.fireChannelActive()
    }

    /// Its own context, for the requests the decoder hands over directly (`received`); set while in the pipeline.
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// A request from the decoder, without the pipeline's boxing.
    func received(_ request: RemotingCommand) {
        guard let context else { return }
        read(request, context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        read(unwrapInboundIn(data), context: context)
    }

    private func read(_ request: RemotingCommand, context: ChannelHandlerContext) {
        if request.isResponse {  // answers to requests this side sent
            invoker?.complete(request)
            return
        }
        reading = true
        let channel = context.channel
        switch processor.answer(request, context: RequestContext(channel: channel, spareFields: spareFields, handler: self)) {
        case .now(let answer):
            guard let response = Self.finished(answer, to: request) else { return }
            append(response, context: context)
            spareFields.keep(response.fields)
        case .later(let future):
            future.whenComplete { [self] result in
                switch result {
                case .success(let response): answerLater(response, to: request, channel: channel)
                case .failure(let error):
                    answerLater(.response(to: request, code: ResponseCode.systemError, remark: "\(error)"), to: request, channel: channel)
                }
            }
        case .deferred:
            break
        }
    }

    /// An answer completed after its request's read: inside a burst it is written in order with the burst's other
    /// answers, outside one by a queued task with the others completed meanwhile.
    /// `writing` false: the caller calls `writeHeld()` after its batch, instead of a task written per connection.
    func answerLater(_ answer: RemotingCommand?, to request: RemotingCommand, channel: Channel, writing: Bool = true) {
        guard let response = Self.finished(answer, to: request) else { return }
        guard channel.eventLoop.inEventLoop, let context = self.context else {
            channel.writeAndFlush(response, promise: nil)
            return
        }
        append(response, context: context)
        spareFields.keep(response.fields)
        if writing && !reading { scheduleWrite() }
    }

    /// Writes and flushes the answers encoded since the last write, outside a read burst (whose end writes them).
    func writeHeld() {
        guard !reading, let context else { return }
        writeOutbound(context: context)
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    /// The response as sent: the request's opaque and serialisation, the response flag; nil for none (C's one-way
    /// requests arrive without the one-way flag; answering them is harmless).
    static func finished(_ answer: RemotingCommand?, to request: RemotingCommand) -> RemotingCommand? {
        guard var response = answer, !request.isOneway else { return nil }
        response.opaque = request.opaque
        response.flag |= RemotingCommand.responseFlag
        response.serializeType = request.serializeType
        return response
    }

    /// Encodes an answer into the burst's buffer. The last burst's buffer is reused: once the socket has taken
    /// its bytes this side holds the only reference, and clearing it allocates nothing.
    private func append(_ response: RemotingCommand, context: ChannelHandlerContext) {
        if outbound == nil {
            if var reused = written.take() {
                reused.clear()
                outbound = reused
            } else {
                outbound = context.channel.allocator.buffer(capacity: 4096)
            }
        }
        RemotingFrameEncoder.write(response, into: &outbound!)
        if outbound!.readableBytes >= Self.outboundBytesMax { writeOutbound(context: context) }
    }

    /// Writes the burst's buffer (not flushed) and keeps it for reuse unless it grew large.
    private func writeOutbound(context: ChannelHandlerContext) {
        guard let buffer = outbound.take() else { return }
        context.write(wrapOutboundOut(buffer), promise: nil)
        written = buffer.capacity > Self.outboundBytesMax ? nil : buffer
        needsFlush = true
    }

    /// Answers completed outside a read burst (puts made durable by one group commit, say) are written together,
    /// once the tasks queued before this one (the same commit's other completions) have run.
    private func scheduleWrite() {
        guard !writeScheduled, let context else { return }
        writeScheduled = true
        context.eventLoop.execute { [self] in
            writeScheduled = false
            guard !reading, let context = self.context else { return }  // a burst's end writes them otherwise
            writeOutbound(context: context)
            needsFlush = false
            context.flush()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        writeOutbound(context: context)
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
