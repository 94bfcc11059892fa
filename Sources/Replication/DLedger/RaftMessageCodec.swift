import NIOCore
import Raft

/// Why a batch of Raft messages did not decode: the whole batch is dropped (Raft resends what matters).
public struct RaftCodecError: Error, CustomStringConvertible, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { "bad DLedger message batch: \(reason)" }
}

/// The body of one DLEDGER_RAFT_MESSAGES frame (ours; Java DLedger compatibility is not a goal): the group, then
/// messages for one member, big-endian:
///
/// ```
/// u8 version (2) | u16 group length | group | u32 count | count × message
/// message: u32 source | u32 target | u64 term | u8 kind | fields of the kind
///   1 vote request      u64 lastIndex | u64 lastTerm | u8 flags (1 pre-vote, 2 transfer)
///   2 vote response     u8 flags (1 granted, 2 pre-vote)
///   3 append            u64 prevIndex | u64 prevTerm | u64 commit | u64 compactable | u32 entries | entries × entry
///   4 append response   u8 0 accepted: u64 match | u8 1 rejected: u64 rejectedIndex | u64 hintIndex | u64 hintTerm
///   5 heartbeat         u64 commit | u64 compactable
///   6 heartbeat response, 7 timeout-now: nothing
/// entry: u64 index | u64 term | u8 kind (1 normal, 2 no-op) | u32 payload length | payload
/// ```
/// `compactable` is the group's compactable index (every member holds the entries through it); version 2 added it.
/// Decoding checks every count and length against the bytes left before it allocates, so a frame never costs
/// more than a small multiple of its own length.
public enum RaftMessageCodec {
    static let version: UInt8 = 2
    /// The fixed bytes of one message (source, target, term, kind), and of one entry before its payload.
    static let messageHeaderBytes = 17
    static let entryHeaderBytes = 21

    /// Encodes `messages` (all for one target) of `group`.
    public static func encode(_ messages: [RaftMessage], group: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(version)
        let groupBytes = Array(group.utf8.prefix(Int(UInt16.max)))
        buffer.writeInteger(UInt16(groupBytes.count))
        buffer.writeBytes(groupBytes)
        buffer.writeInteger(UInt32(messages.count))
        for message in messages { encode(message, into: &buffer) }
    }

    static func encode(_ message: RaftMessage, into buffer: inout ByteBuffer) {
        buffer.writeInteger(message.source.rawValue)
        buffer.writeInteger(message.target.rawValue)
        buffer.writeInteger(message.term.rawValue)
        switch message.body {
        case .voteRequest(let request):
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(request.lastIndex.rawValue)
            buffer.writeInteger(request.lastTerm.rawValue)
            buffer.writeInteger(UInt8((request.preVote ? 1 : 0) | (request.transfer ? 2 : 0)))
        case .voteResponse(let response):
            buffer.writeInteger(UInt8(2))
            buffer.writeInteger(UInt8((response.granted ? 1 : 0) | (response.preVote ? 2 : 0)))
        case .append(let request):
            buffer.writeInteger(UInt8(3))
            buffer.writeInteger(request.prevIndex.rawValue)
            buffer.writeInteger(request.prevTerm.rawValue)
            buffer.writeInteger(request.commit.rawValue)
            buffer.writeInteger(request.compactable.rawValue)
            buffer.writeInteger(UInt32(request.entries.count))
            for entry in request.entries {
                buffer.writeInteger(entry.index.rawValue)
                buffer.writeInteger(entry.term.rawValue)
                buffer.writeInteger(entry.kind.rawValue)
                buffer.writeInteger(UInt32(entry.payload.count))
                buffer.writeBytes(entry.payload)
            }
        case .appendResponse(let response):
            buffer.writeInteger(UInt8(4))
            switch response {
            case .accepted(let match):
                buffer.writeInteger(UInt8(0))
                buffer.writeInteger(match.rawValue)
            case .rejected(let rejectedIndex, let hintIndex, let hintTerm):
                buffer.writeInteger(UInt8(1))
                buffer.writeInteger(rejectedIndex.rawValue)
                buffer.writeInteger(hintIndex.rawValue)
                buffer.writeInteger(hintTerm.rawValue)
            }
        case .heartbeat(let commit, let compactable):
            buffer.writeInteger(UInt8(5))
            buffer.writeInteger(commit.rawValue)
            buffer.writeInteger(compactable.rawValue)
        case .heartbeatResponse:
            buffer.writeInteger(UInt8(6))
        case .timeoutNow:
            buffer.writeInteger(UInt8(7))
        }
    }

    /// Decodes a batch: the group it names and its messages.
    /// - Throws: `RaftCodecError` for a wrong version, a count or length past the bytes, an unknown kind, or
    ///   bytes left over.
    public static func decode(_ buffer: ByteBuffer) throws(RaftCodecError) -> (group: String, messages: [RaftMessage]) {
        var reader = buffer
        guard let version = reader.readInteger(as: UInt8.self) else { throw RaftCodecError(reason: "empty") }
        guard version == Self.version else { throw RaftCodecError(reason: "version \(version); expected \(Self.version)") }
        guard let groupLength = reader.readInteger(as: UInt16.self), let group = reader.readString(length: Int(groupLength)) else {
            throw RaftCodecError(reason: "group cut short")
        }
        let count = try integer(&reader, UInt32.self, "count")
        guard Int(count) <= reader.readableBytes / messageHeaderBytes else {
            throw RaftCodecError(reason: "\(count) messages cannot fit in \(reader.readableBytes) bytes")
        }
        var messages: [RaftMessage] = []
        messages.reserveCapacity(Int(count))
        for _ in 0..<count { messages.append(try decodeMessage(&reader)) }
        guard reader.readableBytes == 0 else { throw RaftCodecError(reason: "\(reader.readableBytes) bytes left over") }
        return (group, messages)
    }

    static func decodeMessage(_ reader: inout ByteBuffer) throws(RaftCodecError) -> RaftMessage {
        let source = NodeID(try integer(&reader, UInt32.self, "source"))
        let target = NodeID(try integer(&reader, UInt32.self, "target"))
        let term = Term(try integer(&reader, UInt64.self, "term"))
        let kind = try integer(&reader, UInt8.self, "kind")
        let body: RaftMessage.Body
        switch kind {
        case 1:
            let lastIndex = LogIndex(try integer(&reader, UInt64.self, "lastIndex"))
            let lastTerm = Term(try integer(&reader, UInt64.self, "lastTerm"))
            let flags = try integer(&reader, UInt8.self, "flags")
            body = .voteRequest(VoteRequest(lastIndex: lastIndex, lastTerm: lastTerm, preVote: flags & 1 != 0, transfer: flags & 2 != 0))
        case 2:
            let flags = try integer(&reader, UInt8.self, "flags")
            body = .voteResponse(VoteResponse(granted: flags & 1 != 0, preVote: flags & 2 != 0))
        case 3:
            body = .append(try decodeAppend(&reader))
        case 4:
            body = .appendResponse(try decodeAppendResponse(&reader))
        case 5:
            let commit = LogIndex(try integer(&reader, UInt64.self, "commit"))
            body = .heartbeat(commit: commit, compactable: LogIndex(try integer(&reader, UInt64.self, "compactable")))
        case 6:
            body = .heartbeatResponse
        case 7:
            body = .timeoutNow
        default:
            throw RaftCodecError(reason: "unknown message kind \(kind)")
        }
        return RaftMessage(source: source, target: target, term: term, body: body)
    }

    static func decodeAppend(_ reader: inout ByteBuffer) throws(RaftCodecError) -> AppendRequest {
        let prevIndex = LogIndex(try integer(&reader, UInt64.self, "prevIndex"))
        let prevTerm = Term(try integer(&reader, UInt64.self, "prevTerm"))
        let commit = LogIndex(try integer(&reader, UInt64.self, "commit"))
        let compactable = LogIndex(try integer(&reader, UInt64.self, "compactable"))
        let count = try integer(&reader, UInt32.self, "entry count")
        guard Int(count) <= reader.readableBytes / entryHeaderBytes else {
            throw RaftCodecError(reason: "\(count) entries cannot fit in \(reader.readableBytes) bytes")
        }
        var entries: [LogEntry] = []
        entries.reserveCapacity(Int(count))
        for _ in 0..<count {
            let index = LogIndex(try integer(&reader, UInt64.self, "entry index"))
            let term = Term(try integer(&reader, UInt64.self, "entry term"))
            let rawKind = try integer(&reader, UInt8.self, "entry kind")
            guard let kind = EntryKind(rawValue: rawKind) else { throw RaftCodecError(reason: "unknown entry kind \(rawKind)") }
            let length = Int(try integer(&reader, UInt32.self, "payload length"))
            guard length <= reader.readableBytes, let payload = reader.readBytes(length: length) else {
                throw RaftCodecError(reason: "payload of \(length) bytes past the \(reader.readableBytes) left")
            }
            entries.append(LogEntry(index: index, term: term, kind: kind, payload: payload))
        }
        return AppendRequest(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit, compactable: compactable)
    }

    static func decodeAppendResponse(_ reader: inout ByteBuffer) throws(RaftCodecError) -> AppendResponse {
        switch try integer(&reader, UInt8.self, "append answer") {
        case 0:
            return .accepted(matchIndex: LogIndex(try integer(&reader, UInt64.self, "match")))
        case 1:
            let rejected = LogIndex(try integer(&reader, UInt64.self, "rejectedIndex"))
            let hintIndex = LogIndex(try integer(&reader, UInt64.self, "hintIndex"))
            let hintTerm = Term(try integer(&reader, UInt64.self, "hintTerm"))
            return .rejected(rejectedIndex: rejected, hintIndex: hintIndex, hintTerm: hintTerm)
        case let other:
            throw RaftCodecError(reason: "unknown append answer \(other)")
        }
    }

    private static func integer<T: FixedWidthInteger>(_ reader: inout ByteBuffer, _: T.Type, _ field: String) throws(RaftCodecError) -> T {
        guard let value = reader.readInteger(as: T.self) else { throw RaftCodecError(reason: "\(field) cut short") }
        return value
    }
}
