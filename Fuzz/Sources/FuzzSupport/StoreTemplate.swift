#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile

/// Consume-queue file size of the fuzzed stores: 64 units.
public let storeQueueFileBytes = 64 * ConsumeQueueUnit.size

/// A small store: 64 KiB log segments, 64-unit queue files, an index of 64 slots and 256 entries.
public func fuzzStoreConfig(_ root: String) -> MessageStoreConfig {
    var config = MessageStoreConfig(storePathRootDir: root)
    config.commitLog.mappedFileSizeCommitLog = 64 * 1024
    config.commitLog.maxMessageSize = 1024
    config.commitLog.cleanResourceIntervalMillis = 3_600_000
    config.mappedFileSizeConsumeQueue = storeQueueFileBytes
    config.maxHashSlotNum = 64
    config.maxIndexNum = 256
    return config
}

/// The clean store fuzzed stores start from, as (relative path, bytes); built once per process: 30 records
/// in T/0, T/1 and U/0, keyed `k<n>`, tagged `t0`/`t1`, closed cleanly.
nonisolated(unsafe) private var template: [(String, [UInt8])] = []

public func storeTemplate() -> [(String, [UInt8])] {
    if !template.isEmpty { return template }
    let root = scratchDirectory("store-template")
    defer { removeTree(root) }
    do {
        let store = try MessageStore(config: fuzzStoreConfig(root))
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

/// Writes the template under `root`, with the file at `replacing` (a relative path, or a prefix of one:
/// the first match) holding `bytes` instead; optionally without the clean-shutdown manifest, or with
/// the `abort` marker of a crash.
public func materializeStoreTemplate(at root: String, replacing: String, with bytes: UnsafeRawBufferPointer,
                                     skipManifest: Bool, abort: Bool) {
    var replaced = false
    for (relative, contents) in storeTemplate() {
        if skipManifest && relative.hasSuffix("consumeQueueManifest.json") { continue }
        var directory = root
        for part in relative.split(separator: "/").dropLast() { directory += "/" + part }
        _ = try? makeDirectories(directory)
        if !replaced && relative.hasPrefix(replacing) {
            writeWholeFile(root + "/" + relative, bytes)
            replaced = true
        } else {
            writeWholeFile(root + "/" + relative, contents)
        }
    }
    if abort { writeWholeFile(root + "/abort", []) }
}

func readTree(_ root: String, _ relative: String) -> [(String, [UInt8])] {
    let path = relative.isEmpty ? root : root + "/" + relative
    guard let names = listDirectory(path) else { return [(relative, readWholeFile(path))] }
    return names.sorted().flatMap { readTree(root, relative.isEmpty ? $0 : relative + "/" + $0) }
}

public func readWholeFile(_ path: String) -> [UInt8] {
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
