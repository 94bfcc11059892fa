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

let queueFile = "consumequeue/T/0/" + offsetFileName(0)

func seeds() -> [[UInt8]] {
    let queue = storeTemplate().first { $0.0 == queueFile }!.1
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
    materializeStoreTemplate(at: root, replacing: queueFile,
                             with: UnsafeRawBufferPointer(rebasing: input.dropFirst().prefix(storeQueueFileBytes)),
                             skipManifest: flags & 2 != 0, abort: flags & 1 != 0)
    do {
        let store = try MessageStore(config: fuzzStoreConfig(root))
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
