#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// One hash-index file in RocketMQ's layout:
///
/// ```
/// header (40): beginTimestamp i64 | endTimestamp i64 | beginPhyOffset i64 | endPhyOffset i64 | hashSlotCount i32 | indexCount i32
/// slots:       hashSlotNum x i32 (number of the newest entry in the chain, 0 = empty)
/// entries:     indexNum x (keyHash i32 | phyOffset i64 | timeDiff seconds i32 | previous entry i32)
/// ```
/// Entry 0 is reserved as "none", so `indexCount` starts at 1.
public final class IndexFile: @unchecked Sendable {
    public static let headerSize = 40
    public static let slotSize = 4
    public static let entrySize = 20

    public let file: MappedFile
    let hashSlotNum: Int
    let indexNum: Int

    init(file: MappedFile, hashSlotNum: Int, indexNum: Int) {
        self.file = file
        self.hashSlotNum = hashSlotNum
        self.indexNum = indexNum
        if indexCount == 0 { setIndexCount(1) }
    }

    /// What is wrong with a loaded file's header, if anything: the entry count must fit the file (every
    /// read and write of an entry trusts it) and the time and offset ranges must be ordered.
    var headerFlaw: String? {
        if indexCount < 1 || Int(indexCount) > indexNum { return "indexCount \(indexCount) is outside 1...\(indexNum)" }
        if hashSlotCount < 0 || Int(hashSlotCount) > hashSlotNum { return "hashSlotCount \(hashSlotCount) is outside 0...\(hashSlotNum)" }
        if beginTimestamp < 0 || endTimestamp < beginTimestamp { return "timestamps \(beginTimestamp)...\(endTimestamp) are out of order" }
        if beginPhyOffset < 0 || endPhyOffset < beginPhyOffset { return "offsets \(beginPhyOffset)...\(endPhyOffset) are out of order" }
        return nil
    }

    static func fileSize(hashSlotNum: Int, indexNum: Int) -> Int {
        headerSize + hashSlotNum * slotSize + indexNum * entrySize
    }

    private var base: UnsafeMutableRawPointer { file.base }
    public var beginTimestamp: Int64 { loadBigEndian(Int64.self, at: 0, in: base) }
    public var endTimestamp: Int64 { loadBigEndian(Int64.self, at: 8, in: base) }
    public var beginPhyOffset: Int64 { loadBigEndian(Int64.self, at: 16, in: base) }
    public var endPhyOffset: Int64 { loadBigEndian(Int64.self, at: 24, in: base) }
    var hashSlotCount: Int32 { loadBigEndian(Int32.self, at: 32, in: base) }
    public var indexCount: Int32 { loadBigEndian(Int32.self, at: 36, in: base) }
    private func setIndexCount(_ value: Int32) { storeBigEndian(value, at: 36, in: base) }
    public var isFull: Bool { Int(indexCount) >= indexNum }

    /// Sets the end offset just below `logEnd`: entries past it stay (queries check what they find), but a
    /// record appended at or after `logEnd` is no longer taken as indexed already.
    func cutEnd(before logEnd: Int64) {
        precondition(beginPhyOffset < logEnd, "the whole file lies past the log's end")
        storeBigEndian(logEnd - 1, at: 24, in: base)
    }

    /// Java's `abs(hash)`, with `abs(Int.min)` mapped to 0 as RocketMQ does.
    static func keyHash(_ key: String) -> Int32 {
        let hash = javaHashCode(key)
        return hash == Int32.min ? 0 : abs(hash)
    }

    /// `keyHash("topic#key")` read off the bytes, building no string when they are ASCII (Java's hash is
    /// over UTF-16 units, which ASCII bytes are); other text goes through the string.
    static func keyHash(topic: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) -> Int32 {
        var hash: Int32 = 0
        func mix(_ bytes: UnsafeRawBufferPointer) -> Bool {
            for byte in bytes {
                guard byte < 0x80 else { return false }
                hash = 31 &* hash &+ Int32(byte)
            }
            return true
        }
        var ascii = mix(topic)
        hash = 31 &* hash &+ Int32(UInt8(ascii: "#"))
        ascii = ascii && mix(key)
        guard ascii else { return keyHash(String(decoding: topic, as: UTF8.self) + "#" + String(decoding: key, as: UTF8.self)) }
        return hash == Int32.min ? 0 : abs(hash)
    }

    /// Adds a key (by its `keyHash`) -> `physicalOffset`. False when the file is full.
    func put(keyHash hash: Int32, physicalOffset: Int64, storeTimestamp: Int64) -> Bool {
        guard !isFull else { return false }
        let slotAt = IndexFile.headerSize + Int(hash) % hashSlotNum * IndexFile.slotSize
        let count = indexCount
        var previous = loadBigEndian(Int32.self, at: slotAt, in: base)
        if previous <= 0 || previous >= count { previous = 0 }  // a chain only points at older entries
        if count == 1 {
            storeBigEndian(physicalOffset, at: 16, in: base)
            storeBigEndian(storeTimestamp, at: 0, in: base)
        }
        let diff = max(0, min(Int64(Int32.max), (storeTimestamp - beginTimestamp) / 1000))
        let entryAt = IndexFile.headerSize + hashSlotNum * IndexFile.slotSize + Int(count) * IndexFile.entrySize
        storeBigEndian(hash, at: entryAt, in: base)
        storeBigEndian(physicalOffset, at: entryAt + 4, in: base)
        storeBigEndian(Int32(diff), at: entryAt + 12, in: base)
        storeBigEndian(previous, at: entryAt + 16, in: base)
        storeBigEndian(count, at: slotAt, in: base)
        if previous == 0 { storeBigEndian(hashSlotCount &+ 1, at: 32, in: base) }
        setIndexCount(count + 1)
        storeBigEndian(physicalOffset, at: 24, in: base)
        storeBigEndian(storeTimestamp, at: 8, in: base)
        return true
    }

    /// Offsets indexed under `key` with store time in [begin, end], newest first, at most `maxNum`.
    /// A chain only runs towards older entries (each entry's `previous` was written before it), so the walk
    /// stops at a link that does not: a corrupt chain cannot loop. Entries past the count are never read.
    func query(key: String, maxNum: Int, begin: Int64, end: Int64, into offsets: inout [Int64]) {
        let hash = IndexFile.keyHash(key)
        let slotAt = IndexFile.headerSize + Int(hash) % hashSlotNum * IndexFile.slotSize
        var entry = loadBigEndian(Int32.self, at: slotAt, in: base)
        let count = min(indexCount, Int32(indexNum))  // load refused a larger count; a writer may race
        let begin0 = beginTimestamp
        while entry > 0 && entry < count && offsets.count < maxNum {
            let entryAt = IndexFile.headerSize + hashSlotNum * IndexFile.slotSize + Int(entry) * IndexFile.entrySize
            let storedHash = loadBigEndian(Int32.self, at: entryAt, in: base)
            let offset = loadBigEndian(Int64.self, at: entryAt + 4, in: base)
            let time = begin0 &+ Int64(loadBigEndian(Int32.self, at: entryAt + 12, in: base)) * 1000
            let previous = loadBigEndian(Int32.self, at: entryAt + 16, in: base)
            if storedHash == hash && time >= begin && time <= end && offset >= 0 { offsets.append(offset) }
            if time < begin || previous >= entry { break }
            entry = previous
        }
    }
}

/// The index files of a store (`<root>/index/<yyyyMMddHHmmssSSS>`), newest last. Keys are
/// `topic#key` for `UNIQ_KEY` and each of `KEYS`.
public final class IndexService: @unchecked Sendable {
    let directory: String
    let hashSlotNum: Int
    let indexNum: Int
    let io: FileIO
    let log: @Sendable (String) -> Void
    private let files = Mutex<[IndexFile]>([])

    init(directory: String, hashSlotNum: Int, indexNum: Int, io: FileIO,
         log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.directory = directory
        self.hashSlotNum = hashSlotNum
        self.indexNum = indexNum
        self.io = io
        self.log = log
    }

    var fileSize: Int { IndexFile.fileSize(hashSlotNum: hashSlotNum, indexNum: indexNum) }

    /// Loads the index files; after a crash, files not known to be complete (`endTimestamp` past the
    /// checkpoint's `indexMsgTimestamp`) are deleted and rebuilt by dispatch. A file of the wrong size or
    /// with a header that does not fit it is deleted too, with a log line: its keys are no longer found,
    /// but nothing reads or writes outside it.
    /// A file claiming records at or past `logEnd` (the recovered log's end) is cut back to it, so keys of
    /// the records appended there are indexed (a put skips offsets at or below a file's end offset).
    func load(abnormal: Bool, indexMsgTimestamp: Int64, logEnd: Int64) throws(StoreError) {
        do { try makeDirectories(directory) } catch { throw StoreError(.io, "\(directory): cannot create", cause: error) }
        var loaded: [IndexFile] = []
        for name in (listDirectory(directory) ?? []).sorted() where name.count == 17 && UInt64(name) != nil {
            let path = directory + "/" + name
            let file: IndexFile
            do {
                file = try IndexFile(file: MappedFile(openExisting: path, fileFromOffset: 0, fileSize: fileSize),
                                     hashSlotNum: hashSlotNum, indexNum: indexNum)
            } catch {
                log("index \(path): \(error); deleted (its keys are no longer found by key)")
                unlink(path)
                continue
            }
            if let flaw = file.headerFlaw {
                log("index \(path): corrupt header: \(flaw); deleted (its keys are no longer found by key)")
                file.file.unlinkFromDisk()
                continue
            }
            if abnormal && file.endTimestamp > indexMsgTimestamp {
                file.file.unlinkFromDisk()
                continue
            }
            if file.endPhyOffset >= logEnd && file.indexCount > 1 {
                guard file.beginPhyOffset < logEnd else {
                    log("index \(path): every entry lies past the log's end \(logEnd); deleted")
                    file.file.unlinkFromDisk()
                    continue
                }
                log("index \(path): end offset \(file.endPhyOffset) lies past the log's end \(logEnd); later keys are indexed again")
                file.cutEnd(before: logEnd)
            }
            loaded.append(file)
        }
        files.withLock { $0 = loaded }
    }

    /// The offset dispatch must re-index from: the end of the newest kept file.
    var endPhyOffset: Int64 { files.withLock { $0.last?.endPhyOffset ?? 0 } }

    /// Indexes one dispatched message (idempotent: offsets below the newest file's end are skipped).
    func build(topic: UnsafeRawBufferPointer, keys: UnsafeRawBufferPointer?, uniqueKey: UnsafeRawBufferPointer?,
               physicalOffset: Int64, storeTimestamp: Int64) throws(StoreError) {
        var file = try writableFile(storeTimestamp: storeTimestamp)
        if file.indexCount > 1 && physicalOffset <= file.endPhyOffset { return }  // indexed before a restart
        func add(_ key: UnsafeRawBufferPointer) throws(StoreError) {
            guard key.count > 0 else { return }
            let hash = IndexFile.keyHash(topic: topic, key: key)
            if !file.put(keyHash: hash, physicalOffset: physicalOffset, storeTimestamp: storeTimestamp) {
                file = try rollFile(after: file, storeTimestamp: storeTimestamp)
                _ = file.put(keyHash: hash, physicalOffset: physicalOffset, storeTimestamp: storeTimestamp)
            }
        }
        if let uniqueKey { try add(uniqueKey) }
        if let keys {
            var start = 0
            for index in 0...keys.count where index == keys.count || keys[index] == 32 {
                if index > start { try add(UnsafeRawBufferPointer(rebasing: keys[start..<index])) }
                start = index + 1
            }
        }
    }

    private func writableFile(storeTimestamp: Int64) throws(StoreError) -> IndexFile {
        if let last = files.withLock({ $0.last }), !last.isFull { return last }
        return try rollFile(after: files.withLock { $0.last }, storeTimestamp: storeTimestamp)
    }

    /// Starts a new file (its begin fields continue the previous file's end), forcing the full one.
    private func rollFile(after previous: IndexFile?, storeTimestamp: Int64) throws(StoreError) -> IndexFile {
        var name = timestampName(wallClockMillis())
        while fileExists(directory + "/" + name) { name = timestampName(wallClockMillis() + 1) ; usleep(1000) }
        let mapped = try MappedFile(create: directory + "/" + name, fileFromOffset: 0, fileSize: fileSize, io: io, warmUp: false)
        let file = IndexFile(file: mapped, hashSlotNum: hashSlotNum, indexNum: indexNum)
        if let previous {
            storeBigEndian(previous.endTimestamp, at: 0, in: mapped.base)
            storeBigEndian(previous.endTimestamp, at: 8, in: mapped.base)
            storeBigEndian(previous.endPhyOffset, at: 16, in: mapped.base)
            storeBigEndian(previous.endPhyOffset, at: 24, in: mapped.base)
            try? previous.file.flush(from: 0, to: previous.file.fileSize, method: .msync, io: io)
        } else {
            storeBigEndian(storeTimestamp, at: 0, in: mapped.base)
        }
        files.withLock { $0.append(file) }
        return file
    }

    /// The commit log was cut at `physicalEnd` (`MessageStore.truncate(to:)`). Entries cannot be taken out
    /// of hash chains, so those past the cut stay, as RocketMQ's do (a query reading such an offset gets
    /// whatever record lies there now, as with a hash collision: callers check the key). But the newest
    /// file's end offset, past the cut, would make `build` skip every record dispatched again below it:
    /// a fresh file takes the entries from here on.
    func truncate(physicalEnd: Int64) throws(StoreError) {
        guard let last = files.withLock({ $0.last }), last.indexCount > 1, last.endPhyOffset >= physicalEnd else { return }
        let file = try rollFile(after: last, storeTimestamp: last.endTimestamp)
        storeBigEndian(physicalEnd, at: 16, in: file.file.base)
        storeBigEndian(physicalEnd, at: 24, in: file.file.base)
    }

    /// Physical offsets indexed under `topic#key` within [begin, end], newest files first.
    public func query(topic: String, key: String, maxNum: Int, begin: Int64, end: Int64) -> [Int64] {
        var offsets: [Int64] = []
        let text = topic + "#" + key
        for file in files.withLock({ $0 }).reversed() {
            guard offsets.count < maxNum else { break }
            if file.endTimestamp < begin || file.beginTimestamp > end { continue }
            file.query(key: text, maxNum: maxNum, begin: begin, end: end, into: &offsets)
            if file.beginTimestamp < begin { break }
        }
        return offsets.sorted()
    }

    /// Forces every file and returns the newest end timestamp (for the checkpoint).
    func flushAll() -> Int64? {
        let all = files.withLock { $0 }
        for file in all { try? file.file.flush(from: 0, to: file.file.fileSize, method: .msync, io: io) }
        return all.last?.endTimestamp
    }

    /// Deletes files (never the last) whose entries all point below `commitLogMinOffset`.
    func deleteExpired(commitLogMinOffset: Int64) -> Int {
        let doomed: [IndexFile] = files.withLock { files in
            var doomed: [IndexFile] = []
            while files.count > 1, let first = files.first, first.endPhyOffset < commitLogMinOffset {
                doomed.append(files.removeFirst())
            }
            return doomed
        }
        for file in doomed { file.file.unlinkFromDisk() }
        return doomed.count
    }
}

/// `yyyyMMddHHmmssSSS` in local time, RocketMQ's index file name.
func timestampName(_ millis: Int64) -> String {
    var seconds = time_t(millis / 1000)
    var parts = tm()
    localtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2) + pad(parts.tm_hour, 2)
        + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2) + pad(Int32(millis % 1000), 3)
}
