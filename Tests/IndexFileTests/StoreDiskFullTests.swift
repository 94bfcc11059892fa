import CommitLog
import Synchronization
import IndexFile
import Testing
import TestSupport

/// On a full disk the store refuses puts with `.diskFull` (the broker answers SERVICE_NOT_AVAILABLE) and
/// keeps serving gets; once space is back, puts go on.
@Suite struct StoreDiskFullTests {
    @Test func fullDiskRefusesPutsAndKeepsServingGets() throws {
        let dir = TemporaryDirectory()
        let usage = ScriptedUsage()
        var config = storeConfig(dir.path)
        config.commitLog.diskUsage = usage.probe
        let store = try MessageStore(config: config)
        defer { store.close() }
        for index in 0..<5 { _ = try store.put(Outgoing(topic: "T", queueID: 0, body: [UInt8(index)], tag: nil, keys: [])) }
        store.waitForDispatch()
        usage.percent.withLock { $0 = 95 }
        store.commitLog.runRetention(hour: 12)
        do {
            _ = try store.put(Outgoing(topic: "T", queueID: 0, body: [9], tag: nil, keys: []))
            Issue.record("a put on a full disk succeeded")
        } catch {
            #expect(error.code == .diskFull)
        }
        let result = store.get(topic: "T", queueID: 0, offset: 0, maxMsgNums: 32)
        #expect(result.status == .found)
        #expect(result.records.count == 5)
        usage.percent.withLock { $0 = 40 }
        store.commitLog.runRetention(hour: 12)
        #expect(try store.put(Outgoing(topic: "T", queueID: 0, body: [9], tag: nil, keys: [])).queueOffset == 5)
    }
}

/// A disk usage the test sets.
final class ScriptedUsage: Sendable {
    let percent = Mutex(10)
    var probe: DiskUsageProbe { DiskUsageProbe { [self] _ in percent.withLock { $0 } } }
}
