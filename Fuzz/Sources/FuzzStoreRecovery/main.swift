// Store recovery over an arbitrary consume-queue file: a clean store (30 records in T/0, T/1 and U/0) is
// copied, its T/0 queue file replaced by the input (after one flags byte: bit 0 leaves the `abort`
// marker, bit 1 drops the clean-shutdown manifest), and the store opens. Invariants: opening never fails;
// the queue's last unit matches the log (recovery drops a tail pointing into garbage); every record a get
// returns belongs to the queue read; a get always moves the consumer on (no unit blocks its queue).
#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import FuzzSupport
import IndexFile

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

let queueFileBytes = 64 * ConsumeQueueUnit.size

func config(_ root: String) -> MessageStoreConfig {
    var config = MessageStoreConfig(storePathRootDir: root)
    config.commitLog.mappedFileSizeCommitLog = 64 * 1024
    config.commitLog.maxMessageSize = 1024
    config.commitLog.cleanResourceIntervalMillis = 3_600_000
    config.mappedFileSizeConsumeQueue = queueFileBytes
    config.maxHashSlotNum = 64
    config.maxIndexNum = 256
    return config
}

/// The clean store every input starts from, as (relative path, bytes); built once per process.
nonisolated(unsafe) var template: [(String, [UInt8])] = []

func buildTemplate() -> [(String, [UInt8])] {
    if !template.isEmpty { return template }
    let root = scratchDirectory("store-template")
    defer { removeTree(root) }
    do {
        let store = try MessageStore(config: config(root))
        for index in 0..<30 {
            let (topic, queueID) = [("T", Int32(0)), ("T", 1), ("U", 0)][index % 3]
            let topicBytes = Array(topic.utf8), body = Array("m\(index)".utf8)
            let properties = Array("TAGS\u{1}t\(index % 2)\u{2}KEYS\u{1}k\(index)\u{2}".utf8)
            _ = try topicBytes.withUnsafeBytes { t in
                try body.withUnsafeBytes { b in
                    try properties.withUnsafeBytes { p in try store.put(MessageView(topic: t, body: b, properties: p, queueID: queueID)) }
                }
            }
        }
        store.close()
    } catch {
        fuzzFailure("cannot build the template store: \(error)")
    }
    template = readTree(root, "")
    return template
}

func readTree(_ root: String, _ relative: String) -> [(String, [UInt8])] {
    let path = relative.isEmpty ? root : root + "/" + relative
    guard let names = listDirectory(path) else { return [(relative, readWholeFile(path))] }
    return names.sorted().flatMap { readTree(root, relative.isEmpty ? $0 : relative + "/" + $0) }
}

func readWholeFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return bytes }
        bytes += chunk[0..<n]
    }
}

let queueFile = "consumequeue/T/0/" + offsetFileName(0)

func seeds() -> [[UInt8]] {
    let queue = buildTemplate().first { $0.0 == queueFile }!.1
    let used = Array(queue.prefix(10 * ConsumeQueueUnit.size))
    return [[0] + used, [1] + used, [2] + used, [3] + used.prefix(7 * ConsumeQueueUnit.size + 9)]
}

/// Reads queue (topic, queueID) from its min offset to its max with gets of 4; checks each answer.
func readQueue(_ store: MessageStore, _ topic: String, _ queueID: Int32) {
    var offset = store.minOffset(topic: topic, queueID: queueID)
    let maxOffset = store.maxOffset(topic: topic, queueID: queueID)
    while offset < maxOffset {
        let result = store.get(topic: topic, queueID: queueID, offset: offset, maxMsgNums: 4)
        for region in result.records {
            guard case .message(let header) = RecordDecoder.check(region.bytes, checkCRC: false),
                  header.totalSize == region.bytes.count, header.queueID == queueID,
                  region.bytes[header.topic].elementsEqual(topic.utf8) else {
                fuzzFailure("get of \(topic)/\(queueID) at \(offset) returned a record of another queue or size")
            }
        }
        guard result.nextBeginOffset > offset else {
            fuzzFailure("get of \(topic)/\(queueID) at \(offset) did not move on (\(result.status), next \(result.nextBeginOffset))")
        }
        offset = result.nextBeginOffset
    }
}

fuzzMain(seeds: seeds) { input in
    guard let flags = input.first else { return }
    let root = scratchDirectory("store")
    defer { removeTree(root) }
    for (relative, bytes) in buildTemplate() {
        if flags & 2 != 0 && relative.hasSuffix("consumeQueueManifest.json") { continue }
        var directory = root
        for part in relative.split(separator: "/").dropLast() { directory += "/" + part }
        _ = try? makeDirectories(directory)
        if relative == queueFile {
            writeWholeFile(root + "/" + relative, UnsafeRawBufferPointer(rebasing: input.dropFirst().prefix(queueFileBytes)))
        } else {
            writeWholeFile(root + "/" + relative, bytes)
        }
    }
    if flags & 1 != 0 { writeWholeFile(root + "/abort", []) }
    do {
        let store = try MessageStore(config: config(root))
        defer { store.close() }
        let maxOffset = store.maxOffset(topic: "T", queueID: 0)
        if maxOffset > store.minOffset(topic: "T", queueID: 0), let last = store.unit(topic: "T", queueID: 0, offset: maxOffset - 1),
           case .bad(let flaw) = UnitCheck.check(last, topic: "T", queueID: 0, in: store.commitLog) {
            fuzzFailure("after recovery the queue ends with a bad unit: \(flaw)")
        }
        readQueue(store, "T", 0)
        readQueue(store, "T", 1)
    } catch {
        fuzzFailure("the store did not open: \(error)")
    }
}
