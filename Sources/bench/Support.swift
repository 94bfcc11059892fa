#if canImport(Glibc)
import Glibc
#endif
import CommitLog

/// A fresh directory under the system temporary directory.
func makeTemporaryDirectory(_ prefix: String) -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
}

func removeTree(_ path: String) {
    guard path.hasPrefix("/tmp/") else { return }
    // --one-file-system: a mount left under the tree (a powerfs store) is skipped, never emptied through.
    _ = system("rm -rf --one-file-system '\(path)'")
}

/// Deterministic printable body bytes for (producer, sequence): the crash test regenerates them to
/// compare with what survived.
func fillBody(_ body: UnsafeMutableRawBufferPointer, producer: Int, sequence: Int) {
    var state = UInt64(truncatingIfNeeded: producer &* 1_000_003 &+ sequence) &* 0x9E37_79B9_7F4A_7C15 | 1
    for index in 0..<body.count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        body[index] = UInt8(97 + Int(state % 26))
    }
}

func parseIOPath(_ text: String) throws -> IOPath {
    guard let path = IOPath(rawValue: text) else { throw ValidationErrorText("--io must be mmap or io_uring, not \(text)") }
    return path
}

func parseFlush(_ text: String) throws -> FlushDiskType {
    switch text.lowercased() {
    case "async", "async_flush": return .asyncFlush
    case "sync", "sync_flush": return .syncFlush
    default: throw ValidationErrorText("--flush must be async or sync, not \(text)")
    }
}

struct ValidationErrorText: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}

/// A counting semaphore on a pthread mutex/condition (one per producer: a sync send's wait).
final class Gate: @unchecked Sendable {
    private let lock = ConditionLock()
    private var count = 0
    func signal() {
        lock.withLock {
            count += 1
            lock.signal()
        }
    }
    func wait() {
        lock.withLock {
            while count == 0 { lock.wait(untilNanos: monotonicNanos() + 1_000_000_000) }
            count -= 1
        }
    }
}

/// Line-buffered stdout: progress lines appear at once, also through a pipe or in CI logs.
func lineBufferedOutput() { stdoutLineBuffered() }
