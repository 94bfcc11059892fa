#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Replication
import Synchronization
import Testing
import TestSupport

/// Small commit-log files (several per test) and small queues and index, so roll-overs happen.
func storeConfig(_ root: String, io: IOPath = .mmap, flush: FlushDiskType = .asyncFlush,
                 fileSize: Int = 256 << 10) -> MessageStoreConfig {
    var config = MessageStoreConfig(storePathRootDir: root)
    config.commitLog.mappedFileSizeCommitLog = fileSize
    config.commitLog.maxMessageSize = 16 * 1024
    config.commitLog.flushDiskType = flush
    config.commitLog.ioPath = io
    config.commitLog.ioUringArenaSizeBytes = 1 << 20
    config.commitLog.flushIntervalCommitLogMillis = 20
    config.commitLog.prefaultAheadBytes = 0
    config.mappedFileSizeConsumeQueue = 1000 * 20
    config.maxHashSlotNum = 1000
    config.maxIndexNum = 4000
    config.flushIntervalConsumeQueueMillis = 50
    return config
}

extension HASettings {
    /// Loopback, a port the system picks, and short intervals where a test waits for them.
    static func loopback(heartbeatMillis: Int = 5_000, housekeepingMillis: Int = 20_000) -> HASettings {
        var settings = HASettings()
        settings.haListenHost = "127.0.0.1"
        settings.haListenPort = 0
        settings.haSendHeartbeatIntervalMillis = heartbeatMillis
        settings.haHousekeepingIntervalMillis = housekeepingMillis
        return settings
    }
}

extension HAService {
    var address: String { "127.0.0.1:\(port)" }
}

/// A message to put: topic, queue, body, keys.
struct Outgoing {
    var topic: String
    var queueID: Int32
    var body: [UInt8]
    var keys: [String] = []
    var uniqueKey: String?

    var properties: [UInt8] {
        var text = "TAGS\u{1}tag\(queueID)\u{2}"
        if !keys.isEmpty { text += "KEYS\u{1}\(keys.joined(separator: " "))\u{2}" }
        if let uniqueKey { text += "UNIQ_KEY\u{1}\(uniqueKey)\u{2}" }
        return Array(text.utf8)
    }
}

extension MessageStore {
    @discardableResult
    func put(_ message: Outgoing) throws -> PutMessageResult {
        let topic = Array(message.topic.utf8)
        let properties = message.properties
        return try topic.withUnsafeBytes { t in
            try message.body.withUnsafeBytes { b in
                try properties.withUnsafeBytes { p in
                    try put(MessageView(topic: t, body: b, properties: p, queueID: message.queueID, bornTimestamp: 1))
                }
            }
        }
    }

    /// `count` messages over 3 topics x 4 queues, bodies of seeded random size, each with a key.
    @discardableResult
    func putMessages(_ count: Int, seed: UInt64, prefix: String = "m", topics: [String] = ["TopicA", "TopicB", "TopicC"]) throws -> [PutMessageResult] {
        var random = SeededGenerator(seed: seed)
        var results: [PutMessageResult] = []
        for index in 0..<count {
            let size = Int.random(in: 16...3000, using: &random)
            let fill = UInt8(truncatingIfNeeded: index)
            results.append(try put(Outgoing(topic: topics[index % topics.count], queueID: Int32(index % 4),
                                            body: [UInt8](repeating: fill, count: size),
                                            keys: ["\(prefix)-key-\(index)"], uniqueKey: "\(prefix)-U\(index)")))
        }
        return results
    }

    /// Waits (bounded) until dispatch has caught up with the log.
    func waitForDispatch(seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation) {
        let caughtUp = eventually(seconds: seconds) { dispatchBehindBytes == 0 && commitLog.visibleOffset >= commitLog.wroteOffset }
        if !caughtUp { Issue.record("dispatch is \(dispatchBehindBytes) bytes behind after \(seconds) s", sourceLocation: sourceLocation) }
    }

    /// Physical offsets of every unit of a queue from `from` (default: its min offset), read with `get`.
    func physicalOffsets(topic: String, queueID: Int32, from: Int64? = nil) -> [UInt64] {
        var offsets: [UInt64] = []
        var offset = from ?? minOffset(topic: topic, queueID: queueID)
        while true {
            let result = get(topic: topic, queueID: queueID, offset: offset, maxMsgNums: 32)
            offsets += result.records.map(\.physicalOffset)
            if result.status != .found || result.nextBeginOffset == offset { break }
            offset = result.nextBeginOffset
        }
        return offsets
    }
}

/// Polls `condition` every millisecond until it holds or `seconds` pass. - Returns: whether it held.
func eventually(seconds: Double = 30, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    while !condition() {
        if monotonicNanos() >= deadline { return false }
        usleep(1000)
    }
    return true
}

/// Waits until the slave's log ends where the master's does, then until the slave dispatched it all.
func waitForCatchUp(master: MessageStore, slave: MessageStore, seconds: Double = 60,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    let caughtUp = eventually(seconds: seconds) { slave.commitLog.wroteOffset == master.commitLog.wroteOffset }
    if !caughtUp {
        Issue.record("slave at \(slave.commitLog.wroteOffset), master at \(master.commitLog.wroteOffset) after \(seconds) s",
                     sourceLocation: sourceLocation)
    }
    slave.waitForDispatch(sourceLocation: sourceLocation)
}

/// True when both logs hold the same bytes in `[from, to)`, compared file piece by file piece; records
/// where they first differ otherwise.
func sameBytes(_ master: CommitLog, _ slave: CommitLog, from: UInt64, to: UInt64,
               sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    let fileSize = UInt64(master.settings.mappedFileSizeCommitLog)
    var at = from
    while at < to {
        let count = Int(min(to, at - at % fileSize + fileSize) - at)
        guard let source = master.region(at: at, count: count), let copy = slave.region(at: at, count: count) else {
            Issue.record("[\(at), +\(count)) is not readable on both (slave log \(slave.minOffset)..<\(slave.committedOffset))",
                         sourceLocation: sourceLocation)
            return false
        }
        if memcmp(source.bytes.baseAddress!, copy.bytes.baseAddress!, count) != 0 {
            let index = (0..<count).first { source.bytes[$0] != copy.bytes[$0] } ?? 0
            Issue.record("logs differ at \(at + UInt64(index))", sourceLocation: sourceLocation)
            return false
        }
        at += UInt64(count)
    }
    return true
}

/// Every queue of the master has the same max offset on the slave, and the same units from
/// `max(master's min, slave's min)` on.
func expectSameQueues(_ master: MessageStore, _ slave: MessageStore, sourceLocation: SourceLocation = #_sourceLocation) {
    for (topic, queueID) in master.queues {
        #expect(slave.maxOffset(topic: topic, queueID: queueID) == master.maxOffset(topic: topic, queueID: queueID),
                "\(topic)/\(queueID)", sourceLocation: sourceLocation)
        let from = max(master.minOffset(topic: topic, queueID: queueID), slave.minOffset(topic: topic, queueID: queueID))
        #expect(slave.physicalOffsets(topic: topic, queueID: queueID, from: from)
                == master.physicalOffsets(topic: topic, queueID: queueID, from: from), "\(topic)/\(queueID)",
                sourceLocation: sourceLocation)
    }
}

/// Collects what an `onReplicated` handler hears.
final class ReplicaAnswers: Sendable {
    let answers = Mutex<[(token: UInt64, status: ReplicaStatus)]>([])
    func record(_ token: UInt64, _ status: ReplicaStatus) { answers.withLock { $0.append((token, status)) } }
    func status(of token: UInt64) -> ReplicaStatus? { answers.withLock { list in list.first { $0.token == token }?.status } }
}
