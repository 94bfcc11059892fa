#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization

/// What checking a consume-queue unit against the commit log found.
public enum UnitCheck: @unchecked Sendable {
    /// The unit's record: it lies at the unit's offset, has the unit's size and belongs to the queue.
    case record(StoredRecord)
    /// The unit points below the log's first offset: retention deleted its file.
    case removed
    /// The unit does not describe a record of its queue; readers skip it.
    case bad(UnitFlaw)
}

/// Why a unit is bad. Values only: the text is built when a line is logged.
public enum UnitFlaw: Sendable, Equatable {
    /// A filler unit (a hole kept so offsets stay positions): nothing to read.
    case filler
    /// A negative offset or a size that is not positive.
    case badFields
    /// The unit reaches past the log's readable end.
    case pastTheEnd(readableEnd: UInt64)
    /// No valid record starts at the unit's offset (the decoder's complaint).
    case notARecord(String)
    /// A record starts there, but its size differs from the unit's.
    case sizeMismatch(recordSize: Int)
    /// The record belongs to another topic or queue.
    case otherQueue(queueID: Int32)
    /// The tags code differs from the one the record's properties give (checked at recovery only).
    case tagsCodeMismatch(expected: Int64)
}

extension UnitCheck {
    /// Checks `unit` of queue (`topic`, `queueID`) against `log`: the record must start at the unit's
    /// physical offset, be valid (magic, sizes, fields; not the CRC), have the unit's size and carry the
    /// queue's topic and queue id. No allocation unless the unit is bad.
    /// - Thread: any.
    public static func check(_ unit: ConsumeQueueUnit, topic: String, queueID: Int32, in log: CommitLog) -> UnitCheck {
        if unit == .filler { return .bad(.filler) }
        guard unit.physicalOffset >= 0, unit.messageSize > 0 else { return .bad(.badFields) }
        let offset = UInt64(unit.physicalOffset)
        let readable = log.committedOffset
        guard offset + UInt64(unit.messageSize) <= readable else { return .bad(.pastTheEnd(readableEnd: readable)) }
        let result: ReadResult
        do { result = try log.readRecord(at: offset, checkCRC: false) } catch {
            return offset < log.minOffset ? .removed : .bad(.notARecord(error.message))
        }
        guard case .record(let record) = result else {
            // Retention may have deleted the file between the two looks.
            return offset < log.minOffset ? .removed : .bad(.notARecord("no record starts there"))
        }
        guard record.header.totalSize == Int(unit.messageSize) else {
            return .bad(.sizeMismatch(recordSize: record.header.totalSize))
        }
        guard record.header.queueID == queueID, utf8Equals(topic, record.topic) else {
            return .bad(.otherQueue(queueID: record.header.queueID))
        }
        return .record(record)
    }
}

extension ConsumeQueue {
    /// `UnitCheck.check` for this queue.
    public func check(_ unit: ConsumeQueueUnit, in log: CommitLog) -> UnitCheck {
        UnitCheck.check(unit, topic: topic, queueID: queueID, in: log)
    }

    /// Drops units at the queue's end that do not match their record (garbage, a torn unit, a unit whose
    /// record the log no longer has), back to the first unit that does; a clean shutdown does not skip
    /// this, so a queue never ends pointing into garbage. Usually one unit is checked.
    /// - Parameter expectedTagsCode: the tags code the dispatcher would give the record.
    /// - Returns: units dropped, or nil when more than `unitsMax` are bad (the caller rebuilds the queue).
    /// - Parameter report: hears each dropped unit and why.
    func trimBadTail(log: CommitLog, unitsMax: Int, expectedTagsCode: (StoredRecord) -> Int64,
                     report: (Int64, ConsumeQueueUnit, UnitFlaw) -> Void) throws(StoreError) -> Int? {
        let end = maxOffset
        var offset = end
        var lastEnd: Int64 = 0
        scan: while offset > minOffset, let unit = unit(atRaw: offset - 1) {
            let flaw: UnitFlaw
            switch check(unit, in: log) {
            case .record(let record):
                let expected = expectedTagsCode(record)
                if expected == unit.tagsCode {
                    lastEnd = unit.endOffset
                    break scan
                }
                flaw = .tagsCodeMismatch(expected: expected)
            case .removed:
                lastEnd = unit.endOffset
                break scan
            case .bad(let found):
                flaw = found
            }
            offset -= 1
            report(offset, unit, flaw)
            if end - offset > Int64(unitsMax) { return nil }
        }
        guard offset < end else { return 0 }
        try cut(atLogical: UInt64(offset) * UInt64(ConsumeQueueUnit.size))
        setMaxPhysicOffset(lastEnd)
        return Int(end - offset)
    }
}

/// Log lines about bad units, at most one a second (a corrupt queue read in a loop must not flood the
/// log); the next line says how many were skipped without one.
final class BadUnitLog: Sendable {
    private let log: @Sendable (String) -> Void
    private let state = Mutex((lastMillis: Int64?.none, unlogged: 0))
    static let intervalMillis: Int64 = 1_000

    init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    @inline(never)
    func report(topic: String, queueID: Int32, offset: Int64, unit: ConsumeQueueUnit, flaw: UnitFlaw, action: String) {
        let now = Int64(monotonicNanos() / 1_000_000)  // a wall clock stepping back must not mute it
        let unlogged: Int? = state.withLock { state in
            if let last = state.lastMillis, now - last < BadUnitLog.intervalMillis {
                state.unlogged += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.unlogged
        }
        guard let unlogged else { return }
        let more = unlogged > 0 ? " (\(unlogged) more bad units since the last line)" : ""
        log("consumequeue \(topic)/\(queueID) offset \(offset): unit (physical offset \(unit.physicalOffset), size \(unit.messageSize)) is bad: \(BadUnitLog.text(flaw, unit)); \(action)\(more)")
    }

    static func text(_ flaw: UnitFlaw, _ unit: ConsumeQueueUnit) -> String {
        switch flaw {
        case .filler: "a filler unit"
        case .badFields: "negative offset or size not positive"
        case .pastTheEnd(let end): "reaches past the log's readable end \(end)"
        case .notARecord(let why): "no valid record there (\(why))"
        case .sizeMismatch(let size): "the record there is \(size) bytes"
        case .otherQueue(let id): "the record there belongs to another topic or queue (queue id \(id))"
        case .tagsCodeMismatch(let expected): "tags code \(unit.tagsCode), the record's is \(expected)"
        }
    }
}
