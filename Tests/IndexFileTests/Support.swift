#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Testing
import TestSupport

/// Small files everywhere so roll-overs, index roll-overs and retention happen in tests.
func storeConfig(_ root: String, flush: FlushDiskType = .asyncFlush, io: IOPath = .mmap) -> MessageStoreConfig {
    var config = MessageStoreConfig(storePathRootDir: root)
    config.commitLog.mappedFileSizeCommitLog = 1 << 20
    config.commitLog.maxMessageSize = 64 * 1024
    config.commitLog.flushDiskType = flush
    config.commitLog.ioPath = io
    config.commitLog.ioUringArenaSizeBytes = 1 << 20
    config.commitLog.flushIntervalCommitLogMillis = 20
    config.mappedFileSizeConsumeQueue = 1000 * 20
    config.maxHashSlotNum = 1000
    config.maxIndexNum = 4000
    config.flushIntervalConsumeQueueMillis = 50
    return config
}

/// A message to put: topic, queue, body, tag and keys as RocketMQ properties.
struct Outgoing {
    var topic: String
    var queueID: Int32
    var body: [UInt8]
    var tag: String?
    var keys: [String]
    var uniqueKey: String?

    var properties: [UInt8] {
        var text = ""
        if let tag { text += "TAGS\u{1}\(tag)\u{2}" }
        if !keys.isEmpty { text += "KEYS\u{1}\(keys.joined(separator: " "))\u{2}" }
        if let uniqueKey { text += "UNIQ_KEY\u{1}\(uniqueKey)\u{2}" }
        return Array(text.utf8)
    }

    func withView<R>(_ body: (MessageView) throws -> R) rethrows -> R {
        let topicBytes = Array(topic.utf8)
        let propertyBytes = properties
        return try topicBytes.withUnsafeBytes { t in
            try self.body.withUnsafeBytes { b in
                try propertyBytes.withUnsafeBytes { p in
                    try body(MessageView(topic: t, body: b, properties: p, queueID: queueID, bornTimestamp: 1))
                }
            }
        }
    }
}

extension MessageStore {
    func put(_ message: Outgoing) throws(StoreError) -> PutMessageResult {
        let result = message.withView { view in Result { () throws(StoreError) in try put(view) } }
        return try result.get()
    }

    /// Waits (bounded) until dispatch has caught up with the log.
    func waitForDispatch(seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation) {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while dispatchBehindBytes > 0 || commitLog.visibleOffset < commitLog.wroteOffset {
            guard monotonicNanos() < deadline else {
                Issue.record("dispatch is \(dispatchBehindBytes) bytes behind after \(seconds) s", sourceLocation: sourceLocation)
                return
            }
            usleep(1000)
        }
    }

    /// Every record of a queue, read with `get` in batches of 32.
    func readAll(topic: String, queueID: Int32, tagsCodes: Set<Int32>? = nil) -> [StoredRecord] {
        var records: [StoredRecord] = []
        var offset = minOffset(topic: topic, queueID: queueID)
        while true {
            let result = get(topic: topic, queueID: queueID, offset: offset, maxMsgNums: 32, tagsCodes: tagsCodes)
            for region in result.records {
                if case .record(let record)? = try? commitLog.readRecord(at: region.physicalOffset) { records.append(record) }
            }
            if result.status == .offsetOverflowOne || result.nextBeginOffset == offset { break }
            offset = result.nextBeginOffset
        }
        return records
    }
}

func propertiesText(_ record: StoredRecord) -> String { String(decoding: record.properties, as: UTF8.self) }
