import NIOCore
import NIOPosix

/// One RESP reply, as far as XADD needs: a simple string, an error, an integer, a bulk string (nil: `$-1`).
enum RedisReply: Equatable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)

    var description: String {
        switch self {
        case .simple(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulk(let bytes): bytes.map { "$" + String(decoding: $0, as: UTF8.self) } ?? "$nil"
        }
    }
}

/// Splits RESP replies. Arrays are not expected from the commands sent (XADD) and end the connection; a bulk
/// string is checked against `bulkBytesMax` before anything is read into memory.
struct RedisReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = RedisReply
    static let bulkBytesMax = 1 << 20
    static let lineBytesMax = 4096

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let reply = try Self.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(reply))
        return .continue
    }

    /// One reply from the front of `buffer` (consumed), or nil when it is not all there yet.
    static func parse(_ buffer: inout ByteBuffer) throws -> RedisReply? {
        let view = buffer.readableBytesView
        guard let lineEnd = view.firstIndex(of: 10) else {
            if view.count > lineBytesMax { throw ValidationErrorText("RESP: a line longer than \(lineBytesMax) bytes") }
            return nil
        }
        let lineLength = lineEnd - buffer.readerIndex + 1
        guard lineLength >= 3, buffer.getInteger(at: lineEnd - 1, as: UInt8.self) == 13 else {
            throw ValidationErrorText("RESP: a line without CR LF")
        }
        let kind = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)!
        let text = buffer.getString(at: buffer.readerIndex + 1, length: lineLength - 3)!
        switch kind {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"):
            buffer.moveReaderIndex(forwardBy: lineLength)
            if kind == UInt8(ascii: "+") { return .simple(text) }
            if kind == UInt8(ascii: "-") { return .error(text) }
            guard let value = Int64(text) else { throw ValidationErrorText("RESP: bad integer \(text)") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(text), length >= -1, length <= bulkBytesMax else { throw ValidationErrorText("RESP: bad bulk length \(text)") }
            if length == -1 {
                buffer.moveReaderIndex(forwardBy: lineLength)
                return .bulk(nil)
            }
            guard buffer.readableBytes >= lineLength + length + 2 else { return nil }
            buffer.moveReaderIndex(forwardBy: lineLength)
            let bytes = buffer.readBytes(length: length)!
            buffer.moveReaderIndex(forwardBy: 2)
            return .bulk(bytes)
        default:
            throw ValidationErrorText("RESP: unexpected reply type \(Character(Unicode.Scalar(kind)))")
        }
    }
}

/// Why a Redis request got no answer.
enum RedisRequestError: Error, CustomStringConvertible {
    case timedOut, connectionClosed
    var description: String { self == .timedOut ? "Redis request timed out" : "Redis connection closed" }
}

/// Pipelined requests on one connection: Redis answers in order, so answers complete a FIFO of waiters. A
/// waiter that timed out keeps its place with no promise, so the late answer still lines up.
final class RedisHandler: PeerHandler<RedisReply>, @unchecked Sendable {
    private var waiting = CircularBuffer<(promise: EventLoopPromise<RedisReply>?, deadline: NIODeadline)>(initialCapacity: 256)

    func send(_ frame: ByteBuffer, promise: EventLoopPromise<RedisReply>, deadline: NIODeadline, on channel: Channel) {
        guard !inactive else { return promise.fail(RedisRequestError.connectionClosed) }
        waiting.append((promise, deadline))
        flush.write(frame, on: channel)
    }

    override func sweep() {
        let now = NIODeadline.now()
        for index in waiting.indices where waiting[index].deadline <= now {
            waiting[index].promise?.fail(RedisRequestError.timedOut)
            waiting[index].promise = nil
        }
    }

    override func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let first = waiting.popFirst() else { return context.close(promise: nil) }  // an answer nobody asked for
        first.promise?.succeed(reply)
    }

    override func failAll() {
        let failed = waiting
        waiting.removeAll()
        for entry in failed { entry.promise?.fail(RedisRequestError.connectionClosed) }
    }
}

/// A Redis connection for the peer's load.
final class RedisClient: Sendable {
    let channel: Channel
    let handler: RedisHandler
    let timeout: TimeAmount

    init(channel: Channel, handler: RedisHandler, timeout: TimeAmount) {
        self.channel = channel
        self.handler = handler
        self.timeout = timeout
    }

    static func connect(port: Int, group: EventLoopGroup, timeoutMillis: Int64) async throws -> RedisClient {
        let handler = RedisHandler()
        let channel = try await connectLoopback(port: port, group: group, makeDecoder: { RedisReplyDecoder() }, handler: handler)
        return RedisClient(channel: channel, handler: handler, timeout: .milliseconds(timeoutMillis))
    }

    /// Sends one RESP command and waits for its reply.
    /// - Throws: `RedisRequestError` when no reply comes within `timeout` or the connection closes.
    func request(_ frame: ByteBuffer) async throws -> RedisReply {
        let promise = channel.eventLoop.makePromise(of: RedisReply.self)
        let channel = channel, handler = handler, deadline = NIODeadline.now() + timeout
        channel.eventLoop.execute { handler.send(frame, promise: promise, deadline: deadline, on: channel) }
        return try await promise.futureResult.get()
    }

    func close() async { try? await channel.close() }
}
