// The consume-queue unit check over arbitrary units against a real log: each 21-byte step of the input is
// a unit (offset i64, size i32, tags i64) and a queue selector byte. Invariants: no read out of bounds;
// a unit accepted as a record describes exactly that record (offset, size, topic and queue); a unit
// rejected names why. The log (records in queues T/0, T/1 and U/0) is built once per process.
#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import FuzzSupport
import IndexFile

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

let queues: [(topic: String, queueID: Int32)] = [("T", 0), ("T", 1), ("U", 0), ("T", 7)]

/// The log the units point into: 40 records over three queues, in a 64 KiB file, all readable.
nonisolated(unsafe) var log: CommitLog?
nonisolated(unsafe) var records: [(offset: Int64, size: Int32, queue: Int)] = []

func openLog() -> CommitLog {
    if let log { return log }
    let root = scratchDirectory("unitcheck")
    var settings = CommitLogSettings(storePathRootDir: root)
    settings.mappedFileSizeCommitLog = 64 * 1024
    settings.maxMessageSize = 1024
    do {
        let opened = try CommitLog(settings: settings)
        for index in 0..<40 {
            let queue = index % 3
            let topic = Array(queues[queue].topic.utf8), body = Array("m\(index)".utf8), properties = Array("TAGS\u{1}t\u{2}".utf8)
            let result = try topic.withUnsafeBytes { t in
                try body.withUnsafeBytes { b in
                    try properties.withUnsafeBytes { p in
                        try opened.append(MessageView(topic: t, body: b, properties: p, queueID: queues[queue].queueID))
                    }
                }
            }
            records.append((Int64(result.physicalOffset), Int32(result.size), queue))
        }
        while opened.committedOffset < opened.wroteOffset { usleep(100) }
        log = opened
        return opened
    } catch {
        fuzzFailure("cannot build the log: \(error)")
    }
}

/// Real units of each queue, then the same with one field off, so the corpus starts next to the edges.
func seeds() -> [[UInt8]] {
    _ = openLog()
    var seeds: [[UInt8]] = []
    for (offset, size, queue) in records.prefix(6) {
        for (delta, sizeDelta) in [(0, 0), (1, 0), (0, 1), (0, -1)] as [(Int64, Int32)] {
            seeds.append(unitBytes(offset + delta, size + sizeDelta, 0) + [UInt8(queue)])
        }
    }
    seeds.append(unitBytes(0, Int32.max, 0) + [0])
    return seeds
}

func unitBytes(_ offset: Int64, _ size: Int32, _ tags: Int64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 20)
    bytes.withUnsafeMutableBytes { target in
        storeBigEndian(offset, at: 0, in: target.baseAddress!)
        storeBigEndian(size, at: 8, in: target.baseAddress!)
        storeBigEndian(tags, at: 12, in: target.baseAddress!)
    }
    return bytes
}

fuzzMain(seeds: seeds) { input in
    let log = openLog()
    var at = 0
    while at + 21 <= input.count {
        let base = input.baseAddress! + at
        let unit = ConsumeQueueUnit(physicalOffset: loadBigEndian(Int64.self, at: 0, in: base),
                                    messageSize: loadBigEndian(Int32.self, at: 8, in: base),
                                    tagsCode: loadBigEndian(Int64.self, at: 12, in: base))
        let queue = queues[Int(input[at + 20]) % queues.count]
        at += 21
        guard case .record(let record) = UnitCheck.check(unit, topic: queue.topic, queueID: queue.queueID, in: log) else { continue }
        let expected = records.first { $0.offset == unit.physicalOffset }
        guard let expected, expected.size == unit.messageSize, queues[expected.queue] == queue,
              record.region.physicalOffset == UInt64(unit.physicalOffset), record.region.bytes.count == Int(unit.messageSize),
              record.header.totalSize == Int(unit.messageSize), record.header.queueID == queue.queueID,
              record.topicString == queue.topic else {
            fuzzFailure("unit \(unit) of \(queue) accepted as the record at \(record.region.physicalOffset), size \(record.header.totalSize)")
        }
    }
}
