#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Raft
import Replication
import Testing
import TestSupport

/// The Raft log on disk: what one `Ready` writes comes back after a restart; a tail torn at any byte is cut back
/// to the last whole record, and the hard state written with entries never survives without them; truncation
/// records replay; a failed sync is final.
@Suite struct DLedgerDiskTests {
    func entries(_ range: ClosedRange<UInt64>, term: UInt64, size: Int = 40) -> [LogEntry] {
        range.map { LogEntry(index: LogIndex($0), term: Term(term), payload: [UInt8](repeating: UInt8(truncatingIfNeeded: $0), count: size)) }
    }

    func fileBytes(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    func writeFile(_ path: String, _ bytes: ArraySlice<UInt8>) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    @Test func recoveryRestoresEntriesAndTheLastHardState() throws {
        let directory = TemporaryDirectory("raftlog")
        do {
            let disk = try RaftLogDisk(directory: directory.path, syncEachWrite: true)
            #expect(try disk.recover().state.entries.isEmpty)
            try disk.write(truncateFrom: nil, entries: [LogEntry(index: LogIndex(1), term: Term(1), kind: .noop)] + entries(2...5, term: 1),
                           hardState: HardState(term: Term(1), vote: NodeID(2), commit: LogIndex(1)))
            try disk.write(truncateFrom: nil, entries: [], hardState: HardState(term: Term(1), vote: NodeID(2), commit: LogIndex(5)))
        }
        let recovered = try RaftLogDisk(directory: directory.path, syncEachWrite: true).recover()
        #expect(recovered.flaw == nil)
        #expect(recovered.recordCount == 7)
        #expect(recovered.state.entries.map(\.index.rawValue) == [1, 2, 3, 4, 5])
        #expect(recovered.state.entries[0].kind == .noop)
        #expect(recovered.state.entries[3] == entries(4...4, term: 1)[0])
        #expect(recovered.state.hardState == HardState(term: Term(1), vote: NodeID(2), commit: LogIndex(5)))
    }

    /// Three `Ready`s; the third (a truncation, three entries, a hard state) is cut at every byte: recovery keeps
    /// exactly the whole records before the cut (a prefix of the stream, which is all a crash may leave: nothing
    /// of that `Ready` was acknowledged), cuts the file there, never keeps the third hard state, and the next write
    /// continues a stream that recovers whole.
    @Test func recoveryCutsATornTailAtEveryByte() throws {
        let source = TemporaryDirectory("raftlog-src")
        let disk = try RaftLogDisk(directory: source.path, syncEachWrite: false)
        _ = try disk.recover()
        try disk.write(truncateFrom: nil, entries: entries(1...3, term: 1), hardState: HardState(term: Term(1), vote: nil, commit: .zero))
        try disk.write(truncateFrom: nil, entries: entries(4...5, term: 2), hardState: HardState(term: Term(2), vote: nil, commit: LogIndex(3)))
        let secondEnd = Int(disk.end)
        try disk.write(truncateFrom: LogIndex(5), entries: entries(5...7, term: 3, size: 100),
                       hardState: HardState(term: Term(3), vote: NodeID(1), commit: LogIndex(6)))
        let whole = fileBytes(disk.path)
        // Record ends within the third Ready: the truncation, three entries, the hard state.
        let ends = [48, 148, 148, 148, 48].reduce(into: [secondEnd]) { $0.append($0.last! + $1) }
        #expect(ends.last == whole.count)
        for cut in secondEnd..<whole.count {
            let copy = TemporaryDirectory("raftlog-cut")
            try makeDirectories(copy.path)
            writeFile(copy.path + "/raftlog", whole[0..<cut])
            let reopened = try RaftLogDisk(directory: copy.path, syncEachWrite: true)
            let recovery = try reopened.recover()
            let wholeRecords = ends.dropFirst().count { $0 <= cut }
            let kept = ends[wholeRecords]
            let expected: [UInt64] = wholeRecords == 0 ? [1, 2, 3, 4, 5] : [1, 2, 3, 4] + (0..<min(wholeRecords - 1, 3)).map { 5 + UInt64($0) }
            #expect(recovery.state.entries.map(\.index.rawValue) == expected, "cut at \(cut)")
            #expect(recovery.state.hardState == HardState(term: Term(2), vote: nil, commit: LogIndex(3)), "cut at \(cut)")
            #expect(recovery.truncatedBytes == UInt64(cut - kept), "cut at \(cut)")
            #expect(reopened.end == UInt64(kept))
            #expect(fileBytes(reopened.path).count == kept, "the torn tail is cut on disk")
            let next = UInt64(expected.count + 1)
            try reopened.write(truncateFrom: nil, entries: entries(next...next, term: 3), hardState: nil)
            #expect(try RaftLogDisk(directory: copy.path, syncEachWrite: true).recover().state.entries.count == expected.count + 1)
        }
    }

    /// The hard state of a `Ready` follows its entries in the stream: a flipped bit in one of those entries (a page
    /// the crash lost while a later one survived) takes the hard state with it, so the commit index it carried
    /// never points at entries the disk does not hold.
    @Test func aHardStateIsNeverRecoveredWithoutTheEntriesItCameWith() throws {
        let source = TemporaryDirectory("raftlog-src")
        let disk = try RaftLogDisk(directory: source.path, syncEachWrite: true)
        _ = try disk.recover()
        try disk.write(truncateFrom: nil, entries: entries(1...3, term: 1), hardState: HardState(term: Term(1), vote: NodeID(0), commit: LogIndex(1)))
        let firstEnd = Int(disk.end)
        try disk.write(truncateFrom: nil, entries: entries(4...6, term: 1), hardState: HardState(term: Term(1), vote: NodeID(0), commit: LogIndex(6)))
        var bytes = fileBytes(disk.path)
        let fifthBody = firstEnd + (48 + 40) + 48 + 10  // a byte inside entry 5's payload
        bytes[fifthBody] ^= 0x40
        let copy = TemporaryDirectory("raftlog-flip")
        try makeDirectories(copy.path)
        writeFile(copy.path + "/raftlog", bytes[...])
        let recovery = try RaftLogDisk(directory: copy.path, syncEachWrite: true).recover()
        #expect(recovery.flaw?.contains("bad body CRC") == true)
        #expect(recovery.state.entries.map(\.index.rawValue) == [1, 2, 3, 4])
        #expect(recovery.state.hardState.commit == LogIndex(1), "the commit index 6 was written with entries 4-6")
    }

    @Test func truncationRecordsReplay() throws {
        let directory = TemporaryDirectory("raftlog")
        do {
            let disk = try RaftLogDisk(directory: directory.path, syncEachWrite: true)
            _ = try disk.recover()
            try disk.write(truncateFrom: nil, entries: entries(1...5, term: 1), hardState: HardState(term: Term(1), vote: nil, commit: LogIndex(2)))
            try disk.write(truncateFrom: LogIndex(3), entries: entries(3...4, term: 2, size: 7), hardState: HardState(term: Term(2), vote: nil, commit: LogIndex(2)))
        }
        let state = try RaftLogDisk(directory: directory.path, syncEachWrite: true).recover().state
        #expect(state.entries.map(\.term.rawValue) == [1, 1, 2, 2])
        #expect(state.entries.last?.payload.count == 7)
    }

    @Test func garbageAfterTheStreamIsCut() throws {
        let directory = TemporaryDirectory("raftlog")
        var end: UInt64 = 0
        do {
            let disk = try RaftLogDisk(directory: directory.path, syncEachWrite: true)
            _ = try disk.recover()
            try disk.write(truncateFrom: nil, entries: entries(1...2, term: 1), hardState: nil)
            end = disk.end
        }
        var bytes = fileBytes(directory.path + "/raftlog")
        bytes += [UInt8](repeating: 0xAB, count: 100)
        writeFile(directory.path + "/raftlog", bytes[...])
        let recovery = try RaftLogDisk(directory: directory.path, syncEachWrite: true).recover()
        #expect(recovery.state.entries.count == 2)
        #expect(recovery.truncatedBytes == 100)
        #expect(fileBytes(directory.path + "/raftlog").count == Int(end))
    }

    @Test func aFailedSyncIsFinal() throws {
        let directory = TemporaryDirectory("raftlog")
        var io = FileIO.system
        io.fdatasync = { (_) throws(SyscallError) in throw SyscallError(name: "fdatasync", errno: EIO) }
        let disk = try RaftLogDisk(directory: directory.path, io: io, syncEachWrite: true)
        _ = try disk.recover()
        #expect(throws: StoreError.self) { try disk.write(truncateFrom: nil, entries: entries(1...1, term: 1), hardState: nil) }
        #expect(disk.failure?.code == .flushFailed)
        // The failure stays: nothing is written after a failed sync, whatever the disk does next.
        #expect(throws: StoreError.self) { try disk.write(truncateFrom: nil, entries: entries(2...2, term: 1), hardState: nil) }
    }
}
