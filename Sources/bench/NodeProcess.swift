#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile

/// One role of a local cluster (`mqnamesrv` or `mqbroker` with its config file) as a child process that can be
/// killed, suspended, resumed and started again on the same store. Each start logs to `<logPrefix>-<n>.log`.
/// In a `namespace`, the child runs under `ip netns exec` (which execs it: the pid is the role's own).
final class NodeProcess: @unchecked Sendable {
    // @unchecked: a node is driven by one task at a time (the run, then its injector); starting it may run on a
    // Dispatch thread while that task waits.
    let name: String
    let arguments: [String]
    let logPrefix: String
    let namespace: String?
    private(set) var pid: pid_t?
    private(set) var suspended = false
    private var starts = 0
    /// The file system of the node's store when power faults run (`PowerMount`): mounted before each start.
    var disk: PowerMount?

    init(name: String, arguments: [String], logPrefix: String, namespace: String? = nil) {
        self.name = name
        self.arguments = arguments
        self.logPrefix = logPrefix
        self.namespace = namespace
    }

    /// The log of the latest start.
    var log: String { "\(logPrefix)-\(starts).log" }
    var running: Bool { pid != nil }

    /// Starts the role and waits (at most `seconds`) for its `boot success` line.
    func start(seconds: Double = 30) throws {
        precondition(pid == nil, "\(name) is already running")
        if let disk, !disk.mounted { try disk.mount() }
        starts += 1
        let command = namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] + arguments } ?? arguments
        pid = try spawnLogged(command, log: log, readyText: "boot success", seconds: seconds)
        suspended = false
    }

    /// SIGKILL, reaped at once.
    func kill() {
        guard let pid else { return }
        Glibc.kill(pid, SIGKILL)
        reap(pid)
    }

    /// A power loss: the store's file system freezes first (nothing the node asks of it from then on is applied),
    /// then SIGKILL, then the mount is aborted and detached (its unsynced writes and the kernel's dirty pages are
    /// gone; a thread of the node waiting on the frozen mount is released so that the kill completes), then the
    /// node is reaped. The next `start()` mounts what was durable. Returns powerfs's `frozen ...` line.
    func powerOff() throws -> String {
        guard let disk else { preconditionFailure("\(name) has no powerfs mount (validated: power faults mount every store)") }
        let frozen: String
        do {
            frozen = try disk.cut()
        } catch {
            kill()
            disk.unmount()
            throw error
        }
        if let pid { Glibc.kill(pid, SIGKILL) }
        disk.unmount()
        if let pid { reap(pid) }
        return frozen
    }

    private func reap(_ pid: pid_t) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        self.pid = nil
        suspended = false
    }

    func suspend() {
        guard let pid else { return }
        Glibc.kill(pid, SIGSTOP)
        suspended = true
    }

    func resume() {
        guard let pid else { return }
        Glibc.kill(pid, SIGCONT)
        suspended = false
    }

    /// SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM, SIGKILL after `graceSeconds`.
    func stop(graceSeconds: Double = 15) {
        guard let pid else { return }
        Glibc.kill(pid, SIGCONT)
        stopChild(pid, graceSeconds: graceSeconds)
        self.pid = nil
        suspended = false
    }
}

/// Starts `arguments` (an absolute path first) with stdout and stderr in `output` (truncated).
func spawnProcess(_ arguments: [String], output: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // An empty signal mask: a child started from a Dispatch thread (which blocks nearly every signal) would
    // otherwise inherit that mask and never see SIGTERM or powerfs's SIGUSR1 (the power cut).
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, environ) == 0 else {
        throw ValidationErrorText("cannot start \(arguments[0])")
    }
    return pid
}

/// Runs `arguments` to completion with its output in `output`; its exit status (128 + signal when a signal
/// ended it), or nil when it could not be started.
@discardableResult
func runCommand(_ arguments: [String], output: String = "/dev/null") -> Int32? {
    guard let pid = try? spawnProcess(arguments, output: output) else { return nil }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// Runs `arguments` and returns its standard output (nil when it could not start or failed).
func readPipe(_ arguments: [String]) -> String? {
    let path = "/tmp/mqc-output-\(getpid())-\(monotonicNanos())"
    defer { unlink(path) }
    guard runCommand(arguments, output: path) == 0 else { return nil }
    return readTextFile(path)
}
