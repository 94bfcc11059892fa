#if canImport(Glibc)
import Glibc
#endif
import Common

/// The processes of a conf set as the OS sees them: started detached, found again through pid files, checked in
/// `/proc`. Nothing here waits without a deadline.
public enum ClusterProcess {
    /// Starts `arguments` in a session of its own (no controlling terminal, no signal from the launcher's shell),
    /// in `directory`, stdin from /dev/null, stdout and stderr appended to `logPath`, no other descriptor inherited.
    /// `MQ_EXIT_WITH_PARENT` is not passed on (the child's parent is gone as soon as we exit); when it names a
    /// process, the child gets `MQ_EXIT_WITH_PROCESS` with that pid instead and stops once that process is gone.
    public static func spawnDetached(_ arguments: [String], directory: String, logPath: String) throws(ClusterError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        _ = GNUSpawn.closeFrom?(&actions, 3)
        try GNUSpawn.changeDirectory(&actions, directory)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGHUP)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(GNUSpawn.setSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var environment = childEnvironment()
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in environment { free(pointer) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, arguments[0], &actions, &attributes, &argv, &environment)
        guard rc == 0 else { throw ClusterError("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
        return child
    }

    static func childEnvironment() -> [UnsafeMutablePointer<CChar>?] {
        var variables: [String] = []
        var watched: String?
        var cursor = environ
        while let entry = cursor.pointee {
            let variable = String(cString: entry)
            if variable.hasPrefix("MQ_EXIT_WITH_PARENT=") {
                watched = String(variable.dropFirst("MQ_EXIT_WITH_PARENT=".count))
            } else if !variable.hasPrefix("MQ_EXIT_WITH_PROCESS=") {
                variables.append(variable)
            }
            cursor += 1
        }
        if let watched, let pid = Int32(watched), pid > 1 { variables.append("MQ_EXIT_WITH_PROCESS=\(pid)") }
        return variables.map { strdup($0) } + [nil]
    }

    /// Runs `arguments` to its end (at most `seconds`, then SIGKILL) and returns its exit status (nil when it was
    /// killed) and everything it wrote to stdout and stderr.
    public static func run(_ arguments: [String], directory: String, seconds: Int = 20) throws(ClusterError) -> (status: Int32?, output: String) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ClusterError("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        do { try GNUSpawn.changeDirectory(&actions, directory) } catch {
            posix_spawn_file_actions_destroy(&actions)
            for fd in fds { close(fd) }
            throw error
        }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var environment = childEnvironment()
        var child: pid_t = 0
        let rc = posix_spawn(&child, arguments[0], &actions, nil, &argv, &environment)
        posix_spawn_file_actions_destroy(&actions)
        for pointer in argv + environment { free(pointer) }
        close(fds[1])
        defer { close(fds[0]) }
        guard rc == 0 else { throw ClusterError("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
        var output: [UInt8] = []
        let deadline = uptimeNanos() + UInt64(seconds) * 1_000_000_000
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while uptimeNanos() < deadline && output.count < 1 << 20 {
            var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) >= 0 || errno == EINTR else { break }
            let count = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count > 0 { output += chunk[0..<count] }
        }
        var status: Int32 = 0
        var reaped = waitpid(child, &status, WNOHANG) == child
        while !reaped && uptimeNanos() < deadline {  // its output ended; its exit follows
            usleep(2_000)
            reaped = waitpid(child, &status, WNOHANG) == child
        }
        if !reaped {
            kill(child, SIGKILL)
            while waitpid(child, &status, 0) == -1 && errno == EINTR {}
            return (nil, String(decoding: output, as: UTF8.self))
        }
        return (status & 0x7F == 0 ? (status >> 8) & 0xFF : nil, String(decoding: output, as: UTF8.self))
    }

    /// Whether `pid` is a live (not zombie) process running `executable` (the pid may have been reused). The name is
    /// the kernel's `comm` (in `/proc/<pid>/stat`, set at exec, 15 characters at most): `cmdline` reads empty for a
    /// moment right after exec and while a process exits.
    public static func isRunning(_ pid: pid_t, executable: String) -> Bool {
        guard pid > 0, let stat = TextFile.read("/proc/\(pid)/stat"), let open = stat.firstIndex(of: "("),
              let close = stat.lastIndex(of: ")"), stat.index(close, offsetBy: 2) < stat.endIndex
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        guard state != "Z" && state != "X" else { return false }
        return stat[stat.index(after: open)..<close] == executable.prefix(15)
    }

    /// Seconds since `pid` started (from `/proc/<pid>/stat`'s start time and `/proc/uptime`).
    public static func uptimeSeconds(_ pid: pid_t) -> Int? {
        guard let stat = TextFile.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")"),
              let uptime = TextFile.read("/proc/uptime").flatMap({ Double($0.split(separator: " ").first ?? "") })
        else { return nil }
        // Fields after the command: state is field 3, starttime field 22.
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }
        return max(0, Int(uptime - ticks / Double(sysconf(Int32(_SC_CLK_TCK)))))
    }

    /// Waits until none of `pids` runs `executable` any more, at most until `deadline` (uptime nanoseconds);
    /// returns those still running.
    public static func waitGone(_ pids: [(pid: pid_t, executable: String)], deadline: UInt64) async -> [pid_t] {
        var running = pids
        while true {
            running.removeAll { !isRunning($0.pid, executable: $0.executable) }
            if running.isEmpty || uptimeNanos() >= deadline { return running.map(\.pid) }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Whether nothing listens on (and nothing else holds) TCP `port` on every address: a bind to 0.0.0.0 with
    /// SO_REUSEADDR, as the roles bind, succeeds.
    public static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0
    }

    /// Bytes allocated on disk under `path` (files are fallocated: this is what the store costs the disk).
    public static func diskUsageBytes(_ path: String, depthMax: Int = 16) -> UInt64 {
        var info = stat()
        guard depthMax > 0, lstat(path, &info) == 0 else { return 0 }
        var total = UInt64(info.st_blocks) * 512
        guard info.st_mode & S_IFMT == S_IFDIR, let names = try? ConfSet.listDirectory(path) else { return total }
        for name in names { total += diskUsageBytes(path + "/" + name, depthMax: depthMax - 1) }
        return total
    }

    /// The last `count` lines of the file at `path` (at most its last MiB is read).
    public static func tail(_ path: String, lines count: Int) -> [String] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        let start = max(0, size - (1 << 20))
        var bytes = [UInt8](repeating: 0, count: Int(size - start))
        let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, start) }
        let text = String(decoding: bytes[0..<max(0, read)], as: UTF8.self)
        return Array(text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0)
            .suffix(count).map(String.init))
    }
}

/// glibc's posix_spawn extensions (2.29+, 2.34+), which Swift's Glibc module does not show without _GNU_SOURCE: looked
/// up once by name.
enum GNUSpawn {
    typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// POSIX_SPAWN_SETSID (glibc's spawn.h): the child starts a session of its own.
    static let setSID: Int32 = 0x80
    static let changeDirectoryFunction = dlsym(nil, "posix_spawn_file_actions_addchdir_np")
        .map { unsafeBitCast($0, to: ChangeDirectory.self) }
    static let closeFrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    static func changeDirectory(_ actions: inout posix_spawn_file_actions_t, _ directory: String) throws(ClusterError) {
        guard let function = changeDirectoryFunction, function(&actions, directory) == 0 else {
            throw ClusterError("this C library cannot start a process in another directory (posix_spawn_file_actions_addchdir_np)")
        }
    }
}

/// `<root>/<set>`: where a running set keeps its pid files (`pids/<role>.pid`), logs (`logs/<role>.log`) and, through
/// the relative `storePathRootDir` of its conf files, its stores (`store/<role>`).
public struct RunDirectory: Sendable {
    public var path: String
    public init(path: String) { self.path = path }

    public func pidFile(_ role: ClusterRole) -> String { "\(path)/pids/\(role.name).pid" }
    public func logFile(_ role: ClusterRole) -> String { "\(path)/logs/\(role.name).log" }
    /// The role's store directory (nil for a NameServer); a relative `storePathRootDir` is under the run directory.
    public func storeDirectory(_ role: ClusterRole) -> String? {
        guard role.kind == .broker else { return nil }
        let root = role.storePathRootDir ?? "/tmp/rmqstore"
        return root.hasPrefix("/") ? root : "\(path)/\(root)"
    }

    public func readPID(_ role: ClusterRole) -> pid_t? {
        TextFile.read(pidFile(role)).flatMap { pid_t($0.trimmingSuffix(while: { $0 == "\n" || $0 == " " })) }
    }

    public func writePID(_ pid: pid_t, for role: ClusterRole) throws(ClusterError) {
        guard TextFile.writeAtomically(pidFile(role), "\(pid)\n") else { throw ClusterError("cannot write \(pidFile(role))") }
    }

    public func removePID(_ role: ClusterRole) { unlink(pidFile(role)) }

    /// Creates the run directory and its `logs/` and `pids/`.
    public func create() throws(ClusterError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in (path + "/logs").split(separator: "/") {
            prefix += "/" + part
            mkdir(prefix, 0o755)
        }
        mkdir(path + "/pids", 0o755)
        var info = stat()
        guard stat(path + "/pids", &info) == 0, stat(path + "/logs", &info) == 0 else {
            throw ClusterError("cannot create the run directory \(path) (\(String(cString: strerror(errno))))")
        }
    }
}

/// `path` made absolute against the working directory.
public func absolutePath(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
}
