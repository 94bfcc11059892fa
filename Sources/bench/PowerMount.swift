#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile

/// powerfs (`Tests/powerloss/powerfs.py`, standard-library Python; Tests/powerloss/README.md): a FUSE file system
/// that keeps only what was fsynced or fdatasynced and can cut the power. `bench chaos --faults power` puts each
/// broker node's store on a mount of its own.
struct PowerFS: Sendable {
    let python: String
    let script: String
    /// Seeds the torn write of each cut (every node and every mount draws its own from it).
    var seed: UInt64 = 0

    /// Finds python3 on PATH and the script: `script` when given, else `Tests/powerloss/powerfs.py` in the nearest
    /// directory above this executable (the source tree it was built in).
    /// - Throws: `ValidationErrorText` naming what is missing.
    static func locate(script: String?) throws -> PowerFS {
        guard let python = executableOnPath("python3") else {
            throw ValidationErrorText("power faults run powerfs (Python 3), but python3 is not on PATH")
        }
        if let script {
            guard access(script, R_OK) == 0 else { throw ValidationErrorText("--powerfs \(script): no such readable file") }
            return PowerFS(python: python, script: script)
        }
        var directory = siblingExecutable("bench").map { String($0.dropLast("bench".count)) } ?? ""
        for _ in 0..<8 where directory.count > 1 {
            directory = String(directory.dropLast())  // the trailing slash, then the last component
            while !directory.hasSuffix("/") && !directory.isEmpty { directory.removeLast() }
            let candidate = directory + "Tests/powerloss/powerfs.py"
            if access(candidate, R_OK) == 0 { return PowerFS(python: python, script: candidate) }
        }
        throw ValidationErrorText("power faults need Tests/powerloss/powerfs.py, not found above this executable: give --powerfs PATH")
    }

    /// Why a power fault cannot run here (nil when it can): not root, or powerfs's probe could not mount FUSE
    /// (no /dev/fuse, no permission). The probe mounts a scratch file system in a temporary directory and
    /// detaches it, so nothing is left.
    func unavailableReason() -> String? {
        guard geteuid() == 0 else { return "powerfs calls mount(2), which needs root (this bench runs as uid \(geteuid()))" }
        let output = "/tmp/bench-powerfs-probe-\(getpid())"
        defer { unlink(output) }
        let status = runCommand([python, script, "--probe"], output: output)
        let text = (readTextFile(output) ?? "").split(separator: "\n").last.map(String.init) ?? ""
        switch status {
        case 0: return nil
        case 77: return text.isEmpty ? "powerfs --probe: FUSE unavailable" : text
        default: return "\(script) --probe failed (status \(status.map(String.init) ?? "none")): \(text)"
        }
    }
}

/// One powerfs mount: the durable state and the live bytes under `base`, mounted at `mountpoint` (a node's store).
/// `cut()` freezes it (nothing asked after that is applied), `unmount()` ends the daemon, which aborts the
/// connection (every pending request fails, the kernel drops the mount's dirty pages), and detaches the mount; a
/// later `mount()` shows only what was durable. The daemon exits by itself when this bench is gone.
final class PowerMount: @unchecked Sendable {
    // @unchecked: driven by one task at a time, as its node is (the run, then the injector; see NodeProcess).
    let powerfs: PowerFS
    let base: String
    let mountpoint: String
    private(set) var pid: pid_t?
    private var mounts = 0
    var mounted: Bool { pid != nil }
    /// The daemon's output for the latest mount (`ready`, `frozen ...`).
    var log: String { "\(base)/powerfs-\(mounts).log" }

    init(powerfs: PowerFS, base: String, mountpoint: String) {
        self.powerfs = powerfs
        self.base = base
        self.mountpoint = mountpoint
        mkdir(base, 0o755)
        mkdir(mountpoint, 0o755)
    }

    /// Mounts the durable state (empty the first time) at `mountpoint`, with `--tear` (a cut also keeps a seeded
    /// prefix of one file's unsynced bytes) and the strict metadata model (a name is durable only after an fsync of
    /// its directory). Waits at most `seconds` for `ready`.
    func mount(seconds: Double = 60) throws {
        precondition(pid == nil, "\(mountpoint) is already mounted")
        mounts += 1
        pid = try spawnProcess([powerfs.python, powerfs.script, "--durable", base + "/durable", "--live", base + "/live",
                                "--mountpoint", mountpoint, "--seed", "\(powerfs.seed &+ UInt64(mounts))", "--tear",
                                "--metadata", "strict", "--exit-with-parent", "\(getpid())"], output: log)
        do {
            _ = try waitForLine("ready", seconds: seconds)
        } catch {
            unmount()
            throw error
        }
    }

    /// The power cut (SIGUSR1): powerfs stops at a request boundary and applies nothing more. Returns its line
    /// `frozen torn=<path>[...] volatile_bytes=N ...`.
    func cut(seconds: Double = 30) throws -> String {
        guard let pid else { throw ValidationErrorText("\(mountpoint) is not mounted: no power to cut") }
        kill(pid, SIGUSR1)
        return try waitForLine("frozen", seconds: seconds)
    }

    /// Ends the daemon and detaches the mount (`umount -l`). Safe to call more than once.
    func unmount() {
        if let pid { stopChild(pid, graceSeconds: 10) }
        pid = nil
        detachMount(mountpoint)
    }

    /// The first line of the daemon's output starting with `prefix`, within `seconds`; throws with the output when
    /// the daemon exits first (`unavailable: ...`) or takes longer.
    private func waitForLine(_ prefix: String, seconds: Double) throws -> String {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while monotonicNanos() < deadline {
            let text = readTextFile(log) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            var status: Int32 = 0
            if let pid, waitpid(pid, &status, WNOHANG) == pid {
                self.pid = nil
                throw ValidationErrorText("powerfs for \(mountpoint) exited before `\(prefix)`: \(text)")
            }
            usleep(5_000)
        }
        throw ValidationErrorText("powerfs for \(mountpoint) printed no `\(prefix)` within \(format(seconds, 0)) s: \(readTextFile(log) ?? "")")
    }

    /// Detaches the powerfs mounts under /tmp/bench-* whose daemon is gone (a bench killed with SIGKILL cannot
    /// unmount; its daemons exit within 0.5 s, leaving dead mounts): the next `bench chaos --faults power` does.
    /// A live daemon (another bench's) is left alone, and nothing here touches a mount's files (a frozen one would
    /// block).
    static func removeLeftovers() {
        let commands = processCommandLines()
        for mountpoint in mountPoints(fileSystem: "fuse.powerfs") where mountpoint.hasPrefix("/tmp/bench-") {
            guard !commands.contains(where: { $0.contains("powerfs.py") && $0.contains(mountpoint) }) else { continue }
            detachMount(mountpoint)
        }
    }
}

/// Mount points of `fileSystem` (`fuse.powerfs`) in this mount namespace, from /proc/self/mountinfo.
func mountPoints(fileSystem: String) -> [String] {
    (readTextFile("/proc/self/mountinfo") ?? "").split(separator: "\n").compactMap { line in
        let halves = line.split(separator: " - ", maxSplits: 1)
        guard halves.count == 2, halves[1].split(separator: " ").first.map(String.init) == fileSystem else { return nil }
        let fields = halves[0].split(separator: " ")
        return fields.count > 4 ? String(fields[4]) : nil
    }
}

/// Lazily detaches whatever is mounted at `path` (umount -l; fusermount3 -u -z as a fallback). Never reads it.
func detachMount(_ path: String) {
    for command in [["umount", "-l", path], ["fusermount3", "-u", "-z", path]] {
        guard isMountPoint(path), let binary = executableOnPath(command[0]) else { continue }
        runCommand([binary] + command.dropFirst())
    }
}

/// Whether something is mounted exactly at `path` (by /proc/self/mountinfo; the path is not touched).
func isMountPoint(_ path: String) -> Bool {
    (readTextFile("/proc/self/mountinfo") ?? "").split(separator: "\n").contains { line in
        let fields = line.split(separator: " ")
        return fields.count > 4 && fields[4] == path
    }
}

/// Every process's command line (arguments joined by NUL), from /proc.
func processCommandLines() -> [String] {
    guard let entries = opendir("/proc") else { return [] }
    defer { closedir(entries) }
    var commands: [String] = []
    while let entry = readdir(entries) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if Int(name) != nil, let command = readTextFile("/proc/\(name)/cmdline") { commands.append(command) }
    }
    return commands
}

/// The first `name` that is an executable file in a directory of PATH (then /usr/bin, /bin, /usr/sbin, /sbin).
func executableOnPath(_ name: String) -> String? {
    let path = getenv("PATH").map { String(cString: $0) } ?? ""
    let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    return directories.lazy.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
}

extension PowerFS {
    /// A mount for the store at `<directory>/<store>`, its state under `<directory>/powerfs-<store>`, its tears seeded
    /// apart from every other node's.
    func disk(forStore store: String, in directory: String, node: Int) -> PowerMount {
        var own = self
        own.seed = seed &* 1_000 &+ UInt64(node) &* 100
        return PowerMount(powerfs: own, base: directory + "/powerfs-" + store, mountpoint: directory + "/" + store)
    }
}
