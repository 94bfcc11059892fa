#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Testing
import TestSupport

/// A corrupt index file never crashes the store or loops: a header that does not fit the file is
/// refused at load (logged; the file is set aside), a chain is followed only towards older entries (so a
/// loop ends), and an entry pointing nowhere is skipped.
@Suite(.serialized) struct IndexCorruptionTests {
    /// A store with 200 keyed messages, closed; returns the path of its (single) index file.
    func keyedStore(_ root: String) throws -> String {
        let store = try MessageStore(config: storeConfig(root))
        for index in 0..<200 {
            _ = try store.put(Outgoing(topic: "K", queueID: 0, body: [UInt8(index)], tag: nil, keys: ["key-\(index % 20)"]))
        }
        store.waitForDispatch()
        store.close()
        let names = (listDirectory(root + "/index") ?? []).sorted()
        #expect(names.count == 1)
        return root + "/index/" + names[0]
    }

    /// Header field offsets and the first entry's position under `storeConfig` (1000 slots).
    let indexCountAt = 36, hashSlotCountAt = 32, entriesAt = 40 + 1000 * 4

    func int32(_ value: Int32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }

    func expectQueriesWork(_ root: String, lines: LogLines, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let store = try MessageStore(config: storeConfig(root), log: lines.append)
        defer { store.close() }
        let started = monotonicNanos()
        for key in 0..<20 {
            let found = store.queryMessage(topic: "K", key: "key-\(key)", maxNum: 64)
            let offsets = found.map(\.region.physicalOffset)
            #expect(Set(offsets).count == offsets.count, "key-\(key): duplicates \(offsets)", sourceLocation: sourceLocation)
        }
        #expect(monotonicNanos() - started < 2_000_000_000, "queries took too long", sourceLocation: sourceLocation)
        // New keys still go somewhere queryable.
        _ = try store.put(Outgoing(topic: "K", queueID: 0, body: [1], tag: nil, keys: ["fresh"]))
        store.waitForDispatch()
        #expect(store.queryMessage(topic: "K", key: "fresh", maxNum: 4).count == 1, sourceLocation: sourceLocation)
    }

    @Test(arguments: [Int32(1_000_000), -7, 0x7FFF_FFFF])
    func indexCountBeyondTheFileIsRefusedAtLoad(count: Int32) throws {
        let dir = TemporaryDirectory()
        let path = try keyedStore(dir.path)
        patchFile(path, at: indexCountAt, int32(count))
        // And every slot pointing at an entry the count allows but the file does not hold.
        for slot in 0..<1000 { patchFile(path, at: 40 + 4 * slot, int32(999_999)) }
        let lines = LogLines()
        try expectQueriesWork(dir.path, lines: lines)
        #expect(lines.contains("index"), "\(lines.all)")
    }

    @Test func chainLoopEndsAndReturnsNoDuplicates() throws {
        let dir = TemporaryDirectory()
        let path = try keyedStore(dir.path)
        // Every entry's "previous" points at the next newer entry: following a chain would circle for ever.
        for entry in 1..<201 {
            patchFile(path, at: entriesAt + entry * 20 + 16, int32(Int32(entry == 200 ? 1 : entry + 1)))
        }
        try expectQueriesWork(dir.path, lines: LogLines())
    }

    @Test func entriesPointingNowhereAreSkipped() throws {
        let dir = TemporaryDirectory()
        let path = try keyedStore(dir.path)
        for entry in stride(from: 1, to: 201, by: 3) {
            let offset: Int64 = entry % 2 == 0 ? -4096 : 1 << 40
            patchFile(path, at: entriesAt + entry * 20 + 4, withUnsafeBytes(of: offset.bigEndian) { Array($0) })
        }
        // Slots pointing past the entries written.
        patchFile(path, at: 40 + 4 * 17, int32(3_999))
        patchFile(path, at: 40 + 4 * 18, int32(-2))
        try expectQueriesWork(dir.path, lines: LogLines())
    }

    /// Found by FuzzIndexFile: a file whose end offset lies past the log's end (corrupt, or written before
    /// recovery cut the log back) made every later key look indexed already, so none was.
    @Test func indexFileClaimingOffsetsPastTheLogStillIndexesNewKeys() throws {
        let dir = TemporaryDirectory()
        let path = try keyedStore(dir.path)
        patchFile(path, at: 24, withUnsafeBytes(of: (Int64(1) << 32).bigEndian) { Array($0) })
        let lines = LogLines()
        try expectQueriesWork(dir.path, lines: lines)
        #expect(lines.contains("past the log's end"), "\(lines.all)")
        #expect(lines.all.count < 10)
    }

    @Test func indexFileCutShortIsSetAsideAndTheStoreOpens() throws {
        let dir = TemporaryDirectory()
        let path = try keyedStore(dir.path)
        #expect(truncate(path, 1000) == 0)
        let lines = LogLines()
        try expectQueriesWork(dir.path, lines: lines)
        #expect(lines.contains(path), "\(lines.all)")
    }
}

/// Overwrites `bytes` at `offset` of the file at `path`.
func patchFile(_ path: String, at offset: Int, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
}
