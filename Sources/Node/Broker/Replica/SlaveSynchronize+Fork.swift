import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting

extension SlaveSynchronize {
    /// Files searched backwards for the last record this slave shares with its master; a fork older than that
    /// is left to an operator (logged), since it means the slave was a master far ahead of its new master.
    static let forkSearchFilesMax = 4

    /// Makes this slave's log a prefix of the master's before replication starts: the log is cut back to the
    /// master's end when it runs past it, and then to the last record both hold byte for byte (a slave that was
    /// a master before a switch may hold records its new master never had, at offsets the new master reused).
    /// - Returns: false when the master could not be asked (the next round tries again).
    func agreeWithMaster(_ master: String) async -> Bool {
        let store = servicesStore
        // Our end first: the master's log can only grow after it, so an end past the master's is a fork.
        let ourEnd = store.commitLog.wroteOffset
        guard ourEnd > store.commitLog.minOffset else { return true }
        guard let masterEnd = await masterCommitLogEnd(master) else { return false }
        var searchEnd = min(ourEnd, masterEnd)
        for _ in 0..<Self.forkSearchFilesMax {
            let fileSize = UInt64(store.config.commitLog.mappedFileSizeCommitLog)
            let fileStart = searchEnd == 0 ? 0 : (searchEnd - 1) / fileSize * fileSize
            let records = recordSpans(from: max(fileStart, store.commitLog.minOffset), to: searchEnd)
            guard let agreed = await lastSharedRecordEnd(records, master: master) else { return false }
            if let agreed {
                return cut(to: agreed, ourEnd: ourEnd, masterEnd: masterEnd)
            }
            guard fileStart > store.commitLog.minOffset else { return cut(to: fileStart, ourEnd: ourEnd, masterEnd: masterEnd) }
            searchEnd = fileStart
        }
        services.log("slave: no record shared with master \(master) within \(Self.forkSearchFilesMax) files of the end; "
                     + "not replicating. Move this store aside and start the slave empty to copy the master again.")
        return false
    }

    var servicesStore: MessageStore { services.store }

    /// Truncates to `end` (logging what was cut) when the log runs past it.
    private func cut(to end: UInt64, ourEnd: UInt64, masterEnd: UInt64) -> Bool {
        guard end < ourEnd else { return true }
        do {
            let cutAt = try servicesStore.truncate(to: end)
            services.log("slave: log ended at \(ourEnd), the master's at \(masterEnd); truncated to \(cutAt), the end of the last "
                         + "record both hold (\(ourEnd - cutAt) bytes this slave had that its master does not)")
            return true
        } catch {
            services.log("slave: cannot truncate to \(end): \(error)")
            return false
        }
    }

    /// (start, end) of every record in [from, to) (blank fillers left out).
    private func recordSpans(from start: UInt64, to end: UInt64) -> [(start: UInt64, end: UInt64)] {
        var spans: [(start: UInt64, end: UInt64)] = []
        var offset = start
        while offset < end {
            switch try? servicesStore.commitLog.readRecord(at: offset, checkCRC: false) {
            case .record(let record)?:
                if record.nextOffset <= end { spans.append((offset, record.nextOffset)) }
                offset = record.nextOffset
            case .blank(let next)?: offset = next
            default: return spans
            }
        }
        return spans
    }

    /// The end of the last record of `spans` the master holds identically, `.some(nil)` when none is, nil when the
    /// master did not answer. Records agree up to the fork and differ after it, so a binary search suffices.
    private func lastSharedRecordEnd(_ spans: [(start: UInt64, end: UInt64)], master: String) async -> UInt64?? {
        var low = 0
        var high = spans.count  // spans[..<low] agree; spans[high...] do not
        while low < high {
            let middle = (low + high) / 2
            guard let same = await masterHolds(spans[middle], master: master) else { return nil }
            if same { low = middle + 1 } else { high = middle }
        }
        return .some(low == 0 ? nil : spans[low - 1].end)
    }

    /// Whether the master's record at `span.start` is byte for byte ours; nil when it did not answer.
    private func masterHolds(_ span: (start: UInt64, end: UInt64), master: String) async -> Bool? {
        let request = RemotingCommand(code: RequestCode.viewMessageByID, opaque: 0, extFields: ["offset": "\(span.start)"])
        guard let answer = try? await client.invoke(master, request, timeoutMillis: 5_000) else { return nil }
        guard answer.code == ResponseCode.success, let theirs = answer.body else { return false }
        guard let ours = servicesStore.commitLog.region(at: span.start, count: Int(span.end - span.start)) else { return false }
        return theirs.withUnsafeReadableBytes { $0.elementsEqual(ours.bytes) }
    }

    /// The master's commit-log end (GET_BROKER_RUNTIME_INFO's `commitLogMaxOffset`).
    private func masterCommitLogEnd(_ master: String) async -> UInt64? {
        let request = RemotingCommand(code: RequestCode.getBrokerRuntimeInfo, opaque: 0)
        guard let answer = try? await client.invoke(master, request, timeoutMillis: 5_000), answer.code == ResponseCode.success,
              let table = try? KVTable.decode(from: answer.body), let end = table.table["commitLogMaxOffset"].flatMap(UInt64.init) else {
            services.log("slave: master \(master) did not tell its commit-log end; replication waits")
            return nil
        }
        return end
    }
}
