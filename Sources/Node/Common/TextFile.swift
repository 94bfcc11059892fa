import Remoting
#if canImport(Glibc)
import Glibc
#endif

/// Small text files of the roles and the client (`broker.conf`, a broadcasting consumer's offsets). The
/// store's own files go through its syscall layer instead.
public enum TextFile {
    /// A file larger than this is refused rather than read (config files are a few KiB).
    public static let bytesMax = 64 << 20

    /// The whole file, or nil when it cannot be opened or is larger than `bytesMax`.
    public static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            guard bytes.count + count <= bytesMax else { return nil }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Replaces `path` with `text` so a crash leaves the old or the new content: written to `<path>.tmp`,
    /// fsynced, renamed over, directory fsynced. Returns false (and leaves `path` alone) on any failure.
    @discardableResult
    public static func writeAtomically(_ path: String, _ text: String) -> Bool {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        var prefix = directory.hasPrefix("/") ? "/" : ""
        for part in directory.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
            _ = mkdir(prefix, 0o755)
        }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        var text = text
        let written = text.withUTF8 { bytes -> Bool in
            var done = 0
            while done < bytes.count {
                let count = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return false }
                done += count
            }
            return true
        }
        let synced = written && fsync(fd) == 0
        close(fd)
        guard synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            return false
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
        return true
    }
}
