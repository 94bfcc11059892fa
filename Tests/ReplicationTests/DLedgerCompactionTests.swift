#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Raft
import Replication
import Testing
import TestSupport

/// The compacted Raft log file: it recovers its start, hard state and retained entries; a crash at any byte of
/// a compaction leaves the old file or the new one (the new one is synced before its rename, so only a leftover
/// `raftlog.compacting` can be torn, and it is deleted); appends after a compaction tear like any other.
@Suite struct DLedgerCompactionTests {
    let disks = DLedgerDiskTests()

    /// Ten entries and a hard state: the old file.
    func writeOldLog(_ directory: String) throws -> RaftLogDisk {
        let disk = try RaftLogDisk(directory: directory, syncEachWrite: true)
        _ = try disk.recover()
        try disk.write(truncateFrom: nil, entries: disks.entries(1...6, term: 1), hardState: HardState(term: Term(1), commit: LogIndex(4)))
        try disk.write(truncateFrom: nil, entries: disks.entries(7...10, term: 2), hardState: HardState(term: Term(2), vote: NodeID(1), commit: LogIndex(8)))
        return disk
    }

    @Test func aCompactedFileRecoversItsStartHardStateAndRetainedEntries() throws {
        let directory = TemporaryDirectory("raftlog-compact")
        do {
            let disk = try writeOldLog(directory.path)
            try disk.compact(through: LogIndex(6), term: Term(1), snapshotEnd: 4_096, retained: disks.entries(7...10, term: 2))
            #expect(disk.snapshotIndex == LogIndex(6))
            try disk.write(truncateFrom: LogIndex(10), entries: disks.entries(10...11, term: 3), hardState: HardState(term: Term(3), commit: LogIndex(9)))
        }
        let recovery = try RaftLogDisk(directory: directory.path, syncEachWrite: true).recover()
        #expect(recovery.flaw == nil)
        #expect(recovery.state.snapshotIndex == LogIndex(6))
        #expect(recovery.state.snapshotTerm == Term(1))
        #expect(recovery.snapshotEnd == 4_096)
        #expect(recovery.state.entries.map(\.index.rawValue) == [7, 8, 9, 10, 11])
        #expect(recovery.state.entries.map(\.term.rawValue) == [2, 2, 2, 3, 3])
        #expect(recovery.state.hardState == HardState(term: Term(3), commit: LogIndex(9)))
    }

    /// The crash before the rename: any prefix of the new file lies next to the old one. Recovery uses the old
    /// file whole and deletes the leftover.
    @Test func aCrashBeforeTheRenameRecoversTheOldFile() throws {
        let source = TemporaryDirectory("raftlog-src")
        let compacted = TemporaryDirectory("raftlog-new")
        let old = disks.fileBytes(try writeOldLog(source.path).path)
        let newDisk = try writeOldLog(compacted.path)
        try newDisk.compact(through: LogIndex(6), term: Term(1), snapshotEnd: 4_096, retained: disks.entries(7...10, term: 2))
        let new = disks.fileBytes(newDisk.path)
        for cut in stride(from: 0, through: new.count, by: 7) {
            let copy = TemporaryDirectory("raftlog-cut")
            try makeDirectories(copy.path)
            disks.writeFile(copy.path + "/raftlog", old[...])
            disks.writeFile(copy.path + "/raftlog.compacting", new[0..<cut])
            let recovery = try RaftLogDisk(directory: copy.path, syncEachWrite: true).recover()
            #expect(recovery.state.snapshotIndex == .zero, "cut at \(cut)")
            #expect(recovery.state.entries.count == 10, "cut at \(cut)")
            #expect(recovery.state.hardState.commit == LogIndex(8), "cut at \(cut)")
            #expect(access(copy.path + "/raftlog.compacting", F_OK) != 0, "the leftover is deleted")
        }
    }

    /// After the rename the new file is whole (synced first); a later append torn at any byte is cut as always,
    /// and the compacted start survives every cut.
    @Test func aTornAppendAfterACompactionKeepsTheCompactedStart() throws {
        let source = TemporaryDirectory("raftlog-src")
        let disk = try writeOldLog(source.path)
        try disk.compact(through: LogIndex(6), term: Term(1), snapshotEnd: 4_096, retained: disks.entries(7...10, term: 2))
        let compactedEnd = Int(disk.end)
        try disk.write(truncateFrom: nil, entries: disks.entries(11...12, term: 2), hardState: HardState(term: Term(2), vote: NodeID(1), commit: LogIndex(11)))
        let whole = disks.fileBytes(disk.path)
        for cut in compactedEnd...whole.count {
            let copy = TemporaryDirectory("raftlog-cut")
            try makeDirectories(copy.path)
            disks.writeFile(copy.path + "/raftlog", whole[0..<cut])
            let recovery = try RaftLogDisk(directory: copy.path, syncEachWrite: true).recover()
            #expect(recovery.state.snapshotIndex == LogIndex(6), "cut at \(cut)")
            #expect(recovery.snapshotEnd == 4_096, "cut at \(cut)")
            let last = recovery.state.entries.last?.index.rawValue
            #expect(last == 10 || last == 11 || last == 12, "cut at \(cut)")
            #expect(recovery.state.hardState.commit == (cut == whole.count ? LogIndex(11) : LogIndex(8)), "cut at \(cut)")
        }
    }
}
