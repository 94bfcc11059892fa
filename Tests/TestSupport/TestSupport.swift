#if canImport(Glibc)
import Glibc
#endif
import CommitLog

/// A fresh temporary directory, removed when the value goes away.
public struct TemporaryDirectory: ~Copyable {
    public let path: String
    public init(_ prefix: String = "commitlog-test") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    deinit { _ = system("rm -rf '\(path)'") }
}

/// splitmix64: one seed drives a test, and a failure prints it.
public struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A child process started with a pipe on its stdout.
public final class ChildProcess {
    public let pid: pid_t
    private let output: Int32
    private var buffer: [UInt8] = []
    private var reaped = false

    public init(_ arguments: [String], mergeStandardError: Bool = false) throws {
        var pipeFDs: [Int32] = [0, 0]
        // O_CLOEXEC: only the dup2'ed stdout reaches the child, so a grandchild never holds our pipe open.
        guard pipe(&pipeFDs) == 0 else { throw StoreError(.io, "pipe failed") }
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        if mergeStandardError { posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2) }
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        // Children stop by themselves if this test process dies first (see waitForTerminationSignal).
        setenv("MQ_EXIT_WITH_PARENT", "\(getpid())", 1)
        let rc = posix_spawn(&child, arguments[0], &actions, nil, &argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        close(pipeFDs[1])
        guard rc == 0 else {
            close(pipeFDs[0])
            throw StoreError(.io, "cannot start \(arguments[0]): errno \(rc)")
        }
        pid = child
        output = pipeFDs[0]
    }

    deinit {
        killHard()
        close(output)
    }

    /// Complete lines read within `timeoutMillis` (none when the child is quiet or gone).
    public func readLines(timeoutMillis: Int32) -> [String]? {
        var poller = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMillis) > 0 else { return [] }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let n = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
        if n <= 0 { return nil }  // end of stream
        buffer += chunk[0..<n]
        var lines: [String] = []
        while let newline = buffer.firstIndex(of: 10) {
            lines.append(String(decoding: buffer[..<newline], as: UTF8.self))
            buffer.removeSubrange(...newline)
        }
        return lines
    }

    /// SIGTERM, then waits up to `seconds` for the exit; returns its exit status (nil: killed by a
    /// signal, or still running and then SIGKILLed).
    public func terminate(seconds: Double = 10) -> Int32? {
        guard !reaped else { return nil }
        kill(pid, SIGTERM)
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        var status: Int32 = 0
        while monotonicNanos() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid {
                reaped = true
                return status & 0x7F == 0 ? (status >> 8) & 0xFF : nil
            }
            usleep(10_000)
        }
        killHard()
        return nil
    }

    /// SIGKILL, then wait until the process is gone (its store lock is released only then).
    public func killHard() {
        guard !reaped else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        reaped = true
    }

    /// Everything the child wrote before it died.
    public func drain() -> [String] {
        var lines: [String] = []
        let deadline = monotonicNanos() + 5_000_000_000
        while monotonicNanos() < deadline, let more = readLines(timeoutMillis: 200) {
            lines += more
            if more.isEmpty { break }
        }
        return lines
    }
}

/// The directory holding this test binary, where SwiftPM also puts the package's executables.
public func builtExecutable(_ name: String) -> String? {
    var path = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &path, path.count - 1)
    guard n > 0 else { return nil }
    var executable = String(decoding: path[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while !executable.hasSuffix("/") && !executable.isEmpty { executable.removeLast() }
    let candidate = executable + name
    return access(candidate, X_OK) == 0 ? candidate : nil
}


extension ChildProcess {
    /// Starts `arguments`, waits (at most 20 s) for a line starting with `READY`, lets the child run
    /// `millis` more, SIGKILLs it and returns every line it wrote, and whether it got ready.
    public static func runThenKill(_ arguments: [String], afterMillis millis: Int) throws -> (ready: Bool, lines: [String]) {
        let child = try ChildProcess(arguments)
        var lines: [String] = []
        let readyDeadline = monotonicNanos() + 20_000_000_000
        while !lines.contains(where: { $0.hasPrefix("READY") }) && monotonicNanos() < readyDeadline {
            guard let more = child.readLines(timeoutMillis: 100) else { break }
            lines += more
        }
        let ready = lines.contains { $0.hasPrefix("READY") }
        let killAt = monotonicNanos() + UInt64(millis) * 1_000_000
        while ready && monotonicNanos() < killAt {
            guard let more = child.readLines(timeoutMillis: 10) else { break }
            lines += more
        }
        child.killHard()
        return (ready, lines + child.drain())
    }
}

/// Connects to 127.0.0.1:`port`, writes `bytes`, and reports whether the server closed the connection
/// (read returns 0) within `seconds` — what a server must do after a bad frame.
public func serverClosesAfterSending(_ bytes: [UInt8], toPort port: Int, seconds: Int = 5) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var target = sockaddr_in()
    target.sin_family = sa_family_t(AF_INET)
    target.sin_port = UInt16(port).bigEndian
    target.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &target) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return false }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    var timeout = timeval(tv_sec: seconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var byte: UInt8 = 0
    return read(fd, &byte, 1) == 0
}

extension ChildProcess {
    /// Runs `arguments` to completion (at most `seconds`); returns the exit status (nil when killed) and
    /// everything it wrote to stdout and stderr.
    public static func run(_ arguments: [String], seconds: Double = 30) throws -> (status: Int32?, output: String) {
        let child = try ChildProcess(arguments, mergeStandardError: true)
        var lines: [String] = []
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while monotonicNanos() < deadline, let more = child.readLines(timeoutMillis: 100) { lines += more }
        let status = child.terminate(seconds: 1)
        return (status, (lines + child.drain()).joined(separator: "\n"))
    }
}

/// A raw TCP connection to 127.0.0.1 for tests that misbehave on purpose (unfinished frames, silence).
public final class RawConnection {
    public let fd: CInt

    public init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = UInt16(port).bigEndian
        target.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
    }

    deinit { close(fd) }

    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// What arrives within `millis` (one read of up to 64 KiB); empty on time-out or when the server closed.
    public func receive(withinMillis millis: Int) -> [UInt8] {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(millis)) > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: 64 * 1024)
        let count = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count > 0 ? Array(bytes[0..<count]) : []
    }

    /// Whether the server closed the connection within `millis` (a read sees end of file or a reset).
    public func closedByServer(withinMillis millis: Int) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(millis)) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) <= 0
    }
}
