import CommitLog
import Raft

/// One record of the Raft log file: DLedger's 48-byte entry header (`DLedgerEntryCoder`), with its two
/// reserved CRC fields filled in, and the same header for the two records DLedger keeps elsewhere (the hard
/// state, and a cut of a divergent suffix), so the file is one ordered write-ahead stream. A compacted file starts
/// with a compaction record (the last compacted entry's index and term; its body the commit log's end after it):
///
/// ```
/// +0  u32 magic     1 entry, 2 no-op entry (DLedger's NORMAL/NOOP); 0x10 hard state; 0x11 truncation; 0x12 compaction
/// +4  u32 size      48 + body length
/// +8  u64 index     entry index (from 1); hard state: commit index; truncation: first index removed; compaction:
///                   the last compacted index
/// +16 u64 term      entry term; hard state: current term; compaction: the last compacted entry's term
/// +24 u64 pos       this record's byte position in the file (checked on recovery, as DLedger checks `pos`)
/// +32 u32 channel   hard state: the vote + 1 (0: none); otherwise 0
/// +36 u32 headerCrc CRC32 of bytes 0..<36 and 40..<48 (DLedger's unused `chainCrc`)
/// +40 u32 bodyCrc   CRC32 of the body
/// +44 u32 bodyLength
/// +48 body          an entry's payload: the u64 physical offset of the records in the commit log, then the records;
///                   compaction: the u64 commit log offset where the compacted entries' records end
/// ```
/// All numbers big-endian.
enum RaftLogRecord {
    static let headerBytes = 48
    /// The largest body accepted on recovery: a payload is a record batch (at most `maxMessageSize`, 64 MiB)
    /// plus its offset.
    static let bodyBytesMax = (64 << 20) + 4096

    enum Magic: UInt32 {
        case entry = 1
        case noop = 2
        case hardState = 0x10
        case truncation = 0x11
        case compaction = 0x12
    }

    /// A decoded record header.
    struct Header: Equatable {
        var magic: Magic
        var size: Int
        var index: UInt64
        var term: UInt64
        var position: UInt64
        var channel: UInt32
        var bodyCRC: UInt32
        var bodyLength: Int
    }

    /// Bytes a record for `entry` takes.
    static func size(of entry: LogEntry) -> Int { headerBytes + entry.payload.count }

    /// Appends one entry record at file position `position` to `buffer`.
    static func append(_ entry: LogEntry, at position: UInt64, to buffer: inout [UInt8]) {
        let bodyCRC = entry.payload.withUnsafeBytes { rocketCRC32($0) }
        let magic: Magic = entry.kind == .noop ? .noop : .entry
        appendHeader(Header(magic: magic, size: headerBytes + entry.payload.count, index: entry.index.rawValue,
                            term: entry.term.rawValue, position: position, channel: 0, bodyCRC: bodyCRC,
                            bodyLength: entry.payload.count), to: &buffer)
        buffer.append(contentsOf: entry.payload)
    }

    /// Appends a hard-state record.
    static func append(_ state: HardState, at position: UInt64, to buffer: inout [UInt8]) {
        appendHeader(Header(magic: .hardState, size: headerBytes, index: state.commit.rawValue, term: state.term.rawValue,
                            position: position, channel: state.vote.map { $0.rawValue + 1 } ?? 0, bodyCRC: 0, bodyLength: 0),
                     to: &buffer)
    }

    /// Appends a truncation record: entries at and after `index` are gone.
    static func appendTruncation(from index: LogIndex, at position: UInt64, to buffer: inout [UInt8]) {
        appendHeader(Header(magic: .truncation, size: headerBytes, index: index.rawValue, term: 0, position: position,
                            channel: 0, bodyCRC: 0, bodyLength: 0), to: &buffer)
    }

    /// Appends a compaction record: entries through `index` (of `term`) are gone; their records end at `end` in the
    /// commit log.
    static func appendCompaction(through index: LogIndex, term: Term, end: UInt64, at position: UInt64, to buffer: inout [UInt8]) {
        let body = withUnsafeBytes(of: end.bigEndian) { [UInt8]($0) }
        let bodyCRC = body.withUnsafeBytes { rocketCRC32($0) }
        appendHeader(Header(magic: .compaction, size: headerBytes + body.count, index: index.rawValue, term: term.rawValue,
                            position: position, channel: 0, bodyCRC: bodyCRC, bodyLength: body.count), to: &buffer)
        buffer.append(contentsOf: body)
    }

    private static func appendHeader(_ header: Header, to buffer: inout [UInt8]) {
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: headerBytes))
        buffer.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress! + start
            storeBigEndian(header.magic.rawValue, at: 0, in: base)
            storeBigEndian(UInt32(header.size), at: 4, in: base)
            storeBigEndian(header.index, at: 8, in: base)
            storeBigEndian(header.term, at: 16, in: base)
            storeBigEndian(header.position, at: 24, in: base)
            storeBigEndian(header.channel, at: 32, in: base)
            storeBigEndian(header.bodyCRC, at: 40, in: base)
            storeBigEndian(UInt32(header.bodyLength), at: 44, in: base)
            storeBigEndian(headerCRC(UnsafeRawPointer(base)), at: 36, in: base)
        }
    }

    /// CRC32 over the header without its own field.
    static func headerCRC(_ base: UnsafeRawPointer) -> UInt32 {
        withUnsafeTemporaryAllocation(byteCount: 44, alignment: 8) { target in
            target.baseAddress!.copyMemory(from: base, byteCount: 36)
            (target.baseAddress! + 36).copyMemory(from: base + 40, byteCount: 8)
            return rocketCRC32(UnsafeRawBufferPointer(target))
        }
    }

    /// Why the bytes at a position are not a whole, valid record (the torn or corrupt tail starts there).
    enum Flaw: Error, Equatable, CustomStringConvertible {
        case short, badMagic(UInt32), badSize(Int), badPosition(UInt64), badHeaderCRC, badBodyCRC
        var description: String {
            switch self {
            case .short: "cut short"
            case .badMagic(let magic): "bad magic \(magic)"
            case .badSize(let size): "bad size \(size)"
            case .badPosition(let position): "records its position as \(position)"
            case .badHeaderCRC: "bad header CRC"
            case .badBodyCRC: "bad body CRC"
            }
        }
    }

    /// Reads the record at `offset` of `bytes` (which sits at file position `offset`), fully checked.
    static func read(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Result<(Header, UnsafeRawBufferPointer), Flaw> {
        guard bytes.count - offset >= headerBytes else { return .failure(.short) }
        let base = bytes.baseAddress! + offset
        let rawMagic = loadBigEndian(UInt32.self, at: 0, in: base)
        guard let magic = Magic(rawValue: rawMagic) else { return .failure(.badMagic(rawMagic)) }
        guard loadBigEndian(UInt32.self, at: 36, in: base) == headerCRC(base) else { return .failure(.badHeaderCRC) }
        let size = Int(loadBigEndian(UInt32.self, at: 4, in: base))
        let bodyLength = Int(loadBigEndian(UInt32.self, at: 44, in: base))
        guard bodyLength <= bodyBytesMax, size == headerBytes + bodyLength else { return .failure(.badSize(size)) }
        let position = loadBigEndian(UInt64.self, at: 24, in: base)
        guard position == UInt64(offset) else { return .failure(.badPosition(position)) }
        guard bytes.count - offset >= size else { return .failure(.short) }
        let body = UnsafeRawBufferPointer(start: base + headerBytes, count: bodyLength)
        let bodyCRC = loadBigEndian(UInt32.self, at: 40, in: base)
        if magic == .entry || magic == .noop || magic == .compaction {
            guard rocketCRC32(body) == bodyCRC else { return .failure(.badBodyCRC) }
        }
        let header = Header(magic: magic, size: size, index: loadBigEndian(UInt64.self, at: 8, in: base),
                            term: loadBigEndian(UInt64.self, at: 16, in: base), position: position,
                            channel: loadBigEndian(UInt32.self, at: 32, in: base), bodyCRC: bodyCRC, bodyLength: bodyLength)
        return .success((header, body))
    }
}
