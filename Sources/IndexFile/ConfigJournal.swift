#if canImport(Glibc)
import Glibc
#endif
import CommitLog

/// Changes to a config file since its last full write, one line each (`<path>.journal`): a change costs one
/// appended line and one `fdatasync` instead of rewriting the whole file, and the owner compacts (writes the
/// whole file, then empties the journal) once the journal holds as many lines as the table has entries, so
/// each change costs O(1) amortised however large the table grows.
///
/// **Durability:** a line is on disk when `append` returns. A crash mid-append leaves a torn last line, which
/// `lines()` drops: that change was never acknowledged. **Thread:** one owner (under its lock).
public struct ConfigJournal: Sendable {
    public let path: String
    private var fd: CInt = -1
    /// Lines appended since the last compaction (including those read back at open).
    public private(set) var count = 0

    public init(path: String) {
        self.path = path
    }

    /// The complete lines on disk, in order (a torn last line is left out and cut off the file).
    public mutating func lines() -> [String] {
        guard let text = readTextFile(path) else { return [] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        if !text.hasSuffix("\n"), !lines.isEmpty {
            lines.removeLast()
            let kept = lines.reduce(0) { $0 + $1.utf8.count + 1 }
            _ = truncate(path, off_t(kept))
        }
        count = lines.count
        return lines
    }

    /// Appends one line (no newline inside) and syncs it.
    public mutating func append(_ line: String) throws(StoreError) {
        do throws(SyscallError) {
            if fd < 0 {
                let directory = parentDirectory(of: path)
                try makeDirectories(directory)
                let existed = fileExists(path)
                fd = try syscall("open") { open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }
                // A journal just created is durable only once its directory is (found by the power-loss harness).
                if !existed { try fsyncDirectory(directory) }
            }
            let bytes = Array((line + "\n").utf8)
            var done = 0
            while done < bytes.count {
                let written = bytes.withUnsafeBytes { raw in
                    Result { () throws(SyscallError) in try syscall("write") { write(fd, raw.baseAddress! + done, raw.count - done) } }
                }
                done += try written.get()
            }
            try FileIO.system.fdatasync(fd)
            count += 1
        } catch {
            throw StoreError(error.isDiskFull ? .diskFull : .io, "\(path): cannot append", cause: error)
        }
    }

    /// Empties the journal (after the owner wrote the whole file).
    public mutating func reset() throws(StoreError) {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        do throws(SyscallError) {
            let file = try syscall("open") { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
            defer { close(file) }
            try FileIO.system.fdatasync(file)
        } catch {
            throw StoreError(.io, "\(path): cannot empty", cause: error)
        }
        count = 0
    }
}
