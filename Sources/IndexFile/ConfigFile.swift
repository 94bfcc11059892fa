#if canImport(Glibc)
import Glibc
#endif
import CommitLog

/// Reads a whole text file, or nil.
public func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Replaces `path` with `text` so a crash leaves the old or the new content, never a mix: the current
/// file is kept as `<path>.bak`, the new one is written to a temporary file, synced, renamed over, and
/// the directory synced.
public func writeFileAtomically(_ path: String, _ text: String) throws(StoreError) {
    let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
    do throws(SyscallError) {
        try makeDirectories(directory)
        let temporary = path + ".tmp"
        let fd = try syscall("open") { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { raw in Result { () throws(SyscallError) in try FileIO.system.pwrite(fd, raw, 0) } }
        try written.get()
        _ = try syscall("fsync") { fsync(fd) }
        if fileExists(path) {
            unlink(path + ".bak")
            _ = try syscall("link") { link(path, path + ".bak") }
        }
        _ = try syscall("rename") { rename(temporary, path) }
        try fsyncDirectory(directory)
    } catch {
        throw StoreError(error.isDiskFull ? .diskFull : .io, "\(path): cannot write", cause: error)
    }
}

/// A JSON config file of the store (`config/*.json`): loaded from the file, or from `<path>.bak` when
/// the file is missing, empty or corrupt (with a log line), persisted atomically.
public struct ConfigFile: Sendable {
    public let path: String
    let log: @Sendable (String) -> Void

    public init(path: String, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.path = path
        self.log = log
    }

    /// The parsed content, nil when neither the file nor its backup holds valid JSON.
    public func load() -> JSONValue? {
        if let text = readTextFile(path), !text.isEmpty {
            do { return try JSONValue.parse(text) } catch {
                log("\(path): \(error); falling back to \(path).bak")
            }
        } else if fileExists(path + ".bak") {
            log("\(path) is missing or empty; falling back to \(path).bak")
        }
        guard let backup = readTextFile(path + ".bak"), !backup.isEmpty else { return nil }
        do { return try JSONValue.parse(backup) } catch {
            log("\(path).bak: \(error); starting empty")
            return nil
        }
    }

    public func persist(_ value: JSONValue) throws(StoreError) {
        try writeFileAtomically(path, value.rendered() + "\n")
    }
}
