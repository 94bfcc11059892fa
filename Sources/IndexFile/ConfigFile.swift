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

/// Replaces `path` with `text` so a crash leaves the old or the new content, never a mix: with
/// `backupCurrent`, the current file is kept as `<path>.bak` first; the new one is written to a temporary
/// file, synced, renamed over, and the directory synced.
public func writeFileAtomically(_ path: String, _ text: String, backupCurrent: Bool = true) throws(StoreError) {
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
        if backupCurrent && fileExists(path) {
            unlink(path + ".bak")
            _ = try syscall("link") { link(path, path + ".bak") }
        }
        _ = try syscall("rename") { rename(temporary, path) }
        try fsyncDirectory(directory)
    } catch {
        throw StoreError(error.isDiskFull ? .diskFull : .io, "\(path): cannot write", cause: error)
    }
}

/// A config file under `<storePathRootDir>/config` (RocketMQ's `ConfigManager`): read from the file, or from
/// `<path>.bak` when the file is missing, empty or fails the caller's check (loudly), and written atomically.
/// A `.bak` is only ever replaced by a file that passed the check (or that this process wrote): a corrupt
/// file never overwrites the last good copy.
///
/// **Thread:** one owner (the manager holding it, under its lock).
public struct ConfigFile: Sendable {
    public let path: String
    let log: @Sendable (String) -> Void
    /// Whether the file on disk now is known good: it passed the check at load, or we wrote it.
    private var currentIsGood = false

    public init(path: String, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.path = path
        self.log = log
    }

    /// Where the content came from.
    public enum Source: Sendable, Equatable { case file, backup, none }

    /// The decoded content: from the file, else from `<path>.bak`, else nil (neither exists: a fresh store).
    /// - Throws: `badConfig` naming both files when a file exists but neither it nor its backup passes `decode`:
    ///   starting empty would lose every topic or offset the file held.
    public mutating func load<T>(_ decode: (String) throws -> T) throws(StoreError) -> (T, Source)? {
        var problems: [String] = []
        if let text = readTextFile(path), !text.isEmpty {
            do {
                let value = try decode(text)
                currentIsGood = true
                return (value, .file)
            } catch {
                problems.append("\(path): \(error)")
            }
        } else if fileExists(path) {
            problems.append("\(path) is empty")
        }
        if let backup = readTextFile(path + ".bak"), !backup.isEmpty {
            do {
                let value = try decode(backup)
                log("\(problems.joined(separator: "; ")); loaded \(path).bak instead (the next save keeps it as the backup)")
                return (value, .backup)
            } catch {
                problems.append("\(path).bak: \(error)")
            }
        }
        guard problems.isEmpty else {
            throw StoreError(.badConfig, problems.joined(separator: "; ") + "; fix or remove the file to start")
        }
        return nil
    }

    /// Writes `text` atomically; the file it replaces becomes `.bak` only if it was good.
    public mutating func persist(_ text: String) throws(StoreError) {
        try writeFileAtomically(path, text, backupCurrent: currentIsGood)
        currentIsGood = true
    }
}
