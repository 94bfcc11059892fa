// Recovery over an arbitrary commit-log segment: the input (after one flags byte) is written as segment
// 00000000000000000000, left short or padded with zeros to full size, with or without the `abort` marker;
// then the log opens (recovery), every record is read back, one more is appended, and it opens again.
// Invariants: opening never fails or reads out of bounds; everything recovery kept reads back valid (no
// corrupt record, no read past the end); the log ends right after the last record (or at a blank's file
// end); an append after recovery survives the next recovery, with every earlier record unchanged.
#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

let fileSize = 64 * 1024

func settings(_ root: String) -> CommitLogSettings {
    var settings = CommitLogSettings(storePathRootDir: root)
    settings.mappedFileSizeCommitLog = fileSize
    settings.maxMessageSize = 1024
    settings.flushIntervalCommitLogMillis = 1_000
    settings.cleanResourceIntervalMillis = 3_600_000
    return settings
}

/// Flags byte: bit 0 leaves the `abort` marker (a crash), bit 1 pads the image with zeros to full size.
func seeds() -> [[UInt8]] {
    var image: [UInt8] = []
    for index in 0..<3 {
        image += encodedRecord(topic: "TopicTest", body: Array("body-\(index)".utf8),
                               properties: "TAGS\u{1}TagA\u{2}KEYS\u{1}k\(index)\u{2}", queueID: Int32(index),
                               queueOffset: Int64(index), physicalOffset: Int64(image.count))
    }
    let v6 = encodedRecord(topic: "V6", body: [7, 7], properties: "", physicalOffset: Int64(image.count), ipv6: true)
    return [[0] + image, [1] + image, [2] + image, [3] + image + v6, [1] + image.prefix(image.count - 5)]
}

/// Every record from the log's start: (offset, total size); fails on a record recovery should have cut.
func readAll(_ log: CommitLog, _ stage: String) -> [(UInt64, Int)] {
    var records: [(UInt64, Int)] = []
    do {
        let end = try log.forEachRecord(from: log.minOffset) { record in
            records.append((record.region.physicalOffset, record.header.totalSize))
            return true
        }
        guard end == log.wroteOffset else { fuzzFailure("\(stage): records end at \(end), the log at \(log.wroteOffset)") }
    } catch {
        fuzzFailure("\(stage): a record recovery kept does not read back: \(error)")
    }
    return records
}

fuzzMain(seeds: seeds) { input in
    guard let flags = input.first else { return }
    let image = UnsafeRawBufferPointer(rebasing: input.dropFirst().prefix(fileSize))
    let root = scratchDirectory("recovery")
    defer { removeTree(root) }
    _ = try? makeDirectories(root + "/commitlog")
    var bytes = Array(image)
    if flags & 2 != 0 { bytes += [UInt8](repeating: 0, count: fileSize - bytes.count) }
    writeWholeFile(root + "/commitlog/" + offsetFileName(0), bytes)
    if flags & 1 != 0 { writeWholeFile(root + "/abort", []) }
    let first: [(UInt64, Int)]
    let added: AppendResult
    do {
        let log = try CommitLog(settings: settings(root))
        first = readAll(log, "after recovery")
        let topic = Array("After".utf8), body: [UInt8] = [1, 2, 3]
        added = try topic.withUnsafeBytes { t in try body.withUnsafeBytes { b in try log.append(MessageView(topic: t, body: b)) } }
        log.close()
    } catch {
        fuzzFailure("recovery or the append after it failed: \(error)")
    }
    do {
        let log = try CommitLog(settings: settings(root))
        defer { log.close() }
        let second = readAll(log, "after the second recovery")
        guard second.count == first.count + 1, zip(first, second).allSatisfy({ $0 == $1 }),
              second.last.map({ $0 == (added.physicalOffset, added.size) }) == true else {
            fuzzFailure("the second recovery kept \(second.count) records, the first \(first.count) plus one appended")
        }
    } catch {
        fuzzFailure("the second recovery failed: \(error)")
    }
}
