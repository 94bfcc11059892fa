// Store opening and queries by key over an arbitrary index file: a clean store's index file is replaced
// by the input (after one flags byte: bit 0 leaves the `abort` marker, bit 1 pads the image with zeros to
// the index file's size, else it is left as long as the input). Invariants: opening never fails; queries
// never read outside the file or loop (libFuzzer's 10 s timeout catches a hang); every record found is
// one the log holds; a key put afterwards is found.
#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import FuzzSupport
import IndexFile

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

/// 40-byte header, 64 slots of 4 bytes, 256 entries of 20 bytes.
let indexFileBytes = 40 + 64 * 4 + 256 * 20

func indexImage() -> [UInt8] { storeTemplate().first { $0.0.hasPrefix("index/") }!.1 }

func seeds() -> [[UInt8]] {
    let image = indexImage()
    // The file is mostly zeros past its 30-odd entries: seed the used part and let bit 1 pad it.
    let used = Array(image.prefix(40 + 64 * 4 + 64 * 20))
    return [[2] + used, [3] + used, [0] + used.prefix(500)]
}

fuzzMain(seeds: seeds) { input in
    guard let flags = input.first else { return }
    var image = Array(input.dropFirst().prefix(indexFileBytes))
    if flags & 2 != 0 { image += [UInt8](repeating: 0, count: indexFileBytes - image.count) }
    let root = scratchDirectory("index")
    defer { removeTree(root) }
    image.withUnsafeBytes { bytes in
        materializeStoreTemplate(at: root, replacing: "index/", with: bytes, skipManifest: false, abort: flags & 1 != 0)
    }
    do {
        let store = try MessageStore(config: fuzzStoreConfig(root))
        defer { store.close() }
        for key in 0..<30 {
            for record in store.queryMessage(topic: "T", key: "k\(key)", maxNum: 64) {
                guard case .record(let again)? = try? store.commitLog.readRecord(at: record.region.physicalOffset),
                      again.header.totalSize == record.header.totalSize else {
                    fuzzFailure("query k\(key) returned a record the log does not hold at \(record.region.physicalOffset)")
                }
            }
        }
        let topic = Array("T".utf8), body: [UInt8] = [1], properties = Array("KEYS\u{1}fresh\u{2}".utf8)
        let put = try topic.withUnsafeBytes { t in
            try body.withUnsafeBytes { b in
                try properties.withUnsafeBytes { p in try store.put(MessageView(topic: t, body: b, properties: p)) }
            }
        }
        let deadline = monotonicNanos() + 5_000_000_000
        while store.dispatchBehindBytes > 0 && monotonicNanos() < deadline { usleep(100) }
        guard store.queryMessage(topic: "T", key: "fresh", maxNum: 8).contains(where: { $0.region.physicalOffset == put.append.physicalOffset }) else {
            fuzzFailure("a key put after opening is not found")
        }
    } catch {
        fuzzFailure("the store did not open or refused a put: \(error)")
    }
}
