import Dispatch
import NIOCore

/// Splits the byte stream into remoting frames and decodes their headers. A frame longer than
/// `maxFrameBytes` (RocketMQ's 16 MiB), a header longer than its frame, or a header that does not parse
/// throws, and the pipeline closes that one connection. On a server, an unfinished frame reserves its
/// announced size from the server's `FrameBudget` and must complete within `frameReadTimeoutMillis`.
public struct RemotingFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = RemotingCommand
    public static let defaultMaxFrameBytes = 16 * 1024 * 1024
    public let maxFrameBytes: Int
    let budget: FrameBudget?
    let frameReadTimeoutNanos: UInt64
    /// The unfinished frame at the front of the buffer: bytes reserved, and when its first bytes came.
    private var pending: (bytes: Int, sinceNanos: UInt64)?
    /// A server's handler, handed each command directly (a command fired through the pipeline is boxed into a
    /// `NIOAny`: one allocation per frame); nil fires it.
    let sink: ServerHandler?

    public init(maxFrameBytes: Int = RemotingFrameDecoder.defaultMaxFrameBytes) {
        self.maxFrameBytes = maxFrameBytes
        budget = nil
        frameReadTimeoutNanos = .max
        sink = nil
    }

    /// A server's decoder: unfinished frames draw on `budget` and must complete in time.
    public init(limits: ConnectionLimits, budget: FrameBudget) {
        self.init(limits: limits, budget: budget, sink: nil)
    }

    init(limits: ConnectionLimits, budget: FrameBudget, sink: ServerHandler?) {
        maxFrameBytes = limits.maxFrameBytes
        self.budget = budget
        frameReadTimeoutNanos = UInt64(max(1, limits.frameReadTimeoutMillis)) * 1_000_000
        self.sink = sink
    }

    private func deliver(_ command: RemotingCommand, context: ChannelHandlerContext) {
        if let sink { sink.received(command) } else { context.fireChannelRead(wrapInboundOut(command)) }
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let command = try decodeFrame(&buffer) else {
            try holdPartialFrame(buffer)
            return .needMoreData
        }
        releasePending()
        deliver(command, context: context)
        return .continue
    }

    public mutating func decoderRemoved(context: ChannelHandlerContext) { releasePending() }

    /// Reserves the announced size of the frame still arriving (once its length is known) and refuses a frame
    /// that takes too long.
    private mutating func holdPartialFrame(_ buffer: ByteBuffer) throws(RemotingDecodingError) {
        guard let budget, buffer.readableBytes > 0 else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        var held = pending ?? (0, now)
        guard now - held.sinceNanos < frameReadTimeoutNanos else {
            throw RemotingDecodingError(reason: "a frame did not arrive whole within \(frameReadTimeoutNanos / 1_000_000) ms")
        }
        if held.bytes == 0, let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) {
            let announced = Int(length) + 4
            guard budget.reserve(announced) else {
                throw RemotingDecodingError(reason: "the server holds \(budget.reservedBytes) bytes of unfinished frames; a \(announced)-byte frame would pass the \(budget.capacity)-byte limit")
            }
            held.bytes = announced
        }
        pending = held
    }

    private mutating func releasePending() {
        guard let pending else { return }
        budget?.release(pending.bytes)
        self.pending = nil
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let command = try decodeFrame(&buffer) { deliver(command, context: context) }
        return .needMoreData
    }

    /// One whole frame off the front of `buffer`, or nil when more bytes are needed.
    public func decodeFrame(_ buffer: inout ByteBuffer) throws(RemotingDecodingError) -> RemotingCommand? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard length >= 4 else { throw RemotingDecodingError(reason: "frame length \(length) is below the 4-byte header word") }
        guard Int(length) + 4 <= maxFrameBytes else {
            throw RemotingDecodingError(reason: "frame length \(length) exceeds the \(maxFrameBytes)-byte limit")
        }
        guard buffer.readableBytes >= Int(length) + 4 else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        var frame = buffer.readSlice(length: Int(length))!
        let headerWord = frame.readInteger(as: UInt32.self)!
        let serializeByte = UInt8(headerWord >> 24)
        let headerLength = Int(headerWord & 0x00FF_FFFF)
        guard let type = SerializeType(rawValue: serializeByte) else {
            throw RemotingDecodingError(reason: "unknown serialize type \(serializeByte)")
        }
        guard headerLength <= frame.readableBytes else {
            throw RemotingDecodingError(reason: "header length \(headerLength) runs past the \(length)-byte frame")
        }
        let header = frame.readSlice(length: headerLength)!
        var command = type == .json ? try RemotingCommand.decodeJSONHeader(header) : try RemotingCommand.decodeBinaryHeader(header)
        command.serializeType = type
        command.body = frame.readableBytes > 0 ? frame : nil
        return command
    }
}

/// Writes commands as frames, in the serialisation each command carries.
public struct RemotingFrameEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = RemotingCommand
    public init() {}

    public func encode(data: RemotingCommand, out: inout ByteBuffer) throws {
        RemotingFrameEncoder.write(data, into: &out)
    }

    public static func write(_ command: RemotingCommand, into out: inout ByteBuffer) {
        if command.serializeType == .rocketmq, command.remark == nil, command.fieldTable == nil, command.fields?.format ?? .binary == .binary {
            writeBinary(command, into: &out)
            return
        }
        let start = out.writerIndex
        out.writeInteger(Int32(0))  // length, patched below
        out.writeInteger(UInt32(0))  // header word, patched below
        let headerStart = out.writerIndex
        switch command.serializeType {
        case .json: command.encodeJSONHeader(into: &out)
        case .rocketmq: command.encodeBinaryHeader(into: &out)
        }
        let headerLength = out.writerIndex - headerStart
        if var body = command.body { out.writeBuffer(&body) }
        out.setInteger(Int32(out.writerIndex - start - 4), at: start)
        out.setInteger(UInt32(command.serializeType.rawValue) << 24 | UInt32(headerLength), at: start + 4)
    }

    /// A binary-header command without remark whose fields are a binary block (SEND's answers): the frame's words
    /// and fixed header written with one reservation, then the fields and the body. Same bytes as the general path.
    private static func writeBinary(_ command: RemotingCommand, into out: inout ByteBuffer) {
        let fixed = 4 + 4 + 2 + 1 + 2 + 4 + 4 + 4 + 4  // length, header word, code ... remark length, extFields length
        let fieldsLength = command.fields?.bytes.readableBytes ?? 0
        let headerLength = fixed - 8 + fieldsLength
        let frameLength = 4 + headerLength + (command.body?.readableBytes ?? 0)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: fixed) { target in
            target.storeBytes(of: UInt32(frameLength).bigEndian, toByteOffset: 0, as: UInt32.self)
            target.storeBytes(of: (UInt32(SerializeType.rocketmq.rawValue) << 24 | UInt32(headerLength)).bigEndian, toByteOffset: 4, as: UInt32.self)
            target.storeBytes(of: Int16(truncatingIfNeeded: command.code).bigEndian, toByteOffset: 8, as: Int16.self)
            target.storeBytes(of: command.language.rawValue, toByteOffset: 10, as: UInt8.self)
            target.storeBytes(of: Int16(truncatingIfNeeded: command.version).bigEndian, toByteOffset: 11, as: Int16.self)
            target.storeBytes(of: command.opaque.bigEndian, toByteOffset: 13, as: Int32.self)
            target.storeBytes(of: command.flag.bigEndian, toByteOffset: 17, as: Int32.self)
            target.storeBytes(of: Int32(0), toByteOffset: 21, as: Int32.self)  // no remark
            target.storeBytes(of: Int32(fieldsLength).bigEndian, toByteOffset: 25, as: Int32.self)
            return fixed
        }
        if var block = command.fields?.bytes { out.writeBuffer(&block) }
        if var body = command.body { out.writeBuffer(&body) }
    }
}
