#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Client
import Common
import Remoting

/// A NameServer and one broker as real child processes (the `mqnamesrv`/`mqbroker` built beside this
/// `bench`), on free loopback ports, with a fresh temporary store that is removed on `stop()`.
final class LocalCluster {
    struct Shape: Hashable, CustomStringConvertible {
        var flush: String  // "async" | "sync"
        var io: String  // "mmap" | "io_uring"
        var description: String {
            if flush == "peer" { return "NATS JetStream (file)" }
            return "\(flush == "sync" ? "SYNC_FLUSH" : "ASYNC_FLUSH")/\(io)"
        }
    }

    let shape: Shape
    let directory: String
    let nameServerPort: Int
    let brokerPort: Int
    private var children: [pid_t] = []
    var namesrvAddr: String { "127.0.0.1:\(nameServerPort)" }

    init(shape: Shape, extraConfig: String = "") throws {
        self.shape = shape
        directory = makeTemporaryDirectory("bench-cluster")
        nameServerPort = freeLoopbackPort()
        brokerPort = freeLoopbackPort()
        guard let nameServer = siblingExecutable("mqnamesrv"), let broker = siblingExecutable("mqbroker") else {
            throw ValidationErrorText("mqnamesrv and mqbroker must be built beside bench (swift build -c release builds all three)")
        }
        writeFile(directory + "/namesrv.properties", "listenPort=\(nameServerPort)\n")
        writeFile(directory + "/broker.conf", """
            brokerClusterName=BenchCluster
            brokerName=broker-bench
            brokerId=0
            brokerIP1=127.0.0.1
            listenPort=\(brokerPort)
            haListenPort=\(freeLoopbackPort())
            namesrvAddr=\(namesrvAddr)
            storePathRootDir=\(directory)/store
            flushDiskType=\(shape.flush == "sync" ? "SYNC_FLUSH" : "ASYNC_FLUSH")
            ioPath=\(shape.io)
            mappedFileSizeCommitLog=1073741824
            \(extraConfig)

            """)
        do {
            try spawn([nameServer, "-c", directory + "/namesrv.properties"], log: directory + "/namesrv.log")
            try spawn([broker, "-c", directory + "/broker.conf"], log: directory + "/broker.log")
        } catch {
            stop()
            throw error
        }
    }

    private func spawn(_ arguments: [String], log: String) throws {
        children.append(try spawnLogged(arguments, log: log, readyText: "boot success", seconds: 30))
    }

    /// SIGTERM to every child (broker first), SIGKILL after 15 s, then the store is removed.
    func stop() {
        for pid in children.reversed() { stopChild(pid, graceSeconds: 15) }
        children.removeAll()
        removeTree(directory)
    }
}

func siblingExecutable(_ name: String) -> String? {
    var path = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &path, path.count - 1)
    guard n > 0 else { return nil }
    var directory = String(decoding: path[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while !directory.hasSuffix("/") && !directory.isEmpty { directory.removeLast() }
    return access(directory + name, X_OK) == 0 ? directory + name : nil
}

/// Starts `arguments` with stdout and stderr in `log` and waits (at most `seconds`) until the log shows
/// `readyText`. Roles it starts stop by themselves if this process dies (MQ_EXIT_WITH_PARENT). A child that
/// exits or does not get ready is stopped and reported with its log.
func spawnLogged(_ arguments: [String], log: String, readyText: String, seconds: Double) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    setenv("MQ_EXIT_WITH_PARENT", "\(getpid())", 1)  // an interrupted bench leaves no broker behind
    guard posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else {
        throw ValidationErrorText("cannot start \(arguments[0])")
    }
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    while monotonicNanos() < deadline {
        if let text = readTextFile(log), text.contains(readyText) { return pid }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            throw ValidationErrorText("\(arguments[0]) exited during start-up: \(readTextFile(log) ?? "")")
        }
        usleep(20_000)
    }
    stopChild(pid, graceSeconds: 5)
    throw ValidationErrorText("\(arguments[0]) did not start within \(format(seconds, 0)) s: \(readTextFile(log) ?? "")")
}

/// SIGTERM, then SIGKILL if `pid` has not exited after `graceSeconds`; reaps it.
func stopChild(_ pid: pid_t, graceSeconds: Double) {
    kill(pid, SIGTERM)
    let deadline = monotonicNanos() + UInt64(graceSeconds * 1e9)
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        if monotonicNanos() > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            return
        }
        usleep(10_000)
    }
}

/// Writes (or with `append`, appends) `text` to `path`.
func writeFile(_ path: String, _ text: String, append: Bool = false) {
    let fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
    guard fd >= 0 else { return }
    var text = text
    text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
