import NIOCore
import Raft
import Replication
import Testing
import TestSupport

/// The DLedger peers' message batches: every kind round-trips; every cut, garbage, a count past the bytes, an
/// unknown kind or version, and bytes left over are refused without trapping or allocating for the claim.
@Suite struct DLedgerCodecTests {
    static func sample() -> [RaftMessage] {
        let entries = [
            LogEntry(index: LogIndex(8), term: Term(3), kind: .noop),
            LogEntry(index: LogIndex(9), term: Term(3), payload: Array(0..<200).map { UInt8($0) }),
        ]
        let bodies: [RaftMessage.Body] = [
            .voteRequest(VoteRequest(lastIndex: LogIndex(7), lastTerm: Term(2), preVote: true, transfer: false)),
            .voteRequest(VoteRequest(lastIndex: LogIndex(7), lastTerm: Term(2), preVote: false, transfer: true)),
            .voteResponse(VoteResponse(granted: true, preVote: false)),
            .voteResponse(VoteResponse(granted: false, preVote: true)),
            .append(AppendRequest(prevIndex: LogIndex(7), prevTerm: Term(2), entries: entries, commit: LogIndex(6), compactable: LogIndex(4))),
            .append(AppendRequest(prevIndex: LogIndex(9), prevTerm: Term(3), entries: [], commit: LogIndex(9))),
            .appendResponse(.accepted(matchIndex: LogIndex(9))),
            .appendResponse(.rejected(rejectedIndex: LogIndex(9), hintIndex: LogIndex(4), hintTerm: Term(1))),
            .heartbeat(commit: LogIndex(5)),
            .heartbeat(commit: LogIndex(5), compactable: LogIndex(3)),
            .heartbeatResponse,
            .timeoutNow,
        ]
        return bodies.enumerated().map { index, body in
            RaftMessage(source: NodeID(UInt32(index % 3)), target: NodeID(2), term: Term(UInt64(3 + index)), body: body)
        }
    }

    func encoded(_ messages: [RaftMessage], group: String = "broker-g") -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        RaftMessageCodec.encode(messages, group: group, into: &buffer)
        return buffer
    }

    @Test func everyMessageKindRoundTrips() throws {
        let messages = Self.sample()
        let (group, decoded) = try RaftMessageCodec.decode(encoded(messages))
        #expect(group == "broker-g")
        #expect(decoded == messages)
        #expect(try RaftMessageCodec.decode(encoded([])).messages.isEmpty)
    }

    @Test func everyCutOfABatchIsRefused() throws {
        let whole = encoded(Self.sample())
        for length in 0..<whole.readableBytes {
            let cut = whole.getSlice(at: whole.readerIndex, length: length)!
            #expect(throws: RaftCodecError.self, "cut at \(length)") { try RaftMessageCodec.decode(cut) }
        }
    }

    @Test func badBatchesAreRefused() throws {
        var leftover = encoded(Self.sample())
        leftover.writeInteger(UInt8(0))
        #expect(throws: RaftCodecError.self) { try RaftMessageCodec.decode(leftover) }

        var version = encoded([])
        version.setInteger(UInt8(9), at: version.readerIndex)
        #expect(throws: RaftCodecError(reason: "version 9; expected 2")) { try RaftMessageCodec.decode(version) }

        // A count of four billion messages in a few bytes is refused before anything is reserved.
        var huge = ByteBufferAllocator().buffer(capacity: 64)
        huge.writeInteger(UInt8(2))
        huge.writeInteger(UInt16(1))
        huge.writeBytes([65])
        huge.writeInteger(UInt32.max)
        huge.writeBytes([UInt8](repeating: 0, count: 40))
        #expect(throws: RaftCodecError.self) { try RaftMessageCodec.decode(huge) }

        // An append claiming more entries, or a longer payload, than the bytes that follow.
        let append = RaftMessage(source: NodeID(0), target: NodeID(1), term: Term(1), body: .append(AppendRequest(
            prevIndex: .zero, prevTerm: .zero, entries: [LogEntry(index: LogIndex(1), term: Term(1), payload: [1, 2, 3])], commit: .zero)))
        let good = encoded([append])
        var lying = good
        let payloadLength = good.writerIndex - 3 - 4
        lying.setInteger(UInt32(1 << 30), at: payloadLength)
        #expect(throws: RaftCodecError.self) { try RaftMessageCodec.decode(lying) }

        var unknownKind = encoded([RaftMessage(source: NodeID(0), target: NodeID(1), term: Term(1), body: .heartbeatResponse)])
        unknownKind.setInteger(UInt8(42), at: unknownKind.writerIndex - 1)
        #expect(throws: RaftCodecError(reason: "unknown message kind 42")) { try RaftMessageCodec.decode(unknownKind) }
    }

    /// Seeded garbage of every length up to 300 bytes after a valid prefix never traps.
    @Test func garbageNeverTraps() {
        var random = SeededGenerator(seed: 16)
        for length in 0..<300 {
            var buffer = ByteBufferAllocator().buffer(capacity: length + 16)
            buffer.writeInteger(UInt8(2))
            buffer.writeInteger(UInt16(0))
            buffer.writeBytes((0..<length).map { _ in UInt8.random(in: 0...255, using: &random) })
            _ = try? RaftMessageCodec.decode(buffer)
        }
    }
}
