import NIOCore

/// A request the connection writes straight into its outbound buffer (the producer's SEND): a binary header
/// with these fields, then the body; no `RemotingCommand`, no header buffer and no body buffer of its own.
public protocol RemotingRequest {
    var code: Int32 { get }
    /// The extFields as binary entries (`HeaderFields.Writer`'s layout), appended to `buffer`.
    func writeFields(into buffer: inout ByteBuffer)
    /// The body, appended to `buffer` (nothing for none).
    func writeBody(into buffer: inout ByteBuffer)
}

extension RemotingRequest {
    /// The same request as a command (for signing, or a JSON connection): fields and body in buffers of their own.
    public func command(serializeType: SerializeType) -> RemotingCommand {
        var fields = HeaderFields.Writer(capacity: 192)
        writeFields(into: &fields.buffer)
        var body = ByteBuffer()
        writeBody(into: &body)
        var request = RemotingCommand(code: code, fields: fields.fields, body: body.readableBytes > 0 ? body : nil,
                                      serializeType: serializeType)
        request.language = .other
        return request
    }
}

extension ByteBuffer {
    /// `request` as a binary-header frame with `opaque`, byte for byte what `RemotingFrameEncoder` writes for
    /// `request.command(serializeType: .rocketmq)`.
    mutating func writeFrame(_ request: some RemotingRequest, opaque: Int32) {
        let start = writerIndex
        writeInteger(Int32(0))  // length, patched below
        writeInteger(UInt32(0))  // header word, patched below
        let headerStart = writerIndex
        writeInteger(Int16(truncatingIfNeeded: request.code))
        writeInteger(LanguageCode.other.rawValue)
        writeInteger(Int16(truncatingIfNeeded: RemotingCommand.ourVersion))
        writeInteger(opaque)
        writeInteger(Int32(0))  // flag
        writeInteger(Int32(0))  // remark: none
        let fieldsLengthAt = writerIndex
        writeInteger(Int32(0))
        request.writeFields(into: &self)
        setInteger(Int32(writerIndex - fieldsLengthAt - 4), at: fieldsLengthAt)
        let headerLength = writerIndex - headerStart
        request.writeBody(into: &self)
        setInteger(Int32(writerIndex - start - 4), at: start)
        setInteger(UInt32(SerializeType.rocketmq.rawValue) << 24 | UInt32(headerLength), at: start + 4)
    }
}

/// Who waits for an answer: an async caller suspended on a continuation (no allocation), or a promise.
enum ResponseWaiter {
    case continuation(UnsafeContinuation<RemotingCommand, any Error>)
    case promise(EventLoopPromise<RemotingCommand>)

    func succeed(_ response: RemotingCommand) {
        switch self {
        case .continuation(let continuation): continuation.resume(returning: response)
        case .promise(let promise): promise.succeed(response)
        }
    }

    func fail(_ error: any Error) {
        switch self {
        case .continuation(let continuation): continuation.resume(throwing: error)
        case .promise(let promise): promise.fail(error)
        }
    }
}

/// Matches responses to waiting requests on one connection (event-loop confined). Requests are encoded as they
/// come into one outbound buffer, written and flushed once the tasks already queued have run (one write for a
/// tick's requests; the buffer is reused once the socket took it). Timeouts are found by one sweep every 50 ms
/// (not a timer per request). Responses come straight from `ClientFrameDecoder`, not through the pipeline.
final class ClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = RemotingCommand
    typealias OutboundOut = ByteBuffer
    let address: String
    let onServerRequest: @Sendable (RemotingCommand, Channel) -> Void
    private var pending: [Int32: (waiter: ResponseWaiter, deadline: NIODeadline, failure: RemotingError)] = [:]
    private var context: ChannelHandlerContext?
    private var sweeper: RepeatedTask?
    private var outbound: ByteBuffer
    private var flushScheduled = false
    /// The flush, made once (queued by reference each tick, not allocated per request).
    private var flushTask: (() -> Void)?
    /// Set once the connection closed: later registrations fail at once (nothing would ever answer them).
    private var inactive = false
    static let outboundCapacity = 64 * 1024

    init(address: String, onServerRequest: @escaping @Sendable (RemotingCommand, Channel) -> Void) {
        self.address = address
        self.onServerRequest = onServerRequest
        outbound = ByteBufferAllocator().buffer(capacity: Self.outboundCapacity)
        pending.reserveCapacity(64)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        flushTask = { [weak self] in self?.flushOutbound() }
        sweeper = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { [weak self] _ in
            self?.sweep()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweeper?.cancel()
        sweeper = nil
        failAll()
        self.context = nil
        flushTask = nil
    }

    /// Registers a request and encodes it; the write is flushed once the tasks already queued have run.
    func send(_ request: some RemotingRequest, opaque: Int32, waiter: ResponseWaiter, deadline: NIODeadline, failure: RemotingError) {
        guard context != nil, !inactive else { return waiter.fail(RemotingError.connectionClosed(address: address)) }
        pending[opaque] = (waiter, deadline, failure)
        outbound.writeFrame(request, opaque: opaque)
        scheduleFlush()
    }

    /// Registers a command and encodes it (any serialisation), flushed as `send(_:opaque:...)` is.
    func send(_ command: RemotingCommand, waiter: ResponseWaiter, deadline: NIODeadline, failure: RemotingError) {
        guard context != nil, !inactive else { return waiter.fail(RemotingError.connectionClosed(address: address)) }
        pending[command.opaque] = (waiter, deadline, failure)
        RemotingFrameEncoder.write(command, into: &outbound)
        scheduleFlush()
    }

    /// Encodes a one-way command, flushed as requests are (once the tasks already queued have run); false when closed.
    func sendOneway(_ command: RemotingCommand) -> Bool {
        guard context != nil, !inactive else { return false }
        RemotingFrameEncoder.write(command, into: &outbound)
        scheduleFlush()
        return true
    }

    private func scheduleFlush() {
        guard !flushScheduled, let context, let flushTask else { return }
        flushScheduled = true
        context.eventLoop.execute(flushTask)
    }

    /// One write of everything encoded since the last; a failed write closes the channel, and channelInactive
    /// fails every pending request.
    private func flushOutbound() {
        flushScheduled = false
        guard let context, outbound.readableBytes > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(outbound), promise: nil)
        // The socket usually took it all: the storage is ours alone again and `clear` keeps it. A buffer grown
        // for a burst of large frames is let go.
        if outbound.capacity > 4 * Self.outboundCapacity {
            outbound = context.channel.allocator.buffer(capacity: Self.outboundCapacity)
        } else {
            outbound.clear()
        }
    }

    func fail(opaque: Int32, with error: any Error) {
        guard let entry = pending.removeValue(forKey: opaque) else { return }
        entry.waiter.fail(error)
    }

    private func sweep() {
        guard !pending.isEmpty else { return }
        let now = NIODeadline.now()
        for (opaque, entry) in pending where entry.deadline <= now {
            pending[opaque] = nil
            entry.waiter.fail(entry.failure)
        }
    }

    private func failAll() {
        let failed = pending
        pending.removeAll()
        for (_, entry) in failed { entry.waiter.fail(RemotingError.connectionClosed(address: address)) }
    }

    /// A decoded frame: a response completes its waiter, a request from the server goes to `onServerRequest`.
    func received(_ command: RemotingCommand) {
        guard command.isResponse else {
            if let context { onServerRequest(command, context.channel) }
            return
        }
        guard let entry = pending.removeValue(forKey: command.opaque) else { return }  // late (timed out) or one-way
        entry.waiter.succeed(command)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        sweeper?.cancel()
        sweeper = nil
        failAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The client's frame decoder: `RemotingFrameDecoder`'s frames handed to the connection's `ClientHandler`
/// directly (a command fired through the pipeline is boxed into a `NIOAny`: one allocation per response).
struct ClientFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = RemotingCommand
    let frames = RemotingFrameDecoder()
    let handler: ClientHandler

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let command = try frames.decodeFrame(&buffer) else { return .needMoreData }
        handler.received(command)
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let command = try frames.decodeFrame(&buffer) { handler.received(command) }
        return .needMoreData
    }
}
