#if canImport(Glibc)
import Glibc
#endif
import CommitLog

// libFuzzer's driver: SwiftPM names an executable's entry point `<module>_main` and points `main` at it,
// so each target keeps top-level code (its main.swift) that calls the driver with its entry point. The
// driver also links libFuzzer's own `main`, which needs `LLVMFuzzerTestOneInput`: each target defines
// that too (`@_cdecl`), forwarding to the same function.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The entry point `fuzzMain` installed (one per process).
nonisolated(unsafe) private var entryPoint: (UnsafeRawBufferPointer) -> Void = { _ in }

/// What `LLVMFuzzerTestOneInput` forwards to.
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    entryPoint(UnsafeRawBufferPointer(start: data, count: count))
    return 0
}

/// Runs libFuzzer over `body`. With `FUZZ_WRITE_SEEDS=<dir>` in the environment it writes `seeds()` there
/// (one file per seed, named by index) and exits instead: the corpus comes from real records.
public func fuzzMain(seeds: () -> [[UInt8]], _ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    if let directory = getenv("FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) {
        _ = try? makeDirectories(directory)
        for (index, seed) in seeds().enumerated() {
            writeWholeFile(directory + "/seed-\(index < 10 ? "0" : "")\(index)", seed)
        }
        exit(0)
    }
    entryPoint = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let code = runDriver(&argc, &argv) { fuzzOne($0, $1) }
    exit(code)
}

/// Writes `bytes` as the whole file at `path` (created or truncated).
public func writeWholeFile(_ path: String, _ bytes: UnsafeRawBufferPointer) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    precondition(fd >= 0, "cannot create \(path)")
    defer { close(fd) }
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        precondition(n > 0, "cannot write \(path)")
        done += n
    }
}

public func writeWholeFile(_ path: String, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { writeWholeFile(path, $0) }
}

/// A fresh directory under /dev/shm (memory: recovery's fdatasyncs cost nothing), removed by `remove`.
public func scratchDirectory(_ name: String) -> String {
    var template = Array("/dev/shm/fuzz-\(name)-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
}

/// `rm -rf` without a shell (a fork per input would dominate the run time).
public func removeTree(_ path: String) {
    if let names = listDirectory(path) {
        for name in names { removeTree(path + "/" + name) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// Fails the run: libFuzzer saves the input that got here as a crash artifact.
public func fuzzFailure(_ text: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("fuzz invariant broken: \(text)", file: file, line: line)
}

/// One stored record as the commit log encodes it (a seed, or a record to append in a recovery image).
public func encodedRecord(topic: String, body: [UInt8], properties: String, queueID: Int32 = 0, queueOffset: Int64 = 0,
                          physicalOffset: Int64, ipv6: Bool = false) -> [UInt8] {
    let topicBytes = Array(topic.utf8)
    let propertyBytes = Array(properties.utf8)
    let storeHost = ipv6 ? HostAddress(ipv6High: 0x2001_0DB8 << 32, low: 7, port: 10911) : HostAddress.loopback
    let bornHost = ipv6 ? HostAddress(ipv6High: 0xFE80 << 48, low: 9, port: 40_000) : HostAddress(ipv4: 10, 0, 0, 2, port: 50_000)
    return topicBytes.withUnsafeBytes { t in
        body.withUnsafeBytes { b in
            propertyBytes.withUnsafeBytes { p in
                let view = MessageView(topic: t, body: b, properties: p, queueID: queueID, flag: 3, queueOffset: queueOffset,
                                       bornTimestamp: 1_700_000_000_000, bornHost: bornHost)
                let size = MessageRecord.size(of: view, storeHost: storeHost)
                var bytes = [UInt8](repeating: 0, count: size)
                bytes.withUnsafeMutableBytes { target in
                    MessageRecord.encode(view, size: size, bodyCRC: rocketCRC32(b), storeHost: storeHost,
                                         physicalOffset: physicalOffset, storeTimestamp: 1_700_000_000_500,
                                         into: target.baseAddress!)
                }
                return bytes
            }
        }
    }
}

/// A blank record filling `remaining` bytes (only its 8-byte header is written).
public func encodedBlank(remaining: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 8)
    bytes.withUnsafeMutableBytes { MessageRecord.encodeBlank(remainingBytes: remaining, into: $0.baseAddress!) }
    return bytes
}
