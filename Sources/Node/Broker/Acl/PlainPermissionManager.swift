#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Common
import Synchronization

/// The broker's `plain_acl.yml` (RocketMQ's `PlainPermissionManager` for one file): loaded at start (a bad file stops
/// start-up with file, line and problem), watched every `watchIntervalMillis` (RocketMQ's `AclFileWatchService`
/// checks every 500 ms) and reloaded when its modification time, size or inode changes. A reload that fails keeps
/// the previous good rules and logs the problem once per change. Changes through the ACL request codes are checked,
/// applied, and written back to the file (atomically, with the data version bumped).
final class PlainPermissionManager: Sendable {
    static let watchIntervalMillis: UInt64 = 500

    let path: String
    private let log: @Sendable (String) -> Void
    private let state: Mutex<State>
    private let watcher = Mutex<PeriodicThread?>(nil)
    /// Held while a change is applied and written (never while a request is checked).
    private let writing = Mutex<Void>(())
    /// The second of the last refusal logged: at most one line per second, so a client hammering the broker with bad
    /// signatures cannot flood the log.
    private let lastDenialLogSecond = Atomic<Int64>(0)

    struct State {
        var file: PlainAclFile
        var rules: AclRules
        /// The file's identity when last read (or last refused): a change of any part triggers a reload.
        var stamp: FileStamp?
    }

    /// Loads `path`, creating it empty when missing (as RocketMQ does: then every request without a global white
    /// address is refused until accounts are added).
    init(path: String, log: @escaping @Sendable (String) -> Void) throws(YAMLError) {
        self.path = path
        self.log = log
        if FileStamp(path: path) == nil, !TextFile.writeAtomically(path, PlainAclFile().yaml()) {
            throw YAMLError(file: path, line: 0, problem: "missing, and cannot be created")
        }
        let stamp = FileStamp(path: path)
        let file = try Self.read(path)
        let rules: AclRules
        do { rules = try AclRules(file) } catch { throw YAMLError(file: path, line: 0, problem: error.description) }
        state = Mutex(State(file: file, rules: rules, stamp: stamp))
        log("acl: loaded \(path): \(file.accounts.count) account(s), \(file.globalWhiteRemoteAddresses.count) global white address(es)")
    }

    private static func read(_ path: String) throws(YAMLError) -> PlainAclFile {
        guard let text = TextFile.read(path) else { throw YAMLError(file: path, line: 0, problem: "cannot be read") }
        return try PlainAclFile.parse(text, file: path)
    }

    /// The rules requests are checked against now.
    var rules: AclRules { state.withLock { $0.rules } }

    /// The file as last loaded or written.
    var file: PlainAclFile { state.withLock { $0.file } }

    /// Starts the watcher thread.
    func startWatching() {
        let thread = PeriodicThread(name: "acl-watch", intervalNanos: Self.watchIntervalMillis * 1_000_000) { [weak self] in
            self?.reloadIfChanged()
        }
        watcher.withLock { $0 = thread }
    }

    func stop() {
        let thread = watcher.withLock { thread -> PeriodicThread? in
            defer { thread = nil }
            return thread
        }
        thread?.stop()
    }

    /// Reloads the file when it changed; returns whether new rules took effect.
    @discardableResult
    func reloadIfChanged() -> Bool {
        let stamp = FileStamp(path: path)
        guard stamp != state.withLock({ $0.stamp }) else { return false }
        do {
            let file = try Self.read(path)
            let rules: AclRules
            do { rules = try AclRules(file) } catch { throw YAMLError(file: path, line: 0, problem: error.description) }
            state.withLock { $0 = State(file: file, rules: rules, stamp: stamp) }
            log("acl: reloaded \(path): \(file.accounts.count) account(s), \(file.globalWhiteRemoteAddresses.count) global white address(es)")
            return true
        } catch {
            state.withLock { $0.stamp = stamp }  // log this version's problem once, not every 500 ms
            log("acl: \(error); keeping the previous rules")
            return false
        }
    }

    func logDenial(_ text: @autoclosure () -> String) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let second = Int64(now.tv_sec)
        guard lastDenialLogSecond.exchange(second, ordering: .relaxed) != second else { return }
        log(text())
    }

    /// Applies `change` to the file, checks the result, writes it back with the data version bumped and takes the new
    /// rules into use. Nothing changes (in memory or on disk) when the result does not check or cannot be written.
    /// Changes are serialised by their own lock, so requests keep being checked while the file is synced.
    func modify(_ change: (inout PlainAclFile) throws(AclPatternError) -> Void) throws(AclPatternError) {
        let version = try writing.withLock { _ throws(AclPatternError) -> Int64 in
            var file = state.withLock { $0.file }
            try change(&file)
            for account in file.accounts { try account.validate() }
            file.dataVersion = AclDataVersion(counter: file.dataVersion.counter + 1, timestamp: currentTimeMillis())
            let rules = try AclRules(file)
            guard TextFile.writeAtomically(path, file.yaml()) else {
                throw AclPatternError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            let stamp = FileStamp(path: path)
            state.withLock { $0 = State(file: file, rules: rules, stamp: stamp) }
            return file.dataVersion.counter
        }
        log("acl: \(path) updated to data version \(version)")
    }
}

/// What identifies one version of a file: a rename (an editor's save, our own write) changes the inode, an edit in
/// place the size or modification time.
struct FileStamp: Equatable, Sendable {
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanos: Int

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modifiedSeconds = Int(info.st_mtim.tv_sec)
        modifiedNanos = Int(info.st_mtim.tv_nsec)
    }
}
