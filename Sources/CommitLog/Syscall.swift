#if canImport(Glibc)
import Glibc
#endif
import CLiburing

/// A failed system call: its name and errno.
public struct SyscallError: Error, CustomStringConvertible, Sendable, Equatable {
    public var name: String
    public var errno: Int32
    public init(name: String, errno: Int32) {
        self.name = name
        self.errno = errno
    }
    public var description: String { "\(name): \(String(cString: strerror(errno))) (errno \(errno))" }
    /// True for ENOSPC, EDQUOT and EFBIG: the disk (or our share of it) is full.
    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT || errno == EFBIG }
}

/// One syscall policy in one place: retry `EINTR`; trap on `EBADF`/`EFAULT` (a bad descriptor or pointer
/// is a programming error, and carrying on could write somewhere else); throw the rest with the name.
@inline(__always)
public func syscall<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws(SyscallError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        switch code {
        case EINTR: continue
        case EBADF, EFAULT: preconditionFailure("\(name): errno \(code) is a programming error")
        default: throw SyscallError(name: "\(name)", errno: code)
        }
    }
}

/// The durability-relevant syscalls as values, so a test can script ENOSPC after N bytes, EIO from
/// `fdatasync` or a failing `fallocate` without touching a real disk.
public struct FileIO: Sendable {
    /// Reserves `length` bytes at `offset` of `fd` (creation of a mapped file).
    public var fallocate: @Sendable (_ fd: Int32, _ offset: Int, _ length: Int) throws(SyscallError) -> Void
    /// Writes all of `bytes` at `offset` (short writes are continued).
    public var pwrite: @Sendable (_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ offset: Int) throws(SyscallError) -> Void
    /// Makes the data of `fd` durable.
    public var fdatasync: @Sendable (_ fd: Int32) throws(SyscallError) -> Void
    /// `msync(MS_SYNC)` of a mapped range.
    public var msync: @Sendable (_ address: UnsafeMutableRawPointer, _ length: Int) throws(SyscallError) -> Void
    /// Sees each io_uring completion's result (bytes written, or 0 / -errno for FDATASYNC) before the
    /// ring acts on it: the kernel runs those syscalls, so this is where a test scripts their failure. Under
    /// SYNC_FLUSH an FDATASYNC's result is seen when its round is decided, in the order the rounds started.
    public var ringResult: @Sendable (_ operation: RingOperation, _ result: Int32) -> Int32

    public enum RingOperation: Sendable { case write, fdatasync }

    public init(
        fallocate: @escaping @Sendable (Int32, Int, Int) throws(SyscallError) -> Void,
        pwrite: @escaping @Sendable (Int32, UnsafeRawBufferPointer, Int) throws(SyscallError) -> Void,
        fdatasync: @escaping @Sendable (Int32) throws(SyscallError) -> Void,
        msync: @escaping @Sendable (UnsafeMutableRawPointer, Int) throws(SyscallError) -> Void,
        ringResult: @escaping @Sendable (RingOperation, Int32) -> Int32 = { _, result in result }
    ) {
        self.ringResult = ringResult
        self.fallocate = fallocate
        self.pwrite = pwrite
        self.fdatasync = fdatasync
        self.msync = msync
    }

    public static let system = FileIO(
        fallocate: { (fd, offset, length) throws(SyscallError) in
            // posix_fallocate returns the error instead of setting errno.
            while true {
                let rc = cliburing_fallocate(fd, 0, off_t(offset), off_t(length))
                if rc == 0 { return }
                let code = Glibc.errno
                if code == EINTR { continue }
                if code == EOPNOTSUPP {
                    // Some file systems cannot reserve blocks: fall back to extending the file.
                    _ = try syscall("ftruncate") { ftruncate(fd, off_t(offset + length)) }
                    return
                }
                throw SyscallError(name: "fallocate", errno: code)
            }
        },
        pwrite: { (fd, bytes, offset) throws(SyscallError) in
            var done = 0
            while done < bytes.count {
                let n = try syscall("pwrite") {
                    Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
                }
                done += n
            }
        },
        fdatasync: { (fd) throws(SyscallError) in
            _ = try syscall("fdatasync") { Glibc.fdatasync(fd) }
        },
        msync: { (address, length) throws(SyscallError) in
            _ = try syscall("msync") { Glibc.msync(address, length, MS_SYNC) }
        }
    )
}

/// Monotonic clock in nanoseconds (deadlines, latencies).
@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock milliseconds since the epoch (store timestamps).
@inline(__always)
public func wallClockMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) &* 1000 &+ Int64(ts.tv_nsec / 1_000_000)
}

/// `fsync` of a directory, so a created, renamed or deleted entry survives a crash.
public func fsyncDirectory(_ path: String) throws(SyscallError) {
    let fd = try syscall("open(dir)") { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    defer { close(fd) }
    _ = try syscall("fsync(dir)") { fsync(fd) }
}

/// Creates `path` and its parents (mkdir -p), durably: each directory it creates is fsynced into its parent,
/// so a power cut cannot take away a directory whose files were synced.
public func makeDirectories(_ path: String) throws(SyscallError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        let parent = current.isEmpty ? "/" : current
        current += "/" + component
        if mkdir(current, 0o755) == 0 {
            try fsyncDirectory(parent)
        } else if Glibc.errno != EEXIST {
            throw SyscallError(name: "mkdir \(current)", errno: Glibc.errno)
        }
    }
}

/// The directory part of `path` ("." when it has none).
public func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// Names in a directory (no "." and ".."), or nil when it does not exist.
public func listDirectory(_ path: String) -> [String]? {
    guard let dir = opendir(path) else { return nil }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

public func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// Makes stdout line-buffered (tools that print progress through a pipe).
public func stdoutLineBuffered() { cliburing_stdout_line_buffered() }
