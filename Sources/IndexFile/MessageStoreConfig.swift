import CommitLog

/// The store's settings beyond the commit log's, with their `broker.conf` names.
public struct MessageStoreConfig: Sendable {
    public var commitLog: CommitLogSettings
    /// Consume-queue file size, rounded up to a multiple of 20 (300,000 units by default).
    public var mappedFileSizeConsumeQueue: Int = 300_000 * 20
    public var messageIndexEnable: Bool = true
    public var maxHashSlotNum: Int = 5_000_000
    public var maxIndexNum: Int = 20_000_000
    public var flushIntervalConsumeQueueMillis: Int = 1_000
    public var flushConsumeQueueLeastPages: Int = 2
    public var flushConsumeQueueThoroughIntervalMillis: Int = 60_000
    /// Per-pull caps (RocketMQ's in-memory values).
    public var maxTransferCountOnMessageInMemory: Int = 32
    public var maxTransferBytesOnMessageInMemory: Int = 262_144
    /// Consume-queue bytes scanned per pull when filtering by tag.
    public var maxFilterMessageSize: Int = 16_000
    /// Most offsets a query by key returns.
    public var maxMsgsNumBatch: Int = 64
    /// Delay of each level, 1-based (`messageDelayLevel`: "1s 5s 10s 30s 1m 2m ... 2h").
    public var messageDelayLevelMillis: [Int64] = MessageStoreConfig.parseDelayLevels("1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h")!

    /// The topic delayed messages wait in, one queue per level (queue id = level - 1).
    public static let scheduleTopic = "SCHEDULE_TOPIC_XXXX"

    /// Parses RocketMQ's `messageDelayLevel` ("1s 5s 1m 2h ..."), nil when malformed.
    public static func parseDelayLevels(_ text: String) -> [Int64]? {
        let units: [Character: Int64] = ["s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        var levels: [Int64] = []
        for word in text.split(separator: " ") {
            guard let unit = word.last.flatMap({ units[$0] }), let count = Int64(word.dropLast()), count >= 0 else { return nil }
            levels.append(count * unit)
        }
        return levels.isEmpty ? nil : levels
    }

    public init(storePathRootDir: String) {
        commitLog = CommitLogSettings(storePathRootDir: storePathRootDir)
    }

    public var storePathRootDir: String { commitLog.storePathRootDir }
}

/// RocketMQ's `GetMessageStatus`.
public enum GetMessageStatus: String, Sendable {
    case found = "FOUND"
    case noMatchedMessage = "NO_MATCHED_MESSAGE"
    case messageWasRemoving = "MESSAGE_WAS_REMOVING"
    case offsetFoundNull = "OFFSET_FOUND_NULL"
    case offsetOverflowBadly = "OFFSET_OVERFLOW_BADLY"
    case offsetOverflowOne = "OFFSET_OVERFLOW_ONE"
    case offsetTooSmall = "OFFSET_TOO_SMALL"
    case noMatchedLogicQueue = "NO_MATCHED_LOGIC_QUEUE"
    case noMessageInQueue = "NO_MESSAGE_IN_QUEUE"
}

/// What a pull reads: stored records (as they lie in the log, ready to ship) and where to go on.
public struct GetMessageResult: @unchecked Sendable {
    public var status: GetMessageStatus
    public var records: [MappedRegion]
    /// Queue offset of each record in `records`.
    public var queueOffsets: [Int64]
    public var nextBeginOffset: Int64
    public var minOffset: Int64
    public var maxOffset: Int64
    public var totalBytes: Int { records.reduce(0) { $0 + $1.bytes.count } }
}

/// Where a put went, in the store's terms.
public struct PutMessageResult: Sendable, Equatable {
    public var append: AppendResult
    /// The queue offset the store assigned.
    public var queueOffset: Int64
    /// True under SYNC_FLUSH: the `onDurable` handler will be called with the put's token.
    public var durabilityPending: Bool
}
