import CommitLog

/// RocketMQ 4.x's classic HA stream (`HAService`/`HAConnection`/`HAClient`), byte for byte. A plain
/// TCP stream, not the remoting protocol:
///
/// ```
/// slave -> master, an offset report (the slave's max physical offset):
///   +0 offset i64 BE                                                      8 bytes
/// master -> slave, a transfer frame (size 0: a heartbeat carrying the next offset):
///   +0 physical offset of the first body byte i64 BE | +8 body size i32 BE | +12 body (raw log bytes)
/// ```
/// A body never crosses a commit-log file. Encoding and decoding here are pure: no I/O, no allocation.
public enum HAProtocol {
    public static let reportSize = 8
    public static let headerSize = 12

    /// Writes the 8-byte report of `offset` at `target`.
    @inlinable
    public static func encodeReport(_ offset: UInt64, into target: UnsafeMutableRawPointer) {
        precondition(offset <= UInt64(Int64.max), "an offset report is a non-negative i64")
        storeBigEndian(offset, at: 0, in: target)
    }

    /// Writes the 12-byte header of a frame whose `bodySize` bytes start at log offset `offset`.
    @inlinable
    public static func encodeHeader(offset: UInt64, bodySize: Int, into target: UnsafeMutableRawPointer) {
        precondition(offset <= UInt64(Int64.max), "a frame offset is a non-negative i64")
        precondition(bodySize >= 0 && bodySize <= Int(Int32.max), "a frame body size is a non-negative i32")
        storeBigEndian(offset, at: 0, in: target)
        storeBigEndian(Int32(bodySize), at: 8, in: target)
    }
}

/// Bytes on the HA stream that break its rules; the connection carrying them is closed.
public struct HAProtocolError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A report or frame offset with the sign bit set.
        case negativeOffset
        /// A frame body size below 0.
        case negativeBodySize
        /// A frame body size above the bound the decoder was made with.
        case bodyTooLarge
    }
    public var code: Code
    /// The offending value as it was read.
    public var value: Int64
    /// The bound it broke (`bodyTooLarge`), else 0.
    public var limit: Int

    public init(code: Code, value: Int64, limit: Int) {
        self.code = code
        self.value = value
        self.limit = limit
    }

    public var description: String {
        switch code {
        case .negativeOffset: "negative offset \(value) on the HA stream; closing the connection"
        case .negativeBodySize: "negative frame body size \(value); closing the connection"
        case .bodyTooLarge: "frame body of \(value) bytes exceeds \(limit) (haTransferBodySizeMax); closing the connection"
        }
    }
}

/// The master's side of the slave's reports: 8-byte units over a byte stream cut anywhere. Like
/// RocketMQ, what counts is the last complete report of what arrived.
public struct ReportDecoder: Sendable {
    private var partial: UInt64 = 0
    private var partialCount = 0

    public init() {}

    /// True when the bytes so far end inside a report.
    public var hasPartialReport: Bool { partialCount > 0 }

    /// Consumes `bytes`. - Returns: the last report completed by them, or nil when none completed.
    /// - Throws: `HAProtocolError.negativeOffset` for a report with the sign bit set.
    public mutating func decode(_ bytes: UnsafeRawBufferPointer) throws(HAProtocolError) -> UInt64? {
        var last: UInt64?
        for byte in bytes {
            partial = partial << 8 | UInt64(byte)
            partialCount += 1
            guard partialCount == HAProtocol.reportSize else { continue }
            let value = Int64(bitPattern: partial)
            partial = 0
            partialCount = 0
            guard value >= 0 else { throw HAProtocolError(code: .negativeOffset, value: value, limit: 0) }
            last = UInt64(value)
        }
        return last
    }
}

/// One transfer frame's header.
public struct TransferHeader: Equatable, Sendable {
    /// Log offset of the frame's first body byte (for a heartbeat: the master's next offset).
    public var physicalOffset: UInt64
    public var bodySize: Int

    public init(physicalOffset: UInt64, bodySize: Int) {
        self.physicalOffset = physicalOffset
        self.bodySize = bodySize
    }
}

/// What the slave's decoder found next in the stream.
public enum TransferEvent {
    /// A frame starts; `bodySize` body bytes follow (0: a heartbeat).
    case header(TransferHeader)
    /// Body bytes of the current frame, as they arrived (a frame's body may come in several pieces):
    /// they belong at log offset `offset`. Borrowed from the input buffer: use them before reading on.
    case body(offset: UInt64, bytes: UnsafeRawBufferPointer)
}

/// The slave's side of transfer frames over a byte stream cut anywhere. Body bytes are handed out as
/// they arrive, straight from the input (no frame is assembled, so nothing is copied or allocated and a
/// frame costs no memory beyond its header's 12 bytes).
public struct TransferDecoder: Sendable {
    public let bodySizeMax: Int
    private var headerOffset: UInt64 = 0
    private var headerSize: UInt32 = 0
    private var headerCount = 0
    private var bodyOffset: UInt64 = 0
    private var bodyLeft = 0

    /// - Parameter bodySizeMax: the largest body accepted (`haTransferBodySizeMax`).
    public init(bodySizeMax: Int) {
        precondition(bodySizeMax >= 0, "bodySizeMax must not be negative")
        self.bodySizeMax = bodySizeMax
    }

    /// True between frames: nothing of a header or body is outstanding.
    public var isAtFrameBoundary: Bool { headerCount == 0 && bodyLeft == 0 }

    /// Decodes the next event from the front of `input` and moves `input` past what it used.
    /// - Returns: nil when `input` is used up (a partial header is kept for the next call).
    /// - Throws: `HAProtocolError` for a negative offset or size, or a size above `bodySizeMax`; the
    ///   stream cannot be trusted after that.
    public mutating func next(_ input: inout UnsafeRawBufferPointer) throws(HAProtocolError) -> TransferEvent? {
        if bodyLeft > 0 {
            guard !input.isEmpty else { return nil }
            let count = min(bodyLeft, input.count)
            let bytes = UnsafeRawBufferPointer(rebasing: input[..<count])
            input = UnsafeRawBufferPointer(rebasing: input[count...])
            let offset = bodyOffset
            bodyOffset += UInt64(count)
            bodyLeft -= count
            return .body(offset: offset, bytes: bytes)
        }
        if headerCount == 0 && input.count >= HAProtocol.headerSize, let base = input.baseAddress {
            headerOffset = loadBigEndian(UInt64.self, at: 0, in: base)
            headerSize = loadBigEndian(UInt32.self, at: 8, in: base)
            input = UnsafeRawBufferPointer(rebasing: input[HAProtocol.headerSize...])
        } else {
            var used = 0
            while headerCount < HAProtocol.headerSize && used < input.count {
                let byte = input[used]
                if headerCount < 8 {
                    headerOffset = headerOffset << 8 | UInt64(byte)
                } else {
                    headerSize = headerSize << 8 | UInt32(byte)
                }
                headerCount += 1
                used += 1
            }
            input = UnsafeRawBufferPointer(rebasing: input[used...])
            guard headerCount == HAProtocol.headerSize else { return nil }
        }
        headerCount = 0
        return .header(try acceptHeader())
    }

    /// Checks the header just read and starts its body.
    private mutating func acceptHeader() throws(HAProtocolError) -> TransferHeader {
        let offset = Int64(bitPattern: headerOffset)
        let size = Int32(bitPattern: headerSize)
        headerOffset = 0
        headerSize = 0
        guard offset >= 0 else { throw HAProtocolError(code: .negativeOffset, value: offset, limit: 0) }
        guard size >= 0 else { throw HAProtocolError(code: .negativeBodySize, value: Int64(size), limit: 0) }
        guard Int(size) <= bodySizeMax else {
            throw HAProtocolError(code: .bodyTooLarge, value: Int64(size), limit: bodySizeMax)
        }
        bodyOffset = UInt64(offset)
        bodyLeft = Int(size)
        return TransferHeader(physicalOffset: UInt64(offset), bodySize: Int(size))
    }
}
